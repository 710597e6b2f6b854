"""ClaimSlot: make this execution the owner of its run's slot, before anything else.

One run per scheduled time: Scheduler starts a schedule again, under a new
execution name, when it could not tell a start succeeded. The first execution
to claim the slot (schedule name and scheduled time) runs; another one finds it
taken and ends at once, launching nothing.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.ledger import claim_run_slot
from amirun_core.observability import logger, metrics, workflow_step
from amirun_core.state import WorkflowState

DYNAMODB = aws.client("dynamodb")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    claim = claim_run_slot(DYNAMODB, os.environ["RUN_LEDGER_TABLE"], state)
    if not claim.claimed:
        metrics.add_metric(name="DuplicateRuns", unit=MetricUnit.Count, value=1)
        logger.warning("slot already taken", extra=claim.to_json())
    else:
        logger.info("slot claimed", extra=claim.to_json())
    return claim.to_json()
