"""Right-sizing from what the runs used: which schedules could run on a smaller type.

Each attempt the ledger records carries its instance type, its cost and the
peak (and average) CPU of its command, and the peak memory where the AMI
publishes it. Per schedule block and instance type, over the nights read: how
many runs peaked under the threshold, the smallest type of the same family
that would have held the highest peak of them all (CPU scaled by the vCPUs,
memory by the memory, each under `ceiling`), and what that saves per month at
the prices the runs recorded (scaled by the list prices of the two types).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from amirun_core.capacity import InstanceType, smaller_sizes

#: A month of nights, for the monthly figures.
NIGHTS_PER_MONTH = 30


@dataclass
class RightsizeRow:
    block: str
    instance_type: str
    runs: int = 0
    runs_under: int = 0
    peak_cpu: float = 0.0
    peak_mem: float | None = None
    cost_usd: float = 0.0
    suggestion: str | None = None
    monthly_cost_usd: float = 0.0
    monthly_saving_usd: float = 0.0
    schedules: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "block": self.block,
            "instance_type": self.instance_type,
            "runs": self.runs,
            "runs_under_threshold": self.runs_under,
            "peak_cpu": self.peak_cpu,
            "peak_mem": self.peak_mem,
            "suggestion": self.suggestion,
            "monthly_cost_usd": round(self.monthly_cost_usd, 2),
            "monthly_saving_usd": round(self.monthly_saving_usd, 2),
            "schedules": len(self.schedules),
        }


def block_of(schedule: str, prefixes: Iterable[str] = ()) -> str:
    """The block a schedule belongs to: the longest prefix given that it starts with,
    else the schedule itself."""
    matching = [p for p in prefixes if schedule.startswith(p)]
    return max(matching, key=len) if matching else schedule


def _measured_attempts(slot: dict[str, Any]) -> Iterable[dict[str, Any]]:
    attempts = slot.get("attempts") or {}
    for attempt in attempts.values() if isinstance(attempts, dict) else []:
        measured = isinstance(attempt, dict) and attempt.get("cpu_max") is not None
        if measured and attempt.get("instance_type"):
            yield attempt


def smaller_type(
    instance_type: str,
    peak_cpu: float,
    peak_mem: float | None,
    types: Callable[[str], InstanceType | None],
    ceiling: float,
) -> str | None:
    """The smallest same-family type that holds the peaks under `ceiling` percent."""
    current = types(instance_type)
    if current is None or not current.vcpus:
        return None
    chosen = None
    for candidate in smaller_sizes(instance_type):
        info = types(candidate)
        if info is None or not info.vcpus:
            continue
        cpu = peak_cpu * current.vcpus / info.vcpus
        mem_ok = peak_mem is None or not current.memory_mib or not info.memory_mib
        if not mem_ok and peak_mem is not None:
            mem_ok = peak_mem * current.memory_mib / info.memory_mib <= ceiling
        if cpu <= ceiling and mem_ok:
            chosen = candidate  # sizes come largest first: keep going smaller
        else:
            break
    return chosen


def rightsize(
    slots: Iterable[dict[str, Any]],
    *,
    nights: int,
    types: Callable[[str], InstanceType | None],
    prices: Callable[[str], float | None],
    threshold: float = 50.0,
    ceiling: float = 80.0,
    prefixes: Iterable[str] = (),
) -> list[RightsizeRow]:
    """One row per schedule block and instance type, the largest saving first.

    `slots`: ledger slot items (as `ledger.read_day` returns them) over `nights`
    nights; `types`: an instance type's vCPUs and memory; `prices`: its list price
    per hour (the ratio between two types scales the recorded costs). A row gets a
    suggestion only when every run peaked under `threshold` percent CPU.
    """
    prefixes = list(prefixes)
    rows: dict[tuple[str, str], RightsizeRow] = {}
    for slot in slots:
        schedule = str(slot.get("schedule", ""))
        for attempt in _measured_attempts(slot):
            key = (block_of(schedule, prefixes), str(attempt["instance_type"]))
            row = rows.setdefault(key, RightsizeRow(*key))
            row.runs += 1
            row.schedules.add(schedule)
            cpu = float(attempt["cpu_max"])
            row.runs_under += cpu < threshold
            row.peak_cpu = max(row.peak_cpu, cpu)
            if attempt.get("mem_max") is not None:
                row.peak_mem = max(row.peak_mem or 0.0, float(attempt["mem_max"]))
            row.cost_usd += float(attempt.get("cost_usd") or 0.0)
    for row in rows.values():
        row.monthly_cost_usd = row.cost_usd / max(nights, 1) * NIGHTS_PER_MONTH
        if row.runs_under < row.runs:
            continue
        row.suggestion = smaller_type(row.instance_type, row.peak_cpu, row.peak_mem, types, ceiling)
        current, smaller = prices(row.instance_type), prices(row.suggestion or "")
        if row.suggestion and current and smaller is not None:
            row.monthly_saving_usd = row.monthly_cost_usd * (1 - smaller / current)
    return sorted(rows.values(), key=lambda r: (-r.monthly_saving_usd, r.block, r.instance_type))
