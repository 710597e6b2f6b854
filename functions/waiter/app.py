"""WaitForCommandEnd: store the step's task token where the end event finds it, look once.

The step itself waits (lambda:invoke.waitForTaskToken): this function only
makes the token findable and returns; the end event's handler, or this
look if the command already ended, calls SendTaskSuccess/SendTaskFailure.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core.completion import services_from_environment, wait_for_end
from amirun_core.observability import logger, metrics, token_step
from amirun_core.state import CommandWait

SERVICES = services_from_environment()


@token_step
def lambda_handler(wait: CommandWait, context: LambdaContext) -> dict[str, Any]:
    notice = wait_for_end(SERVICES, wait.state, wait.task_token)
    if notice.outcome == "succeeded":
        metrics.add_metric(name="CommandsSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("waiting for the command's end", extra=notice.to_json())
    return notice.to_json()
