"""Runs that fail: FAILED with the run's own error, a cause that says what and where,
and every instance the run launched stopped or terminated on the way out.

Each fault is one rehearsal (module-scoped fixture); several tests look at it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.slow

#: The path up to the failing step, then the cleanup and the Fail state.
#: No capacity: the launch is refused, the run waits for room and capacity (up to
#: queue_timeout_s, 0.6 s here: one wait), then gives up having launched nothing.
FAILED_FOR_CAPACITY = [
    "Prepare",
    "ClaimSlot",
    "Resolve",
    "ClaimRoom",
    "EC2StarterFromAMI",
    "ClaimRoom",
    "EC2Stopper",
    "RunFailed",
]
#: Refused by Resolve, the first step: nothing else ran.
REFUSED = ["Prepare", "ClaimSlot", "Resolve", "EC2Stopper", "RunFailed"]
FAILED_AT_READINESS = [
    "Prepare",
    "ClaimSlot",
    "Resolve",
    "ClaimRoom",
    "EC2StarterFromAMI",
    "CheckInstanceReady",
    "EC2Stopper",
    "RunFailed",
]
#: The command's end (or its instance's) came as an event and ended the wait.
FAILED_IN_COMMAND = [
    "Prepare",
    "ClaimSlot",
    "Resolve",
    "ClaimRoom",
    "EC2StarterFromAMI",
    "CheckInstanceReady",
    "Commander",
    "WaitForCommandEnd",
    "EC2Stopper",
    "RunFailed",
]
#: No event: the safety look found the command past its time limit.
FAILED_AT_SAFETY_LOOK = [*FAILED_IN_COMMAND[:-2], "EC2Poller", "EC2Stopper", "RunFailed"]
FAILED_AT_CHECK = [*FAILED_IN_COMMAND[:-2], "RunChecker", "EC2Stopper", "RunFailed"]


@pytest.fixture(scope="module")
def command_fails(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"command-fails"})


@pytest.fixture(scope="module")
def output_missing(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"output-missing"})


@pytest.fixture(scope="module")
def ssm_never_online(rehearsed: Any, basic: Any) -> Any:
    # 60 s, the shortest readiness limit, is 0.6 s at the rehearsal's time scale.
    return rehearsed(basic(ready_timeout_s=60), faults={"ssm-never-online"})


@pytest.fixture(scope="module")
def crash(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(ii_terminate_instance=False), faults={"crash"})


@pytest.fixture(scope="module")
def command_hangs(rehearsed: Any, basic: Any) -> Any:
    # 60 s, the shortest time limit, is 0.6 s at the rehearsal's time scale.
    return rehearsed(basic(timeout_s=60), faults={"command-hangs"})


@pytest.fixture(scope="module")
def capacity(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"capacity"})


@pytest.fixture(scope="module")
def capacity_cheapo(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(ii_cheapo=True), faults={"capacity"})


@pytest.fixture(scope="module")
def invalid_input(rehearsed: Any, execution: Any) -> Any:
    """`check_s3` for `ii_check_s3`: refused before anything is launched."""
    return rehearsed(execution("invalid-check-s3-typo.json"))


@pytest.fixture(scope="module")
def invalid_instance_parameter(rehearsed: Any, basic: Any) -> Any:
    """A typo in instance_parameters, with relaunches allowed: not relaunchable."""
    request = basic(n_retries_allowed=2, retry_delay_s=0)
    request["instance_parameters"]["InstanceTyp"] = request["instance_parameters"].pop(
        "InstanceType"
    )
    return rehearsed(request)


@pytest.fixture(scope="module")
def spot_interruption(rehearsed: Any, basic: Any) -> Any:
    """A spot instance (ii_cheapo) taken back under the command; stop was asked for."""
    return rehearsed(
        basic(ii_cheapo=True, ii_terminate_instance=False), faults={"spot-interruption"}
    )


@pytest.fixture(scope="module")
def on_demand_terminated_under_the_run(rehearsed: Any, basic: Any) -> Any:
    """The same on an on-demand instance (e.g. `shutdown` inside it, terminate behaviour)."""
    return rehearsed(basic(ii_terminate_instance=False), faults={"spot-interruption"})


@pytest.fixture(scope="module")
def throttle(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"throttle"})


@pytest.fixture(scope="module")
def lost_response(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"lost-response"})


# --- every failure: error, path, cleanup ---------------------------------------------------
FAILURES = [
    # (scenario, error, path)
    ("command_fails", "CommandFailed", FAILED_IN_COMMAND),
    ("output_missing", "OutputMissing", FAILED_AT_CHECK),
    ("ssm_never_online", "InstanceNotReady", FAILED_AT_READINESS),
    ("crash", "InternalError", FAILED_IN_COMMAND),
    ("command_hangs", "CommandTimedOut", FAILED_AT_SAFETY_LOOK),
    ("spot_interruption", "InstanceLost", FAILED_IN_COMMAND),
    ("capacity", "InstanceQueueTimeout", FAILED_FOR_CAPACITY),
    ("capacity_cheapo", "InstanceQueueTimeout", FAILED_FOR_CAPACITY),
    ("invalid_input", "InvalidExecutionInput", REFUSED),
    ("invalid_instance_parameter", "InvalidExecutionInput", REFUSED),
]
LAUNCHED_NOTHING = ["capacity", "capacity_cheapo", "invalid_input", "invalid_instance_parameter"]
LAUNCHED_AN_INSTANCE = [name for name, _, _ in FAILURES if name not in LAUNCHED_NOTHING]


@pytest.mark.parametrize(("scenario", "error", "path"), FAILURES, ids=[f[0] for f in FAILURES])
def test_a_failed_run_ends_failed_with_its_own_error_after_the_stopper(
    scenario: str, error: str, path: list[str], request: pytest.FixtureRequest
) -> None:
    rehearsal = request.getfixturevalue(scenario)

    assert rehearsal.result.status == "FAILED"
    assert rehearsal.result.error == error, rehearsal.result.cause
    assert rehearsal.result.output is None
    # Caught, cleaned up by EC2Stopper, then the Fail state with the run's error.
    assert rehearsal.milestones == path
    assert rehearsal.result.states[-1] == "RunFailed"
    assert "Summarize" not in rehearsal.result.states


@pytest.mark.parametrize("scenario", LAUNCHED_AN_INSTANCE)
def test_a_failed_run_stops_or_terminates_its_instance(
    scenario: str, request: pytest.FixtureRequest, at_rest: Any
) -> None:
    rehearsal = request.getfixturevalue(scenario)

    at_rest(rehearsal)
    (instance_id,) = rehearsal.launched
    ended = rehearsal.result.instances[instance_id]
    # The cause says which attempt, and what the instance was left as.
    assert rehearsal.result.cause.endswith(f" [attempt 1; instance {instance_id} {ended}]")


@pytest.mark.parametrize("scenario", LAUNCHED_NOTHING)
def test_a_run_refused_before_launch_launches_nothing(
    scenario: str, request: pytest.FixtureRequest
) -> None:
    rehearsal = request.getfixturevalue(scenario)

    assert rehearsal.result.instances == {}
    assert rehearsal.launched == []
    assert rehearsal.result.sent_commands == []
    assert rehearsal.results("StopperFunction") == ["no instance to stop"]
    assert rehearsal.result.cause.endswith(" [attempt 1; no instance]")


# --- each failure's cause ------------------------------------------------------------------
def test_command_failed_cause_has_exit_code_stderr_and_output_location(
    command_fails: Any,
) -> None:
    cause = command_fails.result.cause
    (instance_id,) = command_fails.launched
    (command_id,) = command_fails.command_statuses

    assert f"command {command_id} on {instance_id} ended Failed" in cause
    assert "exit code 1" in cause
    assert "stderr: rehearsal fault: the command failed" in cause
    # The full output is where the cause says.
    location = re.search(r"full output: (s3://\S+/)", cause)
    assert location, cause
    assert location[1].endswith(f"/attempt-1/{command_id}/")
    stderr = [url for url in command_fails.objects if url.startswith(location[1])]
    assert any(url.endswith("/stderr") for url in stderr), stderr
    assert command_fails.command_statuses == {command_id: "Failed"}


def test_output_missing_cause_names_the_s3_location(output_missing: Any) -> None:
    location = f"s3://amirun-integration-results/forecasts/{output_missing.run_date}/forecast.txt"

    assert output_missing.result.cause.startswith(f"{location}: no such object or prefix")
    # The command itself succeeded; only its output is missing.
    assert output_missing.results("SettlerFunction")[0].endswith("Success (exit 0)")
    assert output_missing.result.standin_outputs == []
    assert location not in output_missing.objects


def test_instance_not_ready_cause_names_the_instance_and_the_agent(
    ssm_never_online: Any,
) -> None:
    (instance_id,) = ssm_never_online.launched
    cause = ssm_never_online.result.cause

    assert f"instance {instance_id} is running and its SSM agent is not registered" in cause
    assert "readiness timeout" in cause
    # Nothing was sent to an instance SSM does not know.
    assert ssm_never_online.result.sent_commands == []
    assert ssm_never_online.command_statuses == {}


def test_a_crash_fails_as_internal_error_naming_the_exception_and_stops_the_instance(
    crash: Any,
) -> None:
    (instance_id,) = crash.launched

    assert crash.result.error == "InternalError"
    assert crash.result.cause == (
        "RuntimeError: rehearsal fault: the look at the command crashed "
        f"[attempt 1; instance {instance_id} stopped]"
    )
    # The first look at the command is WaitForCommandEnd's.
    assert crash.errors("WaiterFunction") == [
        "InternalError: RuntimeError: rehearsal fault: the look at the command crashed"
    ]
    assert crash.result.instances == {instance_id: "stopped"}


@pytest.fixture(scope="module")
def stop_refused(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(), faults={"stop-refused"})


def test_a_refused_stop_ends_cleanup_failed_with_a_one_line_cause(stop_refused: Any) -> None:
    """The Fail state shows the stopper's own message, not Lambda's error JSON."""
    (instance_id,) = stop_refused.launched
    result = stop_refused.result

    assert result.status == "FAILED"
    assert result.error == "CleanupFailed"
    assert result.states[-1] == "CleanupFailedInStopper"
    assert result.cause.startswith(f"Stopping or terminating {instance_id} was refused")
    assert "ec2:StopInstances" in result.cause
    assert "\n" not in result.cause
    assert "errorMessage" not in result.cause
    assert "stackTrace" not in result.cause
    # Not retried in place: a permission does not come back by itself.
    assert stop_refused.errors("StopperFunction") == [f"PermissionDenied: {result.cause}"]


def test_a_command_past_its_time_limit_is_cancelled(command_hangs: Any) -> None:
    (instance_id,) = command_hangs.launched
    (command_id,) = command_hangs.command_statuses

    assert command_hangs.result.cause.startswith(
        f"command {command_id} on {instance_id} still InProgress at its time limit"
    )
    assert "cancelled" in command_hangs.result.cause
    # The emulated SSM saw the CancelCommand: the command ended Cancelled.
    assert command_hangs.command_statuses == {command_id: "Cancelled"}


def test_capacity_on_demand_only_names_the_on_demand_attempt(capacity: Any) -> None:
    cause = capacity.result.cause

    assert cause.startswith("waited ")
    assert "(queue_timeout_s 60), nothing launched: the last launch was refused: " in cause
    assert "refused: t4g.small on-demand: InsufficientInstanceCapacity: " in cause
    assert "spot" not in cause


def test_capacity_with_ii_cheapo_names_spot_then_on_demand(capacity_cheapo: Any) -> None:
    cause = capacity_cheapo.result.cause

    assert "refused: t4g.small spot: InsufficientInstanceCapacity: " in cause
    assert "; t4g.small on-demand: InsufficientInstanceCapacity: " in cause
    assert cause.index("spot:") < cause.index("on-demand:")


def test_invalid_input_names_the_field_and_suggests_the_right_one(invalid_input: Any) -> None:
    assert invalid_input.result.cause.startswith(
        "run_options.check_s3: unknown field (did you mean ii_check_s3?)"
    )
    assert invalid_input.errors("ResolverFunction") == [
        "InvalidExecutionInput: run_options.check_s3: unknown field (did you mean ii_check_s3?)"
    ]


def test_invalid_input_is_not_relaunched(invalid_instance_parameter: Any) -> None:
    cause = invalid_instance_parameter.result.cause

    assert cause.startswith(
        "instance_parameters.InstanceTyp: unknown field (did you mean InstanceType?)"
    )
    assert "PrepareRelaunch" not in invalid_instance_parameter.result.states
    assert len(invalid_instance_parameter.errors("ResolverFunction")) == 1


def test_a_spot_interruption_is_instance_lost_and_the_instance_stays_terminated(
    spot_interruption: Any,
) -> None:
    (instance_id,) = spot_interruption.launched
    (command_id,) = spot_interruption.command_statuses
    cause = spot_interruption.result.cause

    assert spot_interruption.results("StarterFunction")[0].endswith("(spot), SSM agent unknown")
    # EC2's state-change event ended the wait; the look saw the instance going or gone.
    assert re.match(
        f"instance {instance_id} is (shutting-down|terminated) while command {command_id} "
        "was InProgress",
        cause,
    ), cause
    assert spot_interruption.results("SettlerFunction")[0].startswith(
        f"ended the wait: InstanceLost: instance {instance_id} is "
    )
    # EC2 cannot stop a spot instance: terminated, although a stop was asked for.
    assert not spot_interruption.terminate
    assert spot_interruption.result.instances == {instance_id: "terminated"}


def test_an_instance_terminated_under_the_run_is_reported_terminated(
    on_demand_terminated_under_the_run: Any,
) -> None:
    rehearsal = on_demand_terminated_under_the_run
    (instance_id,) = rehearsal.launched

    assert rehearsal.result.error == "InstanceLost"
    assert rehearsal.result.instances == {instance_id: "terminated"}
    assert rehearsal.result.cause.endswith(f" [attempt 1; instance {instance_id} terminated]")


# --- retried by the state machine, to success -------------------------------------------
def test_throttling_is_retried_to_success(
    throttle: Any, at_rest: Any, success_path: list[str]
) -> None:
    result = throttle.result

    assert result.status == "SUCCEEDED", result.cause
    assert "faults injected: throttle" in result.notes
    # Each throttled call failed its Lambda once; the Task's Retry ran it again
    # (a retry does not re-enter the state, so the path is the plain one).
    assert throttle.errors("StarterFunction") == [
        "AwsThrottled: RunInstances: RequestLimitExceeded"
    ]
    assert throttle.errors("WaiterFunction") == [
        "AwsThrottled: GetCommandInvocation: RequestLimitExceeded"
    ]
    assert throttle.milestones == success_path
    # The retried launch did not launch a second instance.
    at_rest(throttle)
    assert list(result.instances) == [result.output["instance_id"]]


def test_a_lost_launch_response_is_retried_without_a_second_instance(
    lost_response: Any, at_rest: Any
) -> None:
    result = lost_response.result
    launches = lost_response.results("StarterFunction")

    assert result.status == "SUCCEEDED", result.cause
    # The starter ran twice: its first response was lost after it launched (the Task
    # saw Lambda.ServiceException and retried), and the ClientToken gave the second
    # call the instance the first one launched: one instance in all.
    (lost,) = lost_response.errors("StarterFunction")
    assert lost.startswith("Lambda.ServiceException: ")
    (launch,) = launches
    (instance_id,) = lost_response.launched
    assert f"instance {instance_id} " in launch
    assert result.instances == {instance_id: "terminated"}
    assert result.output["instance_id"] == instance_id
    at_rest(lost_response)


# --- what a rehearsal says about the commands it did not run ---------------------------------
@pytest.mark.parametrize("scenario", ["command_fails", "command_hangs"])
def test_the_notes_do_not_say_a_failed_command_succeeded(
    scenario: str, request: pytest.FixtureRequest
) -> None:
    notes = request.getfixturevalue(scenario).result.notes

    assert any("recorded, not run" in note for note in notes), notes
    assert not any("reported as succeeded" in note for note in notes), notes
