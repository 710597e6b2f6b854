"""CheckInstanceReady: is the instance running and its SSM agent online yet?"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.launch import check_readiness
from amirun_core.observability import CORRELATION_ID_PATH, logger, metrics, tracer
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
SSM = aws.client("ssm")


@logger.inject_lambda_context(correlation_id_path=CORRELATION_ID_PATH)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=WorkflowState)
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    instance = check_readiness(EC2, SSM, state)
    logger.info("instance readiness", extra=instance.to_json())
    return instance.to_json()
