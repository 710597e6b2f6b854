"""The slot ledger: one DynamoDB item per run that was due, whoever started it.

A slot is a schedule's name and the time it was due (a run started by hand
gets a slot of its own, `manual/<execution name>` at its start time). The
first execution to claim a slot owns it; another execution for the same slot
(Scheduler retrying a start that did succeed, under a new name) finds it
taken and ends without launching. The steps that know a fact about the run
write it onto the owner's item: each attempt under its number, the end once.
Every write is conditional on the owner and idempotent, so a retried step
writes the same thing again and a duplicate execution writes nothing.

Items are keyed `pk`; slot items also carry `day`, the UTC date of their
scheduled time, which the `by_day` index reads a night from in one query.
Other items of the stack (with other `pk` prefixes) carry no `day`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.state import ClaimRecord, WorkflowState

#: The index that lists a day's slots.
DAY_INDEX = "by_day"
#: Slot items stay a little over a year: enough for a year-on-year trend.
LEDGER_TTL_S = 400 * 86_400
#: A slot whose owner ended in one of these may be taken over by a deliberate rerun.
RERUNNABLE = frozenset({"failed", "timed_out", "aborted", "missing"})
#: How an execution can end, as the ledger spells it.
END_STATUSES = frozenset({"succeeded", "failed", "timed_out", "aborted"})
#: The prefix of a slot started by hand rather than by a schedule.
MANUAL_PREFIX = "manual/"

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: did this execution get the slot, and who holds it."""

    claimed: bool
    owner: str


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_key(schedule: str, scheduled_time: datetime) -> str:
    """`slot#<schedule>#<UTC time to the second>Z`: one key per schedule and due time."""
    return f"slot#{schedule}#{_utc_iso(scheduled_time)}"


def manual_schedule(execution_name: str) -> str:
    """The schedule name of a run started by hand: a slot of its own."""
    return f"{MANUAL_PREFIX}{execution_name}"


def _to_attribute(value: Any) -> dict[str, Any]:
    """A plain Python value as a DynamoDB attribute (floats through Decimal)."""
    return _SERIALIZER.serialize(_decimals(value))  # type: ignore[no-any-return]


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"the ledger cannot store {value!r}")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {str(key): _decimals(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(item) for item in value]
    if isinstance(value, datetime):
        return _utc_iso(value)
    return value


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, set):
        return sorted(_plain(item) for item in value)
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values."""
    return {key: _plain(_DESERIALIZER.deserialize(value)) for key, value in item.items()}


def _condition_failed(exc: ClientError, action: str) -> bool:
    aws.raise_if_throttled(exc, action)
    return aws.error_code(exc) == "ConditionalCheckFailedException"


def read_slot(dynamodb: Any, table: str, slot: str) -> dict[str, Any] | None:
    """The slot's item as plain values, or None when nobody claimed it."""
    try:
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": slot}}, ConsistentRead=True).get(
            "Item"
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetItem")
        raise
    return None if item is None else from_item(item)


def claim_slot(
    dynamodb: Any,
    table: str,
    *,
    slot: str,
    execution_arn: str,
    schedule: str,
    scheduled_time: datetime,
    started_at: datetime,
    takeover: bool = False,
) -> Claim:
    """Make `execution_arn` the slot's owner, unless another execution holds it.

    Claiming again as the owner succeeds (a retried step). With `takeover`, a
    slot whose owner ended badly (RERUNNABLE) passes to this execution: a
    deliberate rerun. A slot that succeeded, or is still running, is never taken.
    """
    item = {
        "pk": slot,
        "day": scheduled_time.astimezone(UTC).date().isoformat(),
        "schedule": schedule,
        "scheduled_time": _utc_iso(scheduled_time),
        "execution": execution_arn,
        "status": "running",
        "started_at": _utc_iso(started_at),
        "attempts": {},
        "expires_at": math.ceil(scheduled_time.timestamp()) + LEDGER_TTL_S,
    }
    # Never overwrite an item this execution already holds: a retried claim
    # must not wipe what later steps wrote.
    condition = "attribute_not_exists(pk)"
    extra: dict[str, Any] = {}
    if takeover:
        previous = read_slot(dynamodb, table, slot)
        if previous is not None and previous["execution"] != execution_arn:
            item["rerun_of"] = previous["execution"]
        statuses = {f":rerunnable{i}": status for i, status in enumerate(sorted(RERUNNABLE))}
        condition += f" OR #status IN ({', '.join(statuses)})"
        extra = {
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {key: {"S": value} for key, value in statuses.items()},
        }
    try:
        dynamodb.put_item(
            TableName=table,
            Item={key: _to_attribute(value) for key, value in item.items()},
            ConditionExpression=condition,
            **extra,
        )
    except ClientError as exc:
        if not _condition_failed(exc, "PutItem"):
            raise
        holder = read_slot(dynamodb, table, slot)
        owner = holder["execution"] if holder else ""
        return Claim(owner == execution_arn, owner)
    return Claim(True, execution_arn)


def _update_owned(
    dynamodb: Any, table: str, slot: str, execution_arn: str, sets: dict[str, Any]
) -> bool:
    """SET the given top-level or dotted (map) attributes, if `execution_arn` owns the slot."""
    names: dict[str, str] = {"#execution": "execution"}
    values: dict[str, Any] = {":me": {"S": execution_arn}}
    clauses = []
    for index, (path, value) in enumerate(sets.items()):
        parts = []
        for depth, part in enumerate(path.split(".")):
            alias = f"#n{index}_{depth}"
            names[alias] = part
            parts.append(alias)
        values[f":v{index}"] = _to_attribute(value)
        clauses.append(f"{'.'.join(parts)} = :v{index}")
    try:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": slot}},
            UpdateExpression="SET " + ", ".join(clauses),
            ConditionExpression="#execution = :me",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if _condition_failed(exc, "UpdateItem"):
            return False
        raise
    return True


def record_attempt(
    dynamodb: Any,
    table: str,
    *,
    slot: str,
    execution_arn: str,
    attempt: int,
    fields: dict[str, Any],
) -> bool:
    """Merge `fields` into `attempts.<attempt>`; False when the slot is not this execution's."""
    sets = {f"attempts.{attempt}.{name}": value for name, value in fields.items()}
    try:
        return _update_owned(dynamodb, table, slot, execution_arn, sets)
    except ClientError as exc:
        # No map for this attempt yet (DynamoDB refuses a path through a
        # missing map): the fields are the whole of it. An attempt's writers
        # (its launch, then its cleanup) never run at the same time.
        if aws.error_code(exc) != "ValidationException":
            raise
    return _update_owned(
        dynamodb, table, slot, execution_arn, {f"attempts.{attempt}": dict(fields)}
    )


def record_end(
    dynamodb: Any,
    table: str,
    *,
    slot: str,
    execution_arn: str,
    status: str,
    fields: dict[str, Any],
) -> bool:
    """The run's end and what it came to; False when the slot is not this execution's."""
    if status not in END_STATUSES:
        raise ValueError(f"unknown end status {status!r}")
    return _update_owned(dynamodb, table, slot, execution_arn, {"status": status, **fields})


def read_day(dynamodb: Any, table: str, day: date) -> list[dict[str, Any]]:
    """Every slot due on `day` (UTC), as plain values, in key order."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "TableName": table,
        "IndexName": DAY_INDEX,
        "KeyConditionExpression": "#day = :day",
        "ExpressionAttributeNames": {"#day": "day"},
        "ExpressionAttributeValues": {":day": {"S": day.isoformat()}},
    }
    while True:
        try:
            page = dynamodb.query(**params)
        except ClientError as exc:
            aws.raise_if_throttled(exc, "Query")
            raise
        items.extend(from_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- Which slot an execution runs for ----------------------------------------------------
@dataclass(frozen=True)
class RunSlot:
    """The slot an execution claims, and whether it may take over a failed owner's."""

    schedule: str
    scheduled_time: datetime
    takeover: bool = False

    @property
    def key(self) -> str:
        return slot_key(self.schedule, self.scheduled_time)


def _scheduled_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_slot(request: Any, execution_name: str, start_time: datetime) -> RunSlot:
    """The slot of an execution: its schedule's name and scheduled time, or, for a run
    started by hand (no schedule, no scheduled time, or `schedule.new_slot`), a slot of
    its own. `schedule.rerun` asks to take over a slot whose run failed.

    Read leniently: an input Resolve will refuse still gets a slot (its own).
    """
    schedule = request.get("schedule") if isinstance(request, dict) else None
    schedule = schedule if isinstance(schedule, dict) else {}
    name = schedule.get("name")
    due = _scheduled_time(schedule.get("scheduled_time"))
    takeover = schedule.get("rerun") is True
    if isinstance(name, str) and name and due is not None and schedule.get("new_slot") is not True:
        return RunSlot(name, due, takeover)
    return RunSlot(manual_schedule(execution_name), start_time, takeover)


def claim_run_slot(dynamodb: Any, table: str, state: WorkflowState) -> ClaimRecord:
    """ClaimSlot: claim the execution's slot (see `run_slot`); who holds it."""
    execution = state.execution
    slot = run_slot(state.request, execution.name, execution.start_time)
    claim = claim_slot(
        dynamodb,
        table,
        slot=slot.key,
        execution_arn=execution.id,
        schedule=slot.schedule,
        scheduled_time=slot.scheduled_time,
        started_at=execution.start_time,
        takeover=slot.takeover,
    )
    return ClaimRecord(
        slot=slot.key,
        claimed=claim.claimed,
        owner=claim.owner,
        schedule=slot.schedule,
        scheduled_time=slot.scheduled_time,
    )
