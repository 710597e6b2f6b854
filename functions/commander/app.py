"""Commander: send the run's commands to the instance with SSM Run Command."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.command import send_commands
from amirun_core.observability import logger, workflow_step
from amirun_core.state import WorkflowState

SSM = aws.client("ssm")
S3 = aws.client("s3")
OUTPUT_BUCKET = os.environ.get("OUTPUT_BUCKET") or None


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    command = send_commands(SSM, state, OUTPUT_BUCKET, S3)
    logger.info("command sent", extra=command.to_json())
    return command.to_json()
