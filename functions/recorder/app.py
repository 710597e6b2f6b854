"""Recorder: when an execution ends, however it ends, write its end onto its slot.

The state machine's status-change event (SUCCEEDED too) on a rule of its own:
the only step that sees an execution time out or be aborted, and the one place
the end is written, so the ledger's rights stay with one small function.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.observability import logger, metrics, tracer
from amirun_core.slot_facts import ledger_table, record_execution_end

DYNAMODB = aws.client("dynamodb")
LEDGER_TABLE = ledger_table()


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = dict(event.detail)
    recorded = record_execution_end(DYNAMODB, LEDGER_TABLE, detail)
    logger.info("execution end", extra={"status": detail.get("status"), "recorded": recorded})
    return {
        "execution": detail["executionArn"],
        "status": detail.get("status"),
        "recorded": recorded,
    }
