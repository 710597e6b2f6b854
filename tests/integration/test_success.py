"""Runs that succeed: the output says what ran where, and the instance is at rest."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def terminated(rehearsed: Any, basic: Any) -> Any:
    """basic.json as it is: terminate the instance, keep its volumes, check the output."""
    return rehearsed(basic())


@pytest.fixture(scope="module")
def stopped_volumes_deleted(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(ii_terminate_instance=False, ii_delete_volume=True))


@pytest.mark.parametrize("scenario", ["terminated", "stopped_volumes_deleted"])
def test_a_successful_run_goes_through_every_step_once(
    scenario: str, request: pytest.FixtureRequest, success_path: list[str]
) -> None:
    rehearsal = request.getfixturevalue(scenario)

    assert rehearsal.result.status == "SUCCEEDED", rehearsal.result.cause
    assert (rehearsal.result.error, rehearsal.result.cause) == (None, None)
    assert rehearsal.milestones == success_path
    assert rehearsal.result.states[-1] == "Succeeded"


@pytest.mark.parametrize("scenario", ["terminated", "stopped_volumes_deleted"])
def test_a_successful_run_leaves_its_instance_at_rest(
    scenario: str, request: pytest.FixtureRequest, at_rest: Any
) -> None:
    rehearsal = request.getfixturevalue(scenario)

    at_rest(rehearsal)
    assert len(rehearsal.launched) == 1


def test_the_output_names_instance_command_and_checked_object(terminated: Any) -> None:
    output = terminated.result.output
    run_date = terminated.run_date

    assert output["status"] == "SUCCEEDED"
    assert output["attempt"] == 1
    assert output["past_attempts"] == []
    assert output["instance_id"] == terminated.launched[0]
    assert output["market"] == "on-demand"
    assert (output["command_status"], output["exit_code"]) == ("Success", 0)
    assert output["command_id"] in terminated.command_statuses
    assert output["started_at"] <= output["ended_at"]
    assert output["output_url"].startswith("s3://amirun-rehearsal-output/runs/")
    assert output["output_url"].endswith(f"/attempt-1/{output['command_id']}/")
    checked = output["checked_object"]
    location = f"s3://amirun-integration-results/forecasts/{run_date}/forecast.txt"
    assert checked["checked"] is True
    assert checked["location"] == location
    assert checked["size"] == len(terminated.objects[location])
    assert output["cleanup"] == {"action": "terminated", "volumes_deleted": []}
    usage = output["usage"]
    assert (usage["instance_type"], usage["market"]) == ("t4g.small", "on-demand")
    assert usage["run_instance_seconds"] == usage["instance_seconds"] >= 0
    assert usage["price_usd_per_hour"] > 0
    assert usage["estimated_cost_usd"] == usage["run_estimated_cost_usd"] is not None


def test_daily_becomes_the_run_date_in_the_commands(terminated: Any) -> None:
    run_date = terminated.run_date

    assert run_date.isdigit() and len(run_date) == 8
    # No forcing source in the commands: DAILY is the day before the start (UTC).
    assert terminated.result.output["daily_date"] == run_date
    assert terminated.result.sent_commands == [[f'echo "forecast for {run_date}" > forecast.txt']]


def test_a_rehearsal_says_what_it_stood_in_for(terminated: Any) -> None:
    location = terminated.result.output["checked_object"]["location"]

    assert terminated.result.standin_outputs == [location]
    assert any("recorded, not run" in note for note in terminated.result.notes)
    assert any(location in note and "stand-in" in note for note in terminated.result.notes)
    assert "bucket amirun-integration-results" in terminated.result.standins


def test_stopping_with_ii_delete_volume_deletes_the_volumes(stopped_volumes_deleted: Any) -> None:
    cleanup = stopped_volumes_deleted.result.output["cleanup"]

    assert cleanup["action"] == "stopped"
    assert cleanup["volumes_deleted"], "ii_delete_volume deleted no volume"
    assert all(volume.startswith("vol-") for volume in cleanup["volumes_deleted"])
    # Looked up in the emulated account as the execution ended: they are gone.
    assert not set(cleanup["volumes_deleted"]) & set(stopped_volumes_deleted.volumes)
    last_cleanup = stopped_volumes_deleted.results("StopperFunction")[-1]
    assert "volumes deleted: " + ", ".join(cleanup["volumes_deleted"]) in last_cleanup
