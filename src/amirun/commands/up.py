"""`amirun up`: the whole stack on this machine, until Ctrl-C; `schedules rehearse`: a day of it.

amirun up [--port N] [--time-scale X] [--clock-start TIME] [--verbose]
amirun schedules rehearse FILE... --day DATE [--fault-rate F] [--quota-vcpus N]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    handler_log_file,
    usage_error,
)

if TYPE_CHECKING:
    from amirun.local.scheduler import Fired

#: As `amirun run`'s: a 30 s poll takes 0.3 s, and the clock runs 100 times as fast.
DEFAULT_TIME_SCALE = 0.01


def _time_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{value}: must be more than 0, at most 1")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value}: must be 0 to 1")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port from 0 (any free one) to 65535")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a whole number, at least 1")
    return int(text)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; give ISO 8601, e.g. 2026-02-09T00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day; give YYYY-MM-DD") from None


def _log_file(args: argparse.Namespace) -> str | None:
    """None (stderr) with --verbose; else a file in a fresh temporary folder."""
    return None if args.verbose else handler_log_file()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops like Ctrl-C (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- amirun up --------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from amirun.local.runner import RehearsalError, RehearsalOptions
    from amirun.local.server import LocalStack, StackOptions

    log_file = _log_file(args)
    options = StackOptions(
        RehearsalOptions(time_scale=args.time_scale, log_file=log_file, name=None),
        port=args.port,
    )
    print_lock = threading.Lock()

    def say(line: str) -> None:
        with print_lock:
            print(line, flush=True)

    def fired(firing: Fired) -> None:
        at = f"{firing.scheduled_time:%Y-%m-%dT%H:%M:%SZ}"
        if firing.execution_arn:
            say(f"{at}  {firing.schedule}: started {firing.execution_arn.rsplit(':', 1)[1]}")
        else:
            say(f"{at}  {firing.schedule}: not started ({firing.error}); dead-lettered")

    try:
        with _sigterm_as_interrupt(), LocalStack(options) as local:
            scheduler = local.start_scheduler(args.clock_start, on_fired=fired)
            speed = 1 / args.time_scale
            say(f"amirun: stack {local.deployed.name} is up at {local.url}")
            say(f"  clock: {scheduler.clock.now():%Y-%m-%dT%H:%M:%SZ}, {speed:g}x real time")
            say("  handlers' logs: " + (log_file or "here (--verbose)"))
            say("In another shell:")
            for line in local.exports():
                say(f"  {line}")
            say(
                "  amirun schedules apply schedules/generic/nightly-report.yaml"
                f" --stack {local.deployed.name}"
            )
            say("Ctrl-C stops it.")
            threading.Event().wait()
    except OSError as exc:
        raise usage_error(f"cannot start the server: {exc.strerror or exc}") from None
    except RehearsalError as exc:
        raise usage_error(str(exc)) from None
    except KeyboardInterrupt:
        print("\namirun: stopped; nothing is left running", file=sys.stderr)
        return EXIT_OK
    return EXIT_OK


# --- amirun schedules rehearse ------------------------------------------------------------
def cmd_rehearse(args: argparse.Namespace) -> int:
    from amirun.commands.schedules import _expanded, _print_problems
    from amirun.local.night import rehearse_night
    from amirun.local.runner import RehearsalOptions
    from amirun.local.server import StackOptions
    from amirun.schedules import check

    schedules = _expanded(args.files)
    problems = check(schedules)
    if problems:
        _print_problems(problems, len(schedules))
        return EXIT_FAILED
    log_file = _log_file(args)
    options = StackOptions(
        RehearsalOptions(
            time_scale=args.time_scale, log_file=log_file, quota_vcpus=args.quota_vcpus
        ),
        fault_rate=args.fault_rate,
        seed=args.seed,
    )

    def tick(report: Any, in_flight: int) -> None:
        print(
            f"  {report.started} of {report.due} started, {in_flight} running",
            file=sys.stderr,
            flush=True,
        )

    try:
        with _sigterm_as_interrupt():
            report = rehearse_night(schedules, args.day, options, None if args.quiet else tick)
    except KeyboardInterrupt:
        print("\namirun: interrupted; nothing is left running", file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in report.lines():
        print(line)
    clean = report.left_running == 0 and report.duplicates == 0
    return EXIT_OK if clean else EXIT_FAILED


def add_rehearse(actions: Any, files_help: str) -> None:
    """`schedules rehearse`, registered among the schedules actions."""
    command = actions.add_parser(
        "rehearse",
        help="fire every schedule of a day through the local stack, then the night's summary",
    )
    command.add_argument("files", nargs="+", metavar="FILE", help=files_help)
    command.add_argument("--day", required=True, type=_day, help="the day (UTC), e.g. 2026-02-09")
    command.add_argument(
        "--fault-rate",
        type=_share,
        default=0.0,
        metavar="F",
        help="share of runs (0 to 1) that get one fault drawn (command-fails, output-missing, "
        "capacity, spot-interruption)",
    )
    command.add_argument(
        "--quota-vcpus",
        type=_positive,
        default=0,
        metavar="N",
        help="EC2's running vCPU quota of the emulated account (a launch beyond it is refused)",
    )
    command.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="X",
        help=f"every wait times X (default {DEFAULT_TIME_SCALE}); the clock runs 1/X as fast",
    )
    command.add_argument("--seed", type=int, help="draw the same faults again")
    command.add_argument("--quiet", action="store_true", help="no progress lines")
    command.add_argument(
        "--verbose", action="store_true", help="the handlers' logs on stderr, not in a file"
    )
    command.set_defaults(func=cmd_rehearse)


def register(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="the whole stack on this machine, schedules firing, until Ctrl-C",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument(
        "--port", type=_port, default=4566, help="the emulator's port on 127.0.0.1 (default 4566)"
    )
    up.add_argument(
        "--time-scale",
        type=_time_scale,
        default=DEFAULT_TIME_SCALE,
        metavar="X",
        help=f"every wait times X (default {DEFAULT_TIME_SCALE}); the clock runs 1/X as fast",
    )
    up.add_argument(
        "--clock-start",
        type=_moment,
        metavar="TIME",
        help="where the clock starts (default now), e.g. 2026-02-09T00:00Z",
    )
    up.add_argument("--verbose", action="store_true", help="the handlers' logs here, not in a file")
    up.set_defaults(func=cmd_up)
