"""Runs wait for room: a stack-wide (and per-block) limit on the vCPUs of running instances.

Before launching, a run claims its instance type's vCPUs on a counter item in
the stack's table (`capacity#stack`, and `capacity#block#<prefix>` when its
schedule's name starts with a block prefix that has a limit of its own). A
claim is one conditional write per counter (all counters in one transaction),
guarded by the item's version: two runs cannot both take the last vCPUs.

No room: the run joins the waiting list with a ticket (the counter's next
number) and the state machine waits (a Wait state, never a sleeping Lambda)
before it looks again. Near first come, first served: a run is granted only if
it fits together with every live waiter holding an older ticket, so a younger,
smaller run may fill a gap but never takes room an older one is waiting for. A
waiter that stopped looking (its execution was aborted) is ignored, then
dropped, after STALE_S. Past `run_options.queue_timeout_s` the run leaves the
list and ends with InstanceQueueTimeout, having launched nothing.

EC2Stopper releases the claim once the instance is at rest, on every path; the
reconciler releases the claims and places of executions that ended without.
With no limit configured (VCPU_LIMIT 0, the default), nothing is read or written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from amirun_core import aws, capacity, timing
from amirun_core.errors import InstanceQueueTimeout, one_line_cause
from amirun_core.execution import read_execution
from amirun_core.ledger import from_item
from amirun_core.limits import ROOM_INTERVAL_S, ROOM_POLL_BUDGET
from amirun_core.state import RoomRecord, WorkflowState

STACK_COUNTER = "capacity#stack"
BLOCK_COUNTER = "capacity#block#"
#: A waiter not seen for this long (real seconds) stopped looking: it holds no place.
STALE_S = 600
#: Conditional writes tried in one call before the run looks again after a wait.
WRITE_TRIES = 5

_SERIALIZER = TypeSerializer()


@dataclass(frozen=True)
class Scope:
    """One counter and its limit."""

    pk: str
    limit: int


@dataclass(frozen=True)
class Limits:
    """The stack's vCPU limits: `stack` (0: off) and per schedule-name prefix."""

    stack: int = 0
    blocks: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_environment(cls) -> Limits:
        return cls.parse(os.environ.get("VCPU_LIMIT", "0"), os.environ.get("BLOCK_VCPU_LIMITS", ""))

    @classmethod
    def parse(cls, stack: str, blocks: str) -> Limits:
        """`stack`: a number (0 or empty: off); `blocks`: `prefix=N,prefix=N`."""
        parsed: list[tuple[str, int]] = []
        for part in (p.strip() for p in blocks.split(",")):
            if not part:
                continue
            prefix, sep, number = part.rpartition("=")
            if not sep or not prefix or not number.strip().isdigit():
                raise ValueError(f"BLOCK_VCPU_LIMITS: {part!r} is not prefix=number")
            parsed.append((prefix.strip(), int(number)))
        return cls(int(stack or 0), tuple(parsed))

    def scopes(self, schedule: str | None) -> list[Scope]:
        """The counters a run of `schedule` claims on: the stack's, its block's."""
        found = [Scope(STACK_COUNTER, self.stack)] if self.stack > 0 else []
        matching = [(p, n) for p, n in self.blocks if schedule and schedule.startswith(p)]
        if matching:
            prefix, limit = max(matching, key=lambda pair: len(pair[0]))
            if limit > 0:
                found.append(Scope(f"{BLOCK_COUNTER}{prefix}", limit))
        return found


def claim_key(state: WorkflowState) -> str:
    return f"{state.execution.name}#{state.attempt}"


def room_interval(queue_timeout_s: int, attempts: int) -> int:
    return timing.spread_interval(ROOM_INTERVAL_S, queue_timeout_s, attempts, ROOM_POLL_BUDGET)


def _stale_before(now: float) -> float:
    return now - max(60.0, timing.scaled(STALE_S).total_seconds())


def _fresh(entry: Any, now: float) -> bool:
    """A place in line seen recently enough that it need not be written again."""
    if not isinstance(entry, dict):
        return False
    refresh = max(60.0, timing.scaled(STALE_S).total_seconds()) / 3
    return now - float(entry.get("seen", 0)) < refresh


def _attr(value: Any) -> dict[str, Any]:
    return _SERIALIZER.serialize(value)  # type: ignore[no-any-return]


def _read(dynamodb: Any, table: str, pk: str) -> dict[str, Any]:
    try:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetItem")
        raise
    found = item.get("Item")
    return from_item(found) if found else {"pk": pk, "version": 0}


def _write(pk: str, table: str, item: dict[str, Any], version: int) -> dict[str, Any]:
    """One transaction item: the counter as computed, if nobody wrote it since it was read."""
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": pk}},
            "UpdateExpression": "SET holders = :holders, waiting = :waiting, "
            "next_ticket = :ticket, version = :next",
            "ConditionExpression": "attribute_not_exists(pk) OR version = :version"
            if version == 0
            else "version = :version",
            "ExpressionAttributeValues": {
                ":holders": _attr(item.get("holders", {})),
                ":waiting": _attr(item.get("waiting", {})),
                ":ticket": _attr(int(item.get("next_ticket", 0))),
                ":next": _attr(version + 1),
                ":version": _attr(version),
            },
        }
    }


def _commit(dynamodb: Any, writes: list[dict[str, Any]]) -> bool:
    """All counters at once; False when another run wrote one first."""
    try:
        dynamodb.transact_write_items(TransactItems=writes)
    except ClientError as exc:
        aws.raise_if_throttled(exc, "TransactWriteItems")
        if aws.error_code(exc) in ("TransactionCanceledException", "TransactionConflict"):
            return False
        raise
    return True


@dataclass(frozen=True)
class Answer:
    granted: bool
    ahead: int | None


def claim(
    dynamodb: Any,
    table: str,
    *,
    key: str,
    execution_arn: str,
    vcpus: int,
    scopes: list[Scope],
    now: float,
) -> Answer:
    """Take `vcpus` on every scope's counter, or keep (or take) a place in its line."""
    for _ in range(WRITE_TRIES):
        writes: list[dict[str, Any]] = []
        granted = True
        ahead = 0
        counters = []
        for scope in scopes:
            item = _read(dynamodb, table, scope.pk)
            holders: dict[str, Any] = dict(item.get("holders", {}))
            if key in holders:
                counters.append((scope, item, True))
                continue
            waiting: dict[str, Any] = dict(item.get("waiting", {}))
            mine = waiting.get(key)
            ticket = int(mine["ticket"]) if mine else int(item.get("next_ticket", 0))
            live = {
                k: w
                for k, w in waiting.items()
                if k != key and float(w.get("seen", 0)) >= _stale_before(now)
            }
            older = [w for w in live.values() if int(w["ticket"]) < ticket]
            used = sum(int(h["vcpus"]) for h in holders.values())
            fits = used + sum(int(w["vcpus"]) for w in older) + vcpus <= scope.limit
            granted = granted and fits
            ahead = max(ahead, len(older))
            counters.append(
                (scope, {**item, "waiting": live, "ticket": ticket, "mine": mine}, False)
            )
        if all(held for _, _, held in counters):
            return Answer(True, 0)
        if not granted and all(
            held or _fresh(item["waiting"].get(key) or item.get("mine"), now)
            for _, item, held in counters
        ):
            # Still in line, and seen lately: nothing to write (the line stays quiet).
            return Answer(False, ahead)
        for scope, item, held in counters:
            if held:
                continue
            holders = dict(item.get("holders", {}))
            waiting = dict(item["waiting"])
            ticket = int(item["ticket"])
            next_ticket = int(item.get("next_ticket", 0))
            if granted:
                holders[key] = {"vcpus": vcpus, "execution": execution_arn, "since": int(now)}
            else:
                waiting[key] = {
                    "vcpus": vcpus,
                    "execution": execution_arn,
                    "ticket": ticket,
                    "seen": int(now),
                }
            if ticket >= next_ticket:
                next_ticket = ticket + 1
            new = {"holders": holders, "waiting": waiting, "next_ticket": next_ticket}
            writes.append(_write(scope.pk, table, new, int(item.get("version", 0))))
        if _commit(dynamodb, writes):
            return Answer(granted, 0 if granted else ahead)
    return Answer(False, None)


def release(dynamodb: Any, table: str, keys: set[str], scopes: list[Scope]) -> int:
    """Drop `keys` from every scope's holders and line; returns how many entries went.

    Removing entries needs no version check (it only ever frees room), so a release
    never loses a race to the waiters' looks: one unconditional UpdateItem per counter.
    """
    dropped = 0
    for scope in scopes:
        item = _read(dynamodb, table, scope.pk)
        present = keys & (set(item.get("holders", {})) | set(item.get("waiting", {})))
        if not present:
            continue
        names = {f"#k{i}": key for i, key in enumerate(sorted(present))}
        removals = [f"{where}.{alias}" for alias in names for where in ("holders", "waiting")]
        try:
            dynamodb.update_item(
                TableName=table,
                Key={"pk": {"S": scope.pk}},
                UpdateExpression="REMOVE " + ", ".join(removals) + " ADD version :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError as exc:
            aws.raise_if_throttled(exc, "UpdateItem")
            if aws.error_code(exc) != "ConditionalCheckFailedException":
                raise
            continue
        dropped += len(present)
    return dropped


def claim_room(
    ec2: Any, dynamodb: Any, table: str, state: WorkflowState, limits: Limits
) -> RoomRecord:
    """ClaimRoom: take the run's vCPUs, or say how long to wait before looking again.

    Also the way back after a launch refused for capacity (the claim is kept):
    past the queue deadline either way, InstanceQueueTimeout, nothing launched.
    """
    options = read_execution(state.request).run_options
    now = timing.now()
    previous = state.room if state.room and state.room.attempt == state.attempt else None
    first = previous.first_look if previous else now
    deadline = previous.deadline if previous else now + timing.scaled(options.queue_timeout_s)
    scopes = limits.scopes(state.schedule_name)
    key = claim_key(state)
    wait = timing.wait_seconds_until(
        deadline, room_interval(options.queue_timeout_s, options.attempts)
    )
    if previous is not None and now >= deadline:
        if scopes:
            release(dynamodb, table, {key}, scopes)
        waited = round((now - first).total_seconds())
        why = (
            f"the last launch was refused: {one_line_cause(state.launch_refused.Cause)}"
            if state.launch_refused
            else f"no room for its {previous.vcpus} vCPUs under the stack's vCPU limit "
            f"({previous.ahead or 0} run(s) ahead at the last look)"
        )
        raise InstanceQueueTimeout(
            f"waited {waited} s (queue_timeout_s {options.queue_timeout_s}), nothing launched: "
            + why
        )
    record = RoomRecord(
        granted=True,
        key=key,
        attempt=state.attempt,
        first_look=first,
        deadline=deadline,
        wait_seconds=wait,
        waited_s=round((now - first).total_seconds(), 3),
        limited=bool(scopes),
    )
    if not scopes:
        return record
    request = read_execution(state.request)
    types = capacity.instance_types_of(
        request.instance_parameters, request.run_options.instance_types
    )
    known = capacity.describe_types(ec2, types)
    record.vcpus = max((t.vcpus for t in known.values()), default=0)
    too_big = [s for s in scopes if record.vcpus > s.limit]
    if too_big:
        raise InstanceQueueTimeout(
            f"the run needs {record.vcpus} vCPUs, more than the limit of {too_big[0].pk} "
            f"({too_big[0].limit}): it could never start"
        )
    answer = claim(
        dynamodb,
        table,
        key=key,
        execution_arn=state.execution.id,
        vcpus=record.vcpus,
        scopes=scopes,
        now=now.timestamp(),
    )
    record.granted, record.ahead = answer.granted, answer.ahead
    return record


def release_room(dynamodb: Any, table: str, state: WorkflowState, limits: Limits) -> int:
    """EC2Stopper, once the instance is at rest: give the attempt's vCPUs back."""
    scopes = limits.scopes(state.schedule_name)
    return release(dynamodb, table, {claim_key(state)}, scopes) if scopes else 0


def claims_of(dynamodb: Any, table: str, limits: Limits) -> dict[str, dict[str, str]]:
    """{counter pk: {claim key: execution ARN}} of every holder and waiter, for the reconciler."""
    pks = [STACK_COUNTER] if limits.stack > 0 else []
    pks += [f"{BLOCK_COUNTER}{prefix}" for prefix, limit in limits.blocks if limit > 0]
    found: dict[str, dict[str, str]] = {}
    for pk in pks:
        item = _read(dynamodb, table, pk)
        entries = {**item.get("waiting", {}), **item.get("holders", {})}
        found[pk] = {k: str(v.get("execution", "")) for k, v in entries.items()}
    return found


def free_ended(dynamodb: Any, table: str, limits: Limits, status_of: Any) -> dict[str, list[str]]:
    """Release the claims and places of executions that are no longer RUNNING.

    `status_of(execution_arn)` returns the execution's status (the reconciler's
    DescribeExecution). Returns {counter pk: the keys released}.
    """
    released: dict[str, list[str]] = {}
    statuses: dict[str, str] = {}
    for pk, entries in claims_of(dynamodb, table, limits).items():
        ended = set()
        for key, execution in entries.items():
            if execution not in statuses:
                statuses[execution] = status_of(execution)
            if statuses[execution] != "RUNNING":
                ended.add(key)
        if ended:
            release(dynamodb, table, ended, [Scope(pk, 0)])
            released[pk] = sorted(ended)
    return released
