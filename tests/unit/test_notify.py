"""Notifications: one concise SNS message for each way an execution can end.

The notifier runs on the EventBridge event in events/notifier.json (varied per
end status); moto holds the instances and the topic, and an SQS queue
subscribed to the topic receives what a subscriber would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from unit_helpers import (
    STACK_NAME,
    FakeLambdaContext,
    launch,
    load_event,
    make_request,
    make_state,
)

from amirun_core import aws
from amirun_core.notify import SUBJECT_LIMIT, console_url, execution_notice, first_line

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

Handler = Callable[[str], ModuleType]
SCHEDULE = "cfe-nom-vpu03W-m1-short-range-06"
ARN = load_event("notifier")["detail"]["executionArn"]
CONSOLE = (
    "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1"
    f"#/v2/executions/details/{ARN}"
)
LAMBDA_CAUSE = json.dumps(
    {
        "errorMessage": "command 0b6f on i-0abc ended Failed; exit code 2\nstderr: no such file",
        "errorType": "CommandFailed",
    }
)


def event_for(status: str, *, schedule: str | None = SCHEDULE, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("notifier"))
    request = make_request(ii_terminate_instance=True)
    if schedule:
        request["schedule"] = {"name": schedule, "scheduled_time": "2025-06-01T06:00:00Z"}
    event["detail"].update(status=status, input=json.dumps(request), **detail)
    return event


def launch_for_execution(ec2: Any, attempt: int = 1) -> str:
    state = make_state(
        execution={"id": ARN, "name": "example-20250601", "start_time": "2025-06-01T06:00:00Z"},
        attempt=attempt,
    )
    return launch(ec2, state)[1].instance_id


@pytest.fixture
def subscriber(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[[], list[Any]]:
    """The stack's topic (TOPIC_ARN) with an SQS queue subscribed; returns a reader."""
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = sns.create_topic(Name=f"{STACK_NAME}-notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("TOPIC_ARN", topic)

    def received() -> list[Any]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in messages.get("Messages", [])]

    return received


def notify(load_handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = load_handler("notifier").lambda_handler(event, FakeLambdaContext())
    return result


def test_failed_run_names_schedule_error_cause_instance_and_console(
    load_handler: Handler, ec2: Any, subscriber: Callable[[], list[Any]]
) -> None:
    instance_id = launch_for_execution(ec2)
    ec2.terminate_instances(InstanceIds=[instance_id])  # what EC2Stopper did before FAILED
    event = event_for("FAILED", error="CommandFailed", cause=LAMBDA_CAUSE)

    result = notify(load_handler, event)

    (message,) = subscriber()
    assert message["Subject"] == "amirun run FAILED: example-20250601"
    assert result["message_id"] == message["MessageId"]
    assert message["Message"].splitlines() == [
        "amirun run FAILED: example-20250601",
        "",
        "execution  example-20250601",
        f"schedule   {SCHEDULE}",
        "error      CommandFailed",
        "cause      command 0b6f on i-0abc ended Failed; exit code 2",
        f"instance   {instance_id} (t4g.small on-demand, attempt 1) terminated",
        "ran        60 min, from 2025-06-01 06:00 UTC",
        f"console    {CONSOLE}",
    ]
    attributes = message["MessageAttributes"]
    assert attributes["status"] == {"Type": "String", "Value": "FAILED"}
    assert attributes["schedule"] == {"Type": "String", "Value": SCHEDULE}


def test_timed_out_run_says_the_sweeper_stops_what_still_runs(
    load_handler: Handler, ec2: Any, subscriber: Callable[[], list[Any]]
) -> None:
    first = launch_for_execution(ec2, attempt=1)
    ec2.terminate_instances(InstanceIds=[first])
    second = launch_for_execution(ec2, attempt=2)

    notify(load_handler, event_for("TIMED_OUT"))

    (message,) = subscriber()
    lines = message["Message"].splitlines()
    assert message["Subject"] == "amirun run TIMED_OUT: example-20250601"
    assert "error      States.Timeout (the execution ran past its TimeoutSeconds)" in lines
    assert not any(line.startswith("cause") for line in lines)
    instances = [line for line in lines if line.startswith("instance")]
    assert instances == [
        f"instance   {first} (t4g.small on-demand, attempt 1) terminated",
        f"instance   {second} (t4g.small on-demand, attempt 2) running: the sweeper terminates it",
    ]


def test_aborted_run_by_hand_without_instance(
    load_handler: Handler, ec2: Any, subscriber: Callable[[], list[Any]]
) -> None:
    notify(load_handler, event_for("ABORTED", schedule=None))

    (message,) = subscriber()
    lines = message["Message"].splitlines()
    assert "schedule   none (started by hand)" in lines
    assert "error      aborted (stopped by hand or by StopExecution)" in lines
    assert "instance   none running or recently ended" in lines
    assert set(message["MessageAttributes"]) == {"status"}


def test_succeeded_run_says_what_it_cost(
    load_handler: Handler, ec2: Any, subscriber: Callable[[], list[Any]]
) -> None:
    output = {
        "status": "SUCCEEDED",
        "usage": {"run_estimated_cost_usd": 0.0123, "run_instance_seconds": 812},
    }
    notify(load_handler, event_for("SUCCEEDED", output=json.dumps(output)))

    (message,) = subscriber()
    lines = message["Message"].splitlines()
    assert message["Subject"] == "amirun run SUCCEEDED: example-20250601"
    assert "cost       ~$0.0123 for 812 instance-seconds (EC2 compute, estimated)" in lines
    assert not any(line.startswith(("error", "cause")) for line in lines)


def test_the_subject_fits_sns_for_the_longest_execution_name() -> None:
    detail = event_for("TIMED_OUT")["detail"] | {"name": "n" * 80}

    notice = execution_notice(detail, [])

    assert len(notice.subject) == SUBJECT_LIMIT
    assert "\n" not in notice.subject


def test_a_missing_input_still_gives_a_message() -> None:
    """Step Functions leaves out an input over 256 KiB (inputDetails.included false)."""
    detail = event_for("FAILED", error="OutputMissing", cause="no object")["detail"]
    detail["input"] = None

    lines = execution_notice(detail, []).message.splitlines()

    assert "schedule   none (started by hand)" in lines
    assert "cause      no object" in lines


@pytest.mark.parametrize(
    ("cause", "line"),
    [
        (LAMBDA_CAUSE, "command 0b6f on i-0abc ended Failed; exit code 2"),
        ("plain text\nsecond line", "plain text"),
        (None, ""),
        ("", ""),
    ],
)
def test_first_line_of_a_cause(cause: str | None, line: str) -> None:
    assert first_line(cause) == line


def test_console_url_is_the_executions_page() -> None:
    assert console_url(ARN) == CONSOLE
