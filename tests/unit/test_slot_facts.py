"""The ledger's writers: each step's facts land on the slot its execution owns.

On moto's DynamoDB, in the table template.yaml declares; the states are the
sample events the handlers get (events/*.json).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from unit_helpers import RUN_LEDGER_TABLE, load_event

from amirun.local.runner import create_ledger_table
from amirun_core import aws
from amirun_core.cost import UsageRecord
from amirun_core.ledger import claim_slot, read_slot
from amirun_core.ledger import run_slot as slot_of
from amirun_core.slot_facts import (
    end_fields,
    record_cleanup,
    record_execution_end,
    record_launch,
)
from amirun_core.state import CaughtError, CleanupRecord, InstanceRecord, WorkflowState

DUE = datetime(2026, 2, 9, 6, 0, tzinfo=UTC)
SCHEDULE = "short_range_fcst05_vpu03W_schedule_cfe_nom_prod"


@pytest.fixture
def dynamodb(emulator: Any) -> Any:
    client = aws.client("dynamodb")
    create_ledger_table(client, RUN_LEDGER_TABLE)
    return client


def scheduled_state(attempt: int = 1) -> WorkflowState:
    event = load_event("stopper")
    event["request"]["schedule"] = {"name": SCHEDULE, "scheduled_time": "2026-02-09T06:00:00Z"}
    event["attempt"] = attempt
    return WorkflowState.model_validate(event)


def claim(dynamodb: Any, state: WorkflowState) -> str:
    slot = slot_of(state.request, state.execution.name, state.execution.start_time)
    assert claim_slot(
        dynamodb,
        RUN_LEDGER_TABLE,
        slot=slot.key,
        execution_arn=state.execution.id,
        schedule=slot.schedule,
        scheduled_time=slot.scheduled_time,
        started_at=state.execution.start_time,
    ).claimed
    return slot.key


def instance(state: WorkflowState) -> InstanceRecord:
    assert state.instance is not None
    return state.instance.model_copy(update={"instance_type": "m8g.xlarge", "zone": "us-east-1b"})


def test_a_scheduled_run_belongs_to_its_schedule_and_time_a_manual_one_to_itself() -> None:
    started = datetime(2026, 2, 9, 6, 3, 12, tzinfo=UTC)
    scheduled = {"schedule": {"name": "s", "scheduled_time": "2026-02-09T06:00:00Z"}}
    assert slot_of(scheduled, "run", started).key == "slot#s#2026-02-09T06:00:00Z"
    assert slot_of({"commands": ["x"]}, "my-run", started).key == (
        "slot#manual/my-run#2026-02-09T06:03:12Z"
    )
    # A schedule object without a usable time (written by hand) is no slot of the schedule.
    assert slot_of({"schedule": {"name": "s"}}, "r", started).schedule == "manual/r"


def test_launch_then_cleanup_fill_one_attempt_and_a_retry_writes_the_same(dynamodb: Any) -> None:
    state = scheduled_state()
    key = claim(dynamodb, state)

    assert record_launch(dynamodb, RUN_LEDGER_TABLE, state, instance(state))
    cleanup = CleanupRecord(
        instance_id=instance(state).instance_id,
        action="terminated",
        done=True,
        usage=UsageRecord(
            instance_type="m8g.xlarge",
            market="spot",
            instance_seconds=1800,
            estimated_cost_usd=0.0412,
            price_usd_per_hour=0.0824,
        ),
    )
    failed = state.model_copy(update={"error": CaughtError(Error="CommandFailed", Cause="exit 1")})
    for _ in range(2):  # the stopper retried: the same attempt, the same facts
        assert record_cleanup(dynamodb, RUN_LEDGER_TABLE, failed, cleanup)

    attempt = read_slot(dynamodb, RUN_LEDGER_TABLE, key)["attempts"]["1"]  # type: ignore[index]
    assert attempt["instance_type"] == "m8g.xlarge"
    assert attempt["az"] == "us-east-1b"
    assert attempt["market"] == "spot"  # the stopper saw the instance's real market
    assert (attempt["instance_seconds"], attempt["cost_usd"]) == (1800, 0.0412)
    assert (attempt["error"], attempt["cause"]) == ("CommandFailed", "exit 1")


def test_a_cleanup_still_under_way_writes_nothing(dynamodb: Any) -> None:
    state = scheduled_state()
    key = claim(dynamodb, state)
    busy = CleanupRecord(instance_id="i-0123456789abcdef0", action="stopped", done=False)
    assert not record_cleanup(dynamodb, RUN_LEDGER_TABLE, state, busy)
    assert read_slot(dynamodb, RUN_LEDGER_TABLE, key)["attempts"] == {}  # type: ignore[index]


def test_a_step_of_a_duplicate_execution_writes_nothing(dynamodb: Any) -> None:
    state = scheduled_state()
    key = claim(dynamodb, state)
    other = state.model_copy(
        update={"execution": state.execution.model_copy(update={"id": state.execution.id + "-2"})}
    )
    assert not record_launch(dynamodb, RUN_LEDGER_TABLE, other, instance(other))
    assert read_slot(dynamodb, RUN_LEDGER_TABLE, key)["attempts"] == {}  # type: ignore[index]


def test_without_a_ledger_table_nothing_is_written(dynamodb: Any) -> None:
    state = scheduled_state()
    assert not record_launch(dynamodb, None, state, instance(state))


def test_the_end_of_a_failed_run_totals_its_attempts(dynamodb: Any) -> None:
    event = load_event("sweeper")
    detail = event["detail"]
    request = json.loads(detail["input"])
    request["schedule"] = {"name": SCHEDULE, "scheduled_time": "2025-06-01T06:00:00Z"}
    detail["input"] = json.dumps(request)
    state = WorkflowState.model_validate(
        {
            "request": request,
            "execution": {
                "id": detail["executionArn"],
                "name": detail["name"],
                "start_time": "2025-06-01T06:00:00.123Z",
            },
        }
    )
    key = claim(dynamodb, state)
    for attempt, seconds in ((1, 600), (2, 900)):
        done = CleanupRecord(
            instance_id=f"i-{attempt}",
            action="terminated",
            done=True,
            usage=UsageRecord(
                instance_type="t4g.small",
                market="on-demand",
                instance_seconds=seconds,
                estimated_cost_usd=seconds * 0.0168 / 3600,
            ),
        )
        at = state.model_copy(update={"attempt": attempt})
        assert record_cleanup(dynamodb, RUN_LEDGER_TABLE, at, done)

    assert record_execution_end(dynamodb, RUN_LEDGER_TABLE, detail)
    assert record_execution_end(dynamodb, RUN_LEDGER_TABLE, detail)  # a repeated event

    item = read_slot(dynamodb, RUN_LEDGER_TABLE, key)
    assert item is not None
    assert item["status"] == "failed"
    assert item["error"] == "CleanupFailed"
    assert item["cause"].startswith("instance i-0123456789abcdef0 is still shutting-down")
    assert item["instance_seconds"] == 1500
    assert item["cost_usd"] == pytest.approx(1500 * 0.0168 / 3600)
    assert item["duration_s"] == pytest.approx(1924.877)
    assert item["start_latency_s"] == pytest.approx(0.123)


def test_end_fields_of_a_success_come_from_its_output() -> None:
    detail = load_event("recorder")["detail"]
    slot = slot_of(None, detail["name"], datetime(2025, 6, 1, 6, tzinfo=UTC))

    fields = end_fields(detail, slot, None)

    assert "error" not in fields
    assert fields["output_key"] == "s3://amirun-example-results/daily/20250531/result.txt"
    assert (fields["instance_seconds"], fields["cost_usd"]) == (1890, 0.00882)
    assert fields["attempt_count"] == 1


def test_an_execution_that_owns_no_slot_records_nothing(dynamodb: Any) -> None:
    detail = load_event("recorder")["detail"]
    assert not record_execution_end(dynamodb, RUN_LEDGER_TABLE, detail)
