"""Runs wait for room: the vCPU counters on moto's DynamoDB, in the table template.yaml declares."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import RUN_LEDGER_TABLE, make_request, make_state

from amirun.local.runner import create_ledger_table
from amirun_core import aws, room
from amirun_core.errors import InstanceQueueTimeout
from amirun_core.room import STACK_COUNTER, Limits, Scope, claim, release
from amirun_core.state import WorkflowState

ARN = "arn:aws:states:us-east-1:123456789012:execution:amirun:"
NOW = 1_800_000_000.0


@pytest.fixture
def dynamodb(emulator: Any) -> Any:
    client = aws.client("dynamodb")
    create_ledger_table(client, RUN_LEDGER_TABLE)
    return client


def take(dynamodb: Any, name: str, vcpus: int, limit: int = 8, now: float = NOW) -> room.Answer:
    return claim(
        dynamodb,
        RUN_LEDGER_TABLE,
        key=f"{name}#1",
        execution_arn=ARN + name,
        vcpus=vcpus,
        scopes=[Scope(STACK_COUNTER, limit)],
        now=now,
    )


def counter(dynamodb: Any) -> dict[str, Any]:
    return room._read(dynamodb, RUN_LEDGER_TABLE, STACK_COUNTER)


def test_claims_fill_the_limit_and_the_next_run_waits(dynamodb: Any) -> None:
    assert take(dynamodb, "a", 4).granted
    assert take(dynamodb, "b", 4).granted
    waiting = take(dynamodb, "c", 2)

    assert not waiting.granted
    item = counter(dynamodb)
    assert set(item["holders"]) == {"a#1", "b#1"}
    assert set(item["waiting"]) == {"c#1"}
    assert not item.get("day"), "counters stay out of the ledger's day index"


def test_a_claim_is_idempotent(dynamodb: Any) -> None:
    assert take(dynamodb, "a", 8).granted
    assert take(dynamodb, "a", 8).granted
    assert sum(h["vcpus"] for h in counter(dynamodb)["holders"].values()) == 8


def test_release_makes_room_for_the_waiter(dynamodb: Any) -> None:
    take(dynamodb, "a", 8)
    assert not take(dynamodb, "b", 4).granted

    assert release(dynamodb, RUN_LEDGER_TABLE, {"a#1"}, [Scope(STACK_COUNTER, 8)]) == 1
    assert release(dynamodb, RUN_LEDGER_TABLE, {"a#1"}, [Scope(STACK_COUNTER, 8)]) == 0

    assert take(dynamodb, "b", 4).granted
    assert set(counter(dynamodb)["waiting"]) == set()


def test_a_younger_run_never_takes_room_an_older_waiter_needs(dynamodb: Any) -> None:
    take(dynamodb, "a", 6)
    assert not take(dynamodb, "big", 4).granted  # 2 free: the older waiter needs 4
    # 2 vCPUs are free, but the big run waits for them (and 2 more): the small run waits too.
    small = take(dynamodb, "small", 2)
    assert (small.granted, small.ahead) == (False, 1)

    release(dynamodb, RUN_LEDGER_TABLE, {"a#1"}, [Scope(STACK_COUNTER, 8)])
    assert take(dynamodb, "small", 2).granted  # 8 free: room for both, in either order
    assert take(dynamodb, "big", 4).granted


def test_a_waiter_that_stopped_looking_holds_no_place(dynamodb: Any) -> None:
    take(dynamodb, "a", 6)
    assert not take(dynamodb, "gone", 4).granted
    later = NOW + 3600

    assert take(dynamodb, "small", 2, now=later).granted
    assert "gone#1" not in counter(dynamodb)["waiting"]


def test_a_run_larger_than_the_limit_is_refused_at_once(dynamodb: Any, ec2: Any) -> None:
    state = make_state(make_request())
    state.request["instance_parameters"]["InstanceType"] = "m5.4xlarge"  # 16 vCPUs

    with pytest.raises(InstanceQueueTimeout, match="needs 16 vCPUs, more than the limit"):
        room.claim_room(ec2, dynamodb, RUN_LEDGER_TABLE, state, Limits(stack=8))


def waiting_state(record: room.RoomRecord | None) -> WorkflowState:
    raw = make_state().model_dump(mode="json")
    if record is not None:
        raw["room"] = record.to_json()
    return WorkflowState.model_validate(raw)


def test_claim_room_grants_without_any_call_when_no_limit_is_set(ec2: Any) -> None:
    record = room.claim_room(ec2, None, "", make_state(), Limits())

    assert (record.granted, record.limited, record.vcpus) == (True, False, 0)


def test_claim_room_waits_then_times_out_and_leaves_the_line(dynamodb: Any, ec2: Any) -> None:
    take(dynamodb, "other", 8)
    first = room.claim_room(ec2, dynamodb, RUN_LEDGER_TABLE, waiting_state(None), Limits(8))
    assert not first.granted
    assert first.vcpus == 2  # t4g.small, from DescribeInstanceTypes
    assert first.wait_seconds >= 1
    assert set(counter(dynamodb)["waiting"]) == {"unit-test#1"}

    expired = first.model_copy(update={"deadline": first.first_look - timedelta(seconds=1)})
    with pytest.raises(InstanceQueueTimeout, match="nothing launched: no room for its 2 vCPUs"):
        room.claim_room(ec2, dynamodb, RUN_LEDGER_TABLE, waiting_state(expired), Limits(8))
    assert counter(dynamodb)["waiting"] == {}


def test_a_block_limit_applies_to_its_schedules_only() -> None:
    limits = Limits.parse("640", "short_range_=200, short_range_vpu16=8")

    assert [s.pk for s in limits.scopes("short_range_vpu16_03")] == [
        STACK_COUNTER,
        "capacity#block#short_range_vpu16",
    ]
    assert [s.pk for s in limits.scopes("medium_range_01")] == [STACK_COUNTER]
    assert Limits.parse("0", "").scopes("x") == []
    with pytest.raises(ValueError, match="BLOCK_VCPU_LIMITS"):
        Limits.parse("0", "short=many")


def test_the_reconciler_frees_the_claims_of_ended_executions(dynamodb: Any) -> None:
    take(dynamodb, "ended", 6)
    take(dynamodb, "running", 2)
    take(dynamodb, "aborted-waiter", 4)
    status = {ARN + "ended": "SUCCEEDED", ARN + "running": "RUNNING"}

    released = room.free_ended(
        dynamodb, RUN_LEDGER_TABLE, Limits(8), lambda arn: status.get(arn, "ABORTED")
    )

    assert released == {STACK_COUNTER: ["aborted-waiter#1", "ended#1"]}
    item = counter(dynamodb)
    assert set(item["holders"]) == {"running#1"}
    assert item["waiting"] == {}


def test_capacity_and_throttling_at_launch_wait_for_room_in_the_workflow() -> None:
    """The starter's InsufficientCapacity, and throttling past its retries, go to the wait
    loop (WaitForRoom, then ClaimRoom), never straight to a failure."""
    import json

    from unit_helpers import ROOT

    states = json.loads((ROOT / "statemachine" / "amirun.asl.json").read_text())["States"]
    first_catch = states["EC2StarterFromAMI"]["Catch"][0]
    assert first_catch["ErrorEquals"] == ["InsufficientCapacity", "AwsThrottled"]
    assert first_catch["Next"] == "WaitForRoom"
    assert states["WaitForRoom"] == {
        "Type": "Wait",
        "Comment": states["WaitForRoom"]["Comment"],
        "SecondsPath": "$.room.wait_seconds",
        "Next": "ClaimRoom",
    }
    assert states["ClaimRoom"]["Next"] == "HasRoom"
    assert states["PrepareRelaunch"]["Next"] == "ClaimRoom"


def test_a_waiter_looking_again_writes_nothing_and_a_release_needs_no_version(
    dynamodb: Any,
) -> None:
    """Many runs in line must not starve the releases: a waiter seen lately does not
    rewrite the counter, and a release removes its entries whatever the version."""
    take(dynamodb, "a", 8)
    take(dynamodb, "b", 4)
    version = counter(dynamodb)["version"]

    assert not take(dynamodb, "b", 4, now=NOW + 5).granted
    assert counter(dynamodb)["version"] == version

    assert release(dynamodb, RUN_LEDGER_TABLE, {"a#1"}, [Scope(STACK_COUNTER, 8)]) == 1
    assert counter(dynamodb)["version"] == version + 1
    assert take(dynamodb, "b", 4, now=NOW + 10).granted
