"""Right-sizing from a rehearsal: a few nights of two schedule blocks, with emulated use.

Runs each block's schedules for N nights on one emulator (the real workflow), each
execution claiming its slot in the ledger as the slot step does, so EC2Stopper
records each attempt there with the CPU and memory the emulated world published
for it; then reads the ledger as the report command's right-sizing view does and
prints the table.

The emulated use is chosen here, per block: routing-only runs that peak at 20-34%
CPU of an m8g.xlarge, and full runs that peak at 60-99% of an m8g.4xlarge.

    nice .venv/bin/python bench/rightsize.py [--nights 3] [--schedules 4]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from amirun.commands.rightsize import format_rows, rightsize_report
from amirun.local.runner import RUN_LEDGER_TABLE, EmulatorSession, RehearsalOptions
from amirun_core import aws, ledger

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"
#: block prefix: (instance type, lowest peak CPU %, spread, peak memory %)
BLOCKS = {
    "routing_only_": ("m8g.xlarge", 20, 15, 30.0),
    "full_forecast_": ("m8g.4xlarge", 60, 40, 45.0),
}


def use_of(execution_arn: str) -> tuple[float, float]:
    name = execution_arn.rsplit(":", 1)[-1]
    digest = hashlib.sha256(name.encode()).digest()
    for prefix, (_, low, spread, memory) in BLOCKS.items():
        if name.startswith(prefix):
            return float(low + digest[0] % spread), memory
    return 50.0, 50.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--schedules", type=int, default=4, help="schedules per block")
    args = parser.parse_args()
    base = json.loads(SAMPLE.read_text(encoding="utf-8"))
    first_night = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)
    options = RehearsalOptions(agent_delay_s=0.2, command_duration_s=0.3, utilisation=use_of)
    with EmulatorSession(options) as session:
        dynamodb = aws.client("dynamodb")
        arns = []
        for night in range(args.nights):
            due = first_night + timedelta(days=night)
            for prefix, (instance_type, *_) in BLOCKS.items():
                for n in range(args.schedules):
                    schedule = f"{prefix}vpu{n + 1:02d}"
                    request = copy.deepcopy(base)
                    request["instance_parameters"]["InstanceType"] = instance_type
                    request["schedule"] = {"name": schedule, "scheduled_time": due.isoformat()}
                    session.prepare(request)
                    arn = session.start(request, f"{schedule}-n{night}")
                    ledger.claim_slot(
                        dynamodb,
                        RUN_LEDGER_TABLE,
                        slot=ledger.slot_key(schedule, due),
                        execution_arn=arn,
                        schedule=schedule,
                        scheduled_time=due,
                        started_at=datetime.now(UTC),
                    )
                    arns.append(arn)
        while any(session.describe(a)["status"] == "RUNNING" for a in arns):
            time.sleep(1)
        statuses = [session.describe(a)["status"] for a in arns]
        with session.world.emulator_calls():
            rows = rightsize_report(
                dynamodb,
                session.clients["ec2"],
                RUN_LEDGER_TABLE,
                last_night=(first_night + timedelta(days=args.nights - 1)).date(),
                nights=args.nights,
                blocks=list(BLOCKS),
            )
    print(f"{len(arns)} runs over {args.nights} nights: {statuses.count('SUCCEEDED')} succeeded")
    print(format_rows(rows, 50.0))
    return 0 if statuses.count("SUCCEEDED") == len(arns) else 1


if __name__ == "__main__":
    sys.exit(main())
