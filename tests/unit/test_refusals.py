"""Refusals a relaunch cannot fix, cleanup EC2 will not do as asked, and failures
nobody expected: each ends under a documented name with a one-line cause.

moto enforces no IAM and never refuses a stop, so the real AWS error codes are
answered through botocore `before-call` hooks (`unit_helpers.answer`), as each
test says.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from unit_helpers import (
    STACK_NAME,
    FakeLambdaContext,
    answer,
    error,
    instance_state,
    launch,
    make_request,
    make_state,
    with_records,
)

from amirun_core.cleanup import must_terminate, stop_instance
from amirun_core.errors import (
    RELAUNCHABLE,
    InternalError,
    PermissionDenied,
    one_line_cause,
)
from amirun_core.execution import RunOptions
from amirun_core.launch import launch_instance
from amirun_core.output import check_output

CHECKED = "amirun-unit-results"
PASS_ROLE_REFUSAL = (
    "You are not authorized to perform this operation. User: arn:aws:sts::123456789012:"
    "assumed-role/amirun-starter/amirun-starter is not authorized to perform: iam:PassRole "
    "on resource: arn:aws:iam::123456789012:role/forecast/nwm-forecast-role because no "
    "identity-based policy allows the iam:PassRole action"
)


# --- Permissions ---------------------------------------------------------------------
def test_a_denied_pass_role_names_the_role_and_the_stack_parameter(ec2: Any) -> None:
    """EC2's UnauthorizedOperation for iam:PassRole, answered by a hook (moto has no IAM)."""
    request = make_request()
    request["instance_parameters"]["IamInstanceProfile"] = {"Name": "nwm-forecast"}
    answer(ec2, "RunInstances", lambda _: error("UnauthorizedOperation", PASS_ROLE_REFUSAL))

    with pytest.raises(PermissionDenied) as raised:
        launch_instance(ec2, make_state(request), STACK_NAME, "amirun-*")

    message = str(raised.value)
    assert message.startswith(
        "RunInstances may not pass the role nwm-forecast-role of instance profile nwm-forecast"
    )
    assert "InstanceRoleNamePattern (amirun-*)" in message
    assert "matched against role names, not instance profile names" in message
    assert "PermissionDenied" not in RELAUNCHABLE


def test_another_denied_launch_is_permission_denied(ec2: Any) -> None:
    """An encoded UnauthorizedOperation (hook): not LaunchRejected, says how to read it."""
    answer(
        ec2,
        "RunInstances",
        lambda _: error("UnauthorizedOperation", "Encoded authorization failure message: x"),
    )

    with pytest.raises(PermissionDenied, match="decode-authorization-message"):
        launch_instance(ec2, make_state(), STACK_NAME)


@pytest.mark.parametrize("operation", ["HeadObject", "ListObjectsV2"])
def test_a_403_on_the_output_check_is_permission_denied_not_output_missing(
    s3: Any, operation: str
) -> None:
    """S3's 403, answered by a hook (moto has no bucket policies): rerunning the whole
    job would not help, so it is not OutputMissing (which relaunches)."""
    s3.create_bucket(Bucket=CHECKED)
    if operation == "HeadObject":
        answer(s3, "HeadObject", lambda _: error("403", "Forbidden", 403))
    else:
        answer(s3, "ListObjectsV2", lambda _: error("AccessDenied", "Access Denied", 403))
    state = make_state(make_request(ii_check_s3={"bucket": CHECKED, "prefix": "out/DAILY/"}))

    with pytest.raises(PermissionDenied) as raised:
        check_output(s3, state)

    assert f"s3://{CHECKED}/out/" in str(raised.value)
    assert "CheckedBucketPattern" in str(raised.value)
    assert "kms:Decrypt" in str(raised.value)


# --- Cleanup EC2 will not do as asked ---------------------------------------------------
def test_unsupported_operation_on_stop_terminates_instead(ec2: Any) -> None:
    """An instance-store root cannot be stopped: EC2 answers UnsupportedOperation
    (a hook; moto stops anything). The instance must not keep running."""
    state, record = launch(ec2, make_state(make_request(ii_terminate_instance=False)))
    stops = answer(
        ec2,
        "StopInstances",
        lambda _: error("UnsupportedOperation", "The instance does not have an EBS root device"),
    )
    records = []
    for _ in range(6):
        cleanup = stop_instance(ec2, state)
        records.append(cleanup)
        if cleanup.done:
            break
        state = with_records(state, cleanup=cleanup)

    assert len(stops) == 1
    assert records[-1].done is True
    assert records[-1].action == "terminated"
    assert instance_state(ec2, record.instance_id) == "terminated"


@pytest.mark.parametrize(("root", "terminate"), [("instance-store", True), ("ebs", False)])
def test_an_instance_store_root_is_terminated_without_trying_a_stop(
    root: str, terminate: bool
) -> None:
    instance = {"RootDeviceType": root, "State": {"Name": "running"}}

    assert must_terminate(instance, RunOptions(ii_terminate_instance=False)) is terminate


# --- Failures nobody expected ----------------------------------------------------------
def error_contract(handler: Any) -> Any:
    # Imported late: observability sets up Powertools Metrics from the environment
    # the fixtures give every handler.
    from amirun_core.observability import error_contract as contract

    return contract(handler)


def test_an_unexpected_exception_is_internal_error_naming_it() -> None:
    def crashing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise KeyError("InstanceId")

    with pytest.raises(InternalError) as raised:
        error_contract(crashing)({}, FakeLambdaContext())

    assert str(raised.value) == "KeyError: 'InstanceId'"
    assert "InternalError" not in RELAUNCHABLE


def test_an_unexpected_access_refusal_is_permission_denied_naming_the_call(ec2: Any) -> None:
    """EC2's UnauthorizedOperation on a call no step expects to be refused (hook)."""
    answer(ec2, "DescribeVolumes", lambda _: error("UnauthorizedOperation", "not allowed"))

    def describing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(ec2.describe_volumes())

    with pytest.raises(PermissionDenied, match=r"^DescribeVolumes was refused"):
        error_contract(describing)({}, FakeLambdaContext())


def test_an_unexpected_aws_error_is_internal_error(ec2: Any) -> None:
    answer(ec2, "DescribeVolumes", lambda _: error("InvalidParameterCombination", "odd"))

    def describing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(ec2.describe_volumes())

    with pytest.raises(InternalError, match="DescribeVolumes: InvalidParameterCombination: odd"):
        error_contract(describing)({}, FakeLambdaContext())


def test_errors_raised_on_purpose_pass_through_unchanged() -> None:
    def refusing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise PermissionDenied("as raised")

    with pytest.raises(PermissionDenied, match=r"^as raised$"):
        error_contract(refusing)({}, FakeLambdaContext())


# --- One line ---------------------------------------------------------------------------
def test_a_lambda_error_payload_becomes_its_message_on_one_line() -> None:
    payload = json.dumps(
        {
            "errorMessage": "command 1 ended Failed; stderr: line one\nline two\n",
            "errorType": "CommandFailed",
            "stackTrace": ['  File "/var/task/app.py", line 26\n'],
        }
    )

    assert one_line_cause(payload) == "command 1 ended Failed; stderr: line one | line two"


def test_a_stderr_ending_in_a_newline_leaves_no_stray_separator() -> None:
    """The part after a multi-line stderr continues the line: no ` | ;` between them."""
    cause = "command 1 ended Failed; stderr: line one\nline two\n; full output: s3://b/k"

    assert one_line_cause(cause) == (
        "command 1 ended Failed; stderr: line one | line two; full output: s3://b/k"
    )


def test_a_stack_trace_is_dropped_and_blanks_squeezed() -> None:
    text = "boom   happened\n\nTraceback (most recent call last):\n  File 'x.py'\nValueError"

    assert one_line_cause(text) == "boom happened"


def test_a_long_cause_is_cut_and_says_so() -> None:
    cause = one_line_cause("x" * 5000)

    assert len(cause) == 2000
    assert cause.endswith("...")


@pytest.mark.parametrize("cause", [None, ""])
def test_no_cause_is_an_empty_line(cause: str | None) -> None:
    assert one_line_cause(cause) == ""


def test_the_cli_prints_a_raw_lambda_cause_as_one_line() -> None:
    """What `amirun status` and `amirun run` print for a Fail state fed Lambda's JSON."""
    import io

    from amirun.commands.common import print_result
    from amirun.progress import RunResult

    cause = json.dumps(
        {
            "errorMessage": "instance i-0abc is still stopping\nat the cleanup time limit",
            "errorType": "CleanupFailed",
            "stackTrace": ['  File "/var/task/app.py", line 26\n'],
        }
    )
    out = io.StringIO()

    print_result(RunResult(status="FAILED", error="CleanupFailed", cause=cause), out)

    (line,) = [line for line in out.getvalue().splitlines() if "cause" in line]
    assert line == "  cause     instance i-0abc is still stopping | at the cleanup time limit"
