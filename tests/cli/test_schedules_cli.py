"""`amirun schedules` against moto's server: expand, render, and plan/apply into a group.

moto keeps schedules (create, get, list, update, delete, in groups) but never
fires one; what a schedule starts is checked in its stored target.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_helpers import ACCOUNT, REGION, create_stack

from amirun.cli import main
from amirun.project import ROOT

Capsys = pytest.CaptureFixture[str]
EXAMPLES = ROOT / "schedules" / "examples"
CFE_NOM = EXAMPLES / "nextgen-cfe-nom.yaml"
GENERIC = ROOT / "schedules" / "generic" / "nightly-report.yaml"
GENERIC_TEMPLATE = GENERIC.parent / "nightly-report.json"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:amirun-sched-workflow"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/amirun-sched-scheduler"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:amirun-sched-ScheduleDeadLetterQueue"


@pytest.fixture(scope="module")
def stack(aws_endpoint: str) -> str:
    """A stand-in stack whose outputs name its group, role and queue as template.yaml does."""
    boto3.client("scheduler").create_schedule_group(Name="amirun-sched-group")
    create_stack(
        "amirun-sched",
        {
            "StateMachineArn": STATE_MACHINE,
            "ScheduleGroupName": "amirun-sched-group",
            "SchedulerRoleArn": ROLE,
            "ScheduleDeadLetterQueueArn": QUEUE,
        },
    )
    return "amirun-sched"


@pytest.fixture
def group(stack: str) -> Iterator[str]:
    """The stack's group, emptied after each test."""
    yield "amirun-sched-group"
    scheduler = boto3.client("scheduler")
    for name in names("amirun-sched-group"):
        scheduler.delete_schedule(Name=name, GroupName="amirun-sched-group")


def names(group: str) -> set[str]:
    pages = boto3.client("scheduler").get_paginator("list_schedules").paginate(GroupName=group)
    return {s["Name"] for page in pages for s in page["Schedules"]}


def stored(group: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = boto3.client("scheduler").get_schedule(Name=name, GroupName=group)
    return found


# --- expand / render --------------------------------------------------------------------------
def test_expand_lists_every_schedule_and_says_every_input_is_valid(capsys: Capsys) -> None:
    assert main(["schedules", "expand", str(CFE_NOM)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "EXPRESSION", "TIME", "ZONE", "WINDOW", "STATE"]
    assert len(lines) == 1 + 580 + 1
    row = next(line for line in lines if line.startswith("medium_range_fcst18_mem1_vpu10L_"))
    assert row.split() == [
        "medium_range_fcst18_mem1_vpu10L_schedule_cfe_nom_prod",
        "cron(0",
        "21",
        "*",
        "*",
        "?",
        "*)",
        "America/New_York",
        "off",
        "enabled",
    ]
    assert lines[-1] == "580 schedules, every execution input valid"


def test_expand_json_has_the_inputs(capsys: Capsys) -> None:
    assert main(["schedules", "expand", str(GENERIC), "--json"]) == 0

    listed = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in listed] == [
        "nightly-report-small",
        "nightly-report-large",
        "hourly-check",
    ]
    assert listed[1]["input"]["instance_parameters"]["InstanceType"] == "m8g.2xlarge"
    assert listed[1]["row"] == {"dataset": "large"}
    assert listed[2]["enabled"] is False
    assert all(s["problems"] == [] for s in listed)


def test_expand_reports_a_bad_row_with_its_values_and_fails(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "nightly-report.json").write_text(GENERIC_TEMPLATE.read_text())
    (tmp_path / "set.yaml").write_text(
        GENERIC.read_text().replace("timeout_s: 1800", "timeout_s: 30")
    )

    assert main(["schedules", "expand", str(tmp_path / "set.yaml")]) == 1

    err = capsys.readouterr().err.splitlines()
    assert err == [
        "2 of 3 schedules are invalid:",
        "  - nightly-report-small (dataset=small): run_options.timeout_s: must be at least"
        " 60, not 30",
        "  - nightly-report-large (dataset=large): run_options.timeout_s: must be at least"
        " 60, not 30",
    ]


def test_expand_of_a_missing_file_is_one_line(capsys: Capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["schedules", "expand", "nowhere.yaml"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "amirun: nowhere.yaml: no such file\n"


def test_render_shows_the_run_at_the_scheduled_time_as_amirun_render_does(
    capsys: Capsys,
) -> None:
    name = "short_range_fcst06_vpu10L_schedule_cfe_nom_prod"
    at = "2026-02-09T07:00-04:00"
    code = main(["schedules", "render", str(CFE_NOM), name, "--at", at, "--json"])

    assert code == 0
    rendered = json.loads(capsys.readouterr().out)
    assert rendered["reference"] == "scheduled_time"
    assert rendered["reference_time"].startswith("2026-02-09T11:00:00")
    # Cycle 06, scheduled at 11:00Z: that day's date.
    assert rendered["daily_date"] == "20260209"
    assert "ngen.20260209/short_range/06/VPU_10L" in rendered["commands"][0]


def test_render_at_a_time_the_cron_never_fires_at_says_so(capsys: Capsys) -> None:
    """cron(30 2 * * ? *) in Europe/Paris fires at 01:30Z in winter, never at 03:00Z."""
    code = main(
        ["schedules", "render", str(GENERIC), "nightly-report-small", "--at", "2026-02-09T03:00Z"]
    )

    captured = capsys.readouterr()
    assert code == 0
    assert captured.err == (
        "note: nightly-report-small never fires at 2026-02-09T03:00:00Z: cron(30 2 * * ? *)"
        " in Europe/Paris fires at 2026-02-09T01:30:00Z, 2026-02-10T01:30:00Z around it\n"
    )
    assert "reference  2026-02-09T03:00:00+00:00 (the scheduled time)" in captured.out


def test_render_at_a_time_the_cron_fires_at_says_nothing_more(capsys: Capsys) -> None:
    code = main(
        ["schedules", "render", str(GENERIC), "nightly-report-small", "--at", "2026-07-09T00:30Z"]
    )

    assert code == 0
    assert capsys.readouterr().err == ""  # summer: 02:30 in Paris is 00:30Z


def test_render_of_an_unknown_name_suggests_the_closest(capsys: Capsys) -> None:
    with pytest.raises(SystemExit):
        main(["schedules", "render", str(GENERIC), "nightly-report-smal", "--at", "2026-02-09"])
    assert capsys.readouterr().err == (
        f"amirun: {GENERIC}: no schedule named nightly-report-smal"
        " (did you mean nightly-report-small?)\n"
    )


# --- plan / apply -------------------------------------------------------------------------------
def test_apply_creates_the_set_then_a_rerun_changes_nothing(
    stack: str, group: str, capsys: Capsys
) -> None:
    assert main(["schedules", "plan", str(CFE_NOM), "--stack", stack]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "Plan: 580 to create, 0 to change, 0 to delete, 0 unchanged"
    assert names(group) == set()  # plan changes nothing

    assert main(["schedules", "apply", str(CFE_NOM), "--stack", stack, "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Applied: 580 created, 0 changed, 0 deleted"
    assert len(names(group)) == 580

    schedule = stored(group, "medium_range_fcst06_mem1_vpu10U_schedule_cfe_nom_prod")
    assert schedule["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "America/New_York"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert (target["RoleArn"], target["DeadLetterConfig"]["Arn"]) == (ROLE, QUEUE)
    # As stored, after a round trip through the API: the context attributes are intact.
    assert (
        '"Name":"medium_range_fcst06_mem1_vpu10U_schedule_cf_<aws.scheduler.execution-id>"'
        in (target["Input"])
    )
    assert '\\"scheduled_time\\":\\"<aws.scheduler.scheduled-time>\\"' in target["Input"]
    execution = json.loads(json.loads(target["Input"])["Input"])
    assert execution["instance_parameters"]["InstanceType"] == "m8g.4xlarge"

    assert main(["schedules", "apply", str(CFE_NOM), "--stack", stack, "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Nothing to change: 0 to create, 0 to change, 0 to delete, 580 unchanged"
    )


def test_a_changed_row_and_a_removed_row_are_updated_and_deleted(
    tmp_path: Path, stack: str, group: str, capsys: Capsys
) -> None:
    other = boto3.client("scheduler")
    other.create_schedule(  # someone else's, outside the stack's group
        Name="nightly-report-large",
        ScheduleExpression="rate(1 day)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": QUEUE, "RoleArn": ROLE, "Input": "{}"},
    )
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack, "--yes"]) == 0
    capsys.readouterr()
    (tmp_path / "nightly-report.json").write_text(GENERIC_TEMPLATE.read_text())
    changed = (
        GENERIC.read_text()
        .replace("large: m8g.2xlarge", "large: m8g.4xlarge")
        .replace("dataset: [small, large]", "dataset: [large]")
    )
    (tmp_path / "nightly-report.yaml").write_text(changed)

    assert main(["schedules", "plan", str(tmp_path), "--stack", stack]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == [
        "  ~ nightly-report-large",
        "      input.instance_parameters.InstanceType: m8g.2xlarge -> m8g.4xlarge",
        "  - nightly-report-small",
        "Plan: 0 to create, 1 to change, 1 to delete, 1 unchanged",
    ]

    assert main(["schedules", "apply", str(tmp_path), "--stack", stack, "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Applied: 0 created, 1 changed, 1 deleted"
    assert names(group) == {"nightly-report-large", "hourly-check"}
    target = stored(group, "nightly-report-large")["Target"]
    execution = json.loads(json.loads(target["Input"])["Input"])
    assert execution["instance_parameters"]["InstanceType"] == "m8g.4xlarge"
    assert main(["schedules", "apply", str(tmp_path), "--stack", stack, "--yes"]) == 0
    assert "Nothing to change" in capsys.readouterr().out
    # The schedule of the same name in the default group was never touched.
    assert other.get_schedule(Name="nightly-report-large")["Target"]["Input"] == "{}"
    other.delete_schedule(Name="nightly-report-large")


def test_apply_after_a_partial_failure_finishes_the_job(
    stack: str, group: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first apply loses its connection after two schedules; the rerun does the rest.

    The failure is made with a botocore event hook on create_schedule (moto has no
    way to fail a call on demand).
    """
    from amirun.commands import remote

    created = 0
    real_client = remote.Target.client

    def failing_client(self: Any, service: str) -> Any:
        client = real_client(self, service)
        if service == "scheduler":
            client.meta.events.register("before-call.scheduler.CreateSchedule", fail_after_two)
        return client

    def fail_after_two(**kwargs: Any) -> None:
        nonlocal created
        created += 1
        if created > 2:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="http://scheduler")

    monkeypatch.setattr(remote.Target, "client", failing_client)
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack, "--yes"]) == 2
    assert "Could not connect to the endpoint URL" in capsys.readouterr().err
    assert len(names(group)) == 2
    monkeypatch.undo()

    assert main(["schedules", "apply", str(GENERIC), "--stack", stack, "--yes"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "Applied: 1 created, 0 changed, 0 deleted"
    assert names(group) == {"nightly-report-small", "nightly-report-large", "hourly-check"}


def test_plan_refuses_invalid_files_before_any_aws_call(
    tmp_path: Path, group: str, capsys: Capsys
) -> None:
    (tmp_path / "nightly-report.json").write_text(GENERIC_TEMPLATE.read_text())
    (tmp_path / "set.yaml").write_text(GENERIC.read_text().replace("rate(1 hour)", "rate(1 hr)"))

    code = main(
        ["schedules", "apply", str(tmp_path / "set.yaml"), "--stack", "no-such-stack", "--yes"]
    )

    assert code == 1
    err = capsys.readouterr().err
    assert "hourly-check: expression: 'rate(1 hr)' is not rate(N unit)" in err
    assert err.splitlines()[-1] == "Nothing was changed: fix the files first."


def test_plan_for_a_stack_that_does_not_exist_is_one_line(capsys: Capsys, stack: str) -> None:
    assert main(["schedules", "plan", str(GENERIC), "--stack", "nope"]) == 2
    assert capsys.readouterr().err == (
        f"amirun: no stack named nope in {REGION} (deployed elsewhere? --region)\n"
    )


# --- asking before apply, grouping the plan ------------------------------------------------------
class _Terminal:
    """A standard input that is a terminal and answers `answer` (pytest's stdin is none)."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answer


def test_apply_without_a_terminal_refuses_unless_yes(
    stack: str, group: str, capsys: Capsys
) -> None:
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack]) == 2

    captured = capsys.readouterr()
    assert captured.err == (
        "amirun: apply asks before it changes the group and there is no terminal to ask:"
        " give --yes to apply without asking\n"
    )
    assert "  + nightly-report-small" in captured.out  # the plan was shown
    assert names(group) == set()


def test_apply_asks_and_a_no_changes_nothing(
    stack: str, group: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack]) == 1
    out = capsys.readouterr().out
    assert "Apply 3 changes to group amirun-sched-group? [y/N] " in out
    assert out.splitlines()[-1].endswith("Nothing was changed.")
    assert names(group) == set()

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack]) == 0
    # The answer's newline is the terminal's echo: here the next line follows the prompt.
    assert capsys.readouterr().out.endswith("[y/N] Applied: 3 created, 0 changed, 0 deleted\n")
    assert len(names(group)) == 3


def test_apply_of_one_file_says_in_words_it_deletes_most_of_the_group(
    stack: str, group: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incident: apply given one file of two deletes the other file's schedules."""
    assert main(["schedules", "apply", str(CFE_NOM), str(GENERIC), "--stack", stack, "--yes"]) == 0
    capsys.readouterr()

    monkeypatch.setattr("sys.stdin", _Terminal("\n"))  # Enter: the default, no
    assert main(["schedules", "apply", str(GENERIC), "--stack", stack]) == 1

    out = capsys.readouterr().out
    assert (
        "Warning: This deletes 580 of the 583 schedules in group amirun-sched-group (99%):"
        " they are not in the files given." in out
    )
    assert len(names(group)) == 583


def test_a_small_deletion_is_not_warned_about() -> None:
    """A tenth of the group is the line: 58 of 580 is not warned about, 59 is."""
    from amirun.commands.schedules import deletion_warning
    from amirun.schedule_sync import Change, Plan

    def plan(deleting: int) -> Plan:
        changes = [Change("delete", f"s{i}") for i in range(deleting)]
        return Plan("g", changes, unchanged=580 - deleting)

    assert deletion_warning(plan(0)) is None
    assert deletion_warning(plan(58)) is None
    assert deletion_warning(plan(59)) == (
        "This deletes 59 of the 580 schedules in group g (10%): they are not in the files"
        " given. Give every schedule file of the group if that is not what you mean."
    )


def test_plan_prints_a_change_shared_by_many_schedules_once(
    tmp_path: Path, stack: str, group: str, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    assert main(["schedules", "apply", str(CFE_NOM), "--stack", stack, "--yes"]) == 0
    bigger = CFE_NOM.read_text().replace("m8g.4xlarge: 16}", "m8g.4xlarge: 16, m8g.8xlarge: 32}")
    bigger = bigger.replace('"10L": m8g.4xlarge', '"10L": m8g.8xlarge')
    bigger = bigger.replace('"10U": m8g.4xlarge', '"10U": m8g.8xlarge')
    # The template lies next to the schedule file, as it must.
    (tmp_path / "nextgen-cfe-nom.json").write_text((EXAMPLES / "nextgen-cfe-nom.json").read_text())
    (tmp_path / "cfe.yaml").write_text(bigger)
    capsys.readouterr()

    assert main(["schedules", "plan", str(tmp_path / "cfe.yaml"), "--stack", stack]) == 0

    out = capsys.readouterr().out.splitlines()
    # The 10L and 10U medium-range runs of the four cycles: one entry, names listed once.
    assert out[1] == "  ~ 8 schedules:"
    assert out[2].startswith("      input.commands[0]: ...")
    assert "-n 15 -F" in out[2]
    assert "-n 31 -F" in out[2]
    assert out[3] == "      input.instance_parameters.InstanceType: m8g.4xlarge -> m8g.8xlarge"
    changes = "\n".join(out)
    assert changes.count("m8g.4xlarge -> m8g.8xlarge") == 1
    for init in ("00", "06", "12", "18"):
        for vpu in ("10L", "10U"):
            assert (
                changes.count(f"medium_range_fcst{init}_mem1_vpu{vpu}_schedule_cfe_nom_prod") == 1
            )
    assert all(len(line) <= 120 for line in out[4:-1])
    assert out[-1] == "Plan: 0 to create, 8 to change, 0 to delete, 572 unchanged"
