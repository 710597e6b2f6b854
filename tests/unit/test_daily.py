"""DAILY as the original resolved it (NEXTGEN rules 1-6), table by table."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from amirun_core import daily
from amirun_core.daily import DatastreamCommandOptions

BUCKET = "nextgen-forecasts"
SR_PREFIX = "outputs/cfe_nom/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_10L"
SR_FORCING = (
    f"s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.DAILY/forcing_short_range/06/"
    "ngen.t06z.short_range.forcing.f001_f018.VPU_10L.nc"
)
MR_PREFIX = "outputs/cfe_nom/v2.2_hydrofabric/ngen.DAILY/medium_range/00/2/VPU_03W"
MR_FORCING = (
    f"s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.DAILY/forcing_medium_range/00/"
    "ngen.t00z.medium_range.forcing.f001_f240.VPU_03W.nc"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def datastream(forcing: str, source: str, prefix: str) -> str:
    return (
        "runuser -l ec2-user -c '/home/ec2-user/datastreamcli/scripts/datastream -s DAILY "
        f"-n 8 -F {forcing} --FORCING_SOURCE {source} -d /home/ec2-user/outputs "
        f"--S3_BUCKET {BUCKET} --S3_PREFIX {prefix}'"
    )


class Resolved:
    """A resolution with the commands it sends (the state keeps only the resolution)."""

    def __init__(self, resolution: daily.Resolution, commands: list[str]) -> None:
        self.resolution, self.commands = resolution, commands

    def __getattr__(self, name: str) -> Any:
        return getattr(self.resolution, name)


def resolve(
    commands: list[str], reference: datetime, check: bool | dict[str, Any] = True, **kw: Any
) -> Resolved:
    options = kw.get("options")
    resolution = daily.resolve(
        commands=commands,
        options=options,
        check=check,
        inputs=kw.get("inputs", []),
        reference_time=reference,
        reference="start_time",
    )
    return Resolved(resolution, daily.commands_for(commands, options, resolution))


@pytest.mark.parametrize(
    ("source", "cycle"),
    [
        ("NWM_V3_SHORT_RANGE_06", 6),
        ("NWM_V3_SHORT_RANGE_23", 23),
        ("nwm_v3_short_range_00", 0),
        ("NWM_V3_MEDIUM_RANGE_18_1", 18),
        ("NWM_V3_MEDIUM_RANGE_06_7", 6),
        ("NWM_V3_ANALYSIS_ASSIM_RESTART_CHRT_12", 12),
        ("NWM_V3_ANALYSIS_ASSIM_EXTEND_16", 16),
        ("NWM_RETRO_V3", 16),
        (None, 24),
    ],
)
def test_cycle_hour_comes_from_the_forcing_source(source: str | None, cycle: int) -> None:
    assert daily.cycle_hour(source) == cycle


@pytest.mark.parametrize(
    "source", ["NWM_V3_SHORT_RANGE", "NWM_V3_SHORT_RANGE_24", "NWM_V3_MEDIUM_RANGE_06"]
)
def test_a_forcing_source_without_its_cycle_hour_is_refused(source: str) -> None:
    with pytest.raises(ValueError, match=f"--forcing_source {source}: .*HH"):
        daily.cycle_hour(source)


@pytest.mark.parametrize(
    ("reference", "cycle", "expected"),
    [
        ("2026-02-09T06:00:00", 6, date(2026, 2, 9)),  # at the cycle hour: that day
        ("2026-02-09T05:59:59", 6, date(2026, 2, 8)),  # before it: the day before
        ("2026-02-09T00:00:00", 0, date(2026, 2, 9)),
        ("2026-02-09T23:59:00", 24, date(2026, 2, 8)),  # no forcing source: yesterday
        ("2026-03-01T01:00:00", 16, date(2026, 2, 28)),
    ],
)
def test_the_date_is_the_day_before_when_the_reference_is_earlier_than_the_cycle(
    reference: str, cycle: int, expected: date
) -> None:
    assert daily.daily_date(at(reference), cycle) == expected


def test_the_reference_hour_is_read_in_utc() -> None:
    new_york = datetime.fromisoformat("2026-02-09T02:00:00-05:00")  # 07:00Z
    assert daily.daily_date(new_york, 6) == date(2026, 2, 9)


@pytest.mark.parametrize(
    ("reference", "day"),
    [("2026-02-09T03:00:00", "20260208"), ("2026-02-09T07:00:00", "20260209")],
    ids=["before-the-cycle", "after-the-cycle"],
)
def test_short_range_resolves_the_prefix_and_the_forcing_file_only(
    reference: str, day: str
) -> None:
    resolved = resolve([datastream(SR_FORCING, "NWM_V3_SHORT_RANGE_06", SR_PREFIX)], at(reference))
    assert resolved.daily_date == day
    assert resolved.cycle_hour == 6
    assert resolved.commands == [
        datastream(
            SR_FORCING.replace("DAILY", day),
            "NWM_V3_SHORT_RANGE_06",
            SR_PREFIX.replace("DAILY", day),
        )
    ]
    # `-s DAILY` is the datastream CLI's own keyword: left as it is.
    assert "-s DAILY -n 8" in resolved.commands[0]
    assert resolved.output_check == daily.OutputCheck(
        bucket=BUCKET,
        prefix=SR_PREFIX.replace("DAILY", day) + "/merkdir.file",
        source="commands",
        why="a command runs /scripts/datastream",
    )


def test_medium_range_member_2_reads_the_previous_cycle_across_midnight() -> None:
    """NEXTGEN.md's worked example: init 00, member 2, VPU 03W, at 2026-02-09T03:00Z."""
    resolved = resolve(
        [datastream(MR_FORCING, "NWM_V3_MEDIUM_RANGE_00_2", MR_PREFIX)], at("2026-02-09T03:00")
    )
    assert resolved.daily_date == "20260209"
    command = resolved.commands[0]
    assert (
        "--S3_PREFIX outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/medium_range/00/2/VPU_03W'"
        in command
    )
    assert (
        f"-F s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.20260208/forcing_medium_range/18/"
        "ngen.t18z.medium_range.forcing.f001_f240.VPU_03W.nc " in command
    )
    assert "-s DAILY" in command


@pytest.mark.parametrize(
    ("init", "member", "reference", "forcing_day", "forcing_cycle"),
    [
        ("00", 1, "2026-02-09T03:00", "20260209", "00"),  # member 1: no shift
        ("12", 2, "2026-02-09T15:00", "20260209", "06"),  # shift within the day
        ("06", 3, "2026-02-09T09:00", "20260208", "18"),  # 12 h back across midnight
        ("06", 1, "2026-02-09T05:00", "20260208", "06"),  # before the cycle: the day before
    ],
)
def test_medium_range_members(
    init: str, member: int, reference: str, forcing_day: str, forcing_cycle: str
) -> None:
    forcing = MR_FORCING.replace("/00/", f"/{init}/").replace("t00z", f"t{init}z")
    source = f"NWM_V3_MEDIUM_RANGE_{init}_{member}"
    resolved = resolve([datastream(forcing, source, MR_PREFIX)], at(reference))
    expected = (
        forcing.replace(f"/{init}/", f"/{forcing_cycle}/")
        .replace(f"t{init}z", f"t{forcing_cycle}z")
        .replace("DAILY", forcing_day)
    )
    assert f"-F {expected} " in resolved.commands[0]


def test_analysis_assim_restart_uses_its_own_cycle_hour() -> None:
    prefix = "outputs/restart/ngen.DAILY/analysis_assim/12"
    command = f"run --forcing_source=NWM_V3_ANALYSIS_ASSIM_RESTART_CHRT_12 --s3_prefix={prefix}"
    assert resolve([command], at("2026-02-09T11:00")).daily_date == "20260208"
    resolved = resolve([command], at("2026-02-09T12:00"))
    assert resolved.commands == [command.replace("DAILY", "20260209")]


def test_another_forcing_source_means_cycle_16() -> None:
    prefix = "outputs/aae/ngen.DAILY/analysis_assim_extend/16/VPU_01"
    command = datastream(
        f"s3://{BUCKET}/ngen.DAILY/f.nc", "NWM_V3_ANALYSIS_ASSIM_EXTEND_16", prefix
    )
    assert resolve([command], at("2026-02-09T15:59")).daily_date == "20260208"
    resolved = resolve([command], at("2026-02-09T16:00"))
    assert resolved.daily_date == "20260209"
    assert f"s3://{BUCKET}/ngen.20260209/f.nc" in resolved.commands[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qkrig.DAILY", "qkrig.20260208"),
        ("DATE=DAILY", "DATE=20260208"),
        ("out_DAILY.parquet", "out_20260208.parquet"),
        ("-s DAILY", "-s 20260208"),
        ("'DAILY'", "'20260208'"),
        ("XDAILY DAILYX DAILY2 9DAILY", "XDAILY DAILYX DAILY2 9DAILY"),
    ],
)
def test_without_a_forcing_source_every_whole_word_daily_is_yesterday(
    text: str, expected: str
) -> None:
    resolved = resolve([f"echo {text}"], at("2026-02-09T23:00"), check=False)
    assert resolved.cycle_hour == 24
    assert resolved.commands == [f"echo {expected}"]


def test_a_parser_hint_gives_the_location_and_the_last_command_wins() -> None:
    commands = [
        "echo --s3_bucket first --s3_prefix first/DAILY",
        f"echo --S3_BUCKET='{BUCKET}' --S3_PREFIX outputs/qkrig/qkrig.DAILY",
        "run_qkrig --date DAILY",
    ]
    resolved = resolve(commands, at("2026-02-09T12:00"))
    assert resolved.output_check == daily.OutputCheck(
        bucket=BUCKET,
        prefix="outputs/qkrig/qkrig.20260208/metadata/forcings_metadata/metadata.csv",
        source="commands",
        why="no command runs /scripts/datastream",
    )
    assert resolved.commands[1:] == [
        f"echo --S3_BUCKET='{BUCKET}' --S3_PREFIX outputs/qkrig/qkrig.20260208",
        "run_qkrig --date 20260208",
    ]


@pytest.mark.parametrize(
    ("command", "bucket", "prefix"),
    [
        ("x --s3_bucket b1 --s3_prefix p/1", "b1", "p/1"),
        ("x --S3_Bucket=b1 --s3_PREFIX=p/1", "b1", "p/1"),
        ("x --s3_bucket 'b1' --s3_prefix \"p/1\"", "b1", "p/1"),
        ("x --s3_bucket   b1   --s3_prefix p/1'", "b1", "p/1"),
        ("x --s3_bucket_name b1 --s3_prefix p/1", None, "p/1"),
    ],
)
def test_the_location_is_matched_as_the_original_did(
    command: str, bucket: str | None, prefix: str
) -> None:
    assert daily.output_location([command], None)[:2] == (bucket, prefix)


def test_no_location_says_what_was_looked_for() -> None:
    why = daily.missing_location(*daily.output_location(["echo --s3_bucket b"], None))
    assert why is not None and "--s3_prefix" in why and "--s3_bucket" not in why
    options = dco(s3_bucket=None, s3_prefix=None)
    why = daily.missing_location(*daily.output_location([], options))
    assert why is not None
    assert "no datastream_command_options.s3_bucket or datastream_command_options.s3_prefix" in why


def test_the_object_form_and_inputs_take_the_same_date() -> None:
    resolved = resolve(
        [datastream(SR_FORCING, "NWM_V3_SHORT_RANGE_06", SR_PREFIX)],
        at("2026-02-09T03:00"),
        check={"bucket": "b", "prefix": "x/DAILY/out.tar.gz", "newer_than_start": False},
        inputs=[SR_FORCING],
    )
    assert resolved.output_check == daily.OutputCheck(
        bucket="b", prefix="x/20260208/out.tar.gz", newer_than_start=False
    )
    assert [i.url for i in resolved.inputs] == [SR_FORCING.replace("DAILY", "20260208")]


def test_the_same_reference_always_gives_the_same_resolution() -> None:
    """A relaunch never resolves again (the state keeps it); if it did, it would agree."""
    commands = [datastream(SR_FORCING, "NWM_V3_SHORT_RANGE_06", SR_PREFIX)]
    first = resolve(commands, at("2026-02-09T05:59"))
    kept = daily.Resolution.model_validate(first.resolution.model_dump(mode="json"))
    assert kept == first.resolution == resolve(commands, at("2026-02-09T05:59")).resolution
    assert daily.commands_for(commands, None, kept) == first.commands
    assert resolve(commands, at("2026-02-09T06:00")).daily_date != first.daily_date


# --- datastream_command_options ------------------------------------------------------------
def dco(**changes: Any) -> DatastreamCommandOptions:
    fields: dict[str, Any] = {
        "start_time": "202006200100",
        "end_time": "202006210000",
        "forcing_source": "NWM_RETRO_V3",
        "realization": "$(pwd)/configs/ngen/realization_sloth_nom_cfe_pet.json",
        "nprocs": "4",
        "subset_id_type": "hl",
        "subset_id": "Gages-09106150",
        "hydrofabric_version": "2.1.1",
        "s3_bucket": "my-bucket",
        "s3_prefix": "test_directory",
    }
    fields.update(changes)
    return DatastreamCommandOptions.model_validate(fields)


def test_datastream_command_options_become_the_original_command() -> None:
    assert dco().command() == (
        "runuser -l ec2-user -c 'cd /home/ec2-user/datastream && ./scripts/datastream "
        "-s 202006200100 -e 202006210000 -C NWM_RETRO_V3 -I Gages-09106150 -i hl -v 2.1.1 "
        "-d $(pwd)/data/datastream -R $(pwd)/configs/ngen/realization_sloth_nom_cfe_pet.json "
        "-n 4 -S my-bucket -o test_directory'"
    )
    assert (
        dco(s3_bucket=None, s3_prefix=None, nprocs=8)
        .command()
        .endswith("realization_sloth_nom_cfe_pet.json -n 8'")
    )


@pytest.mark.parametrize("nprocs", [4, "4", " 4 ", 4.0])
def test_nprocs_is_a_string_or_a_number(nprocs: Any) -> None:
    assert dco(nprocs=nprocs).nprocs == 4


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nprocs": "four"}, "nprocs"),
        ({"nprocs": 0}, "nprocs"),
        ({"nprocs": True}, "nprocs"),
        ({"nprocs": 4.5}, "nprocs"),
        ({"nprocs": "4.0"}, "nprocs"),
        ({"subset_id": "VPU 01"}, "subset_id"),
        ({"realization": "it's.json"}, "realization"),
        ({"extra": 1}, "extra"),
    ],
)
def test_datastream_command_options_are_checked_field_by_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        dco(**changes)


def test_datastream_options_give_the_location_and_resolve_like_commands() -> None:
    options = dco(start_time="DAILY", s3_prefix="runs/DAILY")
    resolved = resolve([options.command()], at("2026-02-09T12:00"), options=options)
    # The built command carries no --forcing_source: no forcing source, so yesterday.
    assert resolved.daily_date == "20260208"
    assert resolved.output_check == daily.OutputCheck(
        bucket="my-bucket",
        prefix="runs/20260208/merkdir.file",
        source="datastream_command_options",
        why="a command runs /scripts/datastream",
    )
    assert resolved.commands == [options.command().replace("DAILY", "20260208")]
