"""`amirun render`: the execution as the workflow will run it at a reference time."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from unit_helpers import ORIGINALS, load_json

from amirun.cli import main
from amirun.rendering import render_execution

NEXTGEN = ORIGINALS / "nextgen"
FIELDS = {
    "reference_time",
    "reference",
    "daily_date",
    "forcing_source",
    "cycle_hour",
    "commands",
    "output_check",
    "inputs",
    "market",
    "on_demand_fallback",
    "instance_parameters",
    "checked_key",
    "checked_because",
    "forcing_file",
    "record",
    "relaunch_plan",
}


def render_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["render", *args, "--json"]) == 0
    rendered: dict[str, Any] = json.loads(capsys.readouterr().out)
    return rendered


@pytest.mark.parametrize(
    ("at", "day", "forcing_day"),
    [
        ("2026-02-09T03:00:00Z", "20260208", "20260208"),
        ("2026-02-09T07:00:00Z", "20260209", "20260209"),
    ],
)
def test_short_range_at_two_times(
    capsys: pytest.CaptureFixture[str], at: str, day: str, forcing_day: str
) -> None:
    rendered = render_json(capsys, str(NEXTGEN / "short_range.json"), "--at", at)

    assert set(rendered) == FIELDS  # the resolved execution only, not the input again
    assert (rendered["daily_date"], rendered["cycle_hour"]) == (day, 6)
    prefix = f"outputs/cfe_nom/v2.2_hydrofabric/ngen.{day}/short_range/06/VPU_10L"
    key = f"{prefix}/merkdir.file"
    assert rendered["output_check"] == {"bucket": "nextgen-forecasts", "prefix": key}
    assert rendered["checked_key"] == f"s3://nextgen-forecasts/{key}"
    assert rendered["checked_because"] == "a command runs /scripts/datastream"
    assert rendered["record"][0] == (
        f"s3://nextgen-forecasts/{prefix}/datastream-metadata/execution.json"
    )
    # n_retries_allowed 2 with ii_cheapo: spot twice (after 1 h, then 2 h), the last on-demand.
    assert rendered["relaunch_plan"] == [
        {"attempt": 1, "wait_s": 0, "market": "spot", "on_demand_fallback": True},
        {"attempt": 2, "wait_s": 3600, "market": "spot", "on_demand_fallback": True},
        {"attempt": 3, "wait_s": 7200, "market": "on-demand", "on_demand_fallback": False},
    ]
    (command,) = rendered["commands"]
    assert f"--S3_PREFIX {prefix}'" in command
    assert f"ngen.{forcing_day}/forcing_short_range/06/ngen.t06z." in command
    assert (rendered["market"], rendered["on_demand_fallback"]) == ("spot", True)
    params = rendered["instance_parameters"]
    assert params["InstanceMarketOptions"]["MarketType"] == "spot"
    assert (params["MinCount"], params["MaxCount"]) == (1, 1)
    assert params["MetadataOptions"]["HttpTokens"] == "required"


def test_medium_range_member_2_at_the_worked_example() -> None:
    rendered = render_execution(load_json(NEXTGEN / "medium_range.json"), at_time("03:00"))

    (command,) = rendered["commands"]
    assert rendered["daily_date"] == "20260209"
    assert "ngen.20260208/forcing_medium_range/18/ngen.t18z.medium_range" in command
    assert "ngen.20260209/medium_range/00/2/VPU_03W'" in command


def at_time(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-02-09T{hhmm}:00+00:00")


def test_the_schedules_time_is_the_default_and_at_replaces_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw = load_json(NEXTGEN / "qkrig.json")
    raw["schedule"] = {"name": "qkrig", "scheduled_time": "2026-02-09T01:00:00Z"}
    path = tmp_path / "qkrig.json"
    path.write_text(json.dumps(raw))

    due = render_json(capsys, str(path))
    later = render_json(capsys, str(path), "--at", "2026-03-01T01:00:00Z")

    assert (due["reference"], due["daily_date"]) == ("scheduled_time", "20260208")
    assert later["daily_date"] == "20260228"
    assert (
        later["commands"][0]
        == "echo --s3_bucket nextgen-forecasts --s3_prefix outputs/qkrig/qkrig.20260228"
    )


def test_the_text_form_says_the_same_in_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(NEXTGEN / "qkrig.json"), "--at", "2026-02-09T12:00"]) == 0
    out = capsys.readouterr().out

    assert (
        "DAILY      20260208 (cycle hour 24, no forcing source: the day before the"
        " reference's UTC date)"
    ) in out
    assert "reference  2026-02-09T12:00:00+00:00 (--at, as the run's start time)" in out
    assert "check      s3://nextgen-forecasts/outputs/qkrig/qkrig.20260208/" in out
    assert "market     on-demand\n" in out


def test_without_at_the_reference_is_now_as_the_start_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["render", str(NEXTGEN / "qkrig.json")]) == 0

    assert "(now, as the run's start time)" in capsys.readouterr().out


def test_datastream_command_options_say_why_daily_has_no_forcing_source(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its forcing_source becomes `-C`; DAILY's rule 2 reads `--forcing_source` only."""
    path = ORIGINALS / "execution_datastream_example.json"
    source = load_json(path)["datastream_command_options"]["forcing_source"]

    assert main(["render", str(path), "--at", "2026-02-09T12:00Z"]) == 0
    out = capsys.readouterr().out

    assert "forcing source none" not in out
    assert (
        f"no --forcing_source: datastream_command_options' forcing_source {source} is passed"
        " as -C, which DAILY's rules do not read, so the no-forcing-source rule applies"
    ) in out
    assert "DAILY      20260208 (cycle hour 24," in out


def test_a_bad_time_is_one_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["render", str(NEXTGEN / "qkrig.json"), "--at", "tomorrow"])

    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "amirun: --at: 'tomorrow' is not an ISO-8601 time (e.g. 2026-02-09T12:00:00Z)\n"
    )


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("0001-01-01T00:00:00+05:00", "outside the years 2000 to 2099"),
        ("9999-12-31T23:59:59-05:00", "outside the years 2000 to 2099"),
        ("1770000000", "'1770000000' is not an ISO-8601 time"),
        ("2026-02-30T00:00Z", "is not an ISO-8601 time"),
    ],
)
def test_times_at_the_edges_of_the_calendar_are_one_usage_line(
    at: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Year 1 or 9999 with an offset overflowed Python's dates; a Unix timestamp is no
    ISO-8601 time. Both `render --at` and `run --schedule ... --at` say so in one line."""
    for argv in (
        ["render", str(NEXTGEN / "qkrig.json"), "--at", at],
        ["schedules", "render", "set.yaml", "x", "--at", at],
    ):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        err = capsys.readouterr().err
        assert exited.value.code == 2
        assert expected in err and "Traceback" not in err


def test_an_invalid_file_names_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    raw = load_json(NEXTGEN / "qkrig.json")
    raw["commands"] = ["echo no location"]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))

    assert main(["render", str(path)]) == 1
    err = capsys.readouterr().err
    assert "  - run_options.ii_check_s3: `true` checks the output location" in err


def test_render_names_the_key_the_record_and_each_attempt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The text form: the exact key checked and why, where the execution JSON goes, and
    the relaunch plan with the market and the wait of every attempt."""
    assert main(["render", str(NEXTGEN / "short_range.json"), "--at", "2026-02-09T07:00Z"]) == 0
    out = capsys.readouterr().out
    prefix = "s3://nextgen-forecasts/outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_10L"
    assert f"check      {prefix}/merkdir.file (a command runs /scripts/datastream)\n" in out
    assert f"record     {prefix}/datastream-metadata/execution.json\n" in out
    assert "attempt    1  at once, spot (on-demand if spot has no capacity)\n" in out
    assert "attempt    2  after 3600 s, spot (on-demand if spot has no capacity)\n" in out
    assert "attempt    3  after 7200 s, on-demand\n" in out


def test_a_forcing_prefix_records_under_metadata_and_checks_the_forcing_metadata() -> None:
    raw = load_json(NEXTGEN / "short_range.json")
    raw["commands"] = [
        "runuser -l ec2-user -c 'python3 configure_datastream.py --start_date DAILY "
        "--forcing_source NWM_V3_SHORT_RANGE_06 --s3_bucket nextgen-forecasts "
        "--s3_prefix forcings/v2.2_hydrofabric/ngen.DAILY/forcing_short_range/06'"
    ]
    rendered = render_execution(raw, at_time("07:00"))

    prefix = "s3://nextgen-forecasts/forcings/v2.2_hydrofabric/ngen.20260209/forcing_short_range/06"
    assert rendered["checked_key"] == f"{prefix}/metadata/forcings_metadata/metadata.csv"
    assert rendered["record"][0] == f"{prefix}/metadata/execution.json"


def test_the_forcing_check_is_an_input_the_gate_waits_for() -> None:
    raw = load_json(NEXTGEN / "medium_range.json")
    raw["run_options"]["ii_check_forcing"] = True
    rendered = render_execution(raw, at_time("03:00"))

    forcing = (
        "s3://nextgen-forecasts/forcings/v2.2_hydrofabric/ngen.20260208/forcing_medium_range/"
        "18/ngen.t18z.medium_range.forcing.f001_f240.VPU_03W.nc"
    )
    assert rendered["forcing_file"] == forcing
    assert rendered["inputs"] == [forcing]
    (command,) = rendered["commands"]
    assert f"-F {forcing} " in command  # the very file the command reads
