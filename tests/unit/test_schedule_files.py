"""Schedule files: the cfe-nom example is the upstream's 580 schedules; bad rows say which."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from amirun.project import ROOT
from amirun.schedule_sync import Destination, schedule_request, target_input
from amirun.schedules import (
    SCHEDULED_TIME,
    Schedule,
    ScheduleFileError,
    check,
    expand,
    find,
    schedule_problems,
)

EXAMPLES = ROOT / "schedules" / "examples"
CFE_NOM = EXAMPLES / "nextgen-cfe-nom.yaml"
GENERIC = ROOT / "schedules" / "generic" / "nightly-report.yaml"

# The upstream's set, written out from its Terraform (NEXTGEN.md, "The daily set").
VPUS = [
    *("01", "02", "03N", "03S", "03W", "04", "05", "06", "07", "08"),
    *("09", "10L", "10U", "11", "12", "13", "14", "15", "16", "18"),
]
LARGER_VPUS = {"05", "07", "10L", "10U", "11"}  # m8g.2xlarge for short and AnA runs
BUCKET = "ciroh-community-ngen-datastream"


def upstream_schedules() -> dict[str, dict[str, Any]]:
    """name -> (cron, run type, init, member, vpu, instance type, nprocs, timeout)."""
    found: dict[str, dict[str, Any]] = {}

    def add(name: str, cron: str, **row: Any) -> None:
        cores = {"m8g.xlarge": 4, "m8g.2xlarge": 8, "m8g.4xlarge": 16}[row["instance_type"]]
        found[name] = {"cron": cron, "nprocs": cores - 1, **row}

    for init in range(24):
        for vpu in VPUS:
            add(
                f"short_range_fcst{init:02d}_vpu{vpu}_schedule_cfe_nom_prod",
                f"cron(0 {(init + 1) % 24} * * ? *)",
                run="short_range", init=f"{init:02d}", member="", vpu=vpu, timeout=3600,
                instance_type="m8g.2xlarge" if vpu in LARGER_VPUS else "m8g.xlarge",
            )  # fmt: skip
    for init in (0, 6, 12, 18):
        for member in (1,):
            for vpu in VPUS:
                minute = ((member - 1) * 60 // 7) % 60
                add(
                    f"medium_range_fcst{init:02d}_mem{member}_vpu{vpu}_schedule_cfe_nom_prod",
                    f"cron({minute} {(init + 3) % 24} * * ? *)",
                    run="medium_range", init=f"{init:02d}", member=str(member), vpu=vpu,
                    timeout=7200,
                    instance_type="m8g.4xlarge" if vpu in ("10L", "10U") else "m8g.2xlarge",
                )  # fmt: skip
    for vpu in VPUS:
        add(
            f"analysis_assim_extend_fcst16_vpu{vpu}_schedule_cfe_nom_prod",
            "cron(0 16 * * ? *)",
            run="analysis_assim_extend", init="16", member="", vpu=vpu, timeout=3600,
            instance_type="m8g.2xlarge" if vpu in LARGER_VPUS else "m8g.xlarge",
        )  # fmt: skip
    return found


@functools.cache
def cfe_nom() -> list[Schedule]:
    return expand([CFE_NOM])


def by_name(name: str) -> Schedule:
    return find(cfe_nom(), name)


# --- The cfe-nom example ----------------------------------------------------------------------
def test_cfe_nom_is_the_upstreams_580_schedules_with_their_crons() -> None:
    expected = upstream_schedules()
    schedules = cfe_nom()

    assert len(schedules) == 580 == len(expected)
    assert {s.name: s.expression for s in schedules} == {
        name: row["cron"] for name, row in expected.items()
    }
    assert {s.time_zone for s in schedules} == {"America/New_York"}
    assert {s.flexible_window for s in schedules} == {None}
    assert all(s.enabled for s in schedules)


def test_cfe_nom_inputs_carry_each_rows_values() -> None:
    for name, row in upstream_schedules().items():
        execution = by_name(name).execution
        command = execution["commands"][0]
        suffix = f"_{row['member']}" if row["member"] else ""
        path = f"/{row['member']}" if row["member"] else ""
        forcing = f"NWM_V3_{row['run'].upper()}_{row['init']}{suffix}"
        assert f" -n {row['nprocs']} " in command, name
        assert f"--FORCING_SOURCE {forcing} " in command, name
        prefix = f"outputs/cfe_nom/v2.2_hydrofabric/ngen.DAILY/{row['run']}/{row['init']}{path}"
        assert command.endswith(f"--S3_PREFIX {prefix}/VPU_{row['vpu']}'"), name
        assert execution["run_options"]["timeout_s"] == row["timeout"], name
        params = execution["instance_parameters"]
        assert params["InstanceType"] == row["instance_type"], name
        tags = {t["Key"]: t["Value"] for t in params["TagSpecifications"][0]["Tags"]}
        assert tags == {
            "Name": f"prod_CFE_NOM_{row['run']}_VPU{row['vpu']}_init{row['init']}{suffix}",
            "Project": f"datastream_FULLCONUS_v1.2_{row['run']}_{row['vpu']}",
        }
        assert execution["schedule"] == {"name": name, "scheduled_time": SCHEDULED_TIME}


def test_cfe_nom_medium_range_row_in_full() -> None:
    """One row spelled out: the upstream template filled in by hand."""
    execution = by_name("medium_range_fcst00_mem1_vpu03W_schedule_cfe_nom_prod").execution

    assert execution == {
        "commands": [
            "runuser -l ec2-user -c 'export SKIP_VALIDATION=True DS_TAG=1.4.0 NGIAB_TAG=v1.7.0"
            " && /home/ec2-user/datastreamcli/scripts/datastream -s DAILY -n 7"
            f" -F s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.DAILY/forcing_medium_range/00/"
            "ngen.t00z.medium_range.forcing.f001_f240.VPU_03W.nc"
            " --FORCING_SOURCE NWM_V3_MEDIUM_RANGE_00_1 -d /home/ec2-user/outputs"
            f" -N s3://{BUCKET}/resources/v2.2_hydrofabric/bmi_configs/cfe_nom_fixed/VPU_03W/"
            "ngen-bmi-configs.tar.gz"
            f" -g s3://{BUCKET}/resources/v2.2_hydrofabric/geopackages/VPU_03W/"
            "nextgen_VPU_03W.gpkg"
            f" -R https://{BUCKET}.s3.amazonaws.com/realizations/cfe_nom/realization_VPU_03W.json"
            f" --S3_BUCKET {BUCKET}"
            " --S3_PREFIX outputs/cfe_nom/v2.2_hydrofabric/ngen.DAILY/medium_range/00/1/VPU_03W'"
        ],
        "run_options": {
            "ii_terminate_instance": True,
            "ii_delete_volume": True,
            "ii_check_s3": True,
            "ii_cheapo": True,
            "timeout_s": 7200,
            "n_retries_allowed": 2,
        },
        "instance_parameters": {
            "ImageId": "ami-038132f534157b5c3",
            "InstanceType": "m8g.2xlarge",
            "IamInstanceProfile": {"Name": "nrds_prod_ec2_profile"},
            "TagSpecifications": [
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "Name", "Value": "prod_CFE_NOM_medium_range_VPU03W_init00_1"},
                        {"Key": "Project", "Value": "datastream_FULLCONUS_v1.2_medium_range_03W"},
                    ],
                },
                {
                    "ResourceType": "volume",
                    "Tags": [
                        {"Key": "Name", "Value": "prod_CFE_NOM_medium_range_VPU03W_init00_1_vol"}
                    ],
                },
            ],
            "BlockDeviceMappings": [
                {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 64, "VolumeType": "gp3"}}
            ],
        },
        "schedule": {
            "name": "medium_range_fcst00_mem1_vpu03W_schedule_cfe_nom_prod",
            "scheduled_time": "<aws.scheduler.scheduled-time>",
        },
    }


def test_cfe_nom_short_range_spot_checks() -> None:
    """NEXTGEN.md's examples: 10L is a 2xlarge short-range VPU, 03W an xlarge one."""
    late = by_name("short_range_fcst06_vpu10L_schedule_cfe_nom_prod")
    assert late.expression == "cron(0 7 * * ? *)"
    assert late.execution["instance_parameters"]["InstanceType"] == "m8g.2xlarge"
    assert " -n 7 " in late.execution["commands"][0]
    assert (
        "forcing_short_range/06/ngen.t06z.short_range.forcing.f001_f018.VPU_10L.nc"
        in (late.execution["commands"][0])
    )
    midnight = by_name("short_range_fcst23_vpu03W_schedule_cfe_nom_prod")
    assert midnight.expression == "cron(0 0 * * ? *)"
    assert " -n 3 " in midnight.execution["commands"][0]
    ana = by_name("analysis_assim_extend_fcst16_vpu11_schedule_cfe_nom_prod")
    assert "f001_f018" not in ana.execution["commands"][0]
    assert ".tm27_tm00.VPU_11.nc" in ana.execution["commands"][0]


def test_every_example_input_is_valid() -> None:
    for path in (CFE_NOM, GENERIC):
        schedules = expand([path])
        assert schedules
        assert check(schedules) == [], path


def test_member_minutes_spread_over_the_hour(tmp_path: Path) -> None:
    """More members: minute floor((m-1) * 60/7) % 60, as the upstream computes it."""
    text = CFE_NOM.read_text("utf-8").replace('member: ["1"]', "member: 1..7")
    (tmp_path / "nextgen-cfe-nom.json").write_text(
        (EXAMPLES / "nextgen-cfe-nom.json").read_text("utf-8")
    )
    path = tmp_path / "members.yaml"
    path.write_text(text, "utf-8")

    schedules = expand([path])

    assert len(schedules) == 480 + 4 * 7 * 20 + 20
    minutes = {
        s.row["member"]: s.expression.split()[0].removeprefix("cron(")
        for s in schedules
        if s.name.startswith("medium_range_fcst06") and s.row["vpu"] == "01"
    }
    assert minutes == {"1": "0", "2": "8", "3": "17", "4": "25", "5": "34", "6": "42", "7": "51"}
    member7 = find(schedules, "medium_range_fcst18_mem7_vpu10U_schedule_cfe_nom_prod")
    assert member7.expression == "cron(51 21 * * ? *)"
    assert "--FORCING_SOURCE NWM_V3_MEDIUM_RANGE_18_7 " in member7.execution["commands"][0]


# --- The generic example -----------------------------------------------------------------------
def test_generic_example_lookups_windows_and_a_disabled_single_schedule() -> None:
    small, large, hourly = expand([GENERIC])

    assert (small.name, large.name, hourly.name) == (
        "nightly-report-small",
        "nightly-report-large",
        "hourly-check",
    )
    assert small.execution["instance_parameters"]["InstanceType"] == "t4g.medium"
    assert large.execution["instance_parameters"]["InstanceType"] == "m8g.2xlarge"
    assert large.execution["run_options"]["ii_check_s3"] == {
        "bucket": "my-results",
        "prefix": "reports/large/DAILY/",
    }
    assert (small.flexible_window, small.time_zone, small.enabled) == (15, "Europe/Paris", True)
    assert small.description == "The small dataset's nightly report"
    assert (hourly.expression, hourly.flexible_window, hourly.enabled) == (
        "rate(1 hour)",
        None,
        False,
    )
    assert hourly.execution["run_options"]["timeout_s"] == 300
    assert hourly.row == {}


# --- Bad files: one line naming the file, the field and, for a row, its values ----------------
def write_set(tmp_path: Path, spec: str, template: str | None = None) -> Path:
    (tmp_path / "run.json").write_text(
        template
        or json.dumps(
            {
                "commands": ["echo ${what}"],
                "run_options": {"timeout_s": "${timeout}"},
                "instance_parameters": {"ImageId": "ami-0a1b2c3d4e5f67890"},
            }
        ).replace('"${timeout}"', "${timeout}"),
        "utf-8",
    )
    path = tmp_path / "set.yaml"
    path.write_text(spec, "utf-8")
    return path


def expand_error(path: Path) -> str:
    with pytest.raises(ScheduleFileError) as caught:
        expand([path])
    return str(caught.value)


def test_a_bad_row_is_reported_with_its_matrix_values(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        """
template: run.json
tables: {limits: {a: 600, b: 900}}
schedules:
  - name: job-${what}
    expression: rate(1 day)
    matrix: {what: [a, b, c]}
    values: {timeout: "${limits[what]}"}
""",
    )
    message = expand_error(path)
    assert message == f"{path}: schedules[0] (what=c): ${{limits[what]}}: no entry 'c' in the table"


def test_a_row_whose_input_is_invalid_is_reported_with_its_values(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        """
template: run.json
schedules:
  - name: job-${what}-${timeout}
    expression: rate(1 day)
    matrix: {what: [a], timeout: [600, 5]}
""",
    )
    schedules = expand([path])
    problems = check(schedules)

    assert [str(p) for p in problems] == [
        "job-a-5 (what=a, timeout=5): run_options.timeout_s: must be at least 60, not 5"
    ]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("schedules: []", "schedules: needs at least one item"),
        (
            "template: run.json\nschedules: [{name: x, expression: rate(1 day), cron: y}]",
            "schedules[0].cron: unknown field",
        ),
        (
            "time_zone: Mars/Olympus\nschedules: [{name: x, expression: rate(1 day)}]",
            "time_zone: unknown time zone 'Mars/Olympus'",
        ),
        (
            "template: run.json\nschedules: [{name: x, expression: rate(1 day),"
            " matrix: {what: nope}}]",
            "schedules[0].matrix.what: a list, a range like 00..23, or the name of a list",
        ),
        (
            "schedules: [{name: x, expression: rate(1 day)}]",
            "schedules[0].template: required",
        ),
        (
            "template: run.json\nschedules: [{name: 'x${what + 1}', expression: rate(1 day),"
            " matrix: {what: [a]}}]",
            "(what=a): ${what + 1}: 'a' is not a number",
        ),
        (
            "template: run.json\nschedules: [{name: 'x${__import__}', expression: rate(1 day)}]",
            "${__import__}: no value or table named __import__",
        ),
        (
            "template: run.json\nschedules: [{name: 'x${what.upper()}', expression: rate(1 day),"
            " matrix: {what: [a]}}]",
            "only names, table[key], integers and + - * // % are allowed",
        ),
        ("template: run.json\nschedules: [{name: x, expression: rate(1 day)", "not valid YAML"),
    ],
)
def test_file_errors_name_the_field(tmp_path: Path, spec: str, expected: str) -> None:
    message = expand_error(write_set(tmp_path, spec))
    assert message.startswith(str(tmp_path))
    assert expected in message
    assert "\n" not in message


def test_a_text_placeholder_outside_quotes_is_explained(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        "template: run.json\nschedules: [{name: x, expression: rate(1 day),"
        " values: {what: a, timeout: abc}}]",
    )
    assert "a text placeholder outside quotes needs quotes around it" in expand_error(path)


def test_values_are_escaped_for_json_and_dollar_dollar_is_literal(tmp_path: Path) -> None:
    template = json.dumps(
        {
            "commands": ['echo "${what}" $${HOME}'],
            "instance_parameters": {"ImageId": "ami-0a1b2c3d4e5f67890"},
        }
    )
    path = write_set(
        tmp_path,
        """
template: run.json
schedules:
  - {name: x, expression: rate(1 day), values: {what: 'say "hi" \\ bye'}}
""",
        template,
    )
    (schedule,) = expand([path])
    assert schedule.execution["commands"] == ['echo "say "hi" \\ bye" ${HOME}']


def test_a_name_declared_twice_is_refused(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        """
template: run.json
values: {timeout: 600}
schedules:
  - {name: "job-${what}", expression: rate(1 day), matrix: {what: [a, b]}}
  - {name: job-b, expression: rate(2 days), values: {what: b}}
""",
    )
    message = expand_error(path)
    assert "the name job-b is declared twice" in message
    assert "(what=b)" in message


def test_expression_and_name_are_checked(tmp_path: Path) -> None:
    path = write_set(
        tmp_path,
        """
template: run.json
values: {timeout: 600, what: a}
schedules:
  - {name: "bad name", expression: "cron(0 1 * *)"}
""",
    )
    (schedule,) = expand([path])
    problems = schedule_problems(schedule)
    assert problems[0].startswith("name: 'bad name' is not 1 to 64 letters")
    assert problems[1].startswith("expression: 'cron(0 1 * *)': cron takes 6 fields")


# --- What Scheduler is given -------------------------------------------------------------------
DESTINATION = Destination(
    group="amirun-schedules",
    state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:amirun",
    role_arn="arn:aws:iam::123456789012:role/amirun-scheduler",
    dead_letter_arn="arn:aws:sqs:us-east-1:123456789012:amirun-schedule-dlq",
)
VALID_EXECUTION_NAME = re.compile(r"^[0-9A-Za-z_-]{1,80}$")


def test_target_starts_the_state_machine_with_a_valid_name_and_the_scheduled_time() -> None:
    schedule = by_name("analysis_assim_extend_fcst16_vpu03W_schedule_cfe_nom_prod")

    request = schedule_request(schedule, DESTINATION)
    target = request["Target"]

    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert target["RoleArn"] == DESTINATION.role_arn
    assert target["DeadLetterConfig"] == {"Arn": DESTINATION.dead_letter_arn}
    # Scheduler replaces its context attributes as text: they must not be escaped.
    assert "<aws.scheduler.execution-id>" in target["Input"]
    assert "<aws.scheduler.scheduled-time>" in target["Input"]
    assert "\\u003c" not in target["Input"]
    parameters = json.loads(target["Input"])
    assert parameters["StateMachineArn"] == DESTINATION.state_machine_arn
    assert json.loads(parameters["Input"]) == schedule.execution
    # The name Step Functions sees once Scheduler put in its 36-character execution id.
    fired = parameters["Name"].replace("<aws.scheduler.execution-id>", "0" * 36)
    assert VALID_EXECUTION_NAME.match(fired)
    assert len(fired) == 80
    assert fired.startswith("analysis_assim_extend_fcst16_vpu03W_schedul_")
    assert request["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert request["ScheduleExpressionTimezone"] == "America/New_York"


def test_every_cfe_nom_execution_name_is_valid_and_short_ones_stay_whole() -> None:
    for schedule in cfe_nom():
        name = json.loads(target_input(schedule, DESTINATION.state_machine_arn))["Name"]
        fired = name.replace("<aws.scheduler.execution-id>", "0" * 36)
        assert VALID_EXECUTION_NAME.match(fired), fired
    (small, _, _) = expand([GENERIC])
    name = json.loads(target_input(small, DESTINATION.state_machine_arn))["Name"]
    assert name == "nightly-report-small_<aws.scheduler.execution-id>"


def test_input_at_puts_the_scheduled_time_in() -> None:
    schedule = by_name("short_range_fcst06_vpu10L_schedule_cfe_nom_prod")
    fired = schedule.input_at("2026-02-09T11:00:00Z")
    assert fired["schedule"] == {
        "name": "short_range_fcst06_vpu10L_schedule_cfe_nom_prod",
        "scheduled_time": "2026-02-09T11:00:00Z",
    }
    assert SCHEDULED_TIME in json.dumps(schedule.execution)  # the schedule itself is unchanged


def test_a_changed_command_is_shown_where_it_starts_to_differ() -> None:
    from amirun.schedule_sync import _differences

    old = {"commands": ["run --dataset small --threads 3 --out s3://bucket/x"], "n": [1, 2]}
    new = {"commands": ["run --dataset small --threads 7 --out s3://bucket/x"], "n": [1, 3]}

    assert _differences(old, new) == [
        "commands[0]: ...set small --threads 3 --out s3://bucket/x"
        " -> ...set small --threads 7 --out s3://bucket/x",
        "n[1]: 2 -> 3",
    ]
