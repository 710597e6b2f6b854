"""The ledger's writers on the real workflow: a scheduled night of two runs, with faults.

Each run claims its slot (as the workflow's claim step does) and starts on the
emulator (real ASL, real handlers); its end reaches the recorder as the state
machine's status-change event, built from the ended execution as EventBridge
sends it. One run succeeds; one fails its command on every attempt.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from amirun.local.eventbridge import execution_status_event
from amirun.local.runner import RUN_LEDGER_TABLE, EmulatorSession, RehearsalOptions
from amirun.project import ROOT
from amirun.schedules import expand
from amirun_core.ledger import claim_slot, read_slot
from amirun_core.ledger import run_slot as slot_of

CFE_NOM = ROOT / "schedules" / "examples" / "nextgen-cfe-nom.yaml"
DUE = "2026-02-09T21:00:00Z"


def run_slot(session: EmulatorSession, request: dict[str, Any], name: str) -> dict[str, Any]:
    """Claim the slot, start the run, wait for its end, and hand the end to the recorder."""
    arn = session.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
    slot = slot_of(request, name, datetime.now(UTC))
    claim_slot(
        boto3.client("dynamodb"), RUN_LEDGER_TABLE, slot=slot.key, execution_arn=arn,
        schedule=slot.schedule, scheduled_time=slot.scheduled_time, started_at=datetime.now(UTC),
    )  # fmt: skip
    session.prepare(request)
    session.start(request, name)
    while (described := session.describe(arn))["status"] == "RUNNING":
        time.sleep(0.2)
    _, failed = session.endpoint.invoke("RecorderFunction", execution_status_event(described))
    assert not failed
    item = read_slot(boto3.client("dynamodb"), RUN_LEDGER_TABLE, slot.key)
    assert item is not None
    return item


@pytest.mark.slow
def test_the_starter_the_stopper_and_the_recorder_fill_each_slot() -> None:
    schedules = {s.name: s for s in expand([Path(CFE_NOM)])}
    ok = schedules["analysis_assim_extend_fcst16_vpu01_schedule_cfe_nom_prod"].input_at(DUE)
    bad = schedules["analysis_assim_extend_fcst16_vpu02_schedule_cfe_nom_prod"].input_at(DUE)
    bad["run_options"].update(n_retries_allowed=1, retry_delay_s=0)
    options = RehearsalOptions(agent_delay_s=0.2, command_duration_s=0.2, event_delay_s=0.05)
    with EmulatorSession(options) as session:
        succeeded = run_slot(session, ok, "night-ok")
        session.world.settings.faults = frozenset({"command-fails"})
        failed = run_slot(session, bad, "night-bad")

    assert succeeded["status"] == "succeeded"
    assert succeeded["scheduled_time"] == DUE and succeeded["day"] == "2026-02-09"
    first = succeeded["attempts"]["1"]
    assert first["instance_type"] == "m8g.xlarge"
    assert first["market"] in ("spot", "on-demand")
    assert first["az"]
    assert first["instance_seconds"] >= 0
    assert succeeded["output_key"].startswith("s3://ciroh-community-ngen-datastream/")
    assert succeeded["start_latency_s"] > 0  # started after 21:00 UTC on 2026-02-09
    assert succeeded["duration_s"] > 0

    assert failed["status"] == "failed"
    assert failed["error"] == "CommandFailed"
    assert set(failed["attempts"]) == {"1", "2"}
    assert all(a["error"] == "CommandFailed" for a in failed["attempts"].values())
    assert failed["attempts"]["2"]["cause"].startswith("command ")
    assert failed["instance_seconds"] == sum(
        a["instance_seconds"] for a in failed["attempts"].values()
    )
