"""Exactly one run per scheduled time, on the real workflow and handlers.

EventBridge Scheduler gives each attempted invocation its own execution id, so
a start it retried after a lost answer is a second execution under another
name for the same scheduled time:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-retry-policy.html
The first step claims the slot with a conditional write; the loser ends at once.
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from amirun.local.runner import RUN_LEDGER_TABLE
from amirun_core import aws
from amirun_core.ledger import read_slot, record_end, slot_key

pytestmark = pytest.mark.slow

DUE = "2026-12-01T06:00:00Z"


def scheduled(basic: Any, **schedule: Any) -> dict[str, Any]:
    request: dict[str, Any] = basic()
    request["schedule"] = {"name": "nightly-cfe", "scheduled_time": DUE, **schedule}
    return request


def slot_item(session: Any) -> dict[str, Any] | None:
    with session.world.emulator_calls():
        return read_slot(
            aws.client("dynamodb"),
            RUN_LEDGER_TABLE,
            slot_key("nightly-cfe", datetime.fromisoformat(DUE)),
        )


@pytest.fixture(scope="module")
def twice(emulator_session: Any, basic: Any, until_ended: Any) -> list[dict[str, Any]]:
    """The same scheduled time started twice at once, as Scheduler's retry would."""
    request = scheduled(basic)
    emulator_session.prepare(request)
    arns = [
        emulator_session.start(request, "nightly-cfe_1b2f"),
        emulator_session.start(request, "nightly-cfe_9c4d"),
    ]
    return until_ended(emulator_session, arns)


def test_one_runs_and_the_other_ends_at_once_as_its_duplicate(
    emulator_session: Any, twice: list[dict[str, Any]]
) -> None:
    assert [d["status"] for d in twice] == ["SUCCEEDED", "SUCCEEDED"]
    outputs = [json.loads(d["output"]) for d in twice]
    duplicates = [o for o in outputs if "duplicate_of" in o]
    assert len(duplicates) == 1
    (winner,) = [d for d, o in zip(twice, outputs, strict=True) if "duplicate_of" not in o]
    (loser,) = [d for d in twice if d is not winner]
    assert duplicates[0] == {"duplicate_of": winner["executionArn"]}
    # The winner ran: one instance, the output checked. The duplicate launched nothing.
    assert len(emulator_session.instances_of(winner["executionArn"])) == 1
    assert emulator_session.instances_of(loser["executionArn"]) == {}
    item = slot_item(emulator_session)
    assert item is not None and item["execution"] == winner["executionArn"]


def test_the_duplicate_ends_right_after_its_claim(
    emulator_session: Any, twice: list[dict[str, Any]]
) -> None:
    (loser,) = [d for d in twice if "duplicate_of" in json.loads(d["output"])]
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in emulator_session.history(loser["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Prepare", "ClaimSlot", "IsSlotOurs", "Duplicate", "Succeeded"]


def test_a_rerun_does_not_take_over_a_slot_that_succeeded(
    emulator_session: Any, twice: list[dict[str, Any]], basic: Any, until_ended: Any
) -> None:
    (arn,) = [d["executionArn"] for d in twice if "duplicate_of" not in json.loads(d["output"])]
    (described,) = until_ended(
        emulator_session,
        [emulator_session.start(scheduled(basic, rerun=True), "nightly-cfe-rerun-1")],
    )
    assert json.loads(described["output"]) == {"duplicate_of": arn}


def test_a_rerun_takes_over_a_slot_whose_run_failed_and_a_new_slot_runs_anyway(
    emulator_session: Any, twice: list[dict[str, Any]], basic: Any, until_ended: Any
) -> None:
    (first,) = [d["executionArn"] for d in twice if "duplicate_of" not in json.loads(d["output"])]
    with emulator_session.world.emulator_calls():
        # As the ledger records a run that ended FAILED.
        slot = slot_key("nightly-cfe", datetime.fromisoformat(DUE))
        assert record_end(
            aws.client("dynamodb"),
            RUN_LEDGER_TABLE,
            slot=slot,
            execution_arn=first,
            status="failed",
            fields={},
        )
    rerun, own = until_ended(
        emulator_session,
        [
            emulator_session.start(scheduled(basic, rerun=True), "nightly-cfe-rerun-2"),
            emulator_session.start(scheduled(basic, new_slot=True), "nightly-cfe-by-hand"),
        ],
    )
    for described in (rerun, own):
        assert described["status"] == "SUCCEEDED", described.get("cause")
        assert "duplicate_of" not in json.loads(described["output"])
        assert len(emulator_session.instances_of(described["executionArn"])) == 1
    item = slot_item(emulator_session)
    assert item is not None
    assert (item["execution"], item["rerun_of"]) == (rerun["executionArn"], first)
