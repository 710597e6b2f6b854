"""CheckInputs: are the S3 objects the run needs there yet? Nothing is launched before."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.observability import logger, workflow_step
from amirun_core.prelaunch import check_inputs
from amirun_core.state import WorkflowState

S3 = aws.client("s3")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    inputs = check_inputs(S3, state)
    logger.info("inputs checked", extra=inputs.to_json())
    return inputs.to_json()
