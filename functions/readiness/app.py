"""CheckInstanceReady: is the instance running and its SSM agent online yet?"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.launch import check_readiness
from amirun_core.observability import logger, workflow_step
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
SSM = aws.client("ssm")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    instance = check_readiness(EC2, SSM, state)
    logger.info("instance readiness", extra=instance.to_json())
    return instance.to_json()
