"""`amirun validate`: check an execution JSON without any AWS call."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from amirun.commands.common import EXIT_FAILED, EXIT_OK, load_execution, print_problems
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import parse_execution


def cmd_validate(args: argparse.Namespace) -> int:
    request = load_execution(args.execution)
    try:
        parsed = parse_execution(request)
    except InvalidExecutionInput as exc:
        print_problems(args.execution, exc, sys.stderr)
        return EXIT_FAILED
    options = parsed.run_options
    terminate = "terminate" if options.ii_terminate_instance else "stop"
    check = options.output_check
    print(
        f"{args.execution}: valid. {len(parsed.commands or [])} command(s), time limit "
        f"{options.timeout_s} s, then {terminate} the instance"
        + (f"; checks s3://{check.bucket}/{check.prefix}" if check else "; no output check")
    )
    return EXIT_OK


def register(sub: Any) -> None:
    validate = sub.add_parser("validate", help="check an execution JSON (no AWS calls)")
    validate.add_argument("execution")
    validate.set_defaults(func=cmd_validate)
