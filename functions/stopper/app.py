"""EC2Stopper: stop or terminate the instance (and delete its volumes if asked).

Runs on the success path and after every failure; on a failure it also says
why the run failed and whether to relaunch it. Once the instance is at rest it
counts the instance's lifetime and estimated cost, labelled with the schedule.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.cleanup import stop_instance
from amirun_core.observability import count_usage, logger, metrics, workflow_step
from amirun_core.room import Limits, release_room
from amirun_core.slot_facts import ledger_table, record_cleanup
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
CLOUDWATCH = aws.client("cloudwatch")
DYNAMODB = aws.client("dynamodb")
LEDGER_TABLE = ledger_table()
LIMITS = Limits.from_environment()


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    cleanup = stop_instance(EC2, state, CLOUDWATCH)
    if cleanup.done:
        # The instance is at rest: its vCPUs are free for the next run in line. That
        # may not fail a cleanup that is done: throttling is retried (AwsThrottled);
        # anything else is logged, and the reconciler frees a claim left behind.
        try:
            release_room(DYNAMODB, LEDGER_TABLE or "", state, LIMITS)
        except ClientError as exc:
            logger.warning("vCPU claim not released", extra={"error": aws.describe(exc)})
    if cleanup.done and cleanup.error:
        metrics.add_metric(name="RunsFailed", unit=MetricUnit.Count, value=1)
    if cleanup.done and cleanup.usage:
        count_usage(cleanup.usage, state.schedule_name)
    record_cleanup(DYNAMODB, LEDGER_TABLE, state, cleanup)
    logger.info("cleanup", extra=cleanup.to_json())
    return cleanup.to_json()
