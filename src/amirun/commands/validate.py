"""`amirun validate`: check an execution JSON without any AWS call."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    end_of_run,
    print_problems,
    read_execution_file,
)
from amirun.rendering import resolve_at
from amirun_core.daily import DAILY, output_location
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import ExecutionRequest, S3Check, machine_fields, parse_execution


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        raw = read_execution_file(args.execution)
    except InvalidExecutionInput as exc:
        # Unreadable, or not one JSON object: a usage error, as for every command.
        print(f"amirun: {args.execution}: {exc}", file=sys.stderr)
        if args.json:
            print_json(exc)
        return EXIT_USAGE
    try:
        parsed = parse_execution(raw)
    except InvalidExecutionInput as exc:
        if args.json:
            print_json(exc)
        else:
            print_problems(args.execution, exc, sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json(None)
        return EXIT_OK
    options = parsed.run_options
    ignored = machine_fields(raw)
    if ignored:
        print(
            f"{args.execution}: notice: {', '.join(ignored)} ignored (added by the original's "
            "machine while a run ran; replayed files carry them)"
        )
    print(
        f"{args.execution}: valid. {len(parsed.command_list)} command(s), time limit "
        f"{options.timeout_s} s, then {end_of_run(options)}; {check_summary(parsed)}"
    )
    return EXIT_OK


def print_json(exc: InvalidExecutionInput | None) -> None:
    """The problems on stdout as [{field, message}], `[]` for a valid file."""
    problems = exc.problems if exc else []
    json.dump([{"field": p.field, "message": p.message} for p in problems], sys.stdout, indent=2)
    print()


def check_summary(request: ExecutionRequest) -> str:
    """Where RunChecker will look, DAILY resolved as if the run started now."""
    resolution = resolve_at(request, None)
    check = resolution.output_check
    if check is None:
        return "no output check"
    what = (
        "checks"
        if check.source == "ii_check_s3"
        else f"checks (from the {check.source}: {check.why})"
    )
    started_now = (
        f" if started now (DAILY = {resolution.daily_date})"
        if DAILY in unresolved_location(request)
        else ""
    )
    return f"{what} s3://{check.bucket}/{check.prefix}{started_now}"


def register(sub: Any) -> None:
    validate = sub.add_parser(
        "validate",
        help="check an execution JSON (no AWS calls)",
        description="Check an execution JSON the way the workflow will, without any AWS "
        "call, and name every problem at once. Exit 0: valid; 1: invalid; 2: unreadable.",
    )
    validate.add_argument("execution", help="execution JSON file")
    validate.add_argument(
        "--json",
        action="store_true",
        help='print the problems on stdout as JSON: [{"field": ..., "message": ...}], '
        "[] when the file is valid",
    )
    validate.set_defaults(func=cmd_validate)


def unresolved_location(request: ExecutionRequest) -> str:
    check = request.run_options.ii_check_s3
    if isinstance(check, S3Check):
        return f"{check.bucket}/{check.prefix}"
    bucket, prefix, _ = output_location(request.command_list, request.datastream_command_options)
    return f"{bucket}/{prefix}"
