"""Rehearse part of a NextGen night with faults, then report it as `amirun report` does.

The cfe-nom family cut to two short-range cycles, one medium-range cycle and
the analysis (80 schedules), due on one night, run through the real ASL and
handlers on the emulator: most succeed, some fail (the command fails; the
SSM agent never comes online; no capacity), and a few are never started
(missing). Each execution claims its slot first (what the workflow's claim
step does) and its end reaches the recorder as the state machine's
status-change event. The report is the CLI's, against a stand-in stack.

    nice .venv/bin/python bench/night.py [--html night.html]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CFE_NOM = ROOT / "schedules" / "examples" / "nextgen-cfe-nom.yaml"
NIGHT = date(2026, 2, 9)
#: Faults by (family, cycle, VPU); the world's faults apply to every run in flight,
#: so each fault's runs go in a phase of their own.
FAULTS = {
    ("short_range", "05", "10L"): "command-fails",
    ("short_range", "06", "07"): "command-fails",
    ("medium_range", "06", "16"): "ssm-never-online",
    ("analysis_assim_extend", "16", "03W"): "capacity",
}
#: Due but never started: a start that went to the dead-letter queue.
NEVER_STARTED = {("short_range", "06", "12"), ("analysis_assim_extend", "16", "18")}


def night_file(directory: Path) -> Path:
    """The example file cut to the cycles rehearsed here."""
    text = CFE_NOM.read_text(encoding="utf-8")
    template = CFE_NOM.with_name("nextgen-cfe-nom.json")
    (directory / template.name).write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    text = text.replace("init: 00..23", 'init: ["05", "06"]')
    text = text.replace('init: ["00", "06", "12", "18"]', 'init: ["06"]')
    path = directory / "nextgen-night.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--html", type=Path, help="also write the night's page here")
    args = parser.parse_args()

    import boto3

    from amirun.cli import main as amirun
    from amirun.commands.report import due_schedules
    from amirun.local.eventbridge import execution_status_event
    from amirun.local.runner import RUN_LEDGER_TABLE, EmulatorSession, RehearsalOptions
    from amirun.schedules import expand
    from amirun_core.ledger import claim_slot
    from amirun_core.night import due_slots

    directory = Path(tempfile.mkdtemp(prefix="amirun-night-"))
    path = night_file(directory)
    schedules = {s.name: s for s in expand([path])}
    due, _ = due_slots(due_schedules([str(path)]), NIGHT)
    options = RehearsalOptions(agent_delay_s=0.3, command_duration_s=0.5, event_delay_s=0.1)
    started_at = time.monotonic()
    with EmulatorSession(options) as session:
        dynamodb = boto3.client("dynamodb")
        phases: dict[str, list[Any]] = {}
        for slot in due:
            key = (slot.schedule.split("_fcst")[0], slot.row.get("init"), slot.row.get("vpu"))
            if key in NEVER_STARTED:
                continue
            phases.setdefault(FAULTS.get(key, ""), []).append(slot)
        for fault, slots in phases.items():
            session.world.settings.faults = frozenset({fault} if fault else set())
            arns = []
            for index, slot in enumerate(slots):
                request = schedules[slot.schedule].input_at(
                    f"{slot.scheduled_time:%Y-%m-%dT%H:%M:%SZ}"
                )
                request["run_options"]["retry_delay_s"] = 0
                session.prepare(request)
                name = f"{schedules[slot.schedule].execution_name_prefix}_{index:03d}{fault[:4]}"
                arn = (
                    session.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
                )
                claim_slot(
                    dynamodb, RUN_LEDGER_TABLE, slot=slot.key, execution_arn=arn,
                    schedule=slot.schedule, scheduled_time=slot.scheduled_time,
                    started_at=datetime.now(UTC),
                )  # fmt: skip
                arns.append(session.start(request, name))
            ended: set[str] = set()
            while len(ended) < len(arns):
                time.sleep(0.5)
                for arn in arns:
                    if arn in ended:
                        continue
                    described = session.describe(arn)
                    if described["status"] != "RUNNING":
                        ended.add(arn)
                        session.endpoint.invoke(
                            "RecorderFunction", execution_status_event(described)
                        )
            print(f"phase {fault or 'no fault'}: {len(arns)} runs ended", file=sys.stderr)
        boto3.client("cloudformation").create_stack(
            StackName="amirun-night",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Bucket": {"Type": "AWS::S3::Bucket"}},
                    "Outputs": {
                        "RunLedgerTableName": {"Value": RUN_LEDGER_TABLE},
                        "StateMachineArn": {"Value": session.state_machine_arn},
                    },
                }
            ),
        )
        print(f"rehearsed in {time.monotonic() - started_at:.0f} s", file=sys.stderr)
        report = ["report", "--stack", "amirun-night", "--night", NIGHT.isoformat(), str(path)]
        if args.html:
            report += ["--html", str(args.html)]
        amirun(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
