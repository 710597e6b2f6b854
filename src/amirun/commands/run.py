"""`amirun run`: rehearse an execution on the embedded AWS emulator."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import signal
import sys
from typing import Any

from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    end_of_run,
    handler_log_file,
    print_result,
    progress_printer,
    usage_error,
    validated_execution,
)
from amirun.commands.schedules import scheduled_time, validated_schedule

#: What `pip install 'amirun[rehearse]'` adds: the emulator, and its HTTP server.
REHEARSE_MODULES = ("moto", "flask", "flask_cors")


def missing_rehearse_modules() -> list[str]:
    return [name for name in REHEARSE_MODULES if importlib.util.find_spec(name) is None]


def time_scale(text: str) -> float:
    """--time-scale: a factor in (0, 1]; more than 1 would slow the workflow down."""
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, not {text}")
    return value


def seconds(text: str) -> float:
    """--agent-delay, --command-duration, --event-delay: 0 to MAX_DELAY_S seconds."""
    # From the world, not the runner: checking a flag needs no emulator installed.
    from amirun.local.world import MAX_DELAY_S

    value = _number(text)
    if not 0 <= value <= MAX_DELAY_S:
        raise argparse.ArgumentTypeError(f"must be 0 to {MAX_DELAY_S} seconds, not {text}")
    return value


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text}")
    return value


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # Unwinds the rehearsal like Ctrl-C: the execution is stopped and the commands run
    # with --exec-commands are killed, their temporary folder removed.
    raise KeyboardInterrupt


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: must be 0 or more")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    missing = missing_rehearse_modules()
    if missing:
        print(
            f"amirun: run needs the embedded AWS emulator ({', '.join(missing)} not installed):"
            " pip install 'amirun[rehearse]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from amirun.local.runner import RehearsalError, RehearsalOptions, rehearse

    if args.schedule:
        if args.execution or not args.at:
            raise usage_error("--schedule FILE NAME takes --at TIME and no execution file")
        path, name = args.schedule
        checked = validated_schedule(path, name, args.at)
        label = f"schedule {name} at {args.at}"
    elif args.execution:
        checked = validated_execution(args.execution)
        label = args.execution
    else:
        raise usage_error("give an execution JSON file, or --schedule FILE NAME --at TIME")
    if checked is None:
        return EXIT_FAILED
    request, parsed = checked
    out = sys.stderr if args.json else sys.stdout
    options = RehearsalOptions(
        exec_commands=args.exec_commands,
        faults=frozenset(args.fault),
        time_scale=args.time_scale,
        agent_delay_s=args.agent_delay,
        command_duration_s=args.command_duration,
        event_delay_s=args.event_delay,
        quota_vcpus=args.quota_vcpus,
        vcpu_limit=args.vcpu_limit,
        log_file=None if args.verbose else handler_log_file(),
    )
    mode = "commands run in a local shell" if args.exec_commands else "commands recorded, not run"
    print(
        f"Rehearsing {label} on the embedded AWS emulator"
        f" (times x{args.time_scale}, {mode}); afterwards: {end_of_run(parsed.run_options)}",
        file=out,
    )
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        result = rehearse(
            request,
            options,
            on_progress=None if args.quiet else progress_printer(out, args.verbose),
        )
    except RehearsalError as exc:
        print(f"amirun: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("amirun: rehearsal stopped; nothing it started is left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    if options.log_file:
        result.notes.append(f"the handlers' logs: {options.log_file} (--verbose shows them here)")
    print_result(result, out)
    if args.json:
        json.dump(result.to_json(), sys.stdout, indent=2, default=str)
        print()
    return EXIT_OK if result.succeeded else EXIT_FAILED


def register(sub: Any) -> None:
    from amirun.local.world import FAULTS

    run = sub.add_parser(
        "run",
        help="rehearse an execution on the embedded AWS emulator",
        description="Validate an execution JSON, then run it end to end on the embedded "
        "AWS emulator: the real state machine and handlers, moto for AWS, no account and "
        "no network. Exit 0 SUCCEEDED; 1 invalid file or failed run; 2 unreadable file, "
        "bad flag or a rehearsal that cannot start; 130 stopped (Ctrl-C, SIGTERM).",
    )
    run.add_argument("execution", nargs="?", help="execution JSON file")
    run.add_argument(
        "--schedule",
        nargs=2,
        metavar=("FILE", "NAME"),
        help="rehearse a schedule of a schedule file instead, as it runs --at TIME",
    )
    run.add_argument(
        "--at",
        type=scheduled_time,
        metavar="TIME",
        help="with --schedule: the scheduled time, ISO 8601 (UTC unless an offset is given)",
    )
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
        "--time-scale",
        type=time_scale,
        default=0.01,
        help="scale of every wait and time limit (default 0.01: a 30 s poll takes 1 s)",
    )
    run.add_argument(
        "--agent-delay",
        type=seconds,
        default=1.5,
        help="seconds until the emulated SSM agent is online (default 1.5)",
    )
    run.add_argument(
        "--command-duration",
        type=seconds,
        default=1.5,
        help="seconds a recorded command runs (default 1.5)",
    )
    run.add_argument(
        "--event-delay",
        type=seconds,
        default=0.2,
        help="seconds EventBridge takes to deliver an end event to the handler (default 0.2)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON on stdout (progress goes to stderr)",
    )
    run.add_argument(
        "--quota-vcpus",
        type=non_negative,
        default=0,
        metavar="N",
        help="the emulated account's vCPU quota: launches past it get VcpuLimitExceeded",
    )
    run.add_argument(
        "--vcpu-limit",
        type=non_negative,
        default=0,
        metavar="N",
        help="the stack's VcpuLimit: runs wait for room before launching (0: off)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress, only the result")
    run.add_argument(
        "--verbose",
        action="store_true",
        help="the handlers' logs on stderr (not in a log file) and the plumbing's notices",
    )
    run.set_defaults(func=cmd_run)
