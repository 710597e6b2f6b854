"""Resolve: validate the execution JSON and resolve DAILY once for the whole run."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core.observability import logger, workflow_step
from amirun_core.prelaunch import resolve_execution
from amirun_core.state import WorkflowState


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    resolution = resolve_execution(state)
    logger.info("execution resolved", extra=resolution.model_dump(mode="json"))
    return resolution.model_dump(mode="json")
