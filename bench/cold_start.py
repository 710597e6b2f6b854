"""Cold start of each handler: import time in a fresh interpreter, median of N.

What a Lambda's INIT phase does for us: import the handler module, which
imports Powertools, pydantic, amirun_core and creates its boto3 clients. Bare
`import boto3` is measured in the same run as the floor every handler pays.

    .venv/bin/python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())

_PROBE = """
import importlib.util, time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""
_IMPORT_HANDLER = """
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


def _once(body: str) -> float:
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_SERVICE_NAME": "amirun",
        "POWERTOOLS_METRICS_NAMESPACE": "amirun",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "STACK_NAME": "bench",
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(body=body)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def median_ms(body: str, runs: int) -> float:
    return statistics.median(_once(body) for _ in range(runs)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, median of {args.runs} fresh interpreters")
    print(f"{'what':<24}{'import ms':>10}")
    print(f"{'import boto3 (floor)':<24}{median_ms('import boto3', args.runs):>10.0f}")
    for name in FUNCTIONS:
        body = _IMPORT_HANDLER.format(path=str(ROOT / "functions" / name / "app.py"))
        print(f"{name:<24}{median_ms(body, args.runs):>10.0f}")


if __name__ == "__main__":
    main()
