"""A night at a glance: what was due, joined with what the ledger says happened.

A night is a UTC day, the ledger's `day`. What was due comes from the schedules
(their expressions evaluated in their time zones, see `amirun_core.cron`);
what happened comes from the ledger's slot items (`ledger.read_day`). A slot
that was due and has no item is *missing*: nothing started it (a dead-letter
start, a deleted schedule, a Scheduler outage). The join says, for each due
slot, how it ended; items of slots nobody declared (runs started by hand,
schedules since removed) are kept apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from amirun_core import ledger
from amirun_core.cron import CronError, due_times
from amirun_core.errors import one_line_cause

#: How a slot ended, in the order the report lists them.
ENDS = (
    "succeeded",
    "relaunched",
    "failed",
    "timed_out",
    "aborted",
    "missing",
    "running",
    "upcoming",
)
#: What each end is called in sentences.
END_LABELS = {
    "succeeded": "succeeded",
    "relaunched": "relaunched, then succeeded",
    "failed": "failed",
    "timed_out": "timed out",
    "aborted": "aborted",
    "missing": "missing (due, never started)",
    "running": "still running",
    "upcoming": "not due yet",
}
#: Ends a deliberate rerun may take over (the ledger's RERUNNABLE).
RERUNNABLE = frozenset({"failed", "timed_out", "aborted", "missing"})
ROLLUPS = ("family", "vpu", "cycle")


@dataclass(frozen=True)
class DueSlot:
    """A schedule's run that was due at a time, and where it sits in its block."""

    schedule: str
    scheduled_time: datetime
    family: str = ""
    row: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return ledger.slot_key(self.schedule, self.scheduled_time)


@dataclass(frozen=True)
class DueSchedule:
    """What a schedule file says about one schedule, as much as the report needs."""

    name: str
    expression: str
    time_zone: str
    family: str = ""
    row: dict[str, str] = field(default_factory=dict)
    enabled: bool = True


def night_window(night: date) -> tuple[datetime, datetime]:
    start = datetime(night.year, night.month, night.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def due_slots(schedules: Iterable[DueSchedule], night: date) -> tuple[list[DueSlot], list[str]]:
    """Every slot due in the night (UTC day), and the schedules that could not be read."""
    start, end = night_window(night)
    slots: list[DueSlot] = []
    unread: list[str] = []
    for schedule in schedules:
        if not schedule.enabled:
            continue
        try:
            times = due_times(schedule.expression, schedule.time_zone, start, end)
        except CronError as exc:
            unread.append(f"{schedule.name}: {exc}")
            continue
        slots += [DueSlot(schedule.name, t, schedule.family, schedule.row) for t in times]
    return sorted(slots, key=lambda s: (s.scheduled_time, s.schedule)), unread


@dataclass
class SlotView:
    """One slot as the report shows it."""

    schedule: str
    scheduled_time: datetime
    end: str
    due: bool = True
    family: str = ""
    row: dict[str, str] = field(default_factory=dict)
    execution: str | None = None
    attempts: int = 0
    error: str | None = None
    cause: str | None = None
    duration_s: float | None = None
    start_latency_s: float | None = None
    instance_seconds: float | None = None
    cost_usd: float | None = None
    output_key: str | None = None

    @property
    def execution_name(self) -> str | None:
        return self.execution.rsplit(":", 1)[-1] if self.execution else None

    @property
    def cycle(self) -> str:
        return self.row.get("init") or f"{self.scheduled_time:%H}z"

    @property
    def vpu(self) -> str:
        return self.row.get("vpu", "-")

    def group(self, by: str) -> str:
        if by == "vpu":
            return self.vpu
        if by == "cycle":
            return self.cycle
        return self.family or self.schedule

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "scheduled_time": self.scheduled_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": self.end,
            "due": self.due,
            "family": self.family,
            "row": self.row,
            "execution": self.execution,
            "attempts": self.attempts,
            "error": self.error,
            "cause": self.cause,
            "duration_s": self.duration_s,
            "start_latency_s": self.start_latency_s,
            "instance_seconds": self.instance_seconds,
            "cost_usd": self.cost_usd,
            "output_key": self.output_key,
        }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _attempt_totals(attempts: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    seconds = [_number(a.get("instance_seconds")) for a in attempts]
    costs = [_number(a.get("cost_usd")) for a in attempts]
    total_s = (
        sum(s for s in seconds if s is not None) if any(s is not None for s in seconds) else None
    )
    total_c = sum(c for c in costs if c is not None) if any(c is not None for c in costs) else None
    return total_s, total_c


def slot_view(slot: DueSlot | None, item: dict[str, Any] | None, now: datetime) -> SlotView:
    """The report's view of one slot: due or not, with or without a ledger item."""
    if item is None:
        assert slot is not None
        end = "missing" if slot.scheduled_time <= now else "upcoming"
        return SlotView(slot.schedule, slot.scheduled_time, end, True, slot.family, slot.row)
    attempts_map = item.get("attempts") or {}
    attempts = [a for _, a in sorted(attempts_map.items(), key=lambda kv: int(kv[0]))]
    count = max(len(attempts), int(item.get("attempt_count") or 0))
    status = str(item.get("status", "running"))
    end = status if status in ENDS else "running"
    if status == "succeeded" and count > 1:
        end = "relaunched"
    seconds, cost = _number(item.get("instance_seconds")), _number(item.get("cost_usd"))
    if seconds is None and cost is None:
        seconds, cost = _attempt_totals(attempts)
    scheduled = datetime.fromisoformat(str(item["scheduled_time"]).replace("Z", "+00:00"))
    error = item.get("error")
    cause = item.get("cause")
    if end in ("failed", "timed_out", "aborted") and not error and attempts:
        error, cause = attempts[-1].get("error"), attempts[-1].get("cause")
    return SlotView(
        schedule=str(item.get("schedule", "")),
        scheduled_time=scheduled,
        end=end,
        due=slot is not None,
        family=slot.family if slot else "",
        row=slot.row if slot else {},
        execution=item.get("execution"),
        attempts=count,
        error=error,
        cause=one_line_cause(cause) if cause else None,
        duration_s=_number(item.get("duration_s")),
        start_latency_s=_number(item.get("start_latency_s")),
        instance_seconds=seconds,
        cost_usd=cost,
        output_key=item.get("output_key"),
    )


@dataclass
class Night:
    """A night's due slots, how each ended, and the ledger's other items that night."""

    night: date
    slots: list[SlotView]
    unread: list[str] = field(default_factory=list)

    @property
    def due(self) -> list[SlotView]:
        return [s for s in self.slots if s.due]

    @property
    def others(self) -> list[SlotView]:
        return [s for s in self.slots if not s.due]

    def counts(self, slots: list[SlotView] | None = None) -> dict[str, int]:
        found = Counter(s.end for s in (self.due if slots is None else slots))
        return {end: found[end] for end in ENDS if found[end]}

    def failed(self) -> list[SlotView]:
        return [s for s in self.slots if s.end in ("failed", "timed_out", "aborted")]

    def failed_by_error(self) -> dict[str, int]:
        return dict(Counter(s.error or s.end for s in self.failed()).most_common())

    def missing(self) -> list[SlotView]:
        return [s for s in self.due if s.end == "missing"]

    @property
    def instance_hours(self) -> float:
        return sum(s.instance_seconds or 0 for s in self.slots) / 3600

    @property
    def cost_usd(self) -> float:
        return sum(s.cost_usd or 0 for s in self.slots)

    def slowest(self, count: int = 5) -> list[SlotView]:
        timed = [s for s in self.slots if s.duration_s is not None]
        return sorted(timed, key=lambda s: -(s.duration_s or 0))[:count]

    def costliest(self, count: int = 5) -> list[SlotView]:
        priced = [s for s in self.slots if s.cost_usd]
        return sorted(priced, key=lambda s: -(s.cost_usd or 0))[:count]

    def rollup(self, by: str) -> list[tuple[str, list[SlotView]]]:
        groups: dict[str, list[SlotView]] = {}
        for slot in self.slots:
            groups.setdefault(slot.group(by), []).append(slot)
        return sorted(groups.items())

    def to_json(self) -> dict[str, Any]:
        return {
            "night": self.night.isoformat(),
            "due": len(self.due),
            "counts": self.counts(),
            "failed_by_error": self.failed_by_error(),
            "instance_hours": round(self.instance_hours, 3),
            "estimated_cost_usd": round(self.cost_usd, 4),
            "unread_schedules": self.unread,
            "slots": [s.to_json() for s in self.slots],
        }


def join_night(
    night: date,
    due: list[DueSlot],
    items: list[dict[str, Any]],
    now: datetime | None = None,
    unread: list[str] | None = None,
) -> Night:
    """Each due slot with its ledger item (or missing); then the items nobody declared."""
    now = now or datetime.now(UTC)
    by_key = {str(item.get("pk")): item for item in items}
    views = [slot_view(slot, by_key.pop(slot.key, None), now) for slot in due]
    views += [slot_view(None, item, now) for _, item in sorted(by_key.items())]
    return Night(night, views, list(unread or []))


@dataclass(frozen=True)
class NightTrend:
    """One earlier night in a few numbers (the page's trend)."""

    night: date
    due: int
    succeeded: int
    missing: int
    failed: int
    cost_usd: float

    @classmethod
    def of(cls, night: Night) -> NightTrend:
        counts = night.counts()
        return cls(
            night.night,
            len(night.due),
            counts.get("succeeded", 0) + counts.get("relaunched", 0),
            counts.get("missing", 0),
            len(night.failed()),
            round(night.cost_usd, 4),
        )


# --- in words -------------------------------------------------------------------------
def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def money(cost: float | None) -> str:
    return "-" if cost is None else f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}"


def count_line(night: Night) -> str:
    """`578 due: 560 succeeded, 8 relaunched, then succeeded, 4 failed, 6 missing`."""
    counts = night.counts()
    parts = [f"{counts[end]} {END_LABELS[end]}" for end in ENDS if end in counts]
    return f"{len(night.due)} due: " + (", ".join(parts) or "nothing")
