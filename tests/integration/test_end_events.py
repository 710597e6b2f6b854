"""The command's end as an event: delivered, lost, repeated or late, the run ends the same.

The emulated world publishes Run Command's status changes and EC2's state
changes; the rules of template.yaml send them to the Settler through the local
Lambda endpoint, as EventBridge would (after a short delay). The event faults
rehearse a bus that loses, repeats or delays them: the safety look
(EC2Poller, after poll_interval_s) covers what the events miss.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.slow

SSM_END = "EC2 Command Invocation Status-change Notification"


@pytest.fixture(scope="module")
def by_event(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic())


@pytest.fixture(scope="module")
def event_lost(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"event-lost"})


@pytest.fixture(scope="module")
def event_duplicate(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"event-duplicate"})


@pytest.fixture(scope="module")
def event_late(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"event-late"})


@pytest.fixture(scope="module")
def failure_event_lost(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"event-lost", "command-fails"})


def ssm_ends(rehearsal: Any) -> list[str]:
    """The statuses of the command-end events the world published."""
    return [
        event["detail"]["status"]
        for _, event in rehearsal.result.bus_events
        if event["detail-type"] == SSM_END
    ]


def test_the_end_event_ends_the_wait(by_event: Any, success_path: list[str], at_rest: Any) -> None:
    result = by_event.result

    assert result.status == "SUCCEEDED", result.cause
    assert by_event.milestones == success_path
    assert "EC2Poller" not in result.states
    (command_id,) = by_event.command_statuses
    assert by_event.results("SettlerFunction")[0] == (
        f"ended the wait: command {command_id[:8]} Success (exit 0)"
    )
    assert result.output["command_status"] == "Success"
    assert result.output["exit_code"] == 0
    # The stop that followed was an event too, for an instance no run waits on any more.
    assert by_event.results("SettlerFunction")[1:] == [
        f"event for {result.output['instance_id']}: no run waits on it"
    ]
    at_rest(by_event)


def test_a_lost_event_is_made_up_for_by_the_safety_look(event_lost: Any, at_rest: Any) -> None:
    result = event_lost.result

    assert result.status == "SUCCEEDED", result.cause
    assert ssm_ends(event_lost) == ["Success"]  # published, never delivered
    assert event_lost.results("SettlerFunction") == []
    at = event_lost.milestones.index("Commander")
    assert event_lost.milestones[at : at + 3] == ["Commander", "WaitForCommandEnd", "EC2Poller"]
    assert event_lost.results("PollerFunction")[-1].endswith("Success (exit 0)")
    assert "faults injected: event-lost" in result.notes
    at_rest(event_lost)


def test_a_duplicate_event_changes_nothing(
    event_duplicate: Any, success_path: list[str], at_rest: Any
) -> None:
    result = event_duplicate.result
    settled = event_duplicate.results("SettlerFunction")

    assert result.status == "SUCCEEDED", result.cause
    assert event_duplicate.milestones == success_path
    assert len([r for r in settled if r.startswith("ended the wait: ")]) == 1
    assert f"event for {result.output['instance_id']}: no run waits on it" in settled
    assert event_duplicate.errors("SettlerFunction") == []
    at_rest(event_duplicate)


def test_a_late_event_finds_its_wait_already_ended(event_late: Any, at_rest: Any) -> None:
    result = event_late.result
    (command_id,) = event_late.command_statuses

    assert result.status == "SUCCEEDED", result.cause
    assert "EC2Poller" in event_late.milestones
    assert event_late.results("SettlerFunction") == [
        f"end event for command {command_id[:8]}: its wait had already ended"
    ]
    assert event_late.errors("SettlerFunction") == []
    at_rest(event_late)


def test_a_failure_whose_event_is_lost_fails_the_same(failure_event_lost: Any) -> None:
    result = failure_event_lost.result

    assert (result.status, result.error) == ("FAILED", "CommandFailed")
    assert "exit code 1" in result.cause
    assert "stderr: rehearsal fault: the command failed" in result.cause
    assert failure_event_lost.milestones[-4:] == [
        "WaitForCommandEnd",
        "EC2Poller",
        "EC2Stopper",
        "RunFailed",
    ]
