"""EC2Stopper and the sweeper: no instance outlives its run.

moto moves an instance to `stopped` or `terminated` at once, so the first call
asks EC2 for the transition and the next one finds the instance at rest.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import (
    EXECUTION_ARN,
    STACK_NAME,
    answer,
    error,
    instance_state,
    launch,
    make_request,
    make_state,
    with_records,
)

from amirun_core import timing
from amirun_core.cleanup import stop_instance, sweep_execution
from amirun_core.errors import RELAUNCHABLE, AwsThrottled, CleanupFailed
from amirun_core.launch import launch_instance
from amirun_core.state import CleanupRecord, WorkflowState

LAMBDA_CAUSE = json.dumps(
    {
        "errorMessage": "command 1234 on i-0abc ended Failed; exit code 1",
        "errorType": "CommandFailed",
        "requestId": "5f0c1f8e-2a43-4c36-9a6e-0d1c3e0f9b7a",
        "stackTrace": ['  File "/var/task/app.py", line 26, in lambda_handler\n'],
    }
)


def launched(ec2: Any, **run_options: Any) -> tuple[WorkflowState, str]:
    state, record = launch(ec2, make_state(make_request(**run_options)))
    return state, record.instance_id


def clean_up(ec2: Any, state: WorkflowState, max_calls: int = 6) -> list[CleanupRecord]:
    """Call the stopper as the state machine's loop does, until it says done."""
    records = []
    for _ in range(max_calls):
        record = stop_instance(ec2, state)
        records.append(record)
        if record.done:
            return records
        state = with_records(state, cleanup=record)
    raise AssertionError(f"not done after {max_calls} calls: {records[-1]}")


def failed(
    state: WorkflowState, error_name: str, cause: str | None = LAMBDA_CAUSE
) -> WorkflowState:
    return with_records(state, error={"Error": error_name, "Cause": cause})


# --- Stop or terminate ---------------------------------------------------------
def test_stop_asks_ec2_then_reports_done_once_stopped(ec2: Any) -> None:
    state, instance_id = launched(ec2, ii_terminate_instance=False)

    first = stop_instance(ec2, state)

    assert (first.action, first.done) == ("stopped", False)
    assert first.instance_id == instance_id
    assert first.wait_seconds >= 1
    assert first.deadline is not None
    assert instance_state(ec2, instance_id) == "stopped"

    second = stop_instance(ec2, with_records(state, cleanup=first))

    assert (second.action, second.done) == ("stopped", True)
    assert second.deadline == first.deadline  # the time limit holds across calls
    assert second.error is None and second.relaunch is False


def test_terminate_when_asked(ec2: Any) -> None:
    state, instance_id = launched(ec2, ii_terminate_instance=True)

    records = clean_up(ec2, state)

    assert [r.done for r in records] == [False, True]
    assert {r.action for r in records} == {"terminated"}
    assert instance_state(ec2, instance_id) == "terminated"


def test_volumes_are_detached_then_deleted_when_asked(ec2: Any) -> None:
    state, instance_id = launched(ec2, ii_delete_volume=True)
    (volume_id,) = [
        v["VolumeId"]
        for v in ec2.describe_volumes()["Volumes"]
        if v["Attachments"] and v["Attachments"][0]["InstanceId"] == instance_id
    ]

    records = clean_up(ec2, state)

    assert len(records) > 2  # stop, detach, delete: one step per call
    assert records[-1].volumes == [volume_id]
    assert records[-1].volumes_deleted == [volume_id]
    assert (
        ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [volume_id]}])["Volumes"]
        == []
    )
    assert instance_state(ec2, instance_id) == "stopped"


def test_volumes_are_deleted_after_a_termination_too(ec2: Any) -> None:
    request = make_request(ii_terminate_instance=True, ii_delete_volume=True)
    request["instance_parameters"]["BlockDeviceMappings"] = [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 16, "DeleteOnTermination": False}}
    ]
    state, _ = launch(ec2, make_state(request))

    records = clean_up(ec2, state)

    assert len(records[-1].volumes) == 1
    assert records[-1].volumes_deleted == records[-1].volumes
    assert ec2.describe_volumes()["Volumes"] == []


def test_volumes_ec2_deleted_with_the_instance_are_not_reported_as_ours(ec2: Any) -> None:
    state, _ = launched(ec2, ii_terminate_instance=True, ii_delete_volume=True)

    records = clean_up(ec2, state)

    assert len(records[-1].volumes) == 1  # the AMI's root volume: DeleteOnTermination
    assert records[-1].volumes_deleted == []
    assert ec2.describe_volumes()["Volumes"] == []


def test_volumes_are_kept_by_default(ec2: Any) -> None:
    state, _ = launched(ec2)

    records = clean_up(ec2, state)

    assert records[-1].volumes_deleted == []
    assert len(ec2.describe_volumes()["Volumes"]) == len(records[-1].volumes) == 1


def test_an_instance_missing_from_the_state_is_found_by_its_tags(ec2: Any) -> None:
    """The Starter's Lambda failed after EC2 accepted the launch: no `instance` record."""
    state = make_state()
    instance_id = launch_instance(ec2, state, STACK_NAME).instance_id
    other_attempt = launch_instance(ec2, make_state(attempt=2), STACK_NAME).instance_id

    records = clean_up(ec2, state)

    assert {r.instance_id for r in records} == {instance_id}
    assert instance_state(ec2, instance_id) == "stopped"
    assert instance_state(ec2, other_attempt) == "running"


def test_no_instance_at_all_is_done_with_nothing_to_do(ec2: Any) -> None:
    record = stop_instance(ec2, make_state())

    assert (record.instance_id, record.action, record.done) == (None, "none", True)


def test_an_unknown_instance_id_is_done_with_nothing_to_do(ec2: Any) -> None:
    state, _ = launched(ec2)
    assert state.instance is not None
    gone = state.instance.model_copy(update={"instance_id": "i-0123456789abcdef0"})

    record = stop_instance(ec2, with_records(state, instance=gone))

    assert (record.instance_id, record.action, record.done) == ("i-0123456789abcdef0", "none", True)


def test_an_instance_already_stopped_is_done_at_once(ec2: Any) -> None:
    state, instance_id = launched(ec2)
    ec2.stop_instances(InstanceIds=[instance_id])

    assert [r.done for r in clean_up(ec2, state)] == [True]


def test_an_instance_already_terminated_is_at_rest_when_asked_to_stop(ec2: Any) -> None:
    """A spot interruption (or an OS shutdown with terminate behaviour) ended the
    instance: it cannot be stopped, and there is nothing left to do. Waiting for
    `stopped` would loop to the cleanup time limit and fail with CleanupFailed."""
    state, instance_id = launched(ec2, ii_terminate_instance=False)
    ec2.terminate_instances(InstanceIds=[instance_id])

    record = stop_instance(ec2, failed(state, "InstanceLost"))

    assert record.done is True


def test_a_one_time_spot_instance_is_terminated_since_ec2_cannot_stop_it(ec2: Any) -> None:
    """EC2 refuses to stop a one-time spot instance (what ii_cheapo launches).
    moto stops it anyway: a hook answers StopInstances with EC2's refusal."""
    state, instance_id = launched(ec2, ii_cheapo=True, ii_terminate_instance=False)
    assert state.instance is not None and state.instance.market == "spot"
    answer(
        ec2,
        "StopInstances",
        lambda _: error(
            "UnsupportedOperation",
            f"You can't stop the Spot Instance '{instance_id}' because it is associated "
            "with a one-time Spot Instance request.",
        ),
    )

    clean_up(ec2, state)

    assert instance_state(ec2, instance_id) == "terminated"


def test_an_instance_not_at_rest_by_the_deadline_is_cleanup_failed(ec2: Any) -> None:
    state, instance_id = launched(ec2)
    expired = CleanupRecord(
        instance_id=instance_id,
        action="stopped",
        done=False,
        deadline=timing.now() - timedelta(seconds=1),
    )

    with pytest.raises(CleanupFailed) as caught:
        stop_instance(ec2, with_records(failed(state, "CommandFailed"), cleanup=expired))

    assert instance_id in str(caught.value)
    assert "after CommandFailed" in str(caught.value)


def test_the_call_that_first_asks_for_the_stop_never_fails_on_the_deadline(
    ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invocation slower than the whole cleanup limit (a loaded account, a scaled
    rehearsal) still issues the stop and returns; only a later look may give up."""
    state, instance_id = launched(ec2)
    started = timing.now()
    # Every clock read after the first is past the deadline that first read set.
    later = iter([started, *[started + timedelta(days=1)] * 10])
    monkeypatch.setattr(timing, "now", lambda: next(later))

    record = stop_instance(ec2, state)

    assert not record.done
    assert instance_state(ec2, instance_id) in ("stopping", "stopped")


def test_throttled_stops_are_aws_throttled(ec2: Any) -> None:
    """RequestLimitExceeded is injected by a hook: moto does not throttle."""
    state, _ = launched(ec2)
    answer(ec2, "StopInstances", lambda _: error("RequestLimitExceeded"))

    with pytest.raises(AwsThrottled, match="RequestLimitExceeded"):
        stop_instance(ec2, state)


# --- After a failure: why, and whether to relaunch ------------------------------
def test_after_a_failure_the_record_says_why_and_relaunches(
    ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "1")
    state, instance_id = launched(ec2, n_retries_allowed=2, retry_delay_s=600)

    final = clean_up(ec2, failed(state, "CommandFailed"))[-1]

    assert final.error == "CommandFailed"
    assert final.cause is not None
    assert final.cause.startswith("command 1234 on i-0abc ended Failed; exit code 1")
    assert "errorType" not in final.cause and "stackTrace" not in final.cause
    assert f"[attempt 1; instance {instance_id} stopped]" in final.cause
    assert (final.relaunch, final.next_attempt, final.relaunch_wait_seconds) == (True, 2, 600)
    assert [(a.attempt, a.instance_id, a.error) for a in final.attempts] == [
        (1, instance_id, "CommandFailed")
    ]
    assert final.attempts[0].cause == "command 1234 on i-0abc ended Failed; exit code 1"


def test_the_records_of_earlier_attempts_are_kept(ec2: Any) -> None:
    earlier = {"attempt": 1, "instance_id": "i-0aaa", "error": "OutputMissing", "cause": "gone"}
    state = make_state(make_request(n_retries_allowed=2), attempt=2, past_attempts=[earlier])

    final = clean_up(ec2, failed(state, "CommandTimedOut", "timed out"))[-1]

    assert [(a.attempt, a.error) for a in final.attempts] == [
        (1, "OutputMissing"),
        (2, "CommandTimedOut"),
    ]
    assert final.cause == "timed out [attempt 2; no instance]"


@pytest.mark.parametrize(
    ("error_name", "attempt", "expected"),
    [
        ("CommandFailed", 1, (True, 600)),
        ("CommandFailed", 2, (True, 1200)),  # doubled each relaunch
        ("OutputMissing", 3, (True, 2400)),
        ("InstanceLost", 4, (False, 0)),  # past n_retries_allowed
        ("LaunchRejected", 1, (False, 0)),
        ("InvalidExecutionInput", 1, (False, 0)),
        ("Lambda.Unknown", 1, (False, 0)),
        ("States.Timeout", 1, (False, 0)),
    ],
)
def test_relaunch_only_for_relaunchable_errors_while_retries_remain(
    ec2: Any,
    monkeypatch: pytest.MonkeyPatch,
    error_name: str,
    attempt: int,
    expected: tuple[bool, int],
) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "1")
    state = make_state(make_request(n_retries_allowed=3, retry_delay_s=600), attempt=attempt)

    final = clean_up(ec2, failed(state, error_name))[-1]

    assert (final.relaunch, final.relaunch_wait_seconds) == expected
    assert final.next_attempt == (attempt + 1 if final.relaunch else None)
    assert final.error == error_name
    assert (error_name in RELAUNCHABLE) or not final.relaunch


def test_no_retry_delay_relaunches_at_once(ec2: Any) -> None:
    state = make_state(make_request(n_retries_allowed=1, retry_delay_s=0))

    final = clean_up(ec2, failed(state, "OutputMissing"))[-1]

    assert (final.relaunch, final.relaunch_wait_seconds) == (True, 0)


@pytest.mark.parametrize("cause", [None, "plain text cause", '"a JSON string"', "[1, 2]"])
def test_causes_that_are_not_lambda_json_are_kept(ec2: Any, cause: str | None) -> None:
    final = clean_up(ec2, failed(make_state(), "States.TaskFailed", cause))[-1]

    assert final.cause == f"{cause or ''} [attempt 1; no instance]"


def test_cleanup_of_a_rejected_request_still_uses_its_run_options(ec2: Any) -> None:
    """The Starter refused the request, yet an instance tagged for this attempt
    exists: the options that can be read (terminate) are still honoured."""
    instance_id = launch_instance(ec2, make_state(), STACK_NAME).instance_id
    rejected = make_request(ii_terminate_instance=True, ii_check_s3=True)

    first = stop_instance(ec2, failed(make_state(rejected), "InvalidExecutionInput", "bad"))

    assert (first.instance_id, first.action, first.done) == (instance_id, "terminated", False)
    assert instance_state(ec2, instance_id) == "terminated"


def test_an_instance_found_by_its_tags_is_followed_until_terminated(ec2: Any) -> None:
    """Once terminated, the instance no longer matches the tag search (live states
    only): later calls must follow the instance of the previous cleanup record."""
    request = make_request(ii_terminate_instance=True)
    instance_id = launch_instance(ec2, make_state(request), STACK_NAME).instance_id

    records = clean_up(ec2, failed(make_state(request), "OutputMissing", "no output"))

    assert [r.instance_id for r in records] == [instance_id] * len(records)
    assert records[-1].action == "terminated"
    assert records[-1].cause == f"no output [attempt 1; instance {instance_id} terminated]"


# --- Sweeper -----------------------------------------------------------------
@pytest.mark.parametrize(("terminate", "expected"), [(False, "stopped"), (True, "terminated")])
def test_the_sweeper_ends_only_the_executions_instances(
    ec2: Any, terminate: bool, expected: str
) -> None:
    request = make_request(ii_terminate_instance=terminate)
    ours = [
        launch_instance(ec2, make_state(request, attempt=attempt), STACK_NAME).instance_id
        for attempt in (1, 2)
    ]
    other_execution = make_state(
        request, execution={"id": EXECUTION_ARN + "-other", "name": "o", "start_time": timing.now()}
    )
    theirs = launch_instance(ec2, other_execution, STACK_NAME).instance_id
    untagged = ec2.run_instances(ImageId="ami-0a1b2c3d4e5f67890", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]

    swept = sweep_execution(ec2, EXECUTION_ARN, json.dumps(request))

    assert sorted(swept) == sorted(ours)
    assert [instance_state(ec2, i) for i in ours] == [expected, expected]
    assert instance_state(ec2, theirs) == "running"
    assert instance_state(ec2, untagged) == "running"


def test_the_sweeper_leaves_instances_already_at_rest(ec2: Any) -> None:
    state, instance_id = launched(ec2)
    ec2.stop_instances(InstanceIds=[instance_id])

    assert sweep_execution(ec2, EXECUTION_ARN, json.dumps(state.request)) == []


@pytest.mark.parametrize("raw_input", [None, "", "not json", "[1]", '{"run_options": 3}'])
def test_the_sweeper_stops_with_default_options_when_the_input_is_unreadable(
    ec2: Any, raw_input: str | None
) -> None:
    _, instance_id = launched(ec2)

    assert sweep_execution(ec2, EXECUTION_ARN, raw_input) == [instance_id]
    assert instance_state(ec2, instance_id) == "stopped"


def test_the_sweeper_does_not_leave_a_pending_instance_running(ec2: Any) -> None:
    """An execution aborted right after its launch leaves a `pending` instance,
    which EC2 cannot stop yet (IncorrectInstanceState), and the sweeper runs only
    once. moto puts instances in `running` at once: hooks play EC2's part."""
    _, instance_id = launched(ec2, ii_terminate_instance=False)

    def still_pending(parsed: dict[str, Any], **_: Any) -> None:
        for reservation in parsed.get("Reservations", []):
            for instance in reservation["Instances"]:
                instance["State"] = {"Code": 0, "Name": "pending"}

    ec2.meta.events.register("after-call.ec2.DescribeInstances", still_pending)
    answer(ec2, "StopInstances", lambda _: error("IncorrectInstanceState", "pending"))

    sweep_execution(ec2, EXECUTION_ARN, None)

    ec2.meta.events.unregister("after-call.ec2.DescribeInstances", still_pending)
    assert instance_state(ec2, instance_id) != "running"
