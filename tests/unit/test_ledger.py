"""The slot ledger on moto's DynamoDB, in the table template.yaml declares."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from unit_helpers import RUN_LEDGER_TABLE

from amirun.local.runner import create_ledger_table
from amirun_core import aws
from amirun_core.ledger import (
    claim_slot,
    manual_schedule,
    read_day,
    read_slot,
    record_attempt,
    record_end,
    slot_key,
)

DUE = datetime(2026, 2, 9, 6, 0, tzinfo=UTC)
FIRST = "arn:aws:states:us-east-1:123456789012:execution:amirun:first"
SECOND = "arn:aws:states:us-east-1:123456789012:execution:amirun:second"
SCHEDULE = "short_range_fcst05_vpu03W_schedule_cfe_nom_prod"


@pytest.fixture
def dynamodb(emulator: Any) -> Any:
    client = aws.client("dynamodb")
    create_ledger_table(client, RUN_LEDGER_TABLE)
    return client


def claim(dynamodb: Any, execution: str, *, due: datetime = DUE, **extra: Any) -> Any:
    return claim_slot(
        dynamodb,
        RUN_LEDGER_TABLE,
        slot=slot_key(SCHEDULE, due),
        execution_arn=execution,
        schedule=SCHEDULE,
        scheduled_time=due,
        started_at=due + timedelta(seconds=40),
        **extra,
    )


def test_the_slot_key_is_the_schedule_and_its_utc_time_to_the_second() -> None:
    paris = datetime(2026, 2, 9, 7, 0, 0, 123_000).astimezone(UTC)
    assert slot_key("s", DUE) == "slot#s#2026-02-09T06:00:00Z"
    assert slot_key("s", paris).startswith("slot#s#2026-02-09T")
    assert manual_schedule("my-run") == "manual/my-run"


def test_the_first_claim_wins_and_the_second_learns_the_owner(dynamodb: Any) -> None:
    assert claim(dynamodb, FIRST).claimed
    second = claim(dynamodb, SECOND)
    assert not second.claimed
    assert second.owner == FIRST
    item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot_key(SCHEDULE, DUE))
    assert item is not None
    assert item["execution"] == FIRST
    assert item["status"] == "running"
    assert item["day"] == "2026-02-09"
    assert item["scheduled_time"] == "2026-02-09T06:00:00Z"


def test_concurrent_claims_give_the_slot_to_exactly_one(dynamodb: Any) -> None:
    names = [f"{FIRST}-{n}" for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        claims = list(pool.map(lambda name: claim(dynamodb, name), names))
    winners = [c for c in claims if c.claimed]
    assert len(winners) == 1
    assert {c.owner for c in claims} == {winners[0].owner}


def test_a_retried_claim_keeps_what_later_steps_wrote(dynamodb: Any) -> None:
    slot = slot_key(SCHEDULE, DUE)
    claim(dynamodb, FIRST)
    record_attempt(
        dynamodb,
        RUN_LEDGER_TABLE,
        slot=slot,
        execution_arn=FIRST,
        attempt=1,
        fields={"instance_type": "m8g.xlarge"},
    )
    assert claim(dynamodb, FIRST).claimed
    item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot)
    assert item is not None
    assert item["attempts"] == {"1": {"instance_type": "m8g.xlarge"}}


def test_attempt_fields_merge_and_only_the_owner_writes(dynamodb: Any) -> None:
    slot = slot_key(SCHEDULE, DUE)
    claim(dynamodb, FIRST)
    launch = {"instance_id": "i-1", "instance_type": "m8g.xlarge", "market": "spot", "az": "a"}
    end = {"instance_seconds": 812, "cost_usd": 0.0405, "error": None}
    assert record_attempt(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, attempt=1, fields=launch
    )
    assert record_attempt(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, attempt=1, fields=end
    )
    # Written twice (a retried step): the same result.
    assert record_attempt(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, attempt=1, fields=end
    )
    assert not record_attempt(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=SECOND, attempt=2, fields=launch
    )
    item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot)
    assert item is not None
    assert item["attempts"] == {"1": launch | end}


def test_the_end_is_written_by_the_owner_only(dynamodb: Any) -> None:
    slot = slot_key(SCHEDULE, DUE)
    claim(dynamodb, FIRST)
    fields = {"error": "CommandFailed", "cause": "exit code 2", "duration_s": 2460.5}
    assert not record_end(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=SECOND, status="failed", fields={}
    )
    assert record_end(
        dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, status="failed", fields=fields
    )
    item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot)
    assert item is not None
    assert item["status"] == "failed"
    assert item["duration_s"] == 2460.5
    with pytest.raises(ValueError, match="unknown end status"):
        record_end(
            dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, status="odd", fields={}
        )


@pytest.mark.parametrize(
    ("end", "taken"),
    [("failed", True), ("timed_out", True), ("aborted", True), ("succeeded", False)],
)
def test_a_rerun_takes_over_only_a_slot_that_ended_badly(
    dynamodb: Any, end: str, taken: bool
) -> None:
    slot = slot_key(SCHEDULE, DUE)
    claim(dynamodb, FIRST)
    assert not claim(dynamodb, SECOND, takeover=True).claimed  # still running: never taken
    record_end(dynamodb, RUN_LEDGER_TABLE, slot=slot, execution_arn=FIRST, status=end, fields={})
    rerun = claim(dynamodb, SECOND, takeover=True)
    assert rerun.claimed is taken
    item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot)
    assert item is not None
    if taken:
        assert item["execution"] == SECOND
        assert item["rerun_of"] == FIRST
        assert item["status"] == "running"
        assert item["attempts"] == {}
        # A second rerun now finds the slot running again: it starts nothing.
        assert not claim(dynamodb, FIRST + "-again", takeover=True).claimed
    else:
        assert item["execution"] == FIRST


def test_one_query_reads_a_day_and_nothing_else(dynamodb: Any) -> None:
    for hour in (0, 6, 23):
        claim(dynamodb, f"{FIRST}-{hour}", due=DUE.replace(hour=hour))
    claim(dynamodb, f"{FIRST}-next", due=DUE + timedelta(days=1))
    # An item of another kind (no `day`) never shows in a night.
    dynamodb.put_item(TableName=RUN_LEDGER_TABLE, Item={"pk": {"S": "capacity#stack"}})
    night = read_day(dynamodb, RUN_LEDGER_TABLE, date(2026, 2, 9))
    assert [item["scheduled_time"][11:13] for item in night] == ["00", "06", "23"]
    assert read_day(dynamodb, RUN_LEDGER_TABLE, date(2026, 2, 11)) == []


def test_a_value_the_ledger_cannot_hold_is_refused_before_any_call(dynamodb: Any) -> None:
    slot = slot_key(SCHEDULE, DUE)
    claim(dynamodb, FIRST)
    with pytest.raises(ValueError, match="cannot store"):
        record_end(
            dynamodb,
            RUN_LEDGER_TABLE,
            slot=slot,
            execution_arn=FIRST,
            status="failed",
            fields={"cost_usd": float("nan")},
        )
