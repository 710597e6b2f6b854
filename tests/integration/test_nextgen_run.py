"""What a NextGen run checks and writes, and how it relaunches, as the original does now.

- `ii_check_s3: true` checks the one key (merkdir.file when a command runs the
  datastream script): with `--exec-commands` only what the commands wrote counts,
  and partial outputs or the run's own execution record never pass for it.
- `ii_check_forcing`: the `-F` forcing file is an input of the gate; missing past
  forcing_check_timeout_s, the run ends InputsMissing having launched nothing.
- `ii_cheapo`: the last attempt launches on-demand only.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RESULTS = "s3://amirun-nextgen-results/outputs/cfe_nom"


@pytest.fixture(scope="module")
def writes_marker(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution("nextgen/exec-datastream.json"), exec_commands=True)


@pytest.fixture(scope="module")
def no_marker(rehearsed: Any, execution: Any) -> Any:
    request = execution("nextgen/exec-datastream.json")
    request["commands"][-1] += " --no-marker"
    return rehearsed(request, exec_commands=True)


def test_the_datastreams_marker_written_by_the_command_is_the_output(writes_marker: Any) -> None:
    result = writes_marker.result
    prefix = f"{RESULTS}/ngen.{writes_marker.run_date}/short_range/06/VPU_01"

    assert result.status == "SUCCEEDED", result.cause
    assert result.output["checked_object"]["location"] == f"{prefix}/merkdir.file"
    assert writes_marker.objects[f"{prefix}/merkdir.file"] == b"tree"
    assert result.standin_outputs == []  # the rehearsal put nothing in its place
    record_url = f"{prefix}/datastream-metadata/execution.json"
    assert result.output["record_url"] == record_url  # the execution output names it
    record = json.loads(writes_marker.objects[record_url])
    assert record["commands"] == result.sent_commands[0]


def test_without_the_marker_other_objects_under_the_prefix_do_not_pass(no_marker: Any) -> None:
    """The command wrote outputs, and the Commander the execution record, under the
    prefix; the key the original checks is not there: OutputMissing, naming it."""
    result = no_marker.result
    prefix = f"{RESULTS}/ngen.{no_marker.run_date}/short_range/06/VPU_01"

    assert (result.status, result.error) == ("FAILED", "OutputMissing")
    assert result.cause.startswith(
        f"{prefix}/merkdir.file: no such object after the run (ii_check_s3 true checks this "
        "key: a command runs /scripts/datastream)"
    )
    assert f"{prefix}/ngen-run/outputs/troute/out.nc" in no_marker.objects
    assert f"{prefix}/datastream-metadata/execution.json" in no_marker.objects
    assert f"{prefix}/merkdir.file" not in no_marker.objects
    assert result.standin_outputs == []


# --- the forcing file, checked before anything is launched ----------------------------------
def forcing_checked(execution: Any) -> dict[str, Any]:
    request = copy.deepcopy(execution("nextgen/short_range.json"))
    request["run_options"] |= {"ii_check_forcing": True, "forcing_check_timeout_s": 300}
    request["schedule"] = {"name": "short-range-06", "scheduled_time": "2026-02-09T07:00:00Z"}
    return request


FORCING = (
    "s3://nextgen-forecasts/forcings/v2.2_hydrofabric/ngen.20260209/forcing_short_range/06/"
    "ngen.t06z.short_range.forcing.f001_f018.VPU_10L.nc"
)


@pytest.fixture(scope="module")
def forcing_never(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(forcing_checked(execution), faults={"inputs-missing"})


@pytest.fixture(scope="module")
def forcing_late(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(forcing_checked(execution), faults={"inputs-late"})


def test_a_forcing_file_that_never_comes_ends_inputs_missing_with_nothing_launched(
    forcing_never: Any,
) -> None:
    result = forcing_never.result

    assert (result.status, result.error) == ("FAILED", "InputsMissing")
    assert result.cause.startswith(
        f"{FORCING} still missing 300 s after the run started "
        "(run_options.forcing_check_timeout_s); no instance was launched"
    )
    assert "EC2StarterFromAMI" not in result.states
    assert forcing_never.launched == []
    assert result.sent_commands == []


def test_a_late_forcing_file_holds_the_launch_until_it_comes(forcing_late: Any) -> None:
    result = forcing_late.result
    states = result.states

    assert result.status == "SUCCEEDED", result.cause
    assert states.count("WaitForInputs") >= 1
    assert states.index("EC2StarterFromAMI") > states.index("WaitForInputs")
    (commands,) = result.sent_commands
    assert f"-F {FORCING} " in commands[0]  # the file waited for is the one the command reads


# --- the relaunch plan ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def interrupted_twice(rehearsed: Any, basic: Any) -> Any:
    # base 50 s x 2^1 = 100 s before the relaunch: a one-second Wait at the time scale 0.01.
    # A capacity shortage waits for capacity instead of relaunching; an interruption relaunches.
    request = basic(ii_cheapo=True, n_retries_allowed=1, retry_backoff_base_s=50)
    request["run_options"].pop("retry_delay_s", None)
    return rehearsed(request, faults={"spot-interruption"})


def test_the_last_attempt_launches_on_demand_only(interrupted_twice: Any) -> None:
    """Attempt 1 launches on spot; attempt 2, the last, on-demand."""
    result = interrupted_twice.result

    assert (result.status, result.error) == ("FAILED", "InstanceLost")
    assert result.states.count("WaitBeforeRelaunch") == 1
    assert list(interrupted_twice.markets.values()) == ["spot", "on-demand"]
