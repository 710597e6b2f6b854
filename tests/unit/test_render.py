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
    assert rendered["output_check"] == {"bucket": "nextgen-forecasts", "prefix": prefix + "/"}
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
        "amirun: --at tomorrow: not an ISO-8601 time (e.g. 2026-02-09T03:00:00Z)\n"
    )


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
