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
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import parse_execution


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
    check = options.output_check
    print(
        f"{args.execution}: valid. {len(parsed.commands or [])} command(s), time limit "
        f"{options.timeout_s} s, then {end_of_run(options)}"
        + (f"; checks s3://{check.bucket}/{check.prefix}" if check else "; no output check")
    )
    return EXIT_OK


def print_json(exc: InvalidExecutionInput | None) -> None:
    """The problems on stdout as [{field, message}], `[]` for a valid file."""
    problems = exc.problems if exc else []
    json.dump([{"field": p.field, "message": p.message} for p in problems], sys.stdout, indent=2)
    print()


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
