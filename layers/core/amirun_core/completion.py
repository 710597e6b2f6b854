"""The end of the command as an event: task tokens, where they wait, who settles them.

After Commander sends the command, WaitForCommandEnd hands its task token to
`wait_for_end`, which stores it (one DynamoDB item per instance: an instance
runs one command per attempt, and both kinds of event name the instance) and
then takes one look, in case the command ended before the token was
findable. From then on the end arrives as an EventBridge event, Run
Command's invocation status change or EC2's instance state change, and
`handle_event` settles the token with the record, or the typed error, that
the poller's look gives (`look_at_command`): the run ends the same whoever
notices first.

Whoever settles first wins. Step Functions refuses a second SendTask* on a
used or expired token; that is "already handled", so duplicate, late and
foreign events are harmless, and a lost one only costs time until the
safety look (EC2Poller, after the token wait times out).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.command import look_at_command
from amirun_core.errors import AmirunError, AwsThrottled, CommandFailed, one_line_cause
from amirun_core.state import CommandRecord, WorkflowState

#: Run Command's statuses of an invocation still on its way, in both spellings AWS
#: uses (API and console). Every other status is an end (AWS documents more of them
#: than the API's enum: Delivery Timed Out, Undeliverable, Terminated, Access
#: Denied...): the handler reads the invocation again whatever the event says.
IN_FLIGHT_STATUSES = ("Pending", "InProgress", "In Progress", "Delayed", "Cancelling")
#: EC2 states in which an instance can no longer finish a command.
GONE_STATES = ("stopping", "stopped", "shutting-down", "terminated")
SSM_DETAIL_TYPE = "EC2 Command Invocation Status-change Notification"
EC2_DETAIL_TYPE = "EC2 Instance State-change Notification"
#: A token is useless once its run is over; DynamoDB's TTL removes forgotten items.
TOKEN_TTL_S = 2 * 86_400
#: SendTask* on a token that is used, timed out or unknown: someone was first.
SETTLED_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})

Outcome = Literal["succeeded", "failed", "running", "already-settled", "not-waiting", "foreign"]


@dataclass(frozen=True)
class EndServices:
    """The clients (and the token table) a look at the command's end uses."""

    sfn: Any
    dynamodb: Any
    table: str
    ssm: Any
    ec2: Any
    #: Reads the end of an output too long for SSM's answer (output bucket, runs/*).
    s3: Any = None


def services_from_environment() -> EndServices:
    """The Waiter's and the Settler's: one client per service, the table the template names."""
    return EndServices(
        sfn=aws.client("stepfunctions"),
        dynamodb=aws.client("dynamodb"),
        table=os.environ["COMMAND_WAIT_TABLE"],
        ssm=aws.client("ssm"),
        ec2=aws.client("ec2"),
        s3=aws.client("s3"),
    )


@dataclass(frozen=True)
class Waiter:
    """A stored task token and the command whose end it waits for."""

    task_token: str
    command: CommandRecord
    execution_id: str


@dataclass(frozen=True)
class Notice:
    """What one look did with a waiting token (the handlers' result, logs and metrics)."""

    outcome: Outcome
    instance_id: str
    command_id: str | None = None
    status: str | None = None
    exit_code: int | None = None
    error: str | None = None
    #: The failure's cause, as the wait received it.
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- The token store -------------------------------------------------------------
def store_token(dynamodb: Any, table: str, waiter: Waiter) -> None:
    expires = math.ceil(waiter.command.deadline.timestamp()) + TOKEN_TTL_S
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                "instance_id": {"S": waiter.command.instance_id},
                "task_token": {"S": waiter.task_token},
                "command": {"S": json.dumps(waiter.command.to_json())},
                "execution_id": {"S": waiter.execution_id},
                "expires_at": {"N": str(expires)},
            },
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "PutItem")
        raise


def find_waiter(dynamodb: Any, table: str, instance_id: str) -> Waiter | None:
    try:
        item = dynamodb.get_item(
            TableName=table, Key={"instance_id": {"S": instance_id}}, ConsistentRead=True
        ).get("Item")
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetItem")
        raise
    if item is None:
        return None
    return Waiter(
        task_token=item["task_token"]["S"],
        command=CommandRecord.model_validate_json(item["command"]["S"]),
        execution_id=item["execution_id"]["S"],
    )


def forget(dynamodb: Any, table: str, waiter: Waiter) -> None:
    """Delete the item, unless a fresh token (the next wait) has replaced it."""
    try:
        dynamodb.delete_item(
            TableName=table,
            Key={"instance_id": {"S": waiter.command.instance_id}},
            ConditionExpression="task_token = :token",
            ExpressionAttributeValues={":token": {"S": waiter.task_token}},
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DeleteItem")
        if aws.error_code(exc) != "ConditionalCheckFailedException":
            raise


# --- Settling a token ------------------------------------------------------------
def _send(call: Any, **params: Any) -> bool:
    """True if Step Functions took the outcome; False if the token was settled before."""
    try:
        call(**params)
    except ClientError as exc:
        aws.raise_if_throttled(exc, call.__name__)
        if aws.error_code(exc) in SETTLED_CODES:
            return False
        raise
    return True


def settle(services: EndServices, waiter: Waiter) -> Notice:
    """One look at the command; if it ended, end the token's wait with its outcome."""
    command = waiter.command
    try:
        record = look_at_command(services.ssm, services.ec2, command, services.s3)
    except AwsThrottled:
        raise
    except AmirunError as exc:
        # The same error names the poller raises, so the ASL's Catch sees no difference.
        error = type(exc).__name__
        taken = _send(
            services.sfn.send_task_failure, taskToken=waiter.task_token, error=error, cause=str(exc)
        )
        outcome: Outcome = "failed" if taken else "already-settled"
        forget(services.dynamodb, services.table, waiter)
        cause = one_line_cause(str(exc))
        return Notice(outcome, command.instance_id, command.command_id, error=error, cause=cause)
    if not record.done:
        return Notice("running", command.instance_id, command.command_id, record.status)
    taken = _send(
        services.sfn.send_task_success,
        taskToken=waiter.task_token,
        output=json.dumps(record.to_json()),
    )
    forget(services.dynamodb, services.table, waiter)
    return Notice(
        "succeeded" if taken else "already-settled",
        command.instance_id,
        command.command_id,
        record.status,
        record.exit_code,
    )


def wait_for_end(services: EndServices, state: WorkflowState, task_token: str) -> Notice:
    """WaitForCommandEnd: make the token findable, then look once.

    Stored first, looked after: a command that ends before the write is
    found by this look, one that ends after it by the event handler.
    """
    if state.command is None:
        raise CommandFailed("no command was sent")
    waiter = Waiter(task_token, state.command, state.execution.id)
    store_token(services.dynamodb, services.table, waiter)
    return settle(services, waiter)


def event_target(event: dict[str, Any]) -> tuple[str, str | None] | None:
    """(instance id, command id or None) an end event is about; None if it is no end.

    Anything may arrive (a direct invoke sends what it likes): an event that is not
    an object, or whose detail is not one, is no end either."""
    detail = _detail(event)
    instance_id = detail.get("instance-id")
    if not isinstance(instance_id, str):
        return None
    kind = event.get("detail-type")
    status = detail.get("status")
    if kind == SSM_DETAIL_TYPE and isinstance(status, str) and status not in IN_FLIGHT_STATUSES:
        command_id = detail.get("command-id")
        # A command end names its command; one that does not is no event of SSM's.
        return (instance_id, command_id) if isinstance(command_id, str) else None
    if kind == EC2_DETAIL_TYPE and detail.get("state") in GONE_STATES:
        return instance_id, None
    return None


def _detail(event: Any) -> dict[str, Any]:
    detail = event.get("detail") if isinstance(event, dict) else None
    return detail if isinstance(detail, dict) else {}


def handle_event(services: EndServices, event: dict[str, Any]) -> Notice:
    """An end event from EventBridge: settle the token waiting on its instance, if any."""
    target = event_target(event)
    if target is None:
        instance_id = _detail(event).get("instance-id")
        return Notice("foreign", instance_id if isinstance(instance_id, str) else "")
    instance_id, command_id = target
    waiter = find_waiter(services.dynamodb, services.table, instance_id)
    if waiter is None:
        return Notice("not-waiting", instance_id, command_id)
    if command_id is not None and command_id != waiter.command.command_id:
        # Another command on our instance (someone's Run Command by hand).
        return Notice("foreign", instance_id, command_id)
    return settle(services, waiter)
