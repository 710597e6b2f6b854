"""Every sample event in events/ runs through its handler, as `sam local invoke
<Function> -e events/<file>.json` would: same event, a Lambda-like context, the
template's environment, with moto holding the resources the event refers to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from pydantic import BaseModel
from unit_helpers import (
    AMI,
    COMMAND_WAIT_TABLE,
    EVENTS,
    OUTPUT_BUCKET,
    RUN_LEDGER_TABLE,
    STACK_NAME,
    FakeLambdaContext,
    agent_status,
    instance_state,
    load_event,
    load_json,
)

from amirun.local.runner import create_command_wait_table, create_ledger_table
from amirun_core import aws
from amirun_core.command import send_commands
from amirun_core.completion import find_waiter
from amirun_core.daily import Resolution
from amirun_core.launch import TAG_EXECUTION, launch_instance
from amirun_core.state import (
    CheckRecord,
    ClaimRecord,
    CleanupRecord,
    CommandRecord,
    InputsRecord,
    InstanceRecord,
    WorkflowState,
)

Handler = Callable[[str], ModuleType]

# amirun_core.observability silences this at import; pytest restores the warning
# filters after each test, so later tests would see it again.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

#: event file -> the function `sam local invoke` runs it with.
FUNCTION_OF = {
    "claim": "claim",
    "resolver": "resolver",
    "inputs": "inputs",
    "starter": "starter",
    "readiness": "readiness",
    "commander": "commander",
    "poller": "poller",
    "checker": "checker",
    "stopper": "stopper",
    "stopper-after-failure": "stopper",
    "sweeper": "sweeper",
    "waiter": "waiter",
    "settler": "settler",
    "settler-instance-gone": "settler",
    "reconciler": "reconciler",
    "notifier": "notifier",
    "recorder": "recorder",
    "reporter": "reporter",
}
#: EventBridge events (not workflow states): the execution is their detail's input.
EXECUTION_EVENTS = ("sweeper", "notifier", "recorder")
#: Events that carry no execution: a command's or an instance's end, a task token's wrapper.
END_EVENTS = ("waiter", "settler", "settler-instance-gone")


def invoke(module: ModuleType, event: dict[str, Any], context: FakeLambdaContext) -> Any:
    result = module.lambda_handler(event, context)
    json.dumps(result)  # a Lambda result must be JSON
    return result


def assert_shape(result: Any, model: type[BaseModel]) -> None:
    assert isinstance(result, dict)
    assert set(result) == set(model.model_fields)
    model.model_validate(result)


def provide_referenced_resources(ec2: Any, iam: Any, request: dict[str, Any]) -> None:
    """Create the security group and instance profile the sample execution names
    (moto refuses a launch that names unknown ones) and point the request at them."""
    params = request["instance_parameters"]
    group = ec2.create_security_group(GroupName="amirun-example", Description="sample")
    params["SecurityGroupIds"] = [group["GroupId"]]
    iam.create_instance_profile(InstanceProfileName=params["IamInstanceProfile"]["Name"])


def launch_for(ec2: Any, iam: Any, event: dict[str, Any]) -> str:
    """Launch the event's instance in moto with the starter's logic; patch its id in."""
    provide_referenced_resources(ec2, iam, event["request"])
    instance_id = launch_instance(ec2, WorkflowState.model_validate(event), STACK_NAME).instance_id
    for record in ("instance", "command"):
        if record in event:
            event[record]["instance_id"] = instance_id
    return instance_id


def test_every_event_file_has_a_test() -> None:
    files = {p.stem for p in EVENTS.glob("*.json")} - {"execution"}

    assert files == set(FUNCTION_OF)
    assert set(FUNCTION_OF.values()) == {
        p.parent.name for p in EVENTS.parent.glob("functions/*/app.py")
    }


#: The reconciler's event is its schedule: it carries no execution at all.
SCHEDULED_EVENTS = ("reconciler", "reporter")


@pytest.mark.parametrize(
    "name",
    sorted(set(FUNCTION_OF) - set(EXECUTION_EVENTS) - set(SCHEDULED_EVENTS) - set(END_EVENTS)),
)
def test_every_event_carries_the_sample_execution(name: str) -> None:
    event = load_event(name)

    assert event["request"] == load_json(EVENTS / "execution.json")
    state = WorkflowState.model_validate(event)
    assert state.execution.id.startswith("arn:aws:states:")
    assert state.execution.id.endswith(f":{state.execution.name}")
    assert state.attempt == 1


@pytest.mark.parametrize(
    ("name", "status"),
    [("sweeper", "FAILED"), ("notifier", "TIMED_OUT"), ("recorder", "SUCCEEDED")],
)
def test_execution_events_carry_the_sample_execution_as_their_input(name: str, status: str) -> None:
    detail = load_event(name)["detail"]

    assert json.loads(detail["input"]) == load_json(EVENTS / "execution.json")
    assert detail["status"] == status


def test_claim_event(
    load_handler: Handler, emulator: Any, lambda_context: FakeLambdaContext
) -> None:
    """A run started by hand claims a slot of its own; a second claimant of it does not."""
    dynamodb = aws.client("dynamodb")
    create_ledger_table(dynamodb, RUN_LEDGER_TABLE)
    event = load_event("claim")
    claim = load_handler("claim")

    result = invoke(claim, event, lambda_context)

    assert_shape(result, ClaimRecord)
    name = event["execution"]["name"]
    assert result["slot"] == f"slot#manual/{name}#2025-06-01T06:00:00Z"
    assert (result["claimed"], result["owner"]) == (True, event["execution"]["id"])
    # Retried by Step Functions: still ours.
    assert invoke(claim, event, lambda_context)["claimed"] is True
    other = dict(event, execution=dict(event["execution"], id=event["execution"]["id"] + "-2"))
    assert invoke(claim, other, lambda_context)["claimed"] is False


def test_resolver_event(load_handler: Handler, lambda_context: FakeLambdaContext) -> None:
    event = load_event("resolver")
    resolver = load_handler("resolver")

    result = invoke(resolver, event, lambda_context)

    assert_shape(result, Resolution)
    # What the other sample events carry: the state after Resolve.
    assert result == load_event("starter")["resolved"]


def test_inputs_event(load_handler: Handler, s3: Any, lambda_context: FakeLambdaContext) -> None:
    event = load_event("inputs")
    s3.create_bucket(Bucket="amirun-example-inputs")
    s3.put_object(Bucket="amirun-example-inputs", Key="forcings/20250531/forcing.nc", Body=b"f")
    inputs = load_handler("inputs")

    result = invoke(inputs, event, lambda_context)

    assert_shape(result, InputsRecord)
    assert (result["ready"], result["missing"]) == (True, [])


def test_starter_event(
    load_handler: Handler, ec2: Any, iam: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("starter")
    provide_referenced_resources(ec2, iam, event["request"])
    starter = load_handler("starter")

    result = invoke(starter, event, lambda_context)

    assert_shape(result, InstanceRecord)
    found = ec2.describe_instances(
        Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [event["execution"]["id"]]}]
    )["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [result["instance_id"]]


def test_readiness_event(
    load_handler: Handler, ec2: Any, iam: Any, ssm: Any, lambda_context: FakeLambdaContext
) -> None:
    """moto lacks describe_instance_information: a hook says the agent is Online."""
    event = load_event("readiness")
    launch_for(ec2, iam, event)
    readiness = load_handler("readiness")
    agent_status(readiness.SSM, "Online")

    result = invoke(readiness, event, lambda_context)

    assert_shape(result, InstanceRecord)
    assert (result["state"], result["agent"], result["ready"]) == ("running", "Online", True)


def test_commander_event(
    load_handler: Handler, ec2: Any, iam: Any, ssm: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("commander")
    instance_id = launch_for(ec2, iam, event)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=OUTPUT_BUCKET)
    commander = load_handler("commander")

    result = invoke(commander, event, lambda_context)

    assert_shape(result, CommandRecord)
    (command,) = ssm.list_commands(InstanceId=instance_id)["Commands"]
    assert command["CommandId"] == result["command_id"]
    assert (
        "s3://amirun-example-results/daily/20250531/result.txt"
        in command["Parameters"]["commands"][1]
    )
    assert result["output_url"].startswith(f"s3://{OUTPUT_BUCKET}/runs/example-20250601/")
    recorded = f"s3://{OUTPUT_BUCKET}/runs/example-20250601/execution.json"
    assert result["execution_url"] == recorded
    body = json.loads(
        s3.get_object(Bucket=OUTPUT_BUCKET, Key="runs/example-20250601/execution.json")[
            "Body"
        ].read()
    )
    assert body["commands"] == command["Parameters"]["commands"]
    assert body["daily_date"] == "20250531"


def test_poller_event(
    load_handler: Handler, ec2: Any, iam: Any, ssm: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("poller")
    launch_for(ec2, iam, event)
    sent = send_commands(ssm, WorkflowState.model_validate(event), OUTPUT_BUCKET)
    event["command"]["command_id"] = sent.command_id
    poller = load_handler("poller")

    result = invoke(poller, event, lambda_context)

    assert_shape(result, CommandRecord)
    assert (result["status"], result["done"]) == ("Success", True)  # moto's only outcome


def test_checker_event(load_handler: Handler, s3: Any, lambda_context: FakeLambdaContext) -> None:
    event = load_event("checker")
    s3.create_bucket(Bucket="amirun-example-results")
    s3.put_object(Bucket="amirun-example-results", Key="daily/20250531/result.txt", Body=b"ok\n")
    checker = load_handler("checker")

    result = invoke(checker, event, lambda_context)

    assert_shape(result, CheckRecord)
    assert result["location"] == "s3://amirun-example-results/daily/20250531/result.txt"


def test_stopper_event(
    load_handler: Handler, ec2: Any, iam: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("stopper")
    instance_id = launch_for(ec2, iam, event)
    stopper = load_handler("stopper")

    first = invoke(stopper, event, lambda_context)
    second = invoke(stopper, {**event, "cleanup": first}, lambda_context)

    assert_shape(first, CleanupRecord)
    assert (first["action"], first["done"], second["done"]) == ("terminated", False, True)
    assert second["error"] is None
    assert instance_state(ec2, instance_id) == "terminated"


def test_stopper_after_failure_event(
    load_handler: Handler, ec2: Any, iam: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("stopper-after-failure")
    instance_id = launch_for(ec2, iam, event)
    stopper = load_handler("stopper")

    first = invoke(stopper, event, lambda_context)
    final = invoke(stopper, {**event, "cleanup": first}, lambda_context)

    assert_shape(final, CleanupRecord)
    assert final["done"] is True
    assert final["error"] == "CommandFailed"
    assert final["cause"].startswith("command 0b6f9e2c-3c1d-4c7e-9a51-2f4b1f0c8d11 on ")
    assert final["cause"].endswith(f"[attempt 1; instance {instance_id} terminated]")
    # n_retries_allowed 1, retry_delay_s 300: one relaunch, after 300 s.
    assert (final["relaunch"], final["next_attempt"], final["relaunch_wait_seconds"]) == (
        True,
        2,
        300,
    )


def test_sweeper_event(
    load_handler: Handler, ec2: Any, iam: Any, lambda_context: FakeLambdaContext
) -> None:
    event = load_event("sweeper")
    detail = event["detail"]
    request = json.loads(detail["input"])
    provide_referenced_resources(ec2, iam, request)
    execution = {
        "id": detail["executionArn"],
        "name": detail["name"],
        "start_time": "2025-06-01T06:00:00Z",
    }
    left = launch_instance(
        ec2, WorkflowState.model_validate({"request": request, "execution": execution}), STACK_NAME
    ).instance_id
    unrelated = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    sweeper = load_handler("sweeper")

    result = invoke(sweeper, event, lambda_context)

    assert result == {"execution": detail["executionArn"], "status": "FAILED", "swept": [left]}
    assert instance_state(ec2, left) == "terminated"  # ii_terminate_instance: true
    assert instance_state(ec2, unrelated) == "running"


def test_waiter_event(
    load_handler: Handler, ec2: Any, iam: Any, ssm: Any, lambda_context: FakeLambdaContext
) -> None:
    """moto's SSM reports Success at once, so the waiter's one look settles the token;
    moto's Step Functions (no execution behind the sample token) takes it."""
    event = load_event("waiter")
    assert WorkflowState.model_validate(event["state"]).command is not None
    launch_for(ec2, iam, event["state"])
    sent = send_commands(ssm, WorkflowState.model_validate(event["state"]), OUTPUT_BUCKET)
    event["state"]["command"]["command_id"] = sent.command_id
    waiter = load_handler("waiter")
    create_command_wait_table(waiter.SERVICES.dynamodb, COMMAND_WAIT_TABLE)

    result = invoke(waiter, event, lambda_context)

    assert result["outcome"] == "succeeded"
    assert (result["status"], result["exit_code"]) == ("Success", 0)
    assert find_waiter(waiter.SERVICES.dynamodb, COMMAND_WAIT_TABLE, sent.instance_id) is None


@pytest.mark.parametrize("name", ["settler", "settler-instance-gone"])
def test_settler_events(
    load_handler: Handler, name: str, lambda_context: FakeLambdaContext
) -> None:
    """No run waits on the sample's instance: the event is logged and dropped."""
    event = load_event(name)
    poller = load_event("poller")
    assert event["detail"]["instance-id"] == poller["command"]["instance_id"]
    settler = load_handler("settler")
    create_command_wait_table(settler.SERVICES.dynamodb, COMMAND_WAIT_TABLE)

    result = invoke(settler, event, lambda_context)

    assert result["outcome"] == "not-waiting"
    assert result["instance_id"] == event["detail"]["instance-id"]
    assert result["error"] is None


@pytest.mark.parametrize(
    "detail", ["i-0123456789abcdef0", ["i-0123456789abcdef0"], None, 42, {"instance-id": ["x"]}]
)
def test_the_settler_drops_a_malformed_event_like_a_foreign_one(
    load_handler: Handler, detail: Any, lambda_context: FakeLambdaContext
) -> None:
    """A direct invoke can send any JSON: a detail that is a string or a list used to
    raise AttributeError; it is logged and dropped."""
    event = {**load_event("settler"), "detail": detail}
    settler = load_handler("settler")
    create_command_wait_table(settler.SERVICES.dynamodb, COMMAND_WAIT_TABLE)

    result = invoke(settler, event, lambda_context)

    assert (result["outcome"], result["instance_id"]) == ("foreign", "")


def test_notifier_event(
    load_handler: Handler,
    ec2: Any,
    iam: Any,
    lambda_context: FakeLambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = load_event("notifier")
    detail = event["detail"]
    topic = aws.client("sns").create_topic(Name="amirun-notifications")["TopicArn"]
    monkeypatch.setenv("TOPIC_ARN", topic)
    notifier = load_handler("notifier")

    result = invoke(notifier, event, lambda_context)

    assert result["execution"] == detail["executionArn"]
    assert result["status"] == "TIMED_OUT"
    assert result["message_id"]


def test_recorder_event(load_handler: Handler, lambda_context: FakeLambdaContext) -> None:
    """The recorder writes the end onto the slot the execution claimed (a manual run here)."""
    from amirun.local.runner import create_ledger_table
    from amirun_core.ledger import claim_slot, read_slot
    from amirun_core.ledger import run_slot as slot_of

    event = load_event("recorder")
    detail = event["detail"]
    recorder = load_handler("recorder")
    create_ledger_table(recorder.DYNAMODB, RUN_LEDGER_TABLE)
    started = datetime.fromtimestamp(detail["startDate"] / 1000, UTC)
    slot = slot_of(json.loads(detail["input"]), detail["name"], started)
    claim_slot(
        recorder.DYNAMODB,
        RUN_LEDGER_TABLE,
        slot=slot.key,
        execution_arn=detail["executionArn"],
        schedule=slot.schedule,
        scheduled_time=slot.scheduled_time,
        started_at=started,
    )

    result = invoke(recorder, event, lambda_context)

    assert result == {"execution": detail["executionArn"], "status": "SUCCEEDED", "recorded": True}
    item = read_slot(recorder.DYNAMODB, RUN_LEDGER_TABLE, slot.key)
    assert item is not None
    assert (item["status"], item["instance_seconds"], item["start_latency_s"]) == (
        "succeeded",
        1890,
        0,
    )
