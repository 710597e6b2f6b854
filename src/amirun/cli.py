"""`amirun`: rehearse an execution locally, validate it, start and follow real runs.

amirun run EXECUTION.json            rehearse on the embedded emulator
amirun validate EXECUTION.json       check the file, no AWS calls
amirun start EXECUTION.json --stack NAME [--name RUN] [--follow]
amirun status RUN --stack NAME
amirun logs RUN --stack NAME
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from amirun.progress import Progress, RunResult
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import parse_execution

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _usage_error(message: str) -> SystemExit:
    print(f"amirun: {message}", file=sys.stderr)
    return SystemExit(EXIT_USAGE)


def load_execution(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _usage_error(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise _usage_error(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _usage_error(f"{path}: the execution JSON must be an object")
    return data


def print_problems(path: str, exc: InvalidExecutionInput, out: TextIO) -> None:
    print(f"{path}: invalid execution JSON", file=out)
    for problem in exc.problems:
        print(f"  - {problem}", file=out)


# --- run -----------------------------------------------------------------------------------
def progress_printer(out: TextIO) -> Any:
    def show(event: Progress) -> None:
        if event.kind == "state":
            line = f"{event.elapsed_s:7.1f}s  {event.state}"
        elif event.kind == "note":
            line = f"  {event.detail}"
        elif event.kind == "error":
            line = f"{'':9}  ! {event.detail}"
        else:
            line = f"{'':9}  {event.detail}"
        print(line, file=out, flush=True)

    return show


def print_result(result: RunResult, out: TextIO) -> None:
    print(file=out)
    if result.succeeded:
        print(f"SUCCEEDED in {result.elapsed_s:.1f} s", file=out)
        output = result.output or {}
        print(
            f"  command   {output.get('command_id')} {output.get('command_status')}"
            f" (exit {output.get('exit_code')})",
            file=out,
        )
        checked = output.get("checked_object") or {}
        if checked.get("checked"):
            print(f"  output    {checked.get('location')} ({checked.get('size')} bytes)", file=out)
        if output.get("output_url"):
            print(f"  logs      {output['output_url']}", file=out)
    else:
        error = f": {result.error}" if result.error else ""
        print(f"{result.status} in {result.elapsed_s:.1f} s{error}", file=out)
        if result.cause:
            print(f"  cause     {result.cause}", file=out)
    for instance_id, state in result.instances.items():
        print(f"  instance  {instance_id} {state}", file=out)
    for note in result.notes:
        print(f"  note      {note}", file=out)


def cmd_run(args: argparse.Namespace) -> int:
    from amirun.local.runner import RehearsalError, RehearsalOptions, rehearse

    request = load_execution(args.execution)
    out = sys.stderr if args.json else sys.stdout
    options = RehearsalOptions(
        exec_commands=args.exec_commands,
        faults=frozenset(args.fault),
        strict=args.strict,
        time_scale=args.time_scale,
        agent_delay_s=args.agent_delay,
        command_duration_s=args.command_duration,
    )
    mode = "commands run in a local shell" if args.exec_commands else "commands recorded, not run"
    print(
        f"Rehearsing {args.execution} on the embedded AWS emulator"
        f" (times x{args.time_scale}, {mode})",
        file=out,
    )
    try:
        result = rehearse(
            request, options, on_progress=None if args.quiet else progress_printer(out)
        )
    except RehearsalError as exc:
        print(f"amirun: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print_result(result, out)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, default=str)
        print()
    return EXIT_OK if result.succeeded else EXIT_FAILED


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


# --- start / status / logs: real stacks ------------------------------------------------------
def cmd_remote(args: argparse.Namespace) -> int:
    from amirun import remote

    command: int = getattr(remote, f"cmd_{args.command}")(args)
    return command


def build_parser() -> argparse.ArgumentParser:
    from amirun.local.world import FAULTS

    parser = argparse.ArgumentParser(
        prog="amirun", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="rehearse an execution on the embedded AWS emulator")
    run.add_argument("execution", help="execution JSON file")
    run.add_argument(
        "--exec-commands",
        action="store_true",
        help="run the commands in a local shell, in a temporary directory, with AWS "
        "endpoints pointing at the emulator",
    )
    run.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        help="inject a fault (repeatable): " + "; ".join(f"{k}: {v}" for k, v in FAULTS.items()),
    )
    run.add_argument(
        "--strict",
        action="store_true",
        help="do not create stand-ins: a resource the execution names must already exist",
    )
    run.add_argument(
        "--time-scale",
        type=float,
        default=0.01,
        help="scale of every wait and time limit (default 0.01: a 30 s poll takes 1 s)",
    )
    run.add_argument(
        "--agent-delay",
        type=float,
        default=1.5,
        help="seconds until the emulated SSM agent is online (default 1.5)",
    )
    run.add_argument(
        "--command-duration",
        type=float,
        default=1.5,
        help="seconds a recorded command runs (default 1.5)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON on stdout (progress goes to stderr)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress, only the result")
    run.set_defaults(func=cmd_run)

    validate = sub.add_parser("validate", help="check an execution JSON (no AWS calls)")
    validate.add_argument("execution")
    validate.set_defaults(func=cmd_validate)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--stack", help="name of the deployed amirun stack (its outputs name the state machine)"
        )
        p.add_argument("--state-machine", help="state machine ARN (instead of --stack)")
        p.add_argument("--region", help="AWS region (default: your AWS configuration)")

    start = sub.add_parser("start", help="start an execution on a deployed stack")
    start.add_argument("execution")
    start.add_argument("--name", help="execution name (default: generated)")
    start.add_argument("--follow", action="store_true", help="show progress until it ends")
    target(start)
    start.set_defaults(func=cmd_remote)

    status = sub.add_parser("status", help="how an execution is doing or how it ended")
    status.add_argument("run", help="execution name or ARN")
    target(status)
    status.set_defaults(func=cmd_remote)

    logs = sub.add_parser("logs", help="the command's stdout and stderr from the output bucket")
    logs.add_argument("run", help="execution name or ARN")
    target(logs)
    logs.set_defaults(func=cmd_remote)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):
        # `amirun run ... | head` ends quietly, like any command-line tool.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
