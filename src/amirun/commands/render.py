"""`amirun render`: an execution JSON as the workflow will run it at a reference time."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    load_execution,
    print_problems,
    usage_error,
)
from amirun.rendering import render_execution
from amirun_core.daily import parse_reference_time
from amirun_core.errors import InvalidExecutionInput


def reference_time(text: str) -> datetime:
    """An ISO-8601 time for --at; UTC when it names no offset."""
    try:
        return parse_reference_time(text)
    except ValueError as exc:
        raise usage_error(f"--at: {exc}") from None


def cmd_render(args: argparse.Namespace) -> int:
    raw = load_execution(args.execution)
    at = reference_time(args.at) if args.at else None
    return show_rendered(raw, at, args.execution, as_json=args.json, given_at=at is not None)


def _reference_label(reference: str, given_at: bool) -> str:
    """What the reference time stands for, and where it came from."""
    what = reference.replace("_", " ")
    if given_at:
        return f"--at, as the run's {what}"
    return f"the {what}" if reference == "scheduled_time" else f"now, as the run's {what}"


def _daily_line(rendered: dict[str, Any], raw: dict[str, Any]) -> str:
    line = f"DAILY      {rendered['daily_date']} (cycle hour {rendered['cycle_hour']}, "
    if rendered["forcing_source"]:
        return line + f"forcing source {rendered['forcing_source']})"
    options = raw.get("datastream_command_options")
    given = options.get("forcing_source") if isinstance(options, dict) else None
    if given:
        # The built command passes it as `-C`; DAILY's rules read `--forcing_source` only.
        return line + (
            f"no --forcing_source: datastream_command_options' forcing_source {given} is"
            " passed as -C, which DAILY's rules do not read, so the no-forcing-source rule"
            " applies: the day before the reference's UTC date)"
        )
    return line + "no forcing source: the day before the reference's UTC date)"


def show_rendered(
    raw: dict[str, Any],
    at: datetime | None,
    source: str,
    as_json: bool,
    *,
    given_at: bool = False,
) -> int:
    """Print an execution as the workflow will run it (also `amirun schedules render`).

    `given_at`: the reference time came from --at (the label says so).
    """
    try:
        rendered = render_execution(raw, at)
    except InvalidExecutionInput as exc:
        print_problems(source, exc, sys.stderr)
        return EXIT_FAILED
    if as_json:
        json.dump(rendered, sys.stdout, indent=2)
        print()
        return EXIT_OK
    check = rendered["output_check"]
    fallback = ", on-demand if spot has no capacity" if rendered["on_demand_fallback"] else ""
    lines = [
        f"reference  {rendered['reference_time']}"
        f" ({_reference_label(rendered['reference'], given_at)})",
        _daily_line(rendered, raw),
        f"check      {rendered['checked_key']}"
        + (f" ({rendered['checked_because']})" if rendered["checked_because"] else "")
        if check
        else "check      none",
        *(
            f"input      {url}" + (" (ii_check_forcing)" if url == rendered["forcing_file"] else "")
            for url in rendered["inputs"]
        ),
        *(f"record     {url}" for url in rendered["record"]),
        f"market     {rendered['market']}{fallback}",
        *(f"attempt    {describe_attempt(step)}" for step in rendered["relaunch_plan"]),
        "commands",
        *(f"  {command}" for command in rendered["commands"]),
        "instance_parameters",
        *(
            f"  {line}"
            for line in json.dumps(rendered["instance_parameters"], indent=2).splitlines()
        ),
    ]
    print("\n".join(lines))
    return EXIT_OK


def describe_attempt(step: dict[str, Any]) -> str:
    """One attempt of the relaunch plan: `2  after 3600 s, spot (on-demand if none)`."""
    wait = f"after {step['wait_s']} s" if step["wait_s"] else "at once"
    fallback = " (on-demand if spot has no capacity)" if step["on_demand_fallback"] else ""
    return f"{step['attempt']}  {wait}, {step['market']}{fallback}"


def register(sub: Any) -> None:
    render = sub.add_parser(
        "render", help="show an execution as the workflow will run it (DAILY resolved)"
    )
    render.add_argument("execution", help="execution JSON file")
    render.add_argument(
        "--at",
        metavar="TIME",
        help="reference time, ISO-8601 (default: the file's schedule.scheduled_time, else now)",
    )
    render.add_argument("--json", action="store_true", help="one JSON object on stdout")
    render.set_defaults(func=cmd_render)
