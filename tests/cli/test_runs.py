"""`amirun runs` and `amirun rerun` on executions that really ran on moto's server.

The runs: one first-try success, one success after a relaunch (a real command
that fails the first time), one failure, one aborted while it ran, and two
started by schedules. Each is the real ASL and handlers, as in test_follow.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_helpers import Live, follow

from amirun.cli import main
from amirun.commands import remote, runs
from amirun.commands.runs import NAME_LIMIT, rerun_name, rerun_request, since_time

Capsys = pytest.CaptureFixture[str]
SCHEDULE_A = "cfe-nom-vpu01-m1"
SCHEDULE_B = "cfe-nom-vpu02-m1"
OTHER_SCHEDULE = "ana-vpu01"


@dataclass(frozen=True)
class Ran:
    live: Live
    started: datetime


def execution_arn(live: Live, name: str) -> str:
    return live.stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"


def wait_until_ended(live: Live, name: str) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    return remote.follow(sfn, execution_arn(live, name), lambda _: None)


def scheduled(live: Live, schedule: str) -> dict[str, Any]:
    execution = copy.deepcopy(live.execution)
    execution["run_options"]["n_retries_allowed"] = 0
    execution["schedule"] = {"name": schedule, "scheduled_time": "2026-11-26T06:00:00Z"}
    return execution


@pytest.fixture(scope="module")
def ran(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    directory = tmp_path_factory.mktemp("runs")
    started = datetime.now(UTC)
    assert follow(live, directory, "r-ok").code == 0

    marker = directory / "first-attempt-ran"
    relaunched = copy.deepcopy(live.execution)
    relaunched["commands"] = [
        f"if [ -e {marker} ]; then echo done; else touch {marker}; exit 1; fi"
    ]
    relaunched["run_options"].update(n_retries_allowed=1, retry_delay_s=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(live.world.settings, "exec_commands", True)
        assert follow(live, directory, "r-relaunched", relaunched).code == 0

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(live.world.settings, "faults", frozenset({"command-fails"}))
        patch.setitem(live.execution["run_options"], "n_retries_allowed", 0)
        assert follow(live, directory, "r-fails").code == 1

    sfn = boto3.client("stepfunctions")
    with pytest.MonkeyPatch.context() as patch:
        # They fail, so that one can be rerun.
        patch.setattr(live.world.settings, "faults", frozenset({"command-fails"}))
        for name, schedule in (
            ("r-a", SCHEDULE_A),
            ("r-b", SCHEDULE_B),
            ("r-other", OTHER_SCHEDULE),
        ):
            # As Scheduler starts them: no CLI in between.
            sfn.start_execution(
                stateMachineArn=live.stack.state_machine_arn,
                name=name,
                input=json.dumps(scheduled(live, schedule)),
            )
            wait_until_ended(live, name)
        # Scheduler starting r-b's scheduled time again (a retried start).
        sfn.start_execution(
            stateMachineArn=live.stack.state_machine_arn,
            name="r-b-again",
            input=json.dumps(scheduled(live, SCHEDULE_B)),
        )
        wait_until_ended(live, "r-b-again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(live.world.settings, "faults", frozenset({"command-hangs"}))
        path = directory / "r-aborted.json"
        path.write_text(json.dumps(live.execution), encoding="utf-8")
        assert main(["start", str(path), "--stack", live.stack.name, "--name", "r-aborted"]) == 0
        arn = execution_arn(live, "r-aborted")
        # moto can stop an execution only once its worker runs, and not in a task-token
        # wait (it fails the wait with States.Timeout): stop it in the readiness wait.
        while remote.last_state(sfn, arn) != "WaitForInstance":
            threading.Event().wait(0.05)
        sfn.stop_execution(executionArn=arn)
        wait_until_ended(live, "r-aborted")
    return Ran(live, started)


def runs_json(ran: Ran, capsys: Capsys, *args: str) -> dict[str, dict[str, Any]]:
    capsys.readouterr()
    assert main(["runs", "--stack", ran.live.stack.name, "--json", *args]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def test_runs_report_status_attempts_and_cost(ran: Ran, capsys: Capsys) -> None:
    rows = runs_json(ran, capsys)

    ok, relaunched, fails = rows["r-ok"], rows["r-relaunched"], rows["r-fails"]
    assert (ok["status"], ok["attempts"], ok["relaunched"]) == ("SUCCEEDED", 1, False)
    assert (relaunched["status"], relaunched["attempts"]) == ("SUCCEEDED", 2)
    assert relaunched["relaunched"] is True
    assert (fails["status"], fails["error"], fails["attempts"]) == ("FAILED", "CommandFailed", 1)
    for row in (ok, relaunched, fails):
        assert (row["instance_type"], row["market"]) == ("t4g.small", "on-demand")
        assert isinstance(row["instance_seconds"], int)
        assert row["estimated_cost_usd"] is not None
        assert row["duration_s"] > 0
        assert row["schedule"] is None
    aborted = rows["r-aborted"]
    assert (aborted["status"], aborted["error"]) == ("ABORTED", "aborted")
    assert aborted["attempts"] == 1


def test_runs_table_is_aligned_and_says_who_was_relaunched(ran: Ran, capsys: Capsys) -> None:
    capsys.readouterr()
    assert main(["runs", "--stack", ran.live.stack.name]) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == [
        "NAME",
        "STATUS",
        "ERROR",
        "ATTEMPTS",
        "STARTED",
        "DURATION",
        "TYPE",
        "MARKET",
        "INSTANCE-S",
        "EST.",
        "COST",
    ]
    rows = {line.split()[0]: line for line in lines[1:] if line.startswith("r-")}
    status_at = header.index("STATUS")
    attempts_at = header.index("ATTEMPTS")
    for name, line in rows.items():
        assert line[status_at - 1] == " " and line[status_at] != " ", name
        assert line[attempts_at] != " ", name
    assert rows["r-relaunched"][attempts_at:].startswith("2 (relaunched)")
    assert rows["r-ok"][attempts_at:].startswith("1 ")
    assert "CommandFailed" in rows["r-fails"]
    # Numbers are right-aligned: every row ends where the header ends.
    assert {len(line) for line in rows.values()} == {len(header)}
    summary = lines[-1]
    assert re.match(r"^\d+ runs since \d{4}-\d\d-\d\d \d\d:\d\d UTC: ", summary)
    assert "succeeded (1 after a relaunch)" in summary
    assert "1 aborted" in summary
    assert re.search(r"; \d+ instance-seconds, about \$\d+\.\d\d of EC2$", summary)


def test_runs_by_status_and_schedule(ran: Ran, capsys: Capsys) -> None:
    failed = runs_json(ran, capsys, "--status", "failed")
    by_schedule = runs_json(ran, capsys, "--schedule", "cfe-nom-")

    assert "r-fails" in failed
    assert {row["status"] for row in failed.values()} == {"FAILED"}
    assert set(by_schedule) == {"r-a", "r-b", "r-b-again"}
    assert by_schedule["r-a"]["schedule"] == SCHEDULE_A


def test_runs_since_leaves_out_older_runs(ran: Ran, capsys: Capsys) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

    assert runs_json(ran, capsys, "--since", later) == {}
    assert main(["runs", "--stack", ran.live.stack.name, "--since", later]) == 0
    assert re.match(r"^0 runs since .*: none; 0 instance-seconds", capsys.readouterr().out)


def test_rerun_starts_the_same_input_with_its_reference_time(ran: Ran, capsys: Capsys) -> None:
    sfn = boto3.client("stepfunctions")
    original = sfn.describe_execution(executionArn=execution_arn(ran.live, "r-fails"))
    capsys.readouterr()

    assert main(["rerun", "r-fails", "--stack", ran.live.stack.name]) == 0

    out = capsys.readouterr().out
    name = re.match(r"^Started (\S+) \(rerun of r-fails, FAILED; reference time (\S+)\)", out)
    assert name is not None, out
    assert re.fullmatch(r"r-fails-rerun-[0-9a-f]{6}", name.group(1))
    again = wait_until_ended(ran.live, name.group(1))
    # The rerun's input is valid as it stands: this time the command works.
    assert again["status"] == "SUCCEEDED", again.get("cause")
    request = json.loads(again["input"])
    first = json.loads(original["input"])
    assert {k: v for k, v in request.items() if k != "schedule"} == first
    reference = original["startDate"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert request["schedule"]["scheduled_time"] == name.group(2) == reference
    # Started by hand: the rerun takes over the first run's own slot, on purpose.
    assert request["schedule"]["name"] == "manual/r-fails"
    assert request["schedule"]["rerun"] is True
    assert "duplicate_of" not in json.loads(again["output"])


def test_rerun_keeps_a_scheduled_runs_schedule(ran: Ran, capsys: Capsys) -> None:
    assert main(["rerun", "r-a", "--stack", ran.live.stack.name, "--name", "r-a-again"]) == 0

    again = wait_until_ended(ran.live, "r-a-again")
    request = json.loads(again["input"])
    # Its own scheduled time is the reference already: the input is unchanged, but
    # for taking the slot over from the run that failed.
    expected = scheduled(ran.live, SCHEDULE_A)
    expected["schedule"]["rerun"] = True
    assert request == expected
    assert again["status"] == "SUCCEEDED", again.get("cause")
    assert "duplicate_of" not in json.loads(again["output"])


def test_runs_show_a_duplicate_start_of_a_slot(ran: Ran, capsys: Capsys) -> None:
    """A second execution for r-b's scheduled time ended at once, launching nothing."""
    rows = runs_json(ran, capsys)
    again = rows["r-b-again"]
    assert (again["status"], again["duplicate_of"]) == ("SUCCEEDED", "r-b")
    assert (again["instance_type"], again["instance_seconds"]) == (None, None)

    assert main(["runs", "--stack", ran.live.stack.name, "--schedule", SCHEDULE_B]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if line.startswith("r-b-again")]
    assert line.split()[1:3] == ["DUPLICATE", "of"]
    assert "(1 duplicate, nothing launched)" in out.splitlines()[-1]


def test_start_new_slot_runs_a_taken_slot_anyway(ran: Ran, capsys: Capsys, tmp_path: Path) -> None:
    path = tmp_path / "again.json"
    path.write_text(json.dumps(scheduled(ran.live, SCHEDULE_B)), encoding="utf-8")
    stack = ran.live.stack.name

    assert main(["start", str(path), "--stack", stack, "--name", "r-b-taken"]) == 0
    assert main(["start", str(path), "--stack", stack, "--name", "r-b-own", "--new-slot"]) == 0

    taken, own = (wait_until_ended(ran.live, name) for name in ("r-b-taken", "r-b-own"))
    assert json.loads(taken["output"]) == {"duplicate_of": execution_arn(ran.live, "r-b")}
    assert own["status"] == "SUCCEEDED", own.get("cause")
    assert "duplicate_of" not in json.loads(own["output"])
    assert json.loads(own["input"])["schedule"]["new_slot"] is True


def test_rerun_refuses_a_success_in_one_line(ran: Ran, capsys: Capsys) -> None:
    capsys.readouterr()

    assert main(["rerun", "r-ok", "--stack", ran.live.stack.name]) == 2

    err = capsys.readouterr().err
    assert err == ("amirun: r-ok succeeded: rerun starts only failed, timed-out or aborted runs\n")


def test_rerun_of_an_unknown_run(ran: Ran, capsys: Capsys) -> None:
    capsys.readouterr()

    assert main(["rerun", "r-nope", "--stack", ran.live.stack.name]) == 2

    err = capsys.readouterr().err
    assert err.startswith("amirun: no execution arn:aws:states:")
    assert err.count("\n") == 1


def test_rerun_names_fit_step_functions() -> None:
    long = rerun_name("n" * 80)

    assert len(long) == NAME_LIMIT
    assert re.fullmatch(r"n+-rerun-[0-9a-f]{6}", long)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("90m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("1d12h", timedelta(days=1, hours=12)),
    ],
)
def test_since_durations(text: str, expected: timedelta) -> None:
    now = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)

    assert since_time(text, now) == now - expected


def test_since_iso_time_and_bad_values(capsys: Capsys) -> None:
    assert since_time("2026-11-26T06:00") == datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    with pytest.raises(SystemExit):
        main(["runs", "--stack", "x", "--since", "yesterday"])
    assert "--since: 'yesterday': give a duration such as 24h" in capsys.readouterr().err


def test_runs_need_a_stack(capsys: Capsys, tmp_path: Path) -> None:
    assert main(["runs"]) == 2

    assert capsys.readouterr().err == (
        "amirun: give --stack NAME (the deployed amirun stack) or --state-machine ARN\n"
    )


def test_status_of_a_success_says_what_it_used(ran: Ran, capsys: Capsys) -> None:
    capsys.readouterr()

    assert main(["status", "r-ok", "--stack", ran.live.stack.name]) == 0

    out = capsys.readouterr().out
    assert re.search(
        r"^  usage     t4g\.small on-demand, \d+ instance-seconds, about \$\d\.\d{4} of EC2$",
        out,
        re.M,
    ), out


def test_a_rerun_of_a_long_named_run_gets_a_valid_schedule_name() -> None:
    started = datetime(2026, 11, 26, 6, 0, 5, tzinfo=UTC)

    again = rerun_request({"commands": ["true"]}, "n" * 80, started)

    assert again == {
        "commands": ["true"],
        "schedule": {"name": "n" * 64, "scheduled_time": "2026-11-26T06:00:05Z", "rerun": True},
    }


def test_ctrl_c_while_listing_is_one_line(
    ran: Ran, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "run_row", interrupted)
    capsys.readouterr()

    assert main(["runs", "--stack", ran.live.stack.name]) == 130

    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "\namirun: interrupted\n")


LONG_NAME = "medium_range_fcst18_mem1_vpu10L_schedule_cfe_nom_prod_4d1c0e52-2b9f-4c1e-9a57-0c2f4e6a"


def test_runs_table_fits_the_terminal_and_cuts_names_in_the_middle(
    ran: Ran, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert main(["runs", "--stack", ran.live.stack.name]) == 0
    lines = capsys.readouterr().out.splitlines()
    table_lines = lines[: lines.index("")]
    assert all(len(line) <= 100 for line in table_lines)

    assert main(["runs", "--stack", ran.live.stack.name, "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in wide[: wide.index("")]) > 100


def test_a_long_name_keeps_its_start_and_end() -> None:
    row = runs.RunRow(
        name=LONG_NAME,
        status="FAILED",
        started=datetime(2026, 2, 9, 6, tzinfo=UTC),
        error="InstanceNotReady",
        attempts=3,
        duration_s=3600,
        instance_type="m8g.4xlarge",
        market="spot",
        instance_seconds=3600,
        estimated_cost_usd=0.4,
    )
    full = runs.table([row])
    assert len(full[1]) > 120 and LONG_NAME in full[1]

    fitted = runs.table([row], 120)
    assert [len(line) <= 120 for line in fitted] == [True, True]
    name = fitted[1].split()[0]
    assert name.startswith("medium_range") and name.endswith("0c2f4e6a")
    assert ".." in name
    assert "InstanceNotReady" in fitted[1]
    assert runs.middle_cut("abcdefghij", 6) == "ab..ij"
    assert runs.middle_cut("abc", 6) == "abc"
