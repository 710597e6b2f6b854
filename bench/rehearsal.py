"""Wall time of a rehearsal: `make run` after set-up, its start-up, and the happy path alone.

`make run` (median of N, environment already installed) is what a user waits
for; its start-up is the time until the first state is shown (interpreter,
imports, the emulator's set-up, stand-ins); the happy path alone is
`rehearse()` on the sample execution, from the first state to the end.

    .venv/bin/python bench/rehearsal.py [--runs 5] [--project DIR]

`--project` times `make run` in another checkout (e.g. an older commit, made
with `git archive`, with a `.venv` link to this one's): its own code runs,
first on PYTHONPATH, with this environment's packages.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from amirun.local.runner import RehearsalOptions, rehearse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"
#: A progress line naming a state: "    0.1s  Prepare".
STATE_LINE = re.compile(r"^\s+\d+\.\d+s  \w+$")


def make_run_seconds(project: Path) -> tuple[float, float]:
    """(seconds until the first state is shown, seconds until `make run` exits)."""
    code = os.pathsep.join(str(project / d) for d in ("src", "layers/core"))
    env = {**os.environ, "PYTHONPATH": code}
    started = time.perf_counter()
    first_state: float | None = None
    with subprocess.Popen(
        ["make", "-s", "run"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as make:
        assert make.stdout is not None
        for line in make.stdout:
            if first_state is None and STATE_LINE.match(line):
                first_state = time.perf_counter() - started
    if make.returncode != 0 or first_state is None:
        raise SystemExit(f"make run failed ({make.returncode})")
    return first_state, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--project", type=Path, default=ROOT, help="checkout to time")
    args = parser.parse_args()
    make_run_seconds(args.project)  # set-up, and a first run that warms the disk cache
    make_runs = [make_run_seconds(args.project) for _ in range(args.runs)]
    print(f"median of {args.runs}, {args.project}")
    print(f"make run (after set-up)      {statistics.median(t for _, t in make_runs):6.1f} s")
    print(f"  until its first state      {statistics.median(f for f, _ in make_runs):6.1f} s")
    if args.project.resolve() != ROOT:
        return  # the rest runs this checkout's code
    request = json.loads(SAMPLE.read_text(encoding="utf-8"))
    results = [rehearse(request, RehearsalOptions()) for _ in range(args.runs)]
    assert all(r.succeeded for r in results), [r.status for r in results]
    print(f"happy-path rehearsal alone   {statistics.median(r.elapsed_s for r in results):6.1f} s")
    print(f"states per run               {len(results[0].states)}")


if __name__ == "__main__":
    main()
