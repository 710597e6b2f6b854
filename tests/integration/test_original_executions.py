"""The original project's execution files, unchanged (copies in executions/).

The two `commands` files succeed as they are: their `runuser` commands are
recorded, not run. The `datastream_command_options` file is refused before
anything is launched, with a message that names the field.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

ORIGINALS = [
    "execution_datastream_example.json",
    "execution_gp_example.json",
    "execution_nrds.json",
]


@pytest.fixture(scope="module")
def gp_example(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution("execution_gp_example.json"))


@pytest.fixture(scope="module")
def nrds(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution("execution_nrds.json"))


@pytest.fixture(scope="module")
def datastream_example(rehearsed: Any, execution: Any) -> Any:
    return rehearsed(execution("execution_datastream_example.json"))


@pytest.mark.parametrize("scenario", ["gp_example", "nrds"])
def test_an_original_commands_file_succeeds_unchanged(
    scenario: str, request: pytest.FixtureRequest, at_rest: Any
) -> None:
    rehearsal = request.getfixturevalue(scenario)
    result = rehearsal.result

    assert result.status == "SUCCEEDED", result.cause
    assert result.states[-1] == "Succeeded"
    at_rest(rehearsal)
    (instance_id,) = rehearsal.launched
    assert result.output["instance_id"] == instance_id
    # The runuser commands were sent as written (DAILY expanded), and only recorded.
    expected = [
        command.replace("DAILY", rehearsal.run_date) if "DAILY" in command else command
        for command in rehearsal.request["commands"]
    ]
    assert result.sent_commands == [expected]
    assert any("recorded, not run" in note for note in result.notes)


def test_the_gp_example_terminates_and_checks_nothing(gp_example: Any) -> None:
    output = gp_example.result.output

    assert output["market"] == "on-demand"
    assert output["checked_object"]["checked"] is False
    assert output["cleanup"] == {"action": "terminated", "volumes_deleted": []}
    assert gp_example.result.sent_commands == [["runuser -l ec2-user -c 'ls -la'"]]


def test_nrds_runs_on_spot_checks_its_output_and_deletes_its_volume(nrds: Any) -> None:
    output = nrds.result.output
    location = "s3://ciroh-community-ngen-datastream/test/cicd/nrds/orca_test/ngen-run.tar.gz"

    assert output["market"] == "spot"  # ii_cheapo
    assert output["checked_object"]["location"] == location
    assert nrds.result.standin_outputs == [location]
    assert output["cleanup"]["action"] == "terminated"
    assert output["cleanup"]["volumes_deleted"]
    assert not set(output["cleanup"]["volumes_deleted"]) & set(nrds.volumes)
    (command,) = nrds.result.sent_commands[0]
    assert f"-s {nrds.run_date} -n 3" in command
    assert "DAILY" not in command


def test_the_datastream_example_is_refused_naming_the_field(datastream_example: Any) -> None:
    result = datastream_example.result

    assert (result.status, result.error) == ("FAILED", "InvalidExecutionInput")
    assert result.cause.startswith("datastream_command_options: not supported yet")
    assert "`commands`" in result.cause
    assert datastream_example.milestones == [
        "Prepare",
        "EC2StarterFromAMI",
        "EC2Stopper",
        "RunFailed",
    ]
    # Nothing was launched, nothing was sent.
    assert result.instances == {}
    assert datastream_example.launched == []
    assert result.sent_commands == []
