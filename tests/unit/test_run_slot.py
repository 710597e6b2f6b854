"""Which slot an execution claims (amirun_core.ledger.run_slot)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from amirun_core.ledger import RunSlot, run_slot

STARTED = datetime(2026, 12, 1, 6, 0, 41, 120_000, tzinfo=UTC)
DUE = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # As Scheduler fills it in: the schedule's slot.
        ({"name": "cfe", "scheduled_time": "2026-12-01T06:00:00Z"}, RunSlot("cfe", DUE)),
        ({"name": "cfe", "scheduled_time": "2026-12-01T06:00:00"}, RunSlot("cfe", DUE)),
        (
            {"name": "cfe", "scheduled_time": "2026-12-01T06:00:00Z", "rerun": True},
            RunSlot("cfe", DUE, takeover=True),
        ),
        # Started by hand, or asked for a slot of its own: manual/<execution name>.
        (None, RunSlot("manual/run-1", STARTED)),
        ({"name": "cfe"}, RunSlot("manual/run-1", STARTED)),
        (
            {"name": "cfe", "scheduled_time": "2026-12-01T06:00:00Z", "new_slot": True},
            RunSlot("manual/run-1", STARTED),
        ),
        # Resolve refuses these later; the claim still has a slot to claim.
        ({"name": "cfe", "scheduled_time": "yesterday"}, RunSlot("manual/run-1", STARTED)),
        ({"name": 7, "scheduled_time": "2026-12-01T06:00:00Z"}, RunSlot("manual/run-1", STARTED)),
        ("cfe", RunSlot("manual/run-1", STARTED)),
    ],
)
def test_the_slot_of_a_run(schedule: Any, expected: RunSlot) -> None:
    request: dict[str, Any] = {"commands": ["true"]}
    if schedule is not None:
        request["schedule"] = schedule

    assert run_slot(request, "run-1", STARTED) == expected


def test_the_key_names_the_schedule_and_the_second_it_was_due() -> None:
    assert RunSlot("cfe", DUE).key == "slot#cfe#2026-12-01T06:00:00Z"
    assert RunSlot("manual/run-1", STARTED).key == "slot#manual/run-1#2026-12-01T06:00:41Z"


def test_a_rerun_of_a_run_by_hand_names_its_slot() -> None:
    """`amirun rerun` gives a run by hand schedule manual/<name> at its start time."""
    from amirun.commands.runs import rerun_request

    again = rerun_request({"commands": ["true"]}, "run-1", STARTED)

    assert run_slot(again, "run-1-rerun-abc123", datetime.now(UTC)) == RunSlot(
        "manual/run-1", STARTED.replace(microsecond=0), takeover=True
    )
    assert (
        run_slot(again, "x", datetime.now(UTC)).key
        == run_slot({"commands": ["true"]}, "run-1", STARTED).key
    )
