"""A whole day of NextGen schedules rehearsed on the local stack: wall time, runs/s, memory.

What `amirun schedules rehearse FILES --day DAY` does, for N runs: the schedules
of the given files (default: NextGen's example files, schedules/examples/*.yaml, whose
day is 1,238 runs), the first of them up to N runs; for N above what the files make in
a day, copies of them under other names (`-copyK`), each firing at its original's
times, make up the difference. Reports the night's summary and whether every run
ended, none is left running and none was started twice.

    nice .venv/bin/python bench/day.py [-n 1238] [--day 2026-02-09] [--fault-rate 0]
        [--in-flight 200] [FILE...]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from datetime import date
from pathlib import Path

from amirun.local.night import MAX_IN_FLIGHT, NightReport, due_starts, rehearse_night
from amirun.local.runner import DEFAULT_TIME_SCALE, RehearsalOptions
from amirun.local.server import StackOptions
from amirun.schedules import Schedule, expand

ROOT = Path(__file__).resolve().parents[1]
NEXTGEN_DAY = sorted((ROOT / "schedules" / "examples").glob("*.yaml"))


def day_of(schedules: list[Schedule], runs: int, day: date) -> list[Schedule]:
    """`runs` starts on `day`: the files' schedules, cut or topped up with copies."""
    per_schedule = [due_starts([schedule], day) for schedule in schedules]
    if not any(per_schedule):
        raise SystemExit(f"no schedule of these files fires on {day}")
    chosen: list[Schedule] = []
    due = 0
    copy = 0
    while due < runs:
        for schedule, starts in zip(schedules, per_schedule, strict=True):
            if due >= runs:
                break
            due += starts
            if copy == 0:
                chosen.append(schedule)
                continue
            name = f"{schedule.name[: 64 - 8]}-copy{copy}"
            execution = {**schedule.execution, "schedule": {**schedule.execution["schedule"]}}
            execution["schedule"]["name"] = name
            chosen.append(dataclasses.replace(schedule, name=name, execution=execution))
        copy += 1
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="*", type=Path, default=NEXTGEN_DAY)
    parser.add_argument("-n", "--runs", type=int, default=1238)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2026, 2, 9))
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--in-flight", type=int, default=MAX_IN_FLIGHT)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    schedules = day_of(expand(args.files), args.runs, args.day)
    copies = sum(1 for s in schedules if "-copy" in s.name)
    started = time.monotonic()

    def tick(report: NightReport, in_flight: int) -> None:
        elapsed = time.monotonic() - started
        print(f"{elapsed:7.1f}s  {report.started} started, {in_flight} running", file=sys.stderr)

    options = StackOptions(
        RehearsalOptions(time_scale=args.time_scale, log_file="/dev/null"),
        fault_rate=args.fault_rate,
        seed=1,
    )
    on_started = None if args.quiet else tick
    report = rehearse_night(schedules, args.day, options, on_started, max_in_flight=args.in_flight)
    print(
        f"{args.runs} runs of {args.day}: {len(schedules)} schedules"
        + (f" ({copies} of them copies of the files' schedules)" if copies else "")
    )
    for line in report.lines():
        print(line)
    ended = report.ended == report.started
    print(
        f"  every run ended: {'yes' if ended else 'no'}; left running: {report.left_running};"
        f" duplicates: {report.duplicates}"
    )
    good = ended and report.left_running == 0 and report.duplicates == 0
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
