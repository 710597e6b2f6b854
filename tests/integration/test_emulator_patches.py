"""The emulator's patches for a long rehearsal change its costs, never its answers.

Each answer is compared with moto's own (the same call without the patch), or with
what AWS documents where moto departs from it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from amirun.local import emulator_patches
from amirun.local.lambda_endpoint import LambdaEndpoint
from amirun.project import FunctionSpec

REGION = "us-east-1"
IMAGE = "ami-12c6146b"  # one of moto's bundled images


def _launch(ec2: Any, count: int, **extra: Any) -> list[str]:
    answer = ec2.run_instances(
        ImageId=IMAGE, MinCount=count, MaxCount=count, InstanceType="t3.micro", **extra
    )
    return [i["InstanceId"] for i in answer["Instances"]]


def _command_counts(patched: bool) -> tuple[int, int, int]:
    """(commands listed for the named instance, for another one, targets of the command)."""
    with mock_aws():
        patch = (
            emulator_patches.commands_sent_to_the_named_instances()
            if patched
            else contextlib.nullcontext()
        )
        with patch:
            ec2 = boto3.client("ec2", region_name=REGION)
            ssm = boto3.client("ssm", region_name=REGION)
            named, other = _launch(ec2, 2)
            command = ssm.send_command(
                InstanceIds=[named],
                DocumentName="AWS-RunShellScript",
                Parameters={"commands": ["true"]},
            )["Command"]
            return (
                len(ssm.list_commands(InstanceId=named)["Commands"]),
                len(ssm.list_commands(InstanceId=other)["Commands"]),
                command["TargetCount"],
            )


def test_a_command_goes_only_to_the_instances_it_names() -> None:
    # SendCommand's InstanceIds and Targets are alternatives: naming instances sends to
    # those alone. https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html
    assert _command_counts(patched=True) == (1, 0, 1)


def test_unpatched_moto_still_sends_a_command_to_every_instance() -> None:
    """Why the patch exists; if moto stops doing this, the patch can go."""
    named, other, targets = _command_counts(patched=False)
    assert named == 1
    # Every instance of the account, the named one counted a second time.
    assert (other, targets) == (1, 3)


def _describe_everything(ec2: Any, ids: list[str]) -> dict[str, Any]:
    """Answers of the EC2 lookups a night makes, without their request ids."""

    def answer(call: Any, **params: Any) -> Any:
        try:
            result = call(**params)
        except ClientError as exc:
            return exc.response["Error"]["Code"]
        result.pop("ResponseMetadata", None)
        return result

    return {
        "by id": answer(ec2.describe_instances, InstanceIds=ids[:2]),
        "one": answer(ec2.describe_instances, InstanceIds=[ids[2]]),
        "filtered": answer(
            ec2.describe_instances,
            Filters=[{"Name": "tag:team", "Values": ["hydro"]}],
        ),
        "by id and state": answer(
            ec2.describe_instances,
            InstanceIds=ids,
            Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}],
        ),
        "every": answer(ec2.describe_instances),
        "unknown": answer(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"]),
        "status": answer(ec2.describe_instance_status, InstanceIds=ids, IncludeAllInstances=True),
        "stop unknown": answer(ec2.stop_instances, InstanceIds=["i-0123456789abcdef0"]),
    }


def _ec2_answers(patched: bool) -> dict[str, Any]:
    with mock_aws(), contextlib.ExitStack() as patches:
        if patched:
            patches.enter_context(emulator_patches.instances_found_without_copies())
            patches.enter_context(emulator_patches.response_keys_found_once())
        ec2 = boto3.client("ec2", region_name=REGION)
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "hydro"}]}]
        ids = _launch(ec2, 2, TagSpecifications=tags) + _launch(ec2, 2)
        ec2.stop_instances(InstanceIds=[ids[1], ids[3]])
        answers = _describe_everything(ec2, ids)
    # Launch times and ids differ between the two accounts: compare their shape and values
    # with the ids replaced by their order of launch.
    text = json.dumps(answers, default=str, sort_keys=True)
    for n, ident in enumerate(ids):
        text = text.replace(ident, f"<instance {n}>")
    return json.loads(text)


def test_instances_are_found_and_answered_as_moto_answers() -> None:
    patched, unpatched = _ec2_answers(patched=True), _ec2_answers(patched=False)
    assert patched["unknown"] == "InvalidInstanceID.NotFound"
    assert len(patched["filtered"]["Reservations"]) == 1
    assert _without_moments(patched) == _without_moments(unpatched)


def _without_moments(value: Any) -> Any:
    """The answer without what differs from one launch to another (times, addresses, ids
    of reservations, interfaces and volumes, client tokens)."""
    varying = ("Time", "Date", "Address", "Ip", "DnsName", "Id", "Mac", "Token", "Reason")
    if isinstance(value, dict):
        return {
            key: _without_moments(item)
            for key, item in value.items()
            if key == "InstanceId" or not key.endswith(varying)
        }
    if isinstance(value, list):
        return [_without_moments(item) for item in value]
    return value


def test_json_copy_is_a_deep_copy() -> None:
    moment = datetime(2026, 2, 9, tzinfo=UTC)
    original = {"a": [1, 2.5, {"b": None, "c": True}], "d": "text", "e": moment, "f": {1, 2}}
    copied = emulator_patches.json_copy(original)
    assert copied == original
    copied["a"][2]["b"] = "changed"
    copied["a"].append(3)
    copied["f"].add(3)
    assert original == {
        "a": [1, 2.5, {"b": None, "c": True}],
        "d": "text",
        "e": moment,
        "f": {1, 2},
    }


def _statistics(patched: bool, now: datetime) -> list[Any]:
    with mock_aws():
        patch = (
            emulator_patches.metric_statistics_indexed() if patched else contextlib.nullcontext()
        )
        with patch:
            cloudwatch = boto3.client("cloudwatch", region_name=REGION)

            def put(instance: str, value: float, minutes_ago: int) -> None:
                cloudwatch.put_metric_data(
                    Namespace="AWS/EC2",
                    MetricData=[
                        {
                            "MetricName": "CPUUtilization",
                            "Dimensions": [{"Name": "InstanceId", "Value": instance}],
                            "Timestamp": now - timedelta(minutes=minutes_ago),
                            "Value": value,
                            "Unit": "Percent",
                        }
                    ],
                )

            def look(dimensions: list[dict[str, str]]) -> Any:
                points = cloudwatch.get_metric_statistics(
                    Namespace="AWS/EC2",
                    MetricName="CPUUtilization",
                    Dimensions=dimensions,
                    StartTime=now - timedelta(hours=1),
                    EndTime=now + timedelta(minutes=1),
                    Period=60,
                    Statistics=["Maximum", "Average", "SampleCount"],
                )["Datapoints"]
                return sorted(points, key=lambda p: p["Timestamp"])

            for n, instance in enumerate(("i-a", "i-b", "i-c")):
                put(instance, 10.0 * (n + 1), minutes_ago=5)
                put(instance, 20.0 * (n + 1), minutes_ago=3)
            looks = [look([{"Name": "InstanceId", "Value": "i-b"}]), look([])]
            # Datapoints put after a look are found by the next one.
            put("i-b", 99.0, minutes_ago=1)
            put("i-b", 10.0, minutes_ago=90)  # outside the period asked for
            looks.append(look([{"Name": "InstanceId", "Value": "i-b"}]))
            looks.append(look([{"Name": "InstanceId", "Value": "i-unknown"}]))
            return looks


def test_metric_statistics_answer_as_an_unindexed_query() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    patched = _statistics(patched=True, now=now)
    assert patched == _statistics(patched=False, now=now)
    first, _, later, unknown = patched
    assert [p["Maximum"] for p in first] == [20.0, 40.0]
    assert [p["Maximum"] for p in later] == [20.0, 40.0, 99.0]
    assert unknown == []


ECHO = """
def handler(event, context):
    event["seen"] = True
    return event
"""
UNSERIALISABLE = """
def handler(event, context):
    return {"when": {1, 2}}
"""
FAILS = """
def handler(event, context):
    raise ValueError("the handler refused")
"""


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[LambdaEndpoint]:
    specs, arns = {}, {}
    for name, code in (("Echo", ECHO), ("Unserialisable", UNSERIALISABLE), ("Fails", FAILS)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "app.py").write_text(code, encoding="utf-8")
        specs[name] = FunctionSpec(logical_id=name, code_dir=folder, handler="app.handler")
        arns[name] = f"arn:aws:lambda:{REGION}:123456789012:function:{name}"
    with LambdaEndpoint(specs, arns) as served:
        yield served


def _task(function: str, payload: dict[str, Any]) -> Any:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    parameters = {"FunctionName": function, "Payload": json.dumps(payload)}
    return lambda_eval_utils._invoke_lambda_function(parameters, REGION, None)


def test_a_lambda_task_runs_in_process_with_lambdas_answers(endpoint: LambdaEndpoint) -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,
    )

    over_http: list[str] = []

    def refused(parameters: dict[str, Any], *_: Any) -> dict[str, Any]:
        over_http.append(parameters["FunctionName"])
        return {"StatusCode": 404}

    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    with (
        mock.patch.object(lambda_eval_utils, "_invoke_lambda_function", refused),
        emulator_patches.lambda_tasks_in_process(endpoint),
    ):
        sent = {"run": 1}
        echoed = _task(f"{arn}Echo", sent)
        unserialisable = _task("Unserialisable", {})
        failed = _task("Fails", {})
        unknown = _task(f"{arn}Elsewhere", {})

    assert echoed == {
        "StatusCode": 200,
        "ExecutedVersion": "$LATEST",
        "Payload": {"run": 1, "seen": True},
    }
    assert sent == {"run": 1}  # the handler had its own copy
    # Lambda fails an answer JSON cannot carry, as a function error.
    assert unserialisable["FunctionError"] == "Unhandled"
    assert unserialisable["Payload"]["errorType"] == "Runtime.MarshalError"
    assert failed["FunctionError"] == "Unhandled"
    assert failed["Payload"]["errorType"] == "ValueError"
    assert "the handler refused" in failed["Payload"]["errorMessage"]
    # A function the endpoint does not serve goes the way it went before.
    assert unknown == {"StatusCode": 404}
    assert over_http == [f"{arn}Elsewhere"]
    assert endpoint.serves(f"{arn}Echo") and endpoint.serves("Echo")
    assert not endpoint.serves(f"{arn}Elsewhere")
