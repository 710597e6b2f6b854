"""Wall time of expanding schedule files and checking every execution input, median of N.

Each run is a fresh interpreter doing what `amirun schedules expand PATH...` does
(read the YAML and the templates, expand the matrices, validate every input with
the same validator as `amirun validate`), timed in three parts: imports,
expanding, checking. The whole command's wall time is measured too (median and
fastest: on a busy machine the fastest run is the closest to the work itself).

By default it expands schedules/examples/, NextGen's whole daily set (1,238
schedules and 24 disabled ones); the target is under 3 s for the command.

    .venv/bin/python bench/schedules.py [--runs 5] [PATH...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = [ROOT / "schedules" / "examples"]

_PROBE = """
import json, time
from pathlib import Path
started = time.perf_counter()
from amirun.schedules import check, expand
imported = time.perf_counter()
schedules = expand([Path(p) for p in {paths!r}])
expanded = time.perf_counter()
problems = check(schedules)
checked = time.perf_counter()
print(json.dumps({{"schedules": len(schedules), "invalid": len(problems),
    "disabled": sum(not s.enabled for s in schedules),
    "import_s": imported - started, "expand_s": expanded - imported,
    "check_s": checked - expanded, "total_s": checked - started}}))
"""


def _probe(paths: list[Path]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(paths=[str(p) for p in paths])],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def _command(paths: list[Path]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one `amirun schedules expand`."""
    amirun = Path(sys.executable).parent / "amirun"
    before = os.times()
    started = time.perf_counter()
    # Exit 1 (an input is invalid) is timed like exit 0.
    subprocess.run(
        [str(amirun), "schedules", "expand", *map(str, paths)], capture_output=True, check=False
    )
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, default=DEFAULT_PATHS)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    probes = [_probe(args.paths) for _ in range(args.runs)]
    commands = [_command(args.paths) for _ in range(args.runs)]
    first = probes[0]
    names = " ".join(p.name for p in args.paths)
    print(
        f"{names}: {first['schedules']:.0f} schedules ({first['disabled']:.0f} disabled),"
        f" {first['invalid']:.0f} invalid; median of {args.runs} runs"
    )
    for key, label in (
        ("import_s", "import amirun.schedules"),
        ("expand_s", "expand (YAML, matrix, template)"),
        ("check_s", "validate every input"),
        ("total_s", "expand + validate, with imports"),
    ):
        print(f"  {label:34} {statistics.median(p[key] for p in probes):7.3f} s")
    walls = [wall for wall, _ in commands]
    print(f"  {'amirun schedules expand (wall)':34} {statistics.median(walls):7.3f} s")
    print(f"  {'  fastest run':34} {min(walls):7.3f} s")
    # On a shared machine the wall time is mostly waiting for a core; the CPU time is not.
    cpu = statistics.median(c for _, c in commands)
    print(f"  {'  its CPU time (user + system)':34} {cpu:7.3f} s")
    print(f"  {'load average (1 min) at the end':34} {os.getloadavg()[0]:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
