"""Relaunches (`n_retries_allowed`): a fresh instance per attempt, each one at rest after."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

ATTEMPT = [
    "ClaimRoom",
    "EC2StarterFromAMI",
    "CheckInstanceReady",
    "Commander",
    "WaitForCommandEnd",
    "EC2Stopper",
]


@pytest.fixture(scope="module")
def fails_twice(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(n_retries_allowed=1, retry_delay_s=0), faults={"command-fails"})


@pytest.fixture(scope="module")
def fails_then_succeeds(
    rehearsed: Any, basic: Any, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A real command that fails the first time it runs and succeeds the second."""
    marker = tmp_path_factory.mktemp("relaunch") / "first-attempt-ran"
    command = (
        f"if [ -e {marker} ]; then echo 'forecast for DAILY done'; "
        f"else touch {marker}; echo 'upstream data not there yet' >&2; exit 1; fi"
    )
    request = basic(commands=[command], n_retries_allowed=2, retry_delay_s=0, ii_check_s3=False)
    return rehearsed(request, exec_commands=True)


@pytest.fixture(scope="module")
def capacity_with_delays(rehearsed: Any, basic: Any) -> Any:
    # 100 s at the time scale 0.01 is a one-second Wait, doubled at the next relaunch.
    return rehearsed(basic(n_retries_allowed=2, retry_delay_s=100), faults={"capacity"})


def test_a_relaunched_run_fails_after_its_last_attempt(fails_twice: Any) -> None:
    result = fails_twice.result

    assert (result.status, result.error) == ("FAILED", "CommandFailed")
    assert fails_twice.milestones == [
        "Prepare",
        "ClaimSlot",
        "Resolve",
        *ATTEMPT,
        "PrepareRelaunch",
        *ATTEMPT,
        "RunFailed",
    ]
    assert result.states.count("WaitBeforeRelaunch") == 1


def test_each_attempt_has_its_own_instance_and_each_ends_at_rest(
    fails_twice: Any, at_rest: Any
) -> None:
    first, second = fails_twice.launched

    assert first != second
    at_rest(fails_twice)
    assert len(fails_twice.result.sent_commands) == 2
    # DAILY was resolved once; the relaunch sent the same commands.
    first_commands, second_commands = fails_twice.result.sent_commands
    assert first_commands == second_commands
    assert fails_twice.result.states.count("Resolve") == 1
    assert len(fails_twice.command_statuses) == 2
    assert set(fails_twice.command_statuses.values()) == {"Failed"}


def test_the_stopper_decides_the_relaunch_and_the_cause_names_the_last_attempt(
    fails_twice: Any,
) -> None:
    first, second = fails_twice.launched
    cleanups = [c for c in fails_twice.results("StopperFunction") if "terminated" in c]
    cause = fails_twice.result.cause

    assert cleanups == [
        f"instance {first} terminated; relaunch as attempt 2 in 0 s",
        f"instance {second} terminated",
    ]
    assert cause.endswith(f" [attempt 2; instance {second} terminated]")
    assert f"on {second} ended Failed; exit code 1" in cause
    assert "/attempt-2/" in cause


def test_a_relaunch_can_succeed_and_keeps_the_failed_attempt(
    fails_then_succeeds: Any, at_rest: Any
) -> None:
    result = fails_then_succeeds.result
    first, second = fails_then_succeeds.launched

    assert result.status == "SUCCEEDED", result.cause
    output = result.output
    assert (output["attempt"], output["instance_id"]) == (2, second)
    assert output["stdout_tail"] == f"forecast for {fails_then_succeeds.run_date} done\n"
    (past,) = output["past_attempts"]
    assert (past["attempt"], past["instance_id"], past["error"]) == (1, first, "CommandFailed")
    assert "exit code 1" in past["cause"]
    assert "stderr: upstream data not there yet" in past["cause"]
    # Both instances count towards the run's instance-seconds.
    usage = output["usage"]
    assert usage["run_instance_seconds"] == (
        usage["instance_seconds"] + past["usage"]["instance_seconds"]
    )
    # Two attempts were enough: no third instance.
    at_rest(fails_then_succeeds)
    assert "PrepareRelaunch" in result.states
    assert fails_then_succeeds.milestones.count("EC2StarterFromAMI") == 2


def test_capacity_is_a_wait_not_a_relaunch(capacity_with_delays: Any) -> None:
    """No capacity is waited out within queue_timeout_s (0.6 s here), then the run ends
    InstanceQueueTimeout: relaunching would not find capacity sooner."""
    result = capacity_with_delays.result

    assert (result.error, result.instances) == ("InstanceQueueTimeout", {})
    assert capacity_with_delays.results("StopperFunction") == ["no instance to stop"]
    assert result.cause.endswith(" [attempt 1; no instance]")
    assert "PrepareRelaunch" not in result.states
    assert "WaitForRoom" in result.states
