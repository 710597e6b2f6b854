"""Wall time of a rehearsal: `make run` after set-up, and the happy path alone.

`make run` (median of N, environment already installed) is what a user waits
for; the happy path alone is `rehearse()` on the sample execution, from the
first state to the end, without interpreter start, imports and stand-ins.

    .venv/bin/python bench/rehearsal.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

from amirun.local.runner import RehearsalOptions, rehearse

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"


def make_run_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(["make", "-s", "run"], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run(["make", "-s", "run"], cwd=ROOT, check=True, capture_output=True)  # set-up
    make_runs = [make_run_seconds() for _ in range(args.runs)]
    request = json.loads(SAMPLE.read_text(encoding="utf-8"))
    results = [rehearse(request, RehearsalOptions()) for _ in range(args.runs)]
    assert all(r.succeeded for r in results), [r.status for r in results]
    print(f"median of {args.runs}")
    print(f"make run (after set-up)      {statistics.median(make_runs):6.1f} s")
    print(f"happy-path rehearsal alone   {statistics.median(r.elapsed_s for r in results):6.1f} s")
    print(f"states per run               {len(results[0].states)}")


if __name__ == "__main__":
    main()
