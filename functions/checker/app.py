"""RunChecker: the run's output object must exist in S3, written by this run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.observability import logger, workflow_step
from amirun_core.output import check_output
from amirun_core.state import WorkflowState

S3 = aws.client("s3")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    check = check_output(S3, state)
    logger.info("output checked", extra=check.to_json())
    return check.to_json()
