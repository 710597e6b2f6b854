"""The NextGen forms of the execution JSON: `ii_check_s3: true`, datastream options, schedule."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from unit_helpers import ORIGINALS, load_json, load_original, make_request

from amirun_core.daily import OTHER_KEY, OutputCheck
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
    # ii_check_s3: true there: the location is the options' bucket and prefix, and the
    # command they build runs the datastream script: its merkdir.file is the key.
    assert request.resolve(REFERENCE).output_check == OutputCheck(
        bucket="my-bucket",
        prefix="test_directory/merkdir.file",
        source="datastream_command_options",
        why="a command runs /scripts/datastream",
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [
        (
            "short_range.json",
            "outputs/cfe_nom/v2.2_hydrofabric/ngen.20260208/short_range/06/VPU_10L/merkdir.file",
        ),
        (
            "medium_range.json",
            "outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/medium_range/00/2/VPU_03W/merkdir.file",
        ),
        ("qkrig.json", "outputs/qkrig/qkrig.20260208/metadata/forcings_metadata/metadata.csv"),
    ],
)
def test_nextgen_files_check_the_key_the_original_checks(name: str, key: str) -> None:
    """The datastream script's merkdir.file when a command runs it, else the forcing
    metadata, under the location the commands give (the original's checker since #381)."""
    request = parse_execution(load_json(NEXTGEN / name))

    assert request.run_options.ii_check_s3 is True
    check = request.resolve(REFERENCE).output_check
    assert check is not None and check.model_dump(exclude={"why"}) == {
        "bucket": "nextgen-forecasts",
        "prefix": key,
        "newer_than_start": True,
        "source": "commands",
    }


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


# --- what the original's machine adds, and the parser hint --------------------------------
def test_fields_the_originals_machine_adds_are_accepted_and_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """A file replayed from the original's failed-execution records carries them."""
    from amirun.cli import main
    from amirun_core.execution import MACHINE_FIELDS, machine_fields

    raw = load_json(NEXTGEN / "short_range.json") | {
        "retry_attempt": 2,
        "region": "us-east-1",
        "wait_seconds": 7200,
        "ii_s3_object_checked": False,
        "ii_forcing_found": True,
        "forcing_check_start_time": "2026-02-09T06:00:00Z",
    }
    plain = parse_execution(load_json(NEXTGEN / "short_range.json"))
    assert parse_execution(raw).resolve(REFERENCE) == plain.resolve(REFERENCE)
    assert machine_fields(raw) == list(MACHINE_FIELDS)

    path = tmp_path / "replayed.json"
    path.write_text(json.dumps(raw))
    assert main(["validate", str(path)]) == 0
    notices = [line for line in capsys.readouterr().out.splitlines() if "notice" in line]
    assert notices == [
        f"{path}: notice: retry_attempt, region, wait_seconds, ii_s3_object_checked, "
        "ii_forcing_found, forcing_check_start_time ignored (added by the original's machine "
        "while a run ran; replayed files carry them)"
    ]


def test_every_other_unknown_key_stays_an_error() -> None:
    raw = make_request() | {"retry_attempt": 1, "t0": 1770000000.0, "volume_id": "vol-1"}
    assert problems(raw) == ["t0: unknown field", "volume_id: unknown field"]


def test_an_echo_naming_the_datastream_script_does_not_choose_the_key() -> None:
    """The parser hint gives the location; what the commands run decides the key. A
    hint that mentions /scripts/datastream runs nothing."""
    hint = (
        "echo --s3_bucket nextgen-forecasts --s3_prefix outputs/x/ngen.DAILY "
        "--forcing_source NWM_V3_SHORT_RANGE_06  # hint for /scripts/datastream -s DAILY"
    )
    raw = make_request(ii_check_s3=True) | {"commands": [hint, "python3 route.py"]}
    check = parse_execution(raw).resolve(REFERENCE).output_check
    assert check is not None
    assert check.prefix == "outputs/x/ngen.20260208/metadata/forcings_metadata/metadata.csv"
    assert check.why == "no command runs /scripts/datastream"

    raw["commands"].append("/home/ec2-user/datastreamcli/scripts/datastream -s DAILY -n 4")
    check = parse_execution(raw).resolve(REFERENCE).output_check
    assert check is not None and check.prefix.endswith("/merkdir.file")


def test_nwm_routing_takes_location_and_forcing_source_from_its_hint() -> None:
    """upstream's nwm-routing shape: the hint first, then commands that run containers
    (never /scripts/datastream) and repeat the prefix; the date cut-off is the hint's
    forcing source (short range 06), the key the forcing metadata, as the original reads it."""
    prefix = "outputs/nwm_routing/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_03W"
    raw = make_request(ii_check_s3=True, ii_cheapo=True, n_retries_allowed=2) | {
        "commands": [
            f"echo --s3_bucket nextgen-forecasts --s3_prefix {prefix} --forcing_source "
            "NWM_V3_CHRTOUT_SHORT_RANGE_06  # parser hint",
            f"runuser -l ec2-user -c 'PREFIX={prefix} && docker run --rm routing:0.1.0'",
            f"runuser -l ec2-user -c 'aws s3 sync /home/ec2-user/upload s3://nextgen-forecasts/"
            f"{prefix}/ --no-progress'",
        ]
    }
    request = parse_execution(raw)
    resolution = request.resolve(datetime(2026, 2, 9, 7, tzinfo=UTC))
    day_prefix = prefix.replace("DAILY", "20260209")
    assert (resolution.forcing_source, resolution.daily_date) == (
        "NWM_V3_CHRTOUT_SHORT_RANGE_06",
        "20260209",
    )
    assert resolution.output_check is not None
    assert resolution.output_check.prefix == f"{day_prefix}/{OTHER_KEY}"
    assert resolution.record is not None
    assert resolution.record.key == f"{day_prefix}/datastream-metadata/execution.json"
    assert all(day_prefix in c for c in request.resolved_commands(resolution))


@pytest.mark.parametrize(
    ("commands", "expected"),
    [
        (["run --S3_BUCKET b"], "there is none;"),
        (["run -F https://b.s3.amazonaws.com/f.nc"], "(-F https://b.s3.amazonaws.com/f.nc is no"),
    ],
)
def test_the_forcing_check_needs_an_s3_forcing_file(commands: list[str], expected: str) -> None:
    raw = make_request(ii_check_forcing=True) | {"commands": commands}
    (problem,) = problems(raw)
    assert problem.startswith("run_options.ii_check_forcing: `true` waits for the forcing file")
    assert expected in problem


def test_the_forcing_check_waits_for_the_file_the_command_reads() -> None:
    raw = load_json(NEXTGEN / "short_range.json")
    raw["run_options"] |= {"ii_check_forcing": True, "inputs": ["s3://other-bucket/x/DAILY.nc"]}
    resolution = parse_execution(raw).resolve(REFERENCE)
    assert [(i.url, i.source) for i in resolution.inputs] == [
        ("s3://other-bucket/x/20260208.nc", "inputs"),
        (
            "s3://nextgen-forecasts/forcings/v2.2_hydrofabric/ngen.20260208/forcing_short_range/"
            "06/ngen.t06z.short_range.forcing.f001_f018.VPU_10L.nc",
            "forcing",
        ),
    ]


def test_retry_delay_s_or_the_backoff_options_not_both() -> None:
    raw = make_request(retry_delay_s=600, retry_backoff_max_s=3600)
    assert problems(raw) == [
        "run_options.retry_delay_s: the earlier spelling of the relaunch backoff; give it or "
        "retry_backoff_max_s, not both"
    ]
    assert problems(make_request(retry_backoff_rate=True)) == [
        "run_options.retry_backoff_rate: invalid type, expected a number, got boolean"
    ]
