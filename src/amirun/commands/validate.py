"""`amirun validate`: check an execution JSON without any AWS call."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from amirun.commands.common import EXIT_FAILED, EXIT_OK, load_execution, print_problems
from amirun.rendering import resolve_at
from amirun_core.daily import DAILY, output_location
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import ExecutionRequest, S3Check, parse_execution


def cmd_validate(args: argparse.Namespace) -> int:
    request = load_execution(args.execution)
    try:
        parsed = parse_execution(request)
    except InvalidExecutionInput as exc:
        print_problems(args.execution, exc, sys.stderr)
        return EXIT_FAILED
    options = parsed.run_options
    terminate = "terminate" if options.ii_terminate_instance else "stop"
    print(
        f"{args.execution}: valid. {len(parsed.command_list)} command(s), time limit "
        f"{options.timeout_s} s, then {terminate} the instance; {check_summary(parsed)}"
    )
    return EXIT_OK


def check_summary(request: ExecutionRequest) -> str:
    """Where RunChecker will look, DAILY resolved as if the run started now."""
    resolution = resolve_at(request, None)
    check = resolution.output_check
    if check is None:
        return "no output check"
    what = "checks" if check.source == "ii_check_s3" else f"checks (from the {check.source})"
    started_now = (
        f" if started now (DAILY = {resolution.daily_date})"
        if DAILY in unresolved_location(request)
        else ""
    )
    return f"{what} s3://{check.bucket}/{check.prefix}{started_now}"


def register(sub: Any) -> None:
    validate = sub.add_parser("validate", help="check an execution JSON (no AWS calls)")
    validate.add_argument("execution")
    validate.set_defaults(func=cmd_validate)


def unresolved_location(request: ExecutionRequest) -> str:
    check = request.run_options.ii_check_s3
    if isinstance(check, S3Check):
        return f"{check.bucket}/{check.prefix}"
    bucket, prefix, _ = output_location(request.command_list, request.datastream_command_options)
    return f"{bucket}/{prefix}"
