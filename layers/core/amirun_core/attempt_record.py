"""What EC2Stopper writes on the run's ledger slot once an attempt's instance is at rest:
which type ran where and why, what it cost at the price in force, what it used."""

from __future__ import annotations

from typing import Any

from amirun_core import ledger
from amirun_core.execution import read_execution
from amirun_core.state import CleanupRecord, WorkflowState


def slot_of(state: WorkflowState) -> str:
    """The run's slot: its schedule and due time, or a slot of its own when started by hand."""
    schedule = read_execution(state.request).schedule
    if schedule is not None and schedule.scheduled_time is not None:
        return ledger.slot_key(schedule.name, schedule.scheduled_time)
    return ledger.slot_key(ledger.manual_schedule(state.execution.name), state.execution.start_time)


def attempt_fields(state: WorkflowState, cleanup: CleanupRecord) -> dict[str, Any]:
    """The attempt's fields for `ledger.record_attempt` (None values left out)."""
    instance = state.instance
    usage = cleanup.usage
    fields: dict[str, Any] = {
        "instance_id": cleanup.instance_id,
        "instance_type": usage.instance_type if usage else None,
        "market": usage.market if usage else None,
        "az": instance.zone if instance else None,
        "launched_at": instance.launched_at if instance else None,
        "launch_note": instance.launch_note if instance else None,
        "spot_price": instance.spot_price_usd_per_hour if instance else None,
        "instance_seconds": usage.instance_seconds if usage else None,
        "cost_usd": usage.estimated_cost_usd if usage else None,
        "cpu_max": usage.cpu_max if usage else None,
        "cpu_avg": usage.cpu_avg if usage else None,
        "mem_max": usage.mem_max if usage else None,
        "error": state.error.Error if state.error else None,
    }
    return {name: value for name, value in fields.items() if value not in (None, "")}


def record_usage(dynamodb: Any, table: str, state: WorkflowState, cleanup: CleanupRecord) -> bool:
    """Write the attempt on the run's slot; False when this execution does not own it."""
    if not table or cleanup.instance_id is None:
        return False
    return ledger.record_attempt(
        dynamodb,
        table,
        slot=slot_of(state),
        execution_arn=state.execution.id,
        attempt=state.attempt,
        fields=attempt_fields(state, cleanup),
    )
