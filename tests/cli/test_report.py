"""`amirun report` on moto's server: a NextGen night in the ledger, joined with its schedules.

The night of 2026-02-09 of the cfe-nom family (580 schedules, New York time):
the ledger holds what the workflow's writers write (the starter's attempt, the
stopper's usage and error, the recorder's end) for most slots, with faults:
relaunches, failures of several kinds, a timeout, runs still going, slots that
never started, and one run started by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from cli_helpers import ACCOUNT, REGION, create_stack

from amirun.cli import main
from amirun.local.runner import create_ledger_table
from amirun.project import ROOT
from amirun_core.ledger import claim_slot, record_attempt, record_end, slot_key
from amirun_core.night import due_slots

Capsys = pytest.CaptureFixture[str]
CFE_NOM = ROOT / "schedules" / "examples" / "nextgen-cfe-nom.yaml"
NIGHT = date(2026, 2, 9)
STACK = "amirun-report"
TABLE = "amirun-report-run-ledger"
SERIALIZER = TypeSerializer()
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{STACK}-workflow"


@dataclass(frozen=True)
class Fault:
    end: str
    error: str | None = None
    cause: str | None = None
    attempts: int = 1


#: (schedule name part, cycle) -> what happened; every other due slot succeeded first time.
FAULTS = {
    ("short_range", "03", "10L"): Fault(
        "failed", "CommandFailed", "exit 1: ngen: VPU_10L forcing file truncated"
    ),
    ("short_range", "07", "05"): Fault(
        "failed",
        "InstanceNotReady",
        "instance i-0a is running and its SSM agent is not registered",
        3,
    ),
    ("short_range", "07", "06"): Fault(
        "failed",
        "InsufficientCapacity",
        "spot: InsufficientInstanceCapacity; on-demand: InsufficientInstanceCapacity",
        3,
    ),
    ("medium_range", "06", "16"): Fault("timed_out", "States.Timeout"),
    ("short_range", "11", "02"): Fault("relaunched", attempts=2),
    ("short_range", "11", "03N"): Fault("relaunched", attempts=3),
    ("short_range", "22", "01"): Fault("running"),
    ("short_range", "23", "18"): Fault("running"),
    ("short_range", "15", "12"): Fault("missing"),
    ("short_range", "15", "13"): Fault("missing"),
    ("analysis_assim_extend", "16", "09"): Fault("missing"),
}


def _fault(schedule: str, row: dict[str, str]) -> Fault | None:
    family = schedule.split("_fcst", maxsplit=1)[0]
    return FAULTS.get((family, row.get("init", ""), row.get("vpu", "")))


def write_night(dynamodb: Any, night: date, seed: int = 0) -> dict[str, int]:
    """The ledger of a night as the writers leave it; returns how many of each end.

    Written in batches of 25 (one call each), items shaped as claim_slot,
    record_attempt and record_end shape them (test_slot_facts checks those);
    a run started by hand goes through the ledger's own functions.
    """
    from amirun.commands.report import due_schedules

    due, unread = due_slots(due_schedules([str(CFE_NOM)]), night)
    assert not unread
    ends: dict[str, int] = {}
    items = []
    for index, slot in enumerate(due):
        fault = _fault(slot.schedule, slot.row) if seed == 0 else None
        if seed and index % (7 + seed) == 0:
            fault = Fault("missing")
        end = fault.end if fault else "succeeded"
        ends[end] = ends.get(end, 0) + 1
        if end == "missing":
            continue
        name = f"{slot.schedule[:43]}_{index:04d}-{seed}"
        started = slot.scheduled_time + timedelta(seconds=20 + index % 40)
        items.append(
            slot_item(
                slot.schedule,
                slot.scheduled_time,
                f"{MACHINE}:{name}",
                started=started,
                fault=fault,
                index=index,
            )
        )
    for first in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": as_attributes(i)}} for i in items[first : first + 25]]
        assert not dynamodb.batch_write_item(RequestItems={TABLE: batch}).get("UnprocessedItems")
    return ends


def as_attributes(item: dict[str, Any]) -> dict[str, Any]:
    plain = json.loads(json.dumps(item, default=str), parse_float=Decimal)
    return {key: SERIALIZER.serialize(value) for key, value in plain.items()}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_item(
    schedule: str, due: datetime, arn: str, *, started: datetime, fault: Fault | None, index: int
) -> dict[str, Any]:
    instance_type = "m8g.2xlarge" if "medium" in schedule else "m8g.xlarge"
    attempts_count = fault.attempts if fault else 1
    seconds_each = 900 + (index * 37) % 1500 + (2400 if "medium" in schedule else 0)
    item: dict[str, Any] = {
        "pk": slot_key(schedule, due),
        "day": due.astimezone(UTC).date().isoformat(),
        "schedule": schedule,
        "scheduled_time": _iso(due),
        "execution": arn,
        "status": "running",
        "started_at": _iso(started),
        "expires_at": int(due.timestamp()) + 400 * 86400,
    }
    attempts: dict[str, Any] = {}
    for attempt in range(1, attempts_count + 1):
        last = attempt == attempts_count
        fields: dict[str, Any] = {
            "instance_id": f"i-{index:08x}{attempt}",
            "instance_type": instance_type,
            "market": "spot",
            "az": "us-east-1b",
            "launched_at": _iso(started),
        }
        attempts[str(attempt)] = fields
        if fault and fault.end == "running" and last:
            item["attempts"] = attempts
            return item
        seconds = seconds_each if last else 240
        fields |= {"instance_seconds": seconds, "cost_usd": round(seconds * 0.0451 / 3600, 6)}
        if not last or (fault and fault.error):
            fields["error"] = (fault.error if fault and last else None) or "InstanceLost"
            fields["cause"] = (fault.cause if fault and last else None) or "spot interruption"
    item["attempts"] = attempts
    total = seconds_each + 240 * (attempts_count - 1)
    item |= {
        "status": {"relaunched": "succeeded"}.get(fault.end, fault.end) if fault else "succeeded",
        "ended_at": _iso(started + timedelta(seconds=total + 60)),
        "duration_s": total + 60,
        "start_latency_s": (started - due).total_seconds(),
        "instance_seconds": total,
        "cost_usd": round(total * 0.0451 / 3600, 6),
    }
    if fault and fault.error:
        item["error"] = fault.error
        item["cause"] = fault.cause or "the execution ran past its TimeoutSeconds"
    else:
        item["output_key"] = f"s3://ciroh-community-ngen-datastream/outputs/{index}/ngen.tar.gz"
        item["attempt_count"] = attempts_count
    return item


def write_by_hand_run(dynamodb: Any, started: datetime) -> None:
    """A run started by hand, written by the ledger's own functions, as the steps do."""
    schedule = "manual/try-vpu01"
    key, arn = slot_key(schedule, started), f"{MACHINE}:try-vpu01"
    assert claim_slot(
        dynamodb,
        TABLE,
        slot=key,
        execution_arn=arn,
        schedule=schedule,
        scheduled_time=started,
        started_at=started,
    ).claimed
    fields = {
        "instance_type": "m8g.xlarge",
        "market": "on-demand",
        "instance_seconds": 1200,
        "cost_usd": 0.06,
    }
    assert record_attempt(dynamodb, TABLE, slot=key, execution_arn=arn, attempt=1, fields=fields)
    assert record_end(
        dynamodb,
        TABLE,
        slot=key,
        execution_arn=arn,
        status="succeeded",
        fields={"duration_s": 1300, "instance_seconds": 1200, "cost_usd": 0.06},
    )


@pytest.fixture(scope="module")
def night(aws_endpoint: str) -> dict[str, int]:
    dynamodb = boto3.client("dynamodb")
    create_ledger_table(dynamodb, TABLE)
    # A state machine that takes starts (moto's server does not run it: they stay RUNNING).
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"{STACK}-workflow",
        definition=json.dumps({"StartAt": "Run", "States": {"Run": {"Type": "Pass", "End": True}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK}-workflow",
    )["stateMachineArn"]
    assert machine == MACHINE.replace(":execution:", ":stateMachine:")
    create_stack(STACK, {"StateMachineArn": machine, "RunLedgerTableName": TABLE})
    ends = write_night(dynamodb, NIGHT)
    # Two nights before, for the page's trend, and a run started by hand that night.
    write_night(dynamodb, NIGHT - timedelta(days=1), seed=1)
    write_night(dynamodb, NIGHT - timedelta(days=2), seed=2)
    write_by_hand_run(dynamodb, datetime(2026, 2, 9, 14, 2, 5, tzinfo=UTC))
    return ends


def report(capsys: Capsys, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["report", "--stack", STACK, "--night", NIGHT.isoformat(), str(CFE_NOM), *args])
    return code, capsys.readouterr().out


def test_the_terminal_report_counts_each_end_and_names_the_failures(
    night: dict[str, int], capsys: Capsys
) -> None:
    code, out = report(capsys)

    assert code == 1  # failures and missing slots: a script's `&&` stops
    lines = out.splitlines()
    assert all(len(line) <= 120 for line in lines)
    assert lines[0] == "Stack amirun-report, night of 2026-02-09 (UTC): 580 slots due"
    assert lines[1:7] == [
        f"  {label:<32}{count:>7}"
        for label, count in (
            ("succeeded", 569),
            ("relaunched, then succeeded", 2),
            ("failed", 3),
            ("timed out", 1),
            ("missing (due, never started)", 3),
            ("still running", 2),
        )
    ]
    assert (
        "  failed by error: CommandFailed 1, InstanceNotReady 1, InsufficientCapacity 1,"
        " States.Timeout 1" in lines
    )
    assert (
        "  also ran, not due in the files given: 1 (started by hand, or schedules not given)"
        in lines
    )
    failures = lines[lines.index("Failures (4):") + 1 :]
    # Each failure: the slot, its error and attempts, then its cause on a line of its own.
    at = next(i for i, line in enumerate(failures) if "short_range_fcst03_vpu10L" in line)
    assert failures[at].split()[1:] == ["02-09", "09:00", "CommandFailed,", "1", "attempt(s)"]
    assert failures[at + 1] == "      exit 1: ngen: VPU_10L forcing file truncated"
    missing = lines[lines.index("Missing (3):") + 1 :]
    assert {line.split()[0] for line in missing} == {
        "short_range_fcst15_vpu12_schedule_cfe_nom_prod",
        "short_range_fcst15_vpu13_schedule_cfe_nom_prod",
        "analysis_assim_extend_fcst16_vpu09_schedule_cfe_nom_prod",
    }
    # Due at 16:00 New York time: 21:00 UTC in February.
    assert "02-09 21:00" in next(line for line in missing if "analysis" in line)
    assert "Slowest:" in lines and "Costliest:" in lines
    hours = next(line for line in lines if "instance-hours" in line)
    assert hours.startswith("  ") and "of EC2" in hours


def test_the_json_report_has_every_slot(night: dict[str, int], capsys: Capsys) -> None:
    code, out = report(capsys, "--json")

    assert code == 1
    data = json.loads(out)
    assert data["due"] == 580
    assert data["counts"] == {
        "succeeded": 569,
        "relaunched": 2,
        "failed": 3,
        "timed_out": 1,
        "missing": 3,
        "running": 2,
    }
    assert len(data["slots"]) == 581
    manual = [s for s in data["slots"] if not s["due"]]
    assert [s["schedule"] for s in manual] == ["manual/try-vpu01"]
    relaunched = [s for s in data["slots"] if s["end"] == "relaunched"]
    assert sorted(s["attempts"] for s in relaunched) == [2, 3]
    assert data["failed_by_error"]["InsufficientCapacity"] == 1
    cost = sum(s["cost_usd"] or 0 for s in data["slots"])
    assert data["estimated_cost_usd"] == pytest.approx(cost, abs=1e-3)


def test_the_report_rolls_up_by_vpu(night: dict[str, int], capsys: Capsys) -> None:
    _, out = report(capsys, "--by", "vpu")

    lines = out.splitlines()
    table = lines[lines.index("By vpu:") + 1 :]
    header = table[0].split()
    assert header[:3] == ["VPU", "SUCCEEDED", "RELAUNCHED"]
    row = next(line.split() for line in table if line.split()[0] == "10L")
    counts = dict(zip(header[1:-2], map(int, row[1:-2]), strict=True))
    # 10L: 24 short-range, 4 medium-range, 1 analysis; the 03z short range failed.
    assert counts["SUCCEEDED"] == 28
    assert counts["FAILED"] == 1


def test_several_nights_together(night: dict[str, int], capsys: Capsys) -> None:
    code, out = report(capsys, "--since", "3d", "--json")

    data = json.loads(out)
    assert code == 1
    assert (data["nights"], data["due"]) == (3, 3 * 580)
    # The two nights before miss every 8th and every 9th slot (see write_night).
    assert data["counts"]["missing"] == 3 + len(range(0, 580, 8)) + len(range(0, 580, 9))
    assert {s["scheduled_time"][:10] for s in data["slots"]} == {
        "2026-02-07",
        "2026-02-08",
        "2026-02-09",
    }


def test_without_schedule_files_the_report_cannot_know_what_is_missing(
    night: dict[str, int], capsys: Capsys
) -> None:
    capsys.readouterr()
    main(["report", "--stack", STACK, "--night", NIGHT.isoformat()])
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        "(no schedule files given: what was due, and so what is missing, is unknown)"
    )
    assert "also ran, not due in the files given: 578" in out


def test_a_bad_night_is_one_line(capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["report", "--stack", STACK, "--night", "09/02/2026"])
    assert exit_.value.code == 2
    assert "'09/02/2026': give the night as YYYY-MM-DD" in capsys.readouterr().err


# --- the page, in a real browser ----------------------------------------------------------
#: Where the page test keeps its screenshot (and the page it took it of) for a look.
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "night-report.png"
#: The colours the page gives each end (its CSS variables), as the browser computes them.
COLOURS = {
    "succeeded": "rgb(46, 139, 87)",
    "relaunched": "rgb(143, 207, 111)",
    "failed": "rgb(214, 39, 40)",
    "timed_out": "rgb(255, 127, 14)",
    "missing": "rgb(59, 31, 92)",
    "running": "rgb(31, 119, 180)",
}
#: What every CSS cell is asked for in the browser: its end, colour, hover text and command.
PROBE = """<pre id="probe"></pre><script>
document.getElementById("probe").textContent = JSON.stringify(
  Array.from(document.querySelectorAll("td.cell")).map(function (cell) {
    return {end: cell.dataset.end, schedule: cell.dataset.schedule, command: cell.dataset.command,
            title: cell.title, colour: getComputedStyle(cell).backgroundColor};
  }));
</script>"""


def chromium_binary() -> str:
    """Debian's chromium; `make chromium` (a prerequisite of `make test`) installs it."""
    import shutil

    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run `make chromium` (apt-get install chromium)")
    return found


def chromium(profile: Path, *args: str) -> str:
    import subprocess

    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run(
        [chromium_binary(), *flags, *args], capture_output=True, text=True, timeout=180, check=True
    )
    return done.stdout


def test_the_page_in_chromium_has_one_cell_per_due_slot_coloured_by_its_end(
    night: dict[str, int], capsys: Capsys, tmp_path: Path
) -> None:
    page = tmp_path / "night.html"
    code, out = report(capsys, "--html", str(page))
    assert code == 1
    assert out.splitlines()[-1] == f"Page: {page}"
    html = page.read_text(encoding="utf-8")
    # Self-contained: nothing is fetched from anywhere.
    assert "src=" not in html and "<link" not in html and "@import" not in html

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "night-report.html").write_text(html, encoding="utf-8")
    SCREENSHOT.unlink(missing_ok=True)
    chromium(
        tmp_path / "profile-shot",
        f"--screenshot={SCREENSHOT}",
        "--window-size=1400,2600",
        "--hide-scrollbars",
        page.as_uri(),
    )
    assert SCREENSHOT.stat().st_size > 10_000
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path / "profile-dom", "--dump-dom", probe.as_uri())
    import html as markup
    import re

    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, "the probe did not run"
    cells = json.loads(markup.unescape(found.group(1)))

    assert len(cells) == 580
    assert len({c["schedule"] for c in cells}) == 580
    by_end: dict[str, int] = {}
    for cell in cells:
        by_end[cell["end"]] = by_end.get(cell["end"], 0) + 1
        assert cell["colour"] == COLOURS[cell["end"]], cell
    assert by_end == night
    failed = next(c for c in cells if "fcst03_vpu10L" in c["schedule"] and "short" in c["schedule"])
    assert "CommandFailed: exit 1: ngen: VPU_10L forcing file truncated" in failed["title"]
    assert failed["command"] == (
        "amirun rerun --stack amirun-report --night 2026-02-09 --failed --missing"
        f" --only {failed['schedule']}"
    )
    succeeded = next(c for c in cells if c["end"] == "succeeded")
    assert succeeded["command"].startswith("amirun logs ")
    assert "cost ~$" in succeeded["title"] and "duration " in succeeded["title"]
    # The grids: one per family, the short range's 20 VPUs by 24 cycles.
    assert html.count('<table class="grid"') == 3


# --- rerun --night and backfill: they change the ledger, so they come last ---------------------
def started_inputs(capsys: Capsys) -> dict[str, dict[str, Any]]:
    """The executions started since the last look, by name, with their input."""
    sfn = boto3.client("stepfunctions")
    names = [
        line.split()[1] for line in capsys.readouterr().out.splitlines() if "  started " in line
    ]
    arn = MACHINE
    return {
        name: json.loads(sfn.describe_execution(executionArn=f"{arn}:{name}")["input"])
        for name in names
    }


def test_rerun_night_starts_exactly_the_slots_that_need_it_once(
    night: dict[str, int], capsys: Capsys
) -> None:
    from amirun_core.ledger import read_slot

    capsys.readouterr()
    rerun = ["rerun", "--stack", STACK, "--night", "2026-02-09", str(CFE_NOM)]
    assert main([*rerun, "--failed", "--missing", "--only", "short_range"]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Night 2026-02-09: 5 slot(s) need a rerun; room for 18"
    assert lines[-1] == "Started 5"
    started = [line.split()[1] for line in lines if line.startswith("  started ")]
    sfn = boto3.client("stepfunctions")
    inputs = {
        name: json.loads(sfn.describe_execution(executionArn=f"{MACHINE}:{name}")["input"])
        for name in started
    }
    schedules = {i["schedule"]["name"]: i["schedule"]["scheduled_time"] for i in inputs.values()}
    # The original scheduled times (New York time -> UTC), so DAILY is that night.
    assert schedules == {
        "short_range_fcst03_vpu10L_schedule_cfe_nom_prod": "2026-02-09T09:00:00Z",
        "short_range_fcst07_vpu05_schedule_cfe_nom_prod": "2026-02-09T13:00:00Z",
        "short_range_fcst07_vpu06_schedule_cfe_nom_prod": "2026-02-09T13:00:00Z",
        "short_range_fcst15_vpu12_schedule_cfe_nom_prod": "2026-02-09T21:00:00Z",
        "short_range_fcst15_vpu13_schedule_cfe_nom_prod": "2026-02-09T21:00:00Z",
    }
    slot = read_slot(
        boto3.client("dynamodb"),
        TABLE,
        "slot#short_range_fcst03_vpu10L_schedule_cfe_nom_prod#2026-02-09T09:00:00Z",
    )
    assert slot is not None and slot["status"] == "running"
    assert slot["execution"].split(":")[-1] in started
    assert slot["rerun_of"].startswith(MACHINE)  # the failed run it replaces

    # Again: they are running now, so nothing new starts.
    assert main([*rerun, "--failed", "--missing", "--only", "short_range"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Night 2026-02-09: 0 slot(s) need a rerun; room for 13",
        "Started 0",
    ]

    # 2 + 5 of the night's runs are running: with at most 3 at once, the rest waits.
    assert main([*rerun, "--failed", "--missing", "--at-once", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Started 0; 2 waiting (at most 3 at once: call again later)"
    )


def test_rerun_night_wants_to_know_what_to_rerun(night: dict[str, int], capsys: Capsys) -> None:
    assert main(["rerun", "--stack", STACK, "--night", "2026-02-09", str(CFE_NOM)]) == 2
    assert capsys.readouterr().err == ("amirun: say what to rerun: --failed, --missing, or both\n")


def test_backfill_starts_the_past_slots_that_never_ran_once(
    night: dict[str, int], capsys: Capsys
) -> None:
    capsys.readouterr()
    backfill = [
        "schedules", "backfill", str(CFE_NOM), "--stack", STACK, "--from", "2026-02-07",
        "--to", "2026-02-08", "--only", "analysis_assim_extend_*", "--interval", "0",
        "--at-once", "100",
    ]  # fmt: skip
    assert main(backfill) == 0
    lines = capsys.readouterr().out.splitlines()
    started = [line for line in lines if line.startswith("  started ")]
    assert lines[0] == (
        f"2 night(s) from 2026-02-07 to 2026-02-08: {len(started)} slot(s) never ran; room for 100"
    )
    assert started and all("analysis_assim_extend_fcst16_" in line for line in started)
    assert {line.split("due ")[1][:10] for line in started} == {"2026-02-07", "2026-02-08"}

    assert main(backfill) == 0
    again = capsys.readouterr().out.splitlines()
    # Room counts the runs of the nights backfilled: the ones just started.
    assert again[0].endswith(": 0 slot(s) never ran; room for " + str(100 - len(started)))
    assert again[-1] == "Started 0"
