"""N executions of the real workflow at once, on one emulator.

One state machine, one Lambda endpoint (with a concurrency limit, like a
Lambda account's), one emulated world; optionally a share of the steps' EC2
and SSM calls refused as throttled. Reports whether every execution succeeded
with exactly one instance, left at rest, and how fast and how big it ran.

    nice .venv/bin/python bench/load.py [-n 200] [--throttle 0.3] [--lambda-concurrency 1000]
        [--quota-vcpus 64] [--vcpu-limit 64]

With --quota-vcpus the emulated account refuses launches past that many vCPUs
(VcpuLimitExceeded); with --vcpu-limit the stack's VcpuLimit makes runs wait for
room before launching. The report gives the longest wait of a run that succeeded
(on the workflow's clock, i.e. divided by the time scale) and the runs that ended
for capacity.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from amirun.local.lambda_endpoint import LAMBDA_CONCURRENCY
from amirun.local.load import run_load
from amirun.local.runner import DEFAULT_TIME_SCALE, RehearsalOptions

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--executions", type=int, default=200)
    parser.add_argument(
        "--throttle", type=float, default=0.0, help="share of EC2/SSM calls throttled (0 to 1)"
    )
    parser.add_argument("--lambda-concurrency", type=int, default=LAMBDA_CONCURRENCY)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--execution", type=Path, default=SAMPLE, help="execution JSON to run")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--quota-vcpus", type=int, default=0, help="emulated vCPU quota")
    parser.add_argument("--vcpu-limit", type=int, default=0, help="the stack's VcpuLimit")
    parser.add_argument(
        "--queue-timeout",
        type=int,
        help="run_options.queue_timeout_s for every run (the rehearsal's clock is scaled: "
        "a long load on a small machine needs more than the default hour)",
    )
    args = parser.parse_args()
    if not 0 <= args.throttle < 1:
        parser.error("--throttle must be in [0, 1)")

    def tick(statuses: Counter[str], elapsed: float) -> None:
        if not args.quiet:
            done = ", ".join(f"{k.lower()} {v}" for k, v in sorted(statuses.items()))
            print(f"{elapsed:7.1f}s  {done}", file=sys.stderr, flush=True)

    request = json.loads(args.execution.read_text(encoding="utf-8"))
    if args.queue_timeout is not None:
        request.setdefault("run_options", {})["queue_timeout_s"] = args.queue_timeout
    options = RehearsalOptions(
        time_scale=args.time_scale,
        throttle_share=args.throttle,
        lambda_concurrency=args.lambda_concurrency,
        quota_vcpus=args.quota_vcpus,
        vcpu_limit=args.vcpu_limit,
    )
    report = run_load(request, args.executions, options, tick)
    print(
        f"{args.executions} executions on one emulator, {args.throttle:.0%} of EC2/SSM calls "
        f"throttled, Lambda concurrency limit {args.lambda_concurrency}"
    )
    rows = [
        ("succeeded", f"{report.succeeded} / {report.executions}"),
        ("instances launched", report.instances_launched),
        ("instances left running", report.instances_left_running),
        ("duplicates", report.duplicates),
        ("commands sent", report.commands_sent),
        ("wall time", f"{report.wall_s:.1f} s"),
        ("executions per second", f"{report.executions_per_s:.2f}"),
        ("peak memory (RSS)", f"{report.peak_memory_mb:.0f} MB"),
        ("Lambda invocations", report.lambda_invocations),
        ("Lambda peak concurrency", report.lambda_peak_concurrency),
        ("Lambda throttled", report.lambda_throttled),
        ("longest invocation", f"{report.lambda_longest_s:.1f} s"),
        ("EC2/SSM attempts throttled", report.throttled_attempts),
        ("  still after SDK retries", report.throttled_calls),
        ("vCPU quota / stack limit", f"{args.quota_vcpus or '-'} / {args.vcpu_limit or '-'}"),
        ("peak vCPUs running", report.peak_vcpus),
        ("launches refused (quota)", report.quota_refusals),
        ("longest wait for room", f"{report.longest_room_wait_s / args.time_scale:.0f} s"),
        ("failed for capacity", report.failed_for_capacity),
    ]
    for label, value in rows:
        print(f"  {label:<28}{value}")
    for failure in report.failures:
        print(f"  failed: {failure}")
    return 0 if report.all_good else 1


if __name__ == "__main__":
    sys.exit(main())
