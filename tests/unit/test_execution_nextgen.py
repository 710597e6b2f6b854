"""The NextGen forms of the execution JSON: `ii_check_s3: true`, datastream options, schedule."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from unit_helpers import ORIGINALS, load_json, load_original, make_request

from amirun_core.daily import OutputCheck
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import parse_execution

NEXTGEN = ORIGINALS / "nextgen"
REFERENCE = datetime(2026, 2, 9, 3, 0, tzinfo=UTC)


def problems(raw: Any) -> list[str]:
    with pytest.raises(InvalidExecutionInput) as caught:
        parse_execution(copy.deepcopy(raw))
    return caught.value.problems


def test_the_original_datastream_example_runs_its_one_command() -> None:
    request = parse_execution(load_original("execution_datastream_example.json"))

    assert request.datastream_command_options is not None
    assert request.datastream_command_options.nprocs == 4  # "4" in the file
    assert request.command_list == [
        "runuser -l ec2-user -c 'cd /home/ec2-user/datastream && ./scripts/datastream "
        "-s 202006200100 -e 202006210000 -C NWM_RETRO_V3 -I Gages-09106150 -i hl -v 2.1.1 "
        "-d $(pwd)/data/datastream -R $(pwd)/configs/ngen/realization_sloth_nom_cfe_pet.json "
        "-n 4 -S my-bucket -o test_directory'"
    ]
    # ii_check_s3: true there: the location is the options' bucket and prefix.
    assert request.resolve(REFERENCE).output_check == OutputCheck(
        bucket="my-bucket", prefix="test_directory/", source="datastream_command_options"
    )


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        (
            "short_range.json",
            "outputs/cfe_nom/v2.2_hydrofabric/ngen.20260208/short_range/06/VPU_10L/",
        ),
        (
            "medium_range.json",
            "outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/medium_range/00/2/VPU_03W/",
        ),
        ("qkrig.json", "outputs/qkrig/qkrig.20260208/"),
    ],
)
def test_nextgen_files_check_the_location_their_commands_give(name: str, prefix: str) -> None:
    request = parse_execution(load_json(NEXTGEN / name))

    assert request.run_options.ii_check_s3 is True
    check = request.resolve(REFERENCE).output_check
    assert check == OutputCheck(bucket="nextgen-forecasts", prefix=prefix, source="commands")


def test_the_scheduled_time_is_the_reference_time() -> None:
    raw = load_json(NEXTGEN / "short_range.json")
    raw["schedule"] = {
        "name": "short_range_fcst06_vpu10L",
        "scheduled_time": "2026-02-09T07:00:00Z",
    }
    resolved = parse_execution(raw).resolve(REFERENCE)  # started at 03:00, due at 07:00

    assert (resolved.reference, resolved.daily_date) == ("scheduled_time", "20260209")
    del raw["schedule"]["scheduled_time"]
    resolved = parse_execution(raw).resolve(REFERENCE)
    assert (resolved.reference, resolved.daily_date) == ("start_time", "20260208")


def test_a_scheduled_time_without_an_offset_is_utc() -> None:
    raw = make_request() | {"schedule": {"name": "s", "scheduled_time": "2026-02-09T07:00:00"}}
    schedule = parse_execution(raw).schedule
    assert schedule is not None and schedule.scheduled_time == datetime(2026, 2, 9, 7, tzinfo=UTC)


def datastream_file(**changes: Any) -> dict[str, Any]:
    raw = load_original("execution_datastream_example.json")
    raw["datastream_command_options"].update(changes)
    return raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            make_request(ii_check_s3=True),
            "run_options.ii_check_s3: `true` checks the output location the commands give, "
            "but there is no --s3_bucket or --s3_prefix (any case) in them",
        ),
        (
            make_request(ii_check_s3=True) | {"commands": ["run --S3_BUCKET b"]},
            "run_options.ii_check_s3: `true` checks the output location the commands give, "
            "but there is no --s3_prefix (any case) in them",
        ),
        (
            datastream_file() | {"commands": ["ls"]},
            "datastream_command_options: give either `commands` or "
            "`datastream_command_options`, not both",
        ),
        (
            datastream_file(nprocs="four"),
            "datastream_command_options.nprocs: 'four' is not a whole number of processes",
        ),
        (datastream_file(nprocs=0), "datastream_command_options.nprocs: "),
        (
            datastream_file(subset_id="VPU 01"),
            "datastream_command_options.subset_id: ' ' cannot be in it (the value goes into a "
            "shell command)",
        ),
        (
            datastream_file(s3_prefix=None),
            "datastream_command_options.s3_prefix: required with s3_bucket",
        ),
        (
            datastream_file(s3_bucket=None, s3_prefix=None),
            "run_options.ii_check_s3: `true` checks the output location "
            "datastream_command_options give, but there is no "
            "datastream_command_options.s3_bucket or datastream_command_options.s3_prefix",
        ),
        (datastream_file(realisation="x"), "datastream_command_options.realisation: unknown field"),
        (
            make_request() | {"commands": ["ds --forcing_source NWM_V3_SHORT_RANGE"]},
            "commands: --forcing_source NWM_V3_SHORT_RANGE: a short_range source names its "
            "cycle hour",
        ),
        (
            make_request(inputs=["forcings/today.nc"]),
            "run_options.inputs[0]: 'forcings/today.nc' is not an S3 object URL",
        ),
        (make_request(inputs_timeout_s=86_401), "run_options.inputs_timeout_s: "),
        (
            make_request() | {"schedule": {"scheduled_time": "2026-02-09T07:00:00Z"}},
            "schedule.name: ",
        ),
        (
            make_request() | {"schedule": {"name": "s", "scheduled_time": "tomorrow"}},
            "schedule.scheduled_time: ",
        ),
        (
            make_request() | {"schedule": {"name": "s", "scheduled_time": 1770638400}},
            "schedule.scheduled_time: an ISO-8601 time as text",
        ),
    ],
    ids=[
        "check-true-no-location",
        "check-true-no-prefix",
        "commands-and-options",
        "nprocs-word",
        "nprocs-zero",
        "option-with-space",
        "bucket-without-prefix",
        "check-true-options-without-location",
        "unknown-option",
        "forcing-source-without-cycle",
        "input-not-s3",
        "inputs-timeout-too-long",
        "schedule-without-name",
        "schedule-time-not-a-time",
        "schedule-time-a-number",
    ],
)
def test_each_refusal_names_its_field(raw: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(raw)), problems(raw)


def test_inputs_resolve_daily_like_the_prefix() -> None:
    raw = load_json(NEXTGEN / "short_range.json")
    raw["run_options"]["inputs"] = ["s3://nextgen-forecasts/forcings/ngen.DAILY/06/f.nc"]
    resolved = parse_execution(raw).resolve(REFERENCE)
    assert [i.url for i in resolved.inputs] == [
        "s3://nextgen-forecasts/forcings/ngen.20260208/06/f.nc"
    ]
