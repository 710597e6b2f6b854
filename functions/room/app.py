"""ClaimRoom: take the run's vCPUs under the stack's limit, or say when to look again."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.observability import logger, metrics, workflow_step
from amirun_core.room import Limits, claim_room
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
DYNAMODB = aws.client("dynamodb")
TABLE = os.environ.get("RUN_LEDGER_TABLE", "")
LIMITS = Limits.from_environment()


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    room = claim_room(EC2, DYNAMODB, TABLE, state, LIMITS)
    if not room.granted:
        metrics.add_metric(name="RunsWaitingForRoom", unit=MetricUnit.Count, value=1)
    logger.info("room", extra=room.to_json())
    return room.to_json()
