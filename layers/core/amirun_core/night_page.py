"""The night as one self-contained HTML page: a template file plus data.

One grid per schedule family (rows: the VPU, or the family's first matrix
key; columns: the other matrix values, cycle and member), each cell one due
slot coloured by how it ended, its cause, duration and cost on hover and a
command copied on click; the night's totals; a small trend of the nights
before. Jinja2 escapes everything (causes and names come from outside).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from amirun_core.night import (
    END_LABELS,
    ENDS,
    RERUNNABLE,
    Night,
    NightTrend,
    count_line,
    duration_text,
    money,
)

TEMPLATE = "night.html.j2"


@dataclass
class Cell:
    row: str
    column: str
    end: str
    title: str
    command: str
    schedule: str


@dataclass
class Grid:
    family: str
    row_key: str
    rows: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)


def _hover(slot: Any) -> str:
    parts = [
        f"{slot.schedule}",
        f"due {slot.scheduled_time:%Y-%m-%d %H:%M} UTC: {END_LABELS[slot.end]}",
    ]
    if slot.error:
        parts.append(f"{slot.error}: {slot.cause or ''}".rstrip(": "))
    if slot.attempts:
        parts.append(f"attempts {slot.attempts}")
    if slot.duration_s is not None:
        parts.append(f"duration {duration_text(slot.duration_s)}")
    if slot.start_latency_s is not None:
        parts.append(f"started {duration_text(slot.start_latency_s)} after due")
    if slot.cost_usd is not None:
        parts.append(f"cost ~{money(slot.cost_usd)}")
    return "\n".join(parts)


def slot_command(slot: Any, stack: str, night: str) -> str:
    """What a click copies: the rerun of a slot that needs one, else its logs."""
    if slot.end in RERUNNABLE:
        return (
            f"amirun rerun --stack {stack} --night {night} --failed --missing"
            f" --only {slot.schedule}"
        )
    if slot.execution_name:
        return f"amirun logs {slot.execution_name} --stack {stack}"
    return f"amirun runs --stack {stack} --schedule {slot.schedule}"


def grids(night: Night, stack: str) -> list[Grid]:
    """One grid per family, in the order the families first fall due."""
    by_family: dict[str, Grid] = {}
    times: dict[str, int] = {}
    for slot in night.due:
        times[slot.schedule] = times.get(slot.schedule, 0) + 1
    for slot in night.due:
        family = slot.family or slot.schedule
        keys = list(slot.row)
        row_key = "vpu" if "vpu" in slot.row else (keys[0] if keys else "schedule")
        grid = by_family.setdefault(family, Grid(family, row_key))
        row = slot.row.get(row_key, slot.schedule)
        column = "/".join(v for k, v in slot.row.items() if k != row_key)
        if times[slot.schedule] > 1 or not column:
            column = f"{column} {slot.scheduled_time:%H:%M}".strip()
        if row not in grid.rows:
            grid.rows.append(row)
        if column not in grid.columns:
            grid.columns.append(column)
        grid.cells[(row, column)] = Cell(
            row,
            column,
            slot.end,
            _hover(slot),
            slot_command(slot, stack, night.night.isoformat()),
            slot.schedule,
        )
    for grid in by_family.values():
        grid.columns.sort()
    return list(by_family.values())


def render_page(night: Night, stack: str, trend: list[NightTrend], generated_at: str) -> str:
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("amirun_core", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    counts = night.counts()
    peak = max([t.due for t in trend] + [len(night.due), 1])
    return environment.get_template(TEMPLATE).render(
        night=night,
        stack=stack,
        grids=grids(night, stack),
        counts=[(end, END_LABELS[end], counts[end]) for end in ENDS if end in counts],
        count_line=count_line(night),
        failed_by_error=night.failed_by_error(),
        failures=night.failed(),
        missing=night.missing(),
        others=night.others,
        instance_hours=night.instance_hours,
        cost=money(night.cost_usd),
        trend=trend,
        peak=peak,
        generated_at=generated_at,
        money=money,
        duration=duration_text,
        labels=END_LABELS,
        ends=ENDS,
    )


def template_source() -> str:
    """The template's text (for the tests that check the page holds no external asset)."""
    return resources.files("amirun_core").joinpath("templates", TEMPLATE).read_text("utf-8")
