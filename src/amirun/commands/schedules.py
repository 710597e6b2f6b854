"""`amirun schedules expand | render | plan | apply`: schedule sets declared in files.

amirun schedules expand FILE... [--json] [--inputs]   every schedule, every input checked
amirun schedules render FILE NAME --at TIME           one schedule's execution at that time
amirun schedules plan FILE... --stack NAME            what apply would change in the group
amirun schedules apply FILE... --stack NAME [--yes]   make the stack's group equal the files
amirun schedules backfill FILE... --stack NAME --from D1 --to D2   past nights' slots never run
amirun schedules rehearse FILE... --day DATE          a whole day fired through the local stack
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from amirun import schedule_sync
from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    print_problems,
    usage_error,
)
from amirun.commands.remote import Target, _reported
from amirun.commands.up import add_rehearse
from amirun.schedules import (
    Problem,
    Schedule,
    ScheduleFileError,
    check,
    expand,
    find,
)
from amirun_core.daily import parse_reference_time
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import ExecutionRequest, parse_execution

#: Stack outputs that say where the schedules go (template.yaml declares them).
GROUP_OUTPUT = "ScheduleGroupName"
ROLE_OUTPUT = "SchedulerRoleArn"
DEAD_LETTER_OUTPUT = "ScheduleDeadLetterQueueArn"


def _expanded(paths: list[str]) -> list[Schedule]:
    try:
        return expand(Path(p) for p in paths)
    except ScheduleFileError as exc:
        raise usage_error(str(exc)) from None


#: A problem shared by more rows than this is printed once, with a few of them.
_LISTED_ROWS = 3


def _print_problems(problems: list[Problem], total: int) -> None:
    print(f"{len(problems)} of {total} schedules are invalid:", file=sys.stderr)
    by_message: dict[str, list[Problem]] = {}
    for problem in problems:
        for message in problem.messages:
            by_message.setdefault(message, []).append(problem)
    for message, having in by_message.items():
        if len(having) <= _LISTED_ROWS:
            for problem in having:
                print(f"  - {problem.schedule.label()}: {message}", file=sys.stderr)
            continue
        examples = "; ".join(p.schedule.label() for p in having[:_LISTED_ROWS])
        print(f"  - {message}: {len(having)} schedules, e.g. {examples}", file=sys.stderr)


def _window(schedule: Schedule) -> str:
    return "off" if schedule.flexible_window is None else f"{schedule.flexible_window} min"


def _table(schedules: list[Schedule]) -> list[str]:
    rows = [("NAME", "EXPRESSION", "TIME ZONE", "WINDOW", "STATE")]
    rows += [
        (
            s.name,
            s.expression,
            s.time_zone,
            _window(s),
            "enabled" if s.enabled else "disabled",
        )
        for s in schedules
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def cmd_expand(args: argparse.Namespace) -> int:
    schedules = _expanded(args.files)
    problems = check(schedules)
    if args.json:
        bad = {p.schedule.name: p.messages for p in problems}
        listed = [{**s.to_json(), "problems": bad.get(s.name, [])} for s in schedules]
        json.dump(listed, sys.stdout, indent=2)
        print()
    else:
        lines = _table(schedules)
        print(lines[0])
        for schedule, line in zip(schedules, lines[1:], strict=True):
            print(line)
            if args.inputs:
                print("    " + json.dumps(schedule.execution, separators=(",", ":")))
    if problems:
        _print_problems(problems, len(schedules))
        return EXIT_FAILED
    disabled = sum(not s.enabled for s in schedules)
    states = f" ({len(schedules) - disabled} enabled, {disabled} disabled)" if disabled else ""
    print(
        f"{len(schedules)} schedules{states}, every execution input valid",
        file=sys.stderr if args.json else sys.stdout,
    )
    return EXIT_OK


def scheduled_time(text: str) -> str:
    """--at as Scheduler writes a scheduled time: UTC, to the second, with a Z."""
    try:
        moment = parse_reference_time(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; UTC unless an offset is given") from None
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def schedule_input(path: str, name: str, at: str) -> dict[str, Any]:
    """One schedule's execution input as Scheduler hands it over at `at` (for render, run)."""
    schedules = _expanded([path])
    try:
        schedule = find(schedules, name)
    except ScheduleFileError as exc:
        raise usage_error(f"{path}: {exc}") from None
    return schedule.input_at(at)


def validated_schedule(
    path: str, name: str, at: str
) -> tuple[dict[str, Any], ExecutionRequest] | None:
    """A schedule's input at `at` and what it asks for; None after naming its problems."""
    request = schedule_input(path, name, at)
    try:
        return request, parse_execution(request)
    except InvalidExecutionInput as exc:
        print_problems(f"{path}: {name}", exc, sys.stderr)
        return None


def _not_a_fire_time(schedule: Schedule, at: str) -> str | None:
    """A line saying so when the schedule never fires at `at`, with its nearest times."""
    from amirun.local.cron import ExpressionError, fire_times

    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    try:
        times = fire_times(
            schedule.expression,
            schedule.time_zone,
            moment - timedelta(days=2),
            moment + timedelta(days=2),
        )
    except ExpressionError as exc:
        return f"note: cannot tell when {schedule.expression} fires ({exc})"
    if moment in times or schedule.expression.startswith("rate("):
        return None
    before = [t for t in times if t < moment]
    after = [t for t in times if t > moment]
    nearest = ", ".join(
        f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in ([before[-1]] if before else []) + after[:1]
    )
    return (
        f"note: {schedule.name} never fires at {at}: {schedule.expression} in"
        f" {schedule.time_zone}" + (f" fires at {nearest} around it" if nearest else "")
    )


def cmd_render(args: argparse.Namespace) -> int:
    from amirun.commands.render import show_rendered

    schedules = _expanded([args.file])
    try:
        schedule = find(schedules, args.name)
    except ScheduleFileError as exc:
        raise usage_error(f"{args.file}: {exc}") from None
    warning = _not_a_fire_time(schedule, args.at)
    if warning:
        print(warning, file=sys.stderr)
    request = schedule.input_at(args.at)
    # The reference time is the input's schedule.scheduled_time, as when Scheduler fires.
    return show_rendered(request, None, f"{args.file}: {args.name}", as_json=args.json)


# --- plan / apply: the stack's schedule group ---------------------------------------------
def _plan(args: argparse.Namespace) -> tuple[Any, schedule_sync.Plan] | None:
    schedules = _expanded(args.files)
    problems = check(schedules)
    if problems:
        _print_problems(problems, len(schedules))
        print("Nothing was changed: fix the files first.", file=sys.stderr)
        return None
    target = Target(args)
    destination = schedule_sync.Destination(
        group=target.output(GROUP_OUTPUT),
        state_machine_arn=target.state_machine_arn,
        role_arn=target.output(ROLE_OUTPUT),
        dead_letter_arn=target.output(DEAD_LETTER_OUTPUT),
    )
    scheduler = target.client("scheduler")
    planned = schedule_sync.plan(scheduler, schedules, destination)
    print(
        f"Schedule group {planned.group} of stack {args.stack}: {len(schedules)} schedules declared"
    )
    for line in plan_lines(planned, _terminal_width()):
        print(line)
    return scheduler, planned


_SIGNS = {"create": "+", "update": "~", "delete": "-"}


def _change_line(change: schedule_sync.Change) -> str:
    line = f"  {_SIGNS[change.action]} {change.name}"
    if change.action == "create" and change.request:
        request = change.request
        line += f"  {request['ScheduleExpression']} {request['ScheduleExpressionTimezone']}"
    return line


def _terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def _wrapped_names(names: list[str], width: int, indent: str) -> list[str]:
    """Names separated by commas, as many on a line as the width holds."""
    return textwrap.wrap(
        ", ".join(names),
        width=max(width, 40),
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def plan_lines(planned: schedule_sync.Plan, width: int = 120) -> list[str]:
    """The plan as `plan` and `apply` print it: each distinct change once.

    Schedules whose updates are the very same field changes (a new instance type
    for a whole family) are one entry: how many, the changes, then their names.
    """
    lines: list[str] = []
    updates: dict[tuple[str, ...], list[str]] = {}
    for change in planned.changes:
        if change.action == "update":
            updates.setdefault(tuple(change.details), []).append(change.name)
    shown: set[tuple[str, ...]] = set()
    for change in planned.changes:
        if change.action != "update":
            lines.append(_change_line(change))
            continue
        details = tuple(change.details)
        if details in shown:
            continue
        shown.add(details)
        names = updates[details]
        if len(names) == 1:
            lines.append(_change_line(change))
            lines += [f"      {detail}" for detail in details]
        elif len(details) == 1:
            lines.append(f"  ~ {len(names)} schedules: {details[0]}")
            lines += _wrapped_names(names, width, "      ")
        else:
            lines.append(f"  ~ {len(names)} schedules:")
            lines += [f"      {detail}" for detail in details]
            lines += _wrapped_names(names, width, "      ")
    return lines


#: Deleting more than this share of a group is said in words before anything is asked.
LARGE_DELETE_SHARE = 0.1


def deletion_warning(planned: schedule_sync.Plan) -> str | None:
    """A sentence when the plan deletes more than a tenth of what the group holds."""
    deleting = planned.count("delete")
    holding = deleting + planned.count("update") + planned.unchanged
    if not deleting or deleting <= holding * LARGE_DELETE_SHARE:
        return None
    return (
        f"This deletes {deleting} of the {holding} schedules in group {planned.group}"
        f" ({deleting / holding:.0%}): they are not in the files given. Give every"
        " schedule file of the group if that is not what you mean."
    )


def confirmed(planned: schedule_sync.Plan, yes: bool) -> bool | None:
    """Ask before changing the group: True to go on, False if refused, None without a terminal."""
    warning = deletion_warning(planned)
    if warning:
        print(f"Warning: {warning}")
    if yes:
        return True
    if not sys.stdin or not sys.stdin.isatty():
        return None
    print(
        f"Apply {len(planned.changes)} change{'s' if len(planned.changes) != 1 else ''}"
        f" to group {planned.group}? [y/N] ",
        end="",
        flush=True,
    )
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def cmd_sync(args: argparse.Namespace) -> int:
    """`plan` prints the changes; `apply` prints them and carries them out."""
    result = _plan(args)
    if result is None:
        return EXIT_FAILED
    scheduler, planned = result
    if not args.apply:
        print(f"Plan: {planned.summary()}")
        return EXIT_OK
    if not planned.changes:
        print(f"Nothing to change: {planned.summary()}")
        return EXIT_OK
    print(f"Plan: {planned.summary()}")
    answer = confirmed(planned, args.yes)
    if answer is None:
        print(
            "amirun: apply asks before it changes the group and there is no terminal to ask:"
            " give --yes to apply without asking",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not answer:
        print("Nothing was changed.")
        return EXIT_FAILED
    done: list[schedule_sync.Change] = []
    try:
        failures = schedule_sync.apply(scheduler, planned, done.append)
    except KeyboardInterrupt:
        print(
            f"\nStopped after {len(done)} of {len(planned.changes)} changes;"
            " run apply again to finish",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    for failure in failures:
        print(
            f"amirun: {failure.change.action} {failure.change.name}: {failure.message}",
            file=sys.stderr,
        )
    applied = {a: sum(1 for c in done if c.action == a) for a in _SIGNS}
    print(
        f"Applied: {applied['create']} created, {applied['update']} changed, "
        f"{applied['delete']} deleted"
        + (f"; {len(failures)} failed (run apply again to retry them)" if failures else "")
    )
    return EXIT_FAILED if failures else EXIT_OK


# --- backfill: the slots of past nights --------------------------------------------------
#: Seconds between two starts of a backfill (Step Functions' StartExecution refills 2 a second).
BACKFILL_INTERVAL_S = 0.5
#: A backfill covers at most this many nights at a time.
BACKFILL_NIGHTS = 62


def cmd_backfill(args: argparse.Namespace) -> int:
    """Start the slots of past nights that never ran, each as it was due."""
    from datetime import timedelta

    from amirun.commands.report import LEDGER_OUTPUT, load_night
    from amirun.commands.runs import _schedule_set, start_summary
    from amirun.slot_starts import needing_rerun, running_count, start_slots

    if args.to < args.first:
        raise usage_error("--to is before --from")
    nights = [args.first + timedelta(days=n) for n in range((args.to - args.first).days + 1)]
    if len(nights) > BACKFILL_NIGHTS:
        raise usage_error(f"--from/--to: at most {BACKFILL_NIGHTS} nights at a time")
    if args.to >= datetime.now(UTC).date():
        raise usage_error("--to: backfill is for past nights (up to yesterday, UTC)")
    schedules = _schedule_set(args.files)
    target = Target(args)
    table = target.output(LEDGER_OUTPUT)
    dynamodb = target.client("dynamodb")
    now = datetime.now(UTC)
    due = [d for _, d in schedules.values()]
    slots = []
    for night in nights:
        loaded = load_night(dynamodb, table, night, due, now)
        slots += needing_rerun(loaded, failed=False, missing=True, pattern=args.only)
    room = max(0, args.at_once - running_count(dynamodb, table, nights))
    print(
        f"{len(nights)} night(s) from {args.first} to {args.to}: {len(slots)} slot(s) never"
        f" ran; room for {room}"
    )
    outcome = start_slots(
        sfn=target.client("stepfunctions"),
        dynamodb=dynamodb,
        table=table,
        state_machine_arn=target.state_machine_arn,
        slots=slots,
        schedules={name: schedule for name, (schedule, _) in schedules.items()},
        takeover=False,
        room=room,
        tag="backfill",
        interval_s=args.interval,
    )
    print(start_summary(outcome, args.at_once))
    return EXIT_FAILED if outcome.failed else EXIT_OK


def register(sub: Any) -> None:
    schedules = sub.add_parser(
        "schedules",
        help="schedule sets declared in files: expand, render, plan, apply",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = schedules.add_subparsers(dest="action", required=True)

    files_help = "schedule files, or directories of them (their *.yaml files)"
    expand_cmd = actions.add_parser(
        "expand", help="list every schedule the files declare and check every execution input"
    )
    expand_cmd.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    expand_cmd.add_argument("--json", action="store_true", help="everything, inputs too, as JSON")
    expand_cmd.add_argument(
        "--inputs", action="store_true", help="print each schedule's execution input too"
    )
    expand_cmd.set_defaults(func=cmd_expand)

    render = actions.add_parser(
        "render", help="one schedule's execution input as it runs at a scheduled time"
    )
    render.add_argument("file", metavar="FILE")
    render.add_argument("name", metavar="NAME", help="the schedule's name")
    _at(render)
    render.add_argument("--json", action="store_true", help="one JSON object on stdout")
    render.set_defaults(func=cmd_render)

    for name, text in (
        ("plan", "show what apply would create, change and delete"),
        ("apply", "make the stack's schedule group equal to the files"),
    ):
        command = actions.add_parser(name, help=text)
        command.add_argument("files", nargs="+", metavar="FILE", help=files_help)
        command.add_argument(
            "--stack", required=True, help="the deployed amirun stack whose schedule group to sync"
        )
        command.add_argument("--region", help="AWS region (default: your AWS configuration)")
        if name == "apply":
            command.add_argument(
                "--yes",
                action="store_true",
                help="apply without asking (for scripts); without it apply shows the plan and"
                " asks, and refuses when there is no terminal to ask",
            )
        command.set_defaults(
            func=_reported(cmd_sync), apply=name == "apply", state_machine=None, yes=False
        )

    from amirun.commands.report import night_date

    backfill = actions.add_parser(
        "backfill",
        help="start the slots of past nights that never ran, each at its scheduled time",
    )
    backfill.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    backfill.add_argument("--stack", required=True, help="the deployed amirun stack")
    backfill.add_argument(
        "--from", dest="first", required=True, type=night_date, help="first night, YYYY-MM-DD"
    )
    backfill.add_argument("--to", required=True, type=night_date, help="last night, YYYY-MM-DD")
    backfill.add_argument("--only", metavar="PATTERN", help="only these schedules (a glob)")
    backfill.add_argument(
        "--at-once", type=int, default=20, metavar="N", help="at most N runs at once (default 20)"
    )
    backfill.add_argument(
        "--interval",
        type=float,
        default=BACKFILL_INTERVAL_S,
        metavar="SECONDS",
        help=f"seconds between two starts (default {BACKFILL_INTERVAL_S})",
    )
    backfill.add_argument("--region", help="AWS region (default: your AWS configuration)")
    backfill.set_defaults(func=_reported(cmd_backfill), state_machine=None)

    add_rehearse(actions, files_help)


def _at(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        required=True,
        type=scheduled_time,
        metavar="TIME",
        help="the scheduled time, ISO 8601 (e.g. 2026-02-09T06:00Z; UTC unless an offset is given)",
    )
