"""Commander and EC2Poller: the commands are sent once and followed to an end.

moto implements send_command and list_commands, reports Success for every
invocation and lacks cancel_command: other statuses, SSM errors and the cancel
are answered through botocore `before-call` hooks (`answer`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import (
    OUTPUT_BUCKET,
    RUN_DATE,
    START_TIME,
    answer,
    error,
    invocation,
    launch,
    make_request,
    make_state,
    ok,
    with_records,
)

from amirun_core import timing
from amirun_core.command import (
    DOCUMENT,
    PLUGIN_OUTPUT,
    TAIL_BYTES,
    command_comment,
    follow_command,
    output_prefix,
    s3_object_of_url,
    send_commands,
)
from amirun_core.errors import (
    RELAUNCHABLE,
    CommandFailed,
    CommandTimedOut,
    ConfigurationError,
    InstanceLost,
    InstanceNotRegistered,
    PermissionDenied,
    one_line_cause,
)
from amirun_core.execution import parse_execution
from amirun_core.state import CommandRecord, WorkflowState


def ready_state(ec2: Any, **run_options: Any) -> WorkflowState:
    state, _ = launch(ec2, make_state(make_request(**run_options)))
    return state


def sent_state(ec2: Any, ssm: Any, **run_options: Any) -> tuple[WorkflowState, CommandRecord]:
    state = ready_state(ec2, **run_options)
    record = send_commands(ssm, state, OUTPUT_BUCKET)
    return with_records(state, command=record), record


# --- Commander -------------------------------------------------------------------
def test_commands_go_to_the_instance_with_run_shell_script(ec2: Any, ssm: Any) -> None:
    state = ready_state(ec2, timeout_s=5400)
    assert state.instance is not None
    instance_id = state.instance.instance_id

    record = send_commands(ssm, state, OUTPUT_BUCKET)

    (command,) = ssm.list_commands(InstanceId=instance_id)["Commands"]
    assert command["CommandId"] == record.command_id
    assert command["DocumentName"] == DOCUMENT == "AWS-RunShellScript"
    assert command["InstanceIds"] == [instance_id]
    assert command["Parameters"]["commands"] == [
        f"echo run {RUN_DATE} > /tmp/result.txt",
        f"aws s3 cp /tmp/result.txt s3://{OUTPUT_BUCKET}/daily/{RUN_DATE}/result.txt",
    ]
    assert command["Parameters"]["executionTimeout"] == ["5400"]
    assert "workingDirectory" not in command["Parameters"]
    assert command["OutputS3BucketName"] == OUTPUT_BUCKET
    assert command["OutputS3KeyPrefix"] == output_prefix(state) == "runs/unit-test/attempt-1"
    assert command["Comment"] == command_comment(state)
    assert len(command["Comment"]) <= 100  # SSM's limit
    assert record.instance_id == instance_id
    assert record.done is False
    assert record.deadline - record.sent_at == timedelta(seconds=5400)
    assert (
        record.output_url == f"s3://{OUTPUT_BUCKET}/runs/unit-test/attempt-1/{record.command_id}/"
    )
    assert record.wait_seconds == timing.command_look_interval(600, 5400, 1) == 600


def test_the_working_directory_is_passed_when_given(ec2: Any, ssm: Any) -> None:
    state = ready_state(ec2, working_directory="/home/ec2-user")
    calls = answer(ssm, "SendCommand")

    send_commands(ssm, state, None)

    (params,) = calls
    assert params["Parameters"]["workingDirectory"] == ["/home/ec2-user"]
    assert "OutputS3BucketName" not in params  # no bucket configured: no S3 output


def test_a_retried_commander_finds_its_command_instead_of_sending_another(
    ec2: Any, ssm: Any
) -> None:
    state = ready_state(ec2)
    assert state.instance is not None
    sends = answer(ssm, "SendCommand")

    first = send_commands(ssm, state, OUTPUT_BUCKET)
    retry = send_commands(ssm, state, OUTPUT_BUCKET)

    assert len(sends) == 1
    assert retry.command_id == first.command_id
    assert len(ssm.list_commands(InstanceId=state.instance.instance_id)["Commands"]) == 1


def test_the_next_attempt_sends_its_own_command(ec2: Any, ssm: Any) -> None:
    state = ready_state(ec2)
    first = send_commands(ssm, state, OUTPUT_BUCKET)
    next_attempt = state.model_copy(update={"attempt": 2})

    second = send_commands(ssm, next_attempt, OUTPUT_BUCKET)

    assert second.command_id != first.command_id
    assert command_comment(next_attempt) != command_comment(state)
    assert output_prefix(next_attempt).endswith("attempt-2")


def test_an_instance_ssm_does_not_know_yet_is_instance_not_registered(ec2: Any, ssm: Any) -> None:
    """InvalidInstanceId is injected by a hook: moto's send_command always succeeds."""
    state = ready_state(ec2)
    answer(
        ssm, "SendCommand", lambda _: error("InvalidInstanceId", "Instances not in a valid state")
    )

    with pytest.raises(InstanceNotRegistered, match="InvalidInstanceId"):
        send_commands(ssm, state, OUTPUT_BUCKET)


def test_other_send_errors_are_command_failed(ec2: Any, ssm: Any) -> None:
    """An error SSM may not repeat on a fresh instance stays relaunchable (stubbed:
    moto's SendCommand always accepts)."""
    state = ready_state(ec2)
    answer(ssm, "SendCommand", lambda _: error("InternalServerError", "try again", 500))

    with pytest.raises(CommandFailed, match="InternalServerError"):
        send_commands(ssm, state, OUTPUT_BUCKET)


@pytest.mark.parametrize(
    ("code", "names"),
    [
        (
            "InvalidOutputFolder",
            f"output bucket {OUTPUT_BUCKET} (stack parameter OutputBucketName)",
        ),
        ("InvalidDocument", "SSM document AWS-RunShellScript"),
        ("InvalidParameters", "run_options.working_directory"),
        ("UnsupportedPlatformType", "Linux and macOS only"),
    ],
)
def test_a_refusal_for_good_is_a_configuration_error_naming_the_setting(
    ec2: Any, ssm: Any, code: str, names: str
) -> None:
    """SendCommand's real error codes, stubbed through a botocore hook: moto accepts
    every SendCommand. Not relaunchable: a fresh instance meets the same refusal."""
    state = ready_state(ec2)
    answer(ssm, "SendCommand", lambda _: error(code, "refused"))

    with pytest.raises(ConfigurationError) as raised:
        send_commands(ssm, state, OUTPUT_BUCKET)

    assert code in str(raised.value)
    assert names in str(raised.value)
    assert "ConfigurationError" not in RELAUNCHABLE


def test_an_access_denied_send_names_the_permission(ec2: Any, ssm: Any) -> None:
    """SSM's AccessDeniedException, stubbed through a botocore hook (moto enforces no
    IAM): PermissionDenied, naming ssm:SendCommand and the three resources it needs."""
    state = ready_state(ec2)
    message = "User: arn:aws:sts::123456789012:assumed-role/x/y is not authorized"
    answer(ssm, "SendCommand", lambda _: error("AccessDeniedException", message, 400))

    with pytest.raises(PermissionDenied) as raised:
        send_commands(ssm, state, OUTPUT_BUCKET)

    text = str(raised.value)
    assert text.startswith("SendCommand was refused (AccessDeniedException: User: ")
    assert "ssm:SendCommand on the document AWS-RunShellScript" in text
    assert f"output bucket {OUTPUT_BUCKET}" in text
    assert "PermissionDenied" not in RELAUNCHABLE


def test_no_instance_in_the_state_is_command_failed(ssm: Any) -> None:
    with pytest.raises(CommandFailed):
        send_commands(ssm, make_state(), OUTPUT_BUCKET)


# --- Poller ----------------------------------------------------------------------
def test_a_successful_command_is_done(ec2: Any, ssm: Any) -> None:
    state, _ = sent_state(ec2, ssm)

    record = follow_command(ssm, ec2, state)

    assert record.done is True
    assert record.status == "Success"
    assert record.exit_code == 0
    assert record.ended_at is not None


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Delayed"])
def test_a_command_on_its_way_keeps_the_poller_waiting(ec2: Any, ssm: Any, status: str) -> None:
    state, sent = sent_state(ec2, ssm)
    answer(ssm, "GetCommandInvocation", lambda p: invocation(p, status))
    cancels = answer(ssm, "CancelCommand", lambda _: ok())

    record = follow_command(ssm, ec2, state)

    assert (record.status, record.done) == (status, False)
    assert record.exit_code is None
    assert record.wait_seconds == sent.wait_seconds
    assert cancels == []


def test_an_invocation_ssm_has_not_created_yet_keeps_the_poller_waiting(ec2: Any, ssm: Any) -> None:
    state, _ = sent_state(ec2, ssm)
    answer(ssm, "GetCommandInvocation", lambda _: error("InvocationDoesNotExist", ""))

    record = follow_command(ssm, ec2, state)

    assert (record.status, record.done) == ("Pending", False)


def test_an_instance_gone_under_a_running_command_is_instance_lost(ec2: Any, ssm: Any) -> None:
    """SSM keeps reporting InProgress for a while after a spot interruption (stubbed:
    moto reports Success at once); the poller looks at the instance itself."""
    state, sent = sent_state(ec2, ssm)
    answer(ssm, "GetCommandInvocation", lambda p: invocation(p, "InProgress"))
    ec2.terminate_instances(InstanceIds=[sent.instance_id])

    with pytest.raises(InstanceLost, match=sent.instance_id):
        follow_command(ssm, ec2, state)


def test_a_failed_command_is_command_failed_with_exit_code_and_stderr(ec2: Any, ssm: Any) -> None:
    state, sent = sent_state(ec2, ssm)
    stderr = "x" * 5_000 + "\nupload failed: AccessDenied"
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(p, "Failed", ResponseCode=2, StandardErrorContent=stderr),
    )

    with pytest.raises(CommandFailed) as caught:
        follow_command(ssm, ec2, state)

    message = str(caught.value)
    assert "ended Failed" in message
    assert "exit code 2" in message
    assert "upload failed: AccessDenied" in message
    assert "x" * 2_000 not in message  # only the tail of stderr
    assert sent.command_id in message
    assert str(sent.output_url) in message  # where the full output is


def test_a_stderr_ending_in_a_newline_makes_a_clean_one_line_cause(ec2: Any, ssm: Any) -> None:
    """Output of a failed command usually ends in a newline: the cause still reads
    `stderr: ...; full output: ...` on one line (stubbed: moto's invocations always succeed)."""
    state, sent = sent_state(ec2, ssm)
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(p, "Failed", ResponseCode=1, StandardErrorContent="no input\n"),
    )

    with pytest.raises(CommandFailed) as caught:
        follow_command(ssm, ec2, state)

    cause = one_line_cause(str(caught.value))
    assert f"stderr: no input; full output: {sent.output_url}" in cause
    assert " | ;" not in cause


def ssm_output(sent: CommandRecord, stream: str) -> tuple[str, str]:
    """Where SSM writes a stream of AWS-RunShellScript's output, under the command's prefix."""
    bucket, _, prefix = str(sent.output_url).removeprefix("s3://").partition("/")
    return bucket, f"{prefix}{sent.instance_id}/{PLUGIN_OUTPUT}/{stream}"


def long_failure(ssm: Any, sent: CommandRecord) -> str:
    """SSM's answer for a failed command whose stderr passed 8,000 characters: its
    first 8,000 only, and the whole stream's URL (stubbed: moto's invocations always
    succeed and carry no URL)."""
    head = "starting\n" + "x" * 7_991
    bucket, key = ssm_output(sent, "stderr")
    url = f"https://s3.us-east-1.amazonaws.com/{bucket}/{key}"
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(
            p, "Failed", ResponseCode=1, StandardErrorContent=head, StandardErrorUrl=url
        ),
    )
    return head


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.us-east-1.amazonaws.com/out-bucket/runs/a%20b/i-1/stdout",
        "https://s3.amazonaws.com/out-bucket/runs/a%20b/i-1/stdout",
        "https://out-bucket.s3.us-gov-west-1.amazonaws.com/runs/a%20b/i-1/stdout",
        "https://s3.cn-north-1.amazonaws.com.cn/out-bucket/runs/a%20b/i-1/stdout",
    ],
)
def test_the_output_url_ssm_gives_names_the_object(url: str) -> None:
    """GetCommandInvocation's StandardOutputUrl/StandardErrorUrl: "The URL for the
    complete text written by the plugin to stdout in Amazon S3. If an S3 bucket
    wasn't specified, then this string is empty."
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html
    """
    assert s3_object_of_url(url) == ("out-bucket", "runs/a b/i-1/stdout")


@pytest.mark.parametrize("url", ["", None, "https://example.com/x"])
def test_no_output_url_means_no_s3_read(url: str | None) -> None:
    assert s3_object_of_url(url) is None


def test_a_long_stderrs_real_tail_comes_from_s3_with_a_ranged_get(
    ec2: Any, ssm: Any, s3: Any
) -> None:
    state, sent = sent_state(ec2, ssm)
    long_failure(ssm, sent)
    bucket, key = ssm_output(sent, "stderr")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=("y" * 30_000 + "\nERROR: disk full\n").encode())
    gets = answer(s3, "GetObject")

    with pytest.raises(CommandFailed) as caught:
        follow_command(ssm, ec2, state, s3)

    assert bucket == OUTPUT_BUCKET
    assert (
        key
        == f"runs/unit-test/attempt-1/{sent.command_id}/{sent.instance_id}/{PLUGIN_OUTPUT}/stderr"
    )
    assert [g["Range"] for g in gets] == [f"bytes=-{TAIL_BYTES}"]
    message = str(caught.value)
    assert "ERROR: disk full" in message
    assert "starting" not in message


def test_a_short_stderr_is_taken_from_ssm_without_reading_s3(ec2: Any, ssm: Any, s3: Any) -> None:
    state, _ = sent_state(ec2, ssm)
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(p, "Failed", ResponseCode=1, StandardErrorContent="short\n"),
    )
    gets = answer(s3, "GetObject")

    with pytest.raises(CommandFailed, match="stderr: short"):
        follow_command(ssm, ec2, state, s3)

    assert gets == []


def test_an_unreadable_s3_output_keeps_ssms_start_and_says_where_the_end_is(
    ec2: Any, ssm: Any, s3: Any
) -> None:
    state, sent = sent_state(ec2, ssm)
    long_failure(ssm, sent)  # nothing in S3: NoSuchBucket

    with pytest.raises(CommandFailed) as caught:
        follow_command(ssm, ec2, state, s3)

    message = str(caught.value)
    assert "the end is in s3://" in message
    assert "starting" in message
    assert sent.command_id in message


def test_a_command_that_ran_out_of_time_is_command_timed_out(ec2: Any, ssm: Any) -> None:
    state, _ = sent_state(ec2, ssm)
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(p, "TimedOut", StatusDetails="Execution Timed Out", ResponseCode=124),
    )

    with pytest.raises(CommandTimedOut, match="Execution Timed Out"):
        follow_command(ssm, ec2, state)


def test_a_command_never_delivered_is_command_failed(ec2: Any, ssm: Any) -> None:
    state, _ = sent_state(ec2, ssm)
    answer(
        ssm,
        "GetCommandInvocation",
        lambda p: invocation(p, "TimedOut", StatusDetails="Delivery Timed Out"),
    )

    with pytest.raises(CommandFailed, match="Delivery Timed Out"):
        follow_command(ssm, ec2, state)


@pytest.mark.parametrize("status", ["Cancelled", "Cancelling"])
def test_a_cancelled_command_is_command_failed(ec2: Any, ssm: Any, status: str) -> None:
    state, _ = sent_state(ec2, ssm)
    answer(ssm, "GetCommandInvocation", lambda p: invocation(p, status))

    with pytest.raises(CommandFailed, match=status):
        follow_command(ssm, ec2, state)


def test_a_command_still_running_at_its_deadline_is_cancelled(ec2: Any, ssm: Any) -> None:
    """moto lacks cancel_command: a hook records the call and answers it."""
    state, sent = sent_state(ec2, ssm)
    late = sent.model_copy(update={"deadline": timing.now() - timedelta(seconds=1)})
    answer(ssm, "GetCommandInvocation", lambda p: invocation(p, "InProgress"))
    cancels = answer(ssm, "CancelCommand", lambda _: ok())

    with pytest.raises(CommandTimedOut) as caught:
        follow_command(ssm, ec2, with_records(state, command=late))

    assert cancels == [{"CommandId": sent.command_id, "InstanceIds": [sent.instance_id]}]
    assert sent.command_id in str(caught.value)
    assert "cancelled" in str(caught.value)


def test_a_cancel_racing_the_end_of_the_command_still_times_out(ec2: Any, ssm: Any) -> None:
    state, sent = sent_state(ec2, ssm)
    late = sent.model_copy(update={"deadline": timing.now() - timedelta(seconds=1)})
    answer(ssm, "GetCommandInvocation", lambda p: invocation(p, "InProgress"))
    answer(ssm, "CancelCommand", lambda _: error("InvalidCommandId", "already finished"))

    with pytest.raises(CommandTimedOut):
        follow_command(ssm, ec2, with_records(state, command=late))


def test_no_command_in_the_state_is_command_failed(ssm: Any, ec2: Any) -> None:
    with pytest.raises(CommandFailed):
        follow_command(ssm, ec2, make_state())


# --- What the run executed, recorded once per run ------------------------------------------
def test_the_resolved_commands_are_sent_and_recorded_beside_the_output(
    ec2: Any, ssm: Any, s3: Any
) -> None:
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    state = ready_state(ec2)
    resolved = state.resolution().model_dump(mode="json")
    # Resolved on another day than the start's: the state's resolution is what runs.
    state = with_records(state, resolved={**resolved, "daily_date": "20240229"})

    record = send_commands(ssm, state, OUTPUT_BUCKET, s3)

    (command,) = ssm.list_commands()["Commands"]
    kept = [
        "echo run 20240229 > /tmp/result.txt",
        f"aws s3 cp /tmp/result.txt s3://{OUTPUT_BUCKET}/daily/20240229/result.txt",
    ]
    assert command["Parameters"]["commands"] == kept
    key = "runs/unit-test/execution.json"
    assert record.execution_url == f"s3://{OUTPUT_BUCKET}/{key}"
    assert output_prefix(state).startswith("runs/unit-test/")
    body = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read())
    assert body["commands"] == kept
    assert body["request"] == state.request
    assert body["daily_date"] == "20240229"


def test_a_relaunch_records_the_same_object_again(ec2: Any, ssm: Any, s3: Any) -> None:
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    first = send_commands(ssm, ready_state(ec2), OUTPUT_BUCKET, s3)
    relaunched, _ = launch(ec2, make_state(make_request(), attempt=2))

    second = send_commands(ssm, relaunched, OUTPUT_BUCKET, s3)

    assert first.execution_url == second.execution_url
    listed = s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix="runs/unit-test/")["Contents"]
    assert [o["Key"] for o in listed] == ["runs/unit-test/execution.json"]


# --- the execution JSON beside the run's outputs -------------------------------------------
NEXTGEN_BUCKET = "amirun-unit-nextgen"


def nextgen_request(prefix: str, **options: Any) -> dict[str, Any]:
    request = make_request(ii_check_s3=True, **options)
    request["commands"] = [
        f"echo --s3_bucket {NEXTGEN_BUCKET} --s3_prefix {prefix}",
        f"run --date DAILY --out s3://{NEXTGEN_BUCKET}/{prefix}/x.csv",
    ]
    return request


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("outputs/qkrig/qkrig.DAILY", "outputs/qkrig/qkrig.20250531/datastream-metadata"),
        (
            "forcings/ngen.DAILY/forcing_short_range/06",
            "forcings/ngen.20250531/forcing_short_range/06/metadata",
        ),
    ],
)
def test_the_executed_json_is_written_beside_the_outputs(
    ec2: Any, ssm: Any, s3: Any, prefix: str, key: str
) -> None:
    """Where the original's Commander wrote it (under the prefix, `metadata/` for a
    forcing prefix), as the run executes it: valid input again, for that very day."""
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    s3.create_bucket(Bucket=NEXTGEN_BUCKET)
    state, _ = launch(ec2, make_state(nextgen_request(prefix, n_retries_allowed=1)))

    record = send_commands(ssm, state, OUTPUT_BUCKET, s3)

    assert record.record_url == f"s3://{NEXTGEN_BUCKET}/{key}/execution.json"
    written = s3.get_object(Bucket=NEXTGEN_BUCKET, Key=f"{key}/execution.json")["Body"].read()
    executed = json.loads(written)
    assert executed["commands"] == state.resolved_commands()
    assert executed["run_options"] == state.request["run_options"]
    assert "DAILY" not in json.dumps(executed["commands"])
    assert parse_execution(executed).resolve(START_TIME).daily_date == "20250531"


def test_no_output_prefix_no_record_beside_outputs(ec2: Any, ssm: Any, s3: Any) -> None:
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    record = send_commands(ssm, ready_state(ec2), OUTPUT_BUCKET, s3)
    assert record.record_url is None


def test_a_refused_record_names_the_parameter_and_sends_nothing(
    ec2: Any, ssm: Any, s3: Any
) -> None:
    """The 403 is injected by a botocore hook: moto enforces no IAM."""
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    state, _ = launch(ec2, make_state(nextgen_request("outputs/qkrig/qkrig.DAILY")))
    refused = answer(
        s3,
        "PutObject",
        lambda params: (
            error("AccessDenied", "Access Denied", 403)
            if params["Bucket"] == NEXTGEN_BUCKET
            else None
        ),
    )

    with pytest.raises(PermissionDenied, match="CheckedBucketPattern"):
        send_commands(ssm, state, OUTPUT_BUCKET, s3)

    assert [call["Bucket"] for call in refused] == [OUTPUT_BUCKET, NEXTGEN_BUCKET]
    assert ssm.list_commands()["Commands"] == []
