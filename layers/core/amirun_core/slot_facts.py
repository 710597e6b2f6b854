"""What the steps tell the slot ledger: each fact written by the step that knows it.

The starter knows an attempt's instance (type, market, zone); the stopper knows
what the attempt came to (instance-seconds, cost, the error that ended it);
the recorder sees the execution's end (status, error, duration, how late it
started against its scheduled time, output). Each write goes through
`amirun_core.ledger`, which writes only as the slot's owner and idempotently,
so a retried step writes the same thing again.

Bookkeeping never fails a run: a refusal or a missing table is logged and the
run goes on. Throttling is raised (AwsThrottled), so the state machine's Retry
writes again later, as it does for every other call.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws, ledger
from amirun_core.errors import one_line_cause
from amirun_core.state import CleanupRecord, InstanceRecord, WorkflowState

logger = logging.getLogger(__name__)

#: Step Functions' execution statuses as the ledger spells them.
END_STATUS = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "TIMED_OUT": "timed_out",
    "ABORTED": "aborted",
}
#: What an execution that ended without an error name ended with.
_STATUS_ERROR = {"TIMED_OUT": "States.Timeout", "ABORTED": "aborted"}


def ledger_table() -> str | None:
    """The ledger's table name, from the template's RUN_LEDGER_TABLE (None: no ledger)."""
    return os.environ.get("RUN_LEDGER_TABLE") or None


def _state_slot(state: WorkflowState) -> ledger.RunSlot:
    return ledger.run_slot(state.request, state.execution.name, state.execution.start_time)


def _written(action: str, write: Any) -> bool:
    """Run one ledger write; only throttling escapes (for the state machine's Retry)."""
    try:
        return bool(write())
    except ClientError as exc:
        aws.raise_if_throttled(exc, action)
        logger.warning("the ledger was not written", extra={"action": action, "error": str(exc)})
        return False


def record_launch(
    dynamodb: Any, table: str | None, state: WorkflowState, instance: InstanceRecord
) -> bool:
    """The starter: this attempt's instance, where and how it runs."""
    if not table:
        return False
    fields = {
        "instance_id": instance.instance_id,
        "instance_type": instance.instance_type,
        "market": instance.market,
        "az": instance.zone,
        "launched_at": instance.launched_at,
    }
    return _written(
        "UpdateItem",
        lambda: ledger.record_attempt(
            dynamodb,
            table,
            slot=_state_slot(state).key,
            execution_arn=state.execution.id,
            attempt=state.attempt,
            fields={k: v for k, v in fields.items() if v is not None},
        ),
    )


def record_cleanup(
    dynamodb: Any, table: str | None, state: WorkflowState, cleanup: CleanupRecord
) -> bool:
    """The stopper, once the instance is at rest: what the attempt came to, and why
    it ended if it failed."""
    if not table or not cleanup.done:
        return False
    fields: dict[str, Any] = {"ended_at": datetime.now(UTC), "cleanup": cleanup.action}
    if cleanup.instance_id:
        fields["instance_id"] = cleanup.instance_id
    if state.instance is not None:
        fields |= {
            "az": state.instance.zone,
            "launch_note": state.instance.launch_note or None,
            "spot_price": state.instance.spot_price_usd_per_hour,
        }
    if cleanup.usage is not None:
        fields |= {
            "instance_type": cleanup.usage.instance_type,
            "market": cleanup.usage.market,
            "instance_seconds": cleanup.usage.instance_seconds,
            "cost_usd": cleanup.usage.estimated_cost_usd,
            "price_usd_per_hour": cleanup.usage.price_usd_per_hour,
            # What the instance used, for right-sizing (amirun_core.rightsize).
            "cpu_max": cleanup.usage.cpu_max,
            "cpu_avg": cleanup.usage.cpu_avg,
            "mem_max": cleanup.usage.mem_max,
        }
    if state.error is not None:
        fields["error"] = state.error.Error
        fields["cause"] = one_line_cause(state.error.Cause)
    return _written(
        "UpdateItem",
        lambda: ledger.record_attempt(
            dynamodb,
            table,
            slot=_state_slot(state).key,
            execution_arn=state.execution.id,
            attempt=state.attempt,
            fields={k: v for k, v in fields.items() if v is not None},
        ),
    )


def _moment(epoch_ms: Any) -> datetime | None:
    if isinstance(epoch_ms, int | float) and not isinstance(epoch_ms, bool):
        return datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return None


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def end_fields(
    detail: dict[str, Any], slot: ledger.RunSlot, item: dict[str, Any] | None
) -> dict[str, Any]:
    """What the ledger keeps of an ended execution, from its status-change event.

    Instance-seconds and cost: a succeeded run's output totals its attempts; for a
    failed one they are added up from the attempts the stopper wrote.
    """
    status = str(detail.get("status", ""))
    fields: dict[str, Any] = {}
    started, stopped = _moment(detail.get("startDate")), _moment(detail.get("stopDate"))
    if stopped:
        fields["ended_at"] = stopped
    if started and stopped:
        fields["duration_s"] = round((stopped - started).total_seconds(), 3)
    if started:
        fields["start_latency_s"] = round(
            max(0.0, (started - slot.scheduled_time).total_seconds()), 3
        )
    if status != "SUCCEEDED":
        fields["error"] = detail.get("error") or _STATUS_ERROR.get(status, status)
        cause = one_line_cause(detail.get("cause"))
        if cause:
            fields["cause"] = cause
    output = _json(detail.get("output"))
    output = output if isinstance(output, dict) else {}
    usage = output.get("usage") if isinstance(output.get("usage"), dict) else None
    if usage:
        fields["instance_seconds"] = usage.get("run_instance_seconds")
        fields["cost_usd"] = usage.get("run_estimated_cost_usd")
    else:
        attempts = list(((item or {}).get("attempts") or {}).values())
        seconds = [a.get("instance_seconds") for a in attempts if isinstance(a, dict)]
        costs = [a.get("cost_usd") for a in attempts if isinstance(a, dict)]
        if any(s is not None for s in seconds):
            fields["instance_seconds"] = sum(s or 0 for s in seconds)
        if any(c is not None for c in costs):
            fields["cost_usd"] = round(sum(c or 0 for c in costs), 6)
    checked = output.get("checked_object")
    if isinstance(checked, dict) and checked.get("location"):
        fields["output_key"] = checked["location"]
    if isinstance(output.get("attempt"), int):
        fields["attempt_count"] = output["attempt"]
    return {k: v for k, v in fields.items() if v is not None}


def record_execution_end(dynamodb: Any, table: str | None, detail: dict[str, Any]) -> bool:
    """The recorder: how the execution ended, onto its slot (if it owns one)."""
    status = END_STATUS.get(str(detail.get("status")))
    if not table or status is None:
        return False
    started = _moment(detail.get("startDate")) or datetime.now(UTC)
    slot = ledger.run_slot(_json(detail.get("input")), str(detail.get("name", "")), started)

    def write() -> bool:
        item = ledger.read_slot(dynamodb, table, slot.key)
        if item is None or item.get("execution") != detail.get("executionArn"):
            return False  # not this execution's slot: a duplicate start, or never claimed
        return ledger.record_end(
            dynamodb,
            table,
            slot=slot.key,
            execution_arn=str(detail["executionArn"]),
            status=status,
            fields=end_fields(detail, slot, item),
        )

    return _written("UpdateItem", write)
