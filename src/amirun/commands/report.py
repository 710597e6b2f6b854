"""`amirun report`: a night at a glance, what was due joined with what ran.

amirun report --stack NAME [--night D | --since 7d] [SCHEDULE FILES...]
              [--by family|vpu|cycle] [--json] [--html FILE]

What was due comes from the schedule files (each schedule's expression in its
time zone, for the UTC day); what ran from the stack's slot ledger (one query
a night). A due slot with no ledger item is missing. Without schedule files
the report shows what ran, but cannot know what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amirun.commands.common import EXIT_FAILED, EXIT_OK, usage_error
from amirun.commands.remote import Target, _reported, _target
from amirun.schedules import ScheduleFileError, expand
from amirun_core import ledger
from amirun_core.night import (
    END_LABELS,
    ENDS,
    ROLLUPS,
    DueSchedule,
    Night,
    NightTrend,
    SlotView,
    due_slots,
    duration_text,
    join_night,
    money,
)

#: The stack output naming the ledger table (template.yaml).
LEDGER_OUTPUT = "RunLedgerTableName"
#: Lines fit this many columns.
WIDTH = 120
#: Nights the page's trend shows before the night reported.
TREND_NIGHTS = 7
#: Rows in the slowest, costliest and failure lists.
LISTED = 5


def night_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the night as YYYY-MM-DD") from None


def since_nights(text: str) -> int:
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or not 1 <= int(value) <= 60:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of nights, 1d to 60d")
    return int(value)


def due_schedules(paths: list[str]) -> list[DueSchedule]:
    """The schedules the files declare, as much of them as the report needs."""
    if not paths:
        return []
    try:
        schedules = expand(Path(p) for p in paths)
    except ScheduleFileError as exc:
        raise usage_error(str(exc)) from None
    return [
        DueSchedule(s.name, s.expression, s.time_zone, s.family, dict(s.row), s.enabled)
        for s in schedules
    ]


def load_night(
    dynamodb: Any, table: str, night: date, schedules: list[DueSchedule], now: datetime
) -> Night:
    due, unread = due_slots(schedules, night)
    return join_night(night, due, ledger.read_day(dynamodb, table, night), now, unread)


def merged(nights: list[Night]) -> Night:
    """Several nights as one report (for --since): every slot, the last night's date."""
    slots = [slot for night in nights for slot in night.slots]
    unread = sorted({line for night in nights for line in night.unread})
    return Night(nights[-1].night, slots, unread)


# --- the terminal report -------------------------------------------------------------
def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 2] + ".."


def _middle(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    head = (width - 2 + 1) // 2
    return text[:head] + ".." + text[len(text) - (width - 2 - head) :]


def _slot_line(slot: SlotView, detail: str, name_width: int = 58) -> str:
    when = f"{slot.scheduled_time:%m-%d %H:%M}"
    line = f"  {_middle(slot.schedule, name_width):<{name_width}}  {when}  {detail}"
    return _cut(line, WIDTH)


def _rollup_lines(night: Night, by: str) -> list[str]:
    shown = [end for end in ENDS if any(s.end == end for s in night.slots)]
    header = f"  {by.upper():<40}" + "".join(f"{_short(end):>11}" for end in shown)
    header += f"{'INST-H':>9}{'COST':>11}"
    lines = [header]
    for group, slots in night.rollup(by):
        counts = night.counts(slots)
        line = f"  {_middle(group, 40):<40}" + "".join(f"{counts.get(end, 0):>11}" for end in shown)
        hours = sum(s.instance_seconds or 0 for s in slots) / 3600
        cost = sum(s.cost_usd or 0 for s in slots)
        lines.append(line + f"{hours:>9.1f}{money(cost):>11}")
    return [_cut(line, WIDTH) for line in lines]


def _short(end: str) -> str:
    return {"relaunched": "RELAUNCHED", "timed_out": "TIMED-OUT", "upcoming": "NOT-DUE"}.get(
        end, end.upper()
    )


def report_lines(night: Night, stack: str, nights: int, by: str | None) -> list[str]:
    span = (
        f"night of {night.night.isoformat()}"
        if nights == 1
        else f"{nights} nights to {night.night.isoformat()}"
    )
    lines = [f"Stack {stack}, {span} (UTC): {len(night.due)} slots due"]
    counts = night.counts()
    for end in ENDS:
        if end in counts:
            lines.append(f"  {END_LABELS[end]:<32}{counts[end]:>7}")
    by_error = night.failed_by_error()
    if by_error:
        lines.append(
            _cut("  failed by error: " + ", ".join(f"{e} {n}" for e, n in by_error.items()), WIDTH)
        )
    if night.others:
        lines.append(
            f"  also ran, not due in the files given: {len(night.others)} "
            "(started by hand, or schedules not given)"
        )
    lines.append(
        f"  {night.instance_hours:.1f} instance-hours, about {money(night.cost_usd)} of EC2"
        " (compute only, estimated)"
    )
    for line in night.unread:
        lines.append(_cut(f"  not counted as due: {line}", WIDTH))
    if by:
        lines += ["", f"By {by}:", *_rollup_lines(night, by)]
    slowest = night.slowest(LISTED)
    if slowest:
        lines += ["", "Slowest:"]
        lines += [_slot_line(s, f"{duration_text(s.duration_s):>7}  {s.end}") for s in slowest]
    costliest = night.costliest(LISTED)
    if costliest:
        lines += ["", "Costliest:"]
        lines += [
            _slot_line(s, f"{money(s.cost_usd):>9}  {s.attempts} attempt(s)") for s in costliest
        ]
    failed = night.failed()
    if failed:
        lines += ["", f"Failures ({len(failed)}):"]
        for slot in failed[: LISTED * 4]:
            detail = f"{slot.error or slot.end}, {slot.attempts} attempt(s)"
            lines.append(_slot_line(slot, detail))
            lines.append(_cut(f"      {slot.cause or '(no cause recorded)'}", WIDTH))
        if len(failed) > LISTED * 4:
            lines.append(f"  ... and {len(failed) - LISTED * 4} more (--json lists them all)")
    missing = night.missing()
    if missing:
        lines += ["", f"Missing ({len(missing)}):"]
        for slot in missing[: LISTED * 4]:
            lines.append(_slot_line(slot, "never started"))
        if len(missing) > LISTED * 4:
            lines.append(f"  ... and {len(missing) - LISTED * 4} more (--json lists them all)")
    return lines


# --- the command ---------------------------------------------------------------------
@_reported
def cmd_report(args: argparse.Namespace) -> int:
    schedules = due_schedules(args.files)
    target = Target(args)
    table = target.output(LEDGER_OUTPUT)
    dynamodb = target.client("dynamodb")
    now = datetime.now(UTC)
    last = args.night or (now.date() - timedelta(days=1))
    count = args.since or 1
    nights = [
        load_night(dynamodb, table, last - timedelta(days=back), schedules, now)
        for back in range(count - 1, -1, -1)
    ]
    night = merged(nights) if count > 1 else nights[0]
    if args.html:
        from amirun_core.night_page import render_page

        earlier = [
            NightTrend.of(load_night(dynamodb, table, last - timedelta(days=back), schedules, now))
            for back in range(TREND_NIGHTS, count - 1, -1)
        ]
        trend = earlier + [NightTrend.of(n) for n in nights]
        page = render_page(night, target.stack or "", trend, f"{now:%Y-%m-%d %H:%M} UTC")
        Path(args.html).write_text(page, encoding="utf-8")
    if args.json:
        json.dump({"stack": target.stack, "nights": count, **night.to_json()}, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(report_lines(night, target.stack or "", count, args.by)))
        if not schedules:
            print("(no schedule files given: what was due, and so what is missing, is unknown)")
    if args.html:
        print(f"Page: {args.html}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_FAILED if night.failed() or night.missing() else EXIT_OK


def register(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="a night at a glance: due slots joined with the ledger, failures, cost",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "files",
        nargs="*",
        metavar="SCHEDULE_FILE",
        help="the schedule files (or directories) that say what was due",
    )
    report.add_argument(
        "--night",
        type=night_date,
        help="the night (UTC day) to report, YYYY-MM-DD (default: yesterday)",
    )
    report.add_argument(
        "--since",
        type=since_nights,
        help="the last N nights together, e.g. 7d, up to --night (default: up to yesterday)",
    )
    report.add_argument("--by", choices=ROLLUPS, help="also roll the slots up by this")
    report.add_argument("--json", action="store_true", help="everything as one JSON object")
    report.add_argument("--html", metavar="FILE", help="also write the night as one HTML page")
    _target(report)
    report.set_defaults(func=cmd_report)
