"""EC2Stopper: stop or terminate the instance (and delete its volumes if asked).

Runs on the success path and after every failure; on a failure it also says
why the run failed and whether to relaunch it. Once the instance is at rest it
counts the instance's lifetime and estimated cost, labelled with the schedule.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.attempt_record import record_usage
from amirun_core.cleanup import stop_instance
from amirun_core.observability import count_usage, logger, metrics, workflow_step
from amirun_core.room import Limits, release_room
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
CLOUDWATCH = aws.client("cloudwatch")
DYNAMODB = aws.client("dynamodb")
TABLE = os.environ.get("RUN_LEDGER_TABLE", "")
LIMITS = Limits.from_environment()


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    cleanup = stop_instance(EC2, state, CLOUDWATCH)
    if cleanup.done:
        # The instance is at rest: its vCPUs are free for the next run in line, and
        # the attempt goes on the run's slot. Neither may fail a cleanup that is done:
        # throttling is retried (AwsThrottled); anything else is logged, and the
        # reconciler frees a claim left behind.
        try:
            release_room(DYNAMODB, TABLE, state, LIMITS)
            record_usage(DYNAMODB, TABLE, state, cleanup)
        except ClientError as exc:
            logger.warning("vCPU claim or ledger not updated", extra={"error": aws.describe(exc)})
    if cleanup.done and cleanup.error:
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    if cleanup.done and cleanup.usage:
        count_usage(cleanup.usage, state.schedule_name)
    logger.info("cleanup", extra=cleanup.to_json())
    return cleanup.to_json()
