"""The original project's execution files, unchanged (copies in executions/).

All three succeed as they are: their `runuser` commands are recorded, not run;
the `datastream_command_options` file runs the one command the original built.
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


@pytest.mark.parametrize("scenario", ["gp_example", "nrds", "datastream_example"])
def test_an_original_file_succeeds_unchanged(
    scenario: str, request: pytest.FixtureRequest, at_rest: Any
) -> None:
    rehearsal = request.getfixturevalue(scenario)
    result = rehearsal.result

    assert result.status == "SUCCEEDED", result.cause
    assert result.states[-1] == "Succeeded"
    at_rest(rehearsal)
    (instance_id,) = rehearsal.launched
    assert result.output["instance_id"] == instance_id
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


def test_nrds_resolves_the_forcing_file_and_leaves_the_datastream_keyword(nrds: Any) -> None:
    (command,) = nrds.result.sent_commands[0]
    # Forcing source ..._SHORT_RANGE_00: cycle hour 0, so DAILY is the start's UTC date.
    assert nrds.run_date == nrds.result.output["daily_date"]
    assert "-s DAILY -n 3" in command
    assert f"/v2.2/ngen.{nrds.run_date}/forcing_short_range/00/" in command
    assert command.count("DAILY") == 1


def test_the_datastream_example_runs_the_originals_command(datastream_example: Any) -> None:
    result = datastream_example.result

    assert result.sent_commands == [
        [
            "runuser -l ec2-user -c 'cd /home/ec2-user/datastream && ./scripts/datastream "
            "-s 202006200100 -e 202006210000 -C NWM_RETRO_V3 -I Gages-09106150 -i hl "
            "-v 2.1.1 -d $(pwd)/data/datastream "
            "-R $(pwd)/configs/ngen/realization_sloth_nom_cfe_pet.json -n 4 "
            "-S my-bucket -o test_directory'"
        ]
    ]
    # ii_check_s3: true; the location is the options' s3_bucket and s3_prefix, and the
    # command built from them runs the datastream script: its merkdir.file is checked.
    location = "s3://my-bucket/test_directory/merkdir.file"
    assert result.output["checked_object"]["location"] == location
    assert result.standin_outputs == [location]
