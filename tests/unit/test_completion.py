"""The command's end as an event: the token is stored, found and settled once.

Each test waits on a real task token: a one-state machine on moto's executor
whose waitForTaskToken task hands its token over through SQS, so SendTask*
ends a real wait and its outcome is the execution's. moto's SSM reports
every command as Success: other statuses come from a botocore `before-call`
hook (`answer`); moto's SendTaskFailure drops the cause, which
`task_tokens_as_on_aws` (the rehearsal's fix) restores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto.core.config import default_user_config
from unit_helpers import (
    COMMAND_WAIT_TABLE,
    EXECUTION_ARN,
    OUTPUT_BUCKET,
    answer,
    error,
    invocation,
    launch,
    make_request,
    make_state,
    ok,
    with_records,
)

from amirun.local.runner import create_command_wait_table
from amirun.local.world import task_tokens_as_on_aws
from amirun_core import aws
from amirun_core.command import send_commands
from amirun_core.completion import (
    EC2_DETAIL_TYPE,
    SSM_DETAIL_TYPE,
    EndServices,
    Notice,
    Waiter,
    find_waiter,
    forget,
    handle_event,
    store_token,
    wait_for_end,
)
from amirun_core.errors import AwsThrottled
from amirun_core.state import CommandRecord, WorkflowState

TABLE = COMMAND_WAIT_TABLE


@dataclass
class TokenWait:
    """A real execution waiting on a task token."""

    sfn: Any
    execution_arn: str
    token: str

    def outcome(self) -> dict[str, Any]:
        """The execution once it ended (after at most 10 s: moto runs it in a thread)."""
        for _ in range(200):
            described: dict[str, Any] = self.sfn.describe_execution(executionArn=self.execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise AssertionError("the execution is still waiting on its token")

    def still_waiting(self) -> bool:
        status = self.sfn.describe_execution(executionArn=self.execution_arn)["status"]
        return bool(status == "RUNNING")


@pytest.fixture
def clients(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setitem(default_user_config, "stepfunctions", {"execute_state_machine": True})
    dynamodb = aws.client("dynamodb")
    create_command_wait_table(dynamodb, TABLE)
    with task_tokens_as_on_aws():
        yield {
            name: aws.client(name) for name in ("stepfunctions", "dynamodb", "ssm", "ec2", "sqs")
        }


def start_token_wait(clients: dict[str, Any], timeout_s: int = 60) -> TokenWait:
    sfn, sqs = clients["stepfunctions"], clients["sqs"]
    queue = sqs.create_queue(QueueName=f"tokens-{time.monotonic_ns()}")["QueueUrl"]
    definition = {
        "StartAt": "WaitForCommandEnd",
        "States": {
            "WaitForCommandEnd": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": timeout_s,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"wait-{time.monotonic_ns()}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/unit",
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    for _ in range(200):
        messages = sqs.receive_message(QueueUrl=queue).get("Messages", [])
        if messages:
            return TokenWait(sfn, arn, json.loads(messages[0]["Body"])["token"])
        time.sleep(0.05)
    raise AssertionError("no task token came")


def sent(clients: dict[str, Any], **run_options: Any) -> tuple[WorkflowState, CommandRecord]:
    state, _ = launch(clients["ec2"], make_state(make_request(**run_options)))
    record = send_commands(clients["ssm"], state, OUTPUT_BUCKET)
    return with_records(state, command=record), record


def ssm_event(record: CommandRecord, status: str, command_id: str | None = None) -> dict[str, Any]:
    return {
        "source": "aws.ssm",
        "detail-type": SSM_DETAIL_TYPE,
        "detail": {
            "command-id": command_id or record.command_id,
            "document-name": "AWS-RunShellScript",
            "instance-id": record.instance_id,
            "status": status,
        },
    }


def ec2_event(instance_id: str, state: str) -> dict[str, Any]:
    return {
        "source": "aws.ec2",
        "detail-type": EC2_DETAIL_TYPE,
        "detail": {"instance-id": instance_id, "state": state},
    }


def services(clients: dict[str, Any]) -> EndServices:
    c = clients
    return EndServices(c["stepfunctions"], c["dynamodb"], TABLE, c["ssm"], c["ec2"])


def handle(clients: dict[str, Any], event: dict[str, Any]) -> Notice:
    return handle_event(services(clients), event)


def wait(clients: dict[str, Any], state: WorkflowState, token: str) -> Notice:
    return wait_for_end(services(clients), state, token)


class SsmView:
    """What GetCommandInvocation answers from now on (moto says Success at once)."""

    def __init__(self, ssm: Any, status: str) -> None:
        self.status, self.fields = status, {}
        self.calls = answer(ssm, "GetCommandInvocation", self._answer)

    def _answer(self, params: dict[str, Any]) -> Any:
        return invocation(params, self.status, **self.fields)

    def now(self, status: str, **fields: Any) -> None:
        self.status, self.fields = status, fields


def still_running(clients: dict[str, Any]) -> SsmView:
    return SsmView(clients["ssm"], "InProgress")


def waiting_run(
    clients: dict[str, Any], timeout_s: int = 60
) -> tuple[WorkflowState, CommandRecord, TokenWait, SsmView]:
    """A command still running, whose end a real task token waits for (the Waiter stored it)."""
    state, record = sent(clients)
    token = start_token_wait(clients, timeout_s)
    ssm = still_running(clients)
    assert wait(clients, state, token.token).outcome == "running"
    return state, record, token, ssm


# --- WaitForCommandEnd ---------------------------------------------------------
def test_the_token_is_stored_before_the_look(clients: dict[str, Any]) -> None:
    """A command that ends before the token is written is found by the look; one that
    ends after it finds the token: so the look must come after the write."""
    state, record = sent(clients)
    seen_at_look: list[Waiter | None] = []

    def look(params: dict[str, Any]) -> Any:
        seen_at_look.append(find_waiter(clients["dynamodb"], TABLE, record.instance_id))
        return invocation(params, "InProgress")

    answer(clients["ssm"], "GetCommandInvocation", look)

    notice = wait(clients, state, "token-1")

    assert notice.outcome == "running"
    (stored,) = seen_at_look
    assert stored is not None
    assert stored.task_token == "token-1"
    assert stored.command == record
    assert stored.execution_id == EXECUTION_ARN


def test_the_item_expires_after_the_command_deadline(clients: dict[str, Any]) -> None:
    state, record = sent(clients, timeout_s=3600)
    still_running(clients)

    wait(clients, state, "token-1")

    item = clients["dynamodb"].get_item(
        TableName=TABLE, Key={"instance_id": {"S": record.instance_id}}
    )["Item"]
    assert int(item["expires_at"]["N"]) > record.deadline.timestamp()


def test_a_command_that_already_ended_is_settled_by_the_look(clients: dict[str, Any]) -> None:
    state, record = sent(clients)  # moto: Success at once
    token = start_token_wait(clients)

    notice = wait(clients, state, token.token)

    assert notice.outcome == "succeeded"
    ended = token.outcome()
    assert ended["status"] == "SUCCEEDED"
    output = CommandRecord.model_validate_json(ended["output"])
    assert (output.command_id, output.status, output.done) == (record.command_id, "Success", True)
    assert find_waiter(clients["dynamodb"], TABLE, record.instance_id) is None


def test_a_fresh_token_replaces_the_one_that_timed_out(clients: dict[str, Any]) -> None:
    state, record = sent(clients)
    still_running(clients)
    wait(clients, state, "old-token")

    wait(clients, state, "fresh-token")
    forget(clients["dynamodb"], TABLE, Waiter("old-token", record, EXECUTION_ARN))

    found = find_waiter(clients["dynamodb"], TABLE, record.instance_id)
    assert found is not None and found.task_token == "fresh-token"


# --- CommandEnd: each end event settles the wait like the poller would ------------
def test_a_success_event_ends_the_wait_with_the_poller_record(clients: dict[str, Any]) -> None:
    _state, record, token, ssm = waiting_run(clients)
    ssm.now("Success", ResponseCode=0, StandardOutputContent="done\n")

    notice = handle(clients, ssm_event(record, "Success"))

    assert notice.outcome == "succeeded"
    ended = token.outcome()
    assert ended["status"] == "SUCCEEDED"
    output = CommandRecord.model_validate_json(ended["output"])
    assert (output.status, output.exit_code, output.done) == ("Success", 0, True)
    assert output.stdout_tail == "done\n"
    assert output.ended_at is not None
    assert (output.command_id, output.output_url) == (record.command_id, record.output_url)


@pytest.mark.parametrize(
    ("status", "details", "error_name", "in_cause"),
    [
        ("Failed", "Failed", "CommandFailed", "exit code 3"),
        ("Cancelled", "Cancelled", "CommandFailed", "ended Cancelled"),
        ("TimedOut", "Execution Timed Out", "CommandTimedOut", "Execution Timed Out"),
        ("TimedOut", "Delivery Timed Out", "CommandFailed", "Delivery Timed Out"),
    ],
)
def test_a_failure_event_ends_the_wait_with_the_poller_error(
    clients: dict[str, Any], status: str, details: str, error_name: str, in_cause: str
) -> None:
    _state, record, token, ssm = waiting_run(clients)
    ssm.now(status, StatusDetails=details, ResponseCode=3, StandardErrorContent="boom\n")

    notice = handle(clients, ssm_event(record, status))

    assert (notice.outcome, notice.error) == ("failed", error_name)
    ended = token.outcome()
    assert (ended["status"], ended["error"]) == ("FAILED", error_name)
    assert in_cause in ended["cause"]
    assert record.command_id in ended["cause"]


def test_an_instance_gone_under_the_command_ends_the_wait_with_instance_lost(
    clients: dict[str, Any],
) -> None:
    """SSM still says InProgress (stubbed) after EC2 took the instance back."""
    _state, record, token, _ = waiting_run(clients)
    clients["ec2"].terminate_instances(InstanceIds=[record.instance_id])

    notice = handle(clients, ec2_event(record.instance_id, "shutting-down"))

    assert (notice.outcome, notice.error) == ("failed", "InstanceLost")
    ended = token.outcome()
    assert (ended["status"], ended["error"]) == ("FAILED", "InstanceLost")
    assert record.instance_id in ended["cause"]


def test_a_command_past_its_deadline_is_cancelled_and_timed_out(clients: dict[str, Any]) -> None:
    """A look that finds the command still running past timeout_s cancels it, as
    the poller does (the cancel is stubbed: moto lacks CancelCommand)."""
    state, record = sent(clients)
    token = start_token_wait(clients)
    still_running(clients)
    cancels = answer(clients["ssm"], "CancelCommand", lambda _: ok())
    late = record.model_copy(update={"deadline": record.sent_at})

    notice = wait(clients, with_records(state, command=late), token.token)

    assert (notice.outcome, notice.error) == ("failed", "CommandTimedOut")
    assert cancels == [{"CommandId": record.command_id, "InstanceIds": [record.instance_id]}]
    assert token.outcome()["error"] == "CommandTimedOut"


# --- Events that must change nothing ---------------------------------------------
def test_a_duplicate_event_is_ignored(clients: dict[str, Any]) -> None:
    _state, record, token, ssm = waiting_run(clients)
    ssm.now("Success")

    first = handle(clients, ssm_event(record, "Success"))
    second = handle(clients, ssm_event(record, "Success"))

    assert (first.outcome, second.outcome) == ("succeeded", "not-waiting")
    assert token.outcome()["status"] == "SUCCEEDED"


def test_a_late_event_for_a_token_that_timed_out_is_ignored(clients: dict[str, Any]) -> None:
    """The wait timed out (the safety look moved on); the item still holds the dead token."""
    _state, record, token, ssm = waiting_run(clients, timeout_s=1)
    assert token.outcome()["error"] == "States.Timeout"
    ssm.now("Success")

    notice = handle(clients, ssm_event(record, "Success"))

    assert notice.outcome == "already-settled"
    assert find_waiter(clients["dynamodb"], TABLE, record.instance_id) is None


def test_an_event_for_an_instance_no_run_waits_on_is_ignored(clients: dict[str, Any]) -> None:
    looks = answer(clients["ssm"], "GetCommandInvocation")

    notice = handle(clients, ec2_event("i-0123456789abcdef0", "terminated"))

    assert notice.outcome == "not-waiting"
    assert looks == []


def test_another_command_on_our_instance_is_ignored(clients: dict[str, Any]) -> None:
    _state, record, token, _ = waiting_run(clients)

    notice = handle(clients, ssm_event(record, "Failed", command_id="someone-elses-command"))

    assert notice.outcome == "foreign"
    assert token.still_waiting()
    assert find_waiter(clients["dynamodb"], TABLE, record.instance_id) is not None


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": SSM_DETAIL_TYPE, "detail": {"instance-id": "i-1", "status": "InProgress"}},
        {"detail-type": EC2_DETAIL_TYPE, "detail": {"instance-id": "i-1", "state": "running"}},
        {"detail-type": "Something Else", "detail": {"instance-id": "i-1"}},
        {"detail-type": SSM_DETAIL_TYPE, "detail": {}},
        {"detail-type": SSM_DETAIL_TYPE, "detail": "i-1"},
        {"detail-type": EC2_DETAIL_TYPE, "detail": ["i-1", "terminated"]},
        {"detail-type": SSM_DETAIL_TYPE},
        {"detail-type": SSM_DETAIL_TYPE, "detail": {"instance-id": 7, "status": "Success"}},
        {
            "detail-type": SSM_DETAIL_TYPE,
            "detail": {"instance-id": "i-1", "status": "Success", "command-id": ["c"]},
        },
    ],
)
def test_events_that_are_no_end_are_ignored(clients: dict[str, Any], event: dict[str, Any]) -> None:
    looks = answer(clients["ssm"], "GetCommandInvocation")

    assert handle(clients, event).outcome == "foreign"
    assert looks == []


def test_an_end_event_ssm_does_not_show_yet_leaves_the_wait_to_the_safety_look(
    clients: dict[str, Any],
) -> None:
    _state, record, token, _ = waiting_run(clients)

    notice = handle(clients, ssm_event(record, "Success"))

    assert notice.outcome == "running"
    assert token.still_waiting()


def test_a_throttled_settle_is_retried_not_swallowed(clients: dict[str, Any]) -> None:
    """The throttling is stubbed: moto never throttles."""
    state, record = sent(clients)
    ssm = still_running(clients)
    wait(clients, state, "token-1")
    ssm.now("Success")
    answer(clients["stepfunctions"], "SendTaskSuccess", lambda _: error("ThrottlingException"))

    with pytest.raises(AwsThrottled):
        handle(clients, ssm_event(record, "Success"))
    # The token is still findable for the retry.
    assert find_waiter(clients["dynamodb"], TABLE, record.instance_id) is not None


def test_store_token_keeps_what_the_handler_needs(clients: dict[str, Any]) -> None:
    _, record = sent(clients)

    store_token(clients["dynamodb"], TABLE, Waiter("t", record, EXECUTION_ARN))

    assert find_waiter(clients["dynamodb"], TABLE, record.instance_id) == Waiter(
        "t", record, EXECUTION_ARN
    )
