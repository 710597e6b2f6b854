"""NextGen files shaped like the upstream templates: they rehearse as their authors meant.

`ii_check_s3: true` checks the location the commands give, DAILY follows the
original's rules (resolved once by the Resolve step), and the input gate holds
the launch until the inputs are there, or ends InputsMissing having launched
nothing.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from amirun.rendering import render_execution

pytestmark = pytest.mark.slow

NEXTGEN_FILES = ["nextgen/short_range.json", "nextgen/medium_range.json", "nextgen/qkrig.json"]
INPUT = "s3://nextgen-forecasts/forcings/ngen.DAILY/forcing_short_range/06/forcing.nc"


@pytest.fixture(scope="module", params=NEXTGEN_FILES)
def nextgen(request: pytest.FixtureRequest, rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution(request.param))


def test_a_nextgen_file_rehearses_to_succeeded(nextgen: Any, at_rest: Any) -> None:
    result = nextgen.result

    assert result.status == "SUCCEEDED", result.cause
    at_rest(nextgen)


def test_the_commands_sent_are_the_ones_render_shows(nextgen: Any) -> None:
    """Render at the Resolve step's reference time gives what the Commander sent."""
    (line,) = nextgen.results("ResolverFunction")
    rendered = render_execution(copy.deepcopy(nextgen.request), nextgen_reference(nextgen))

    assert nextgen.result.sent_commands == [rendered["commands"]]
    assert f"DAILY = {rendered['daily_date']} " in line
    location = nextgen.result.output["checked_object"]["location"]
    assert location == rendered["checked_key"]  # the one key, merkdir.file or metadata.csv
    assert nextgen.result.standin_outputs == [location]
    # The execution JSON beside the outputs, where the original wrote it, as it ran.
    record = json.loads(nextgen.objects[rendered["record"][0]])
    assert record["commands"] == rendered["commands"]
    assert record["run_options"] == nextgen.request["run_options"]


def nextgen_reference(rehearsal: Any) -> datetime:
    """The reference time the Resolve step used, as it reported it."""
    (line,) = rehearsal.results("ResolverFunction")
    found = re.search(r"\(reference: \w+ (\S+)\)", line)
    assert found, line
    return datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))


def test_the_datastream_keyword_is_left_for_the_datastream(nextgen: Any) -> None:
    (commands,) = nextgen.result.sent_commands
    if "--FORCING_SOURCE" in commands[0]:
        assert "-s DAILY " in commands[0]
        assert commands[0].count("DAILY") == 1
    else:
        assert not any("DAILY" in command for command in commands)


# --- a command that writes under the derived prefix ------------------------------------------
@pytest.fixture(scope="module")
def writes_output(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution("nextgen/exec-derived.json"), exec_commands=True)


def test_with_exec_commands_what_the_command_wrote_is_found(writes_output: Any) -> None:
    result = writes_output.result
    day = writes_output.run_date
    prefix = f"s3://amirun-nextgen-results/outputs/qkrig/qkrig.{day}"
    location = f"{prefix}/metadata/forcings_metadata/metadata.csv"

    assert result.status == "SUCCEEDED", result.cause
    # No command runs /scripts/datastream: the key checked is the forcing metadata.
    assert result.output["checked_object"]["location"] == location
    assert writes_output.objects[location] == f"qkrig for {day}\n".encode()
    assert writes_output.objects[f"{prefix}/out_{day}.csv"] == f"qkrig for {day}\n".encode()
    assert result.standin_outputs == []
    # No forcing source: every whole-word DAILY is yesterday's date (UTC).
    started = nextgen_reference(writes_output)
    assert day in {f"{started - timedelta(days=1):%Y%m%d}", f"{started:%Y%m%d}"}


# --- the scheduled time is the reference ----------------------------------------------------
@pytest.fixture(scope="module")
def scheduled(rehearsed: Any, execution: Any) -> Any:
    request = execution("nextgen/short_range.json")
    request["schedule"] = {
        "name": "short_range_fcst06_vpu10L_schedule_cfe_nom_test",
        "scheduled_time": "2026-02-09T05:00:00Z",
    }
    return rehearsed(request)


def test_a_scheduled_run_resolves_daily_for_its_scheduled_time(scheduled: Any) -> None:
    (commands,) = scheduled.result.sent_commands

    # Due at 05:00Z, before the 06 cycle: the day before.
    assert scheduled.run_date == "20260208"
    assert "ngen.20260208/short_range/06/VPU_10L" in commands[0]
    assert "ngen.20260208/forcing_short_range/06/" in commands[0]
    location = scheduled.result.output["checked_object"]["location"]
    assert "/ngen.20260208/short_range/06/VPU_10L/" in location


# --- the input gate --------------------------------------------------------------------------
def with_inputs(execution: Any) -> dict[str, Any]:
    request = execution("nextgen/short_range.json")
    request["schedule"] = {"name": "gate", "scheduled_time": "2026-02-09T07:00:00Z"}
    request["run_options"].update(inputs=[INPUT], inputs_timeout_s=300)
    return dict(request)


@pytest.fixture(scope="module")
def inputs_there(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(with_inputs(execution))


@pytest.fixture(scope="module")
def inputs_late(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(with_inputs(execution), faults={"inputs-late"})


@pytest.fixture(scope="module")
def inputs_never(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(with_inputs(execution), faults={"inputs-missing"})


WANTED = "s3://nextgen-forecasts/forcings/ngen.20260209/forcing_short_range/06/forcing.nc"


def test_inputs_already_there_let_the_run_go_at_once(inputs_there: Any) -> None:
    result = inputs_there.result

    assert result.status == "SUCCEEDED", result.cause
    assert result.states.count("CheckInputs") == 1
    assert inputs_there.results("InputsFunction") == ["inputs all there"]
    assert (
        result.notes.count(f"{WANTED} was put in place as a stand-in for one of the run's inputs")
        == 1
    )


def test_late_inputs_hold_the_launch_until_they_come(inputs_late: Any) -> None:
    result = inputs_late.result
    states = result.states

    assert result.status == "SUCCEEDED", result.cause
    assert states.count("CheckInputs") == 3
    assert states.count("WaitForInputs") == 2
    assert states.index("EC2StarterFromAMI") > max(
        i for i, name in enumerate(states) if name == "CheckInputs"
    )
    assert inputs_late.results("InputsFunction")[-1] == "inputs all there"


def test_inputs_that_never_come_end_inputs_missing_with_nothing_launched(
    inputs_never: Any,
) -> None:
    result = inputs_never.result

    assert (result.status, result.error) == ("FAILED", "InputsMissing")
    assert result.cause.startswith(f"{WANTED} still missing 300 s after the run started")
    assert "EC2StarterFromAMI" not in result.states
    assert inputs_never.milestones == [
        "Prepare",
        "ClaimSlot",
        "Resolve",
        "CheckInputs",
        "EC2Stopper",
        "RunFailed",
    ]
    assert result.instances == {}
    assert inputs_never.launched == []
    assert result.sent_commands == []
