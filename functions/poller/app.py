"""EC2Poller: one look at the command; the state machine waits between looks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.command import follow_command
from amirun_core.observability import logger, metrics, workflow_step
from amirun_core.state import WorkflowState

SSM = aws.client("ssm")
EC2 = aws.client("ec2")
#: Reads the end of an output too long for SSM's answer (output bucket, runs/*).
S3 = aws.client("s3")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    command = follow_command(SSM, EC2, state, S3)
    if command.done:
        metrics.add_metric(name="CommandsSucceeded", unit=MetricUnit.Count, value=1)
        # The safety look found the end before (or without) its event: the dashboard's ratio.
        metrics.add_metric(name="EndsFoundBySafetyLook", unit=MetricUnit.Count, value=1)
    logger.info("command status", extra=command.to_json())
    return command.to_json()
