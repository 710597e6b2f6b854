"""Every function of template.yaml, in a container, with each of its sample events.

What `make invoke` runs: `sam build` for this machine's architecture, then `sam local
invoke <Function> --event <events/...>` on the Lambda-like base image
(tools/lambda-image.sh) with the Powertools layer the project pins, against moto's
server. The resources each event names are made in the emulator first, as the
in-process tests (tests/unit/test_events.py, test_reconcile.py) make them, and
each result must be what those tests expect of the same handler.

Docker is started if it is not running (and stopped after); when it cannot be,
every test here fails with the reason. The first run builds the base image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from amirun.local.invoke import (
    COMMAND_WAIT_TABLE,
    EVENTS,
    OUTPUT_BUCKET,
    Arranged,
    InvokeError,
    Invoker,
    Outcome,
    Sample,
    local_invokes,
    samples,
)
from amirun_core.completion import find_waiter
from amirun_core.daily import Resolution
from amirun_core.launch import TAG_EXECUTION
from amirun_core.state import (
    CheckRecord,
    CleanupRecord,
    CommandRecord,
    InputsRecord,
    InstanceRecord,
)

pytestmark = pytest.mark.slow

SAMPLES = samples()


@pytest.fixture(scope="module")
def invoker() -> Iterator[Invoker]:
    try:
        with local_invokes() as ready:
            yield ready
    except InvokeError as exc:
        pytest.fail(f"sam local invoke cannot run here: {exc}", pytrace=False)


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8")))


def assert_shape(result: Any, model: type[BaseModel]) -> None:
    assert isinstance(result, dict)
    assert set(result) == set(model.model_fields)
    model.model_validate(result)


def instance_state(invoker: Invoker, instance_id: str) -> str:
    found = invoker.emulator.client("ec2").describe_instances(InstanceIds=[instance_id])
    return str(found["Reservations"][0]["Instances"][0]["State"]["Name"])


def test_every_function_has_a_sample_event() -> None:
    from amirun.project import load_workflow

    functions = set(load_workflow().functions)
    assert {s.function for s in SAMPLES} == functions
    named = {p.stem for p in EVENTS.glob("*.json")} - {"execution"}
    assert {s.name for s in SAMPLES} == named


# --- What each sample must return: the in-process tests' expectations. -------------
def expect_resolver(invoker: Invoker, outcome: Outcome) -> None:
    assert_shape(outcome.result, Resolution)
    assert outcome.result == load_event("starter")["resolved"]


def expect_inputs(invoker: Invoker, outcome: Outcome) -> None:
    assert_shape(outcome.result, InputsRecord)
    assert (outcome.result["ready"], outcome.result["missing"]) == (True, [])


def expect_starter(invoker: Invoker, outcome: Outcome) -> None:
    assert_shape(outcome.result, InstanceRecord)
    execution = load_event("starter")["execution"]["id"]
    found = invoker.emulator.client("ec2").describe_instances(
        Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]}]
    )["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [
        outcome.result["instance_id"]
    ]


def expect_readiness(invoker: Invoker, outcome: Outcome) -> None:
    result = outcome.result
    assert_shape(result, InstanceRecord)
    assert (result["state"], result["agent"], result["ready"]) == ("running", "Online", True)


def expect_commander(invoker: Invoker, outcome: Outcome) -> None:
    result = outcome.result
    assert_shape(result, CommandRecord)
    assert outcome.arranged is not None
    ssm, s3 = invoker.emulator.client("ssm"), invoker.emulator.client("s3")
    instance_id = outcome.arranged.facts["instance_id"]
    (command,) = ssm.list_commands(InstanceId=instance_id)["Commands"]
    assert command["CommandId"] == result["command_id"]
    assert (
        "s3://amirun-example-results/daily/20250531/result.txt"
        in command["Parameters"]["commands"][1]
    )
    assert result["output_url"].startswith(f"s3://{OUTPUT_BUCKET}/runs/example-20250601/")
    key = "runs/example-20250601/execution.json"
    assert result["execution_url"] == f"s3://{OUTPUT_BUCKET}/{key}"
    body = json.loads(s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read())
    assert body["commands"] == command["Parameters"]["commands"]
    assert body["daily_date"] == "20250531"


def expect_poller(invoker: Invoker, outcome: Outcome) -> None:
    assert_shape(outcome.result, CommandRecord)
    assert (outcome.result["status"], outcome.result["done"]) == ("Success", True)


def expect_checker(invoker: Invoker, outcome: Outcome) -> None:
    assert_shape(outcome.result, CheckRecord)
    location = "s3://amirun-example-results/daily/20250531/result.txt"
    assert outcome.result["location"] == location


def second_pass(invoker: Invoker, outcome: Outcome) -> Outcome:
    """The stopper again with its first answer as `cleanup`, as the state machine does."""
    assert outcome.arranged is not None
    event = {**outcome.arranged.event, "cleanup": outcome.result}
    again = invoker.send(outcome.sample, Arranged(event, outcome.arranged.environment))
    assert again.error is None, again.line()
    return again


def expect_stopper(invoker: Invoker, outcome: Outcome) -> None:
    first = outcome.result
    second = second_pass(invoker, outcome).result
    assert_shape(first, CleanupRecord)
    assert (first["action"], first["done"], second["done"]) == ("terminated", False, True)
    assert second["error"] is None
    assert outcome.arranged is not None
    assert instance_state(invoker, outcome.arranged.facts["instance_id"]) == "terminated"


def expect_stopper_after_failure(invoker: Invoker, outcome: Outcome) -> None:
    final = second_pass(invoker, outcome).result
    assert outcome.arranged is not None
    instance_id = outcome.arranged.facts["instance_id"]
    assert_shape(final, CleanupRecord)
    assert final["done"] is True
    assert final["error"] == "CommandFailed"
    assert final["cause"].startswith("command 0b6f9e2c-3c1d-4c7e-9a51-2f4b1f0c8d11 on ")
    assert final["cause"].endswith(f"[attempt 1; instance {instance_id} terminated]")
    # n_retries_allowed 1, retry_delay_s 300: one relaunch, after 300 s.
    relaunch = (final["relaunch"], final["next_attempt"], final["relaunch_wait_seconds"])
    assert relaunch == (True, 2, 300)


def expect_sweeper(invoker: Invoker, outcome: Outcome) -> None:
    assert outcome.arranged is not None
    facts = outcome.arranged.facts
    detail = load_event("sweeper")["detail"]
    expected = {"execution": detail["executionArn"], "status": "FAILED", "swept": [facts["left"]]}
    assert outcome.result == expected
    assert instance_state(invoker, facts["left"]) == "terminated"  # ii_terminate_instance
    assert instance_state(invoker, facts["unrelated"]) == "running"


def expect_waiter(invoker: Invoker, outcome: Outcome) -> None:
    result = outcome.result
    assert outcome.arranged is not None
    assert result["outcome"] == "succeeded"
    assert (result["status"], result["exit_code"]) == ("Success", 0)
    dynamodb = invoker.emulator.client("dynamodb")
    instance_id = outcome.arranged.facts["instance_id"]
    assert find_waiter(dynamodb, COMMAND_WAIT_TABLE, instance_id) is None


def expect_settler(invoker: Invoker, outcome: Outcome) -> None:
    event = load_event(outcome.sample.name)
    assert outcome.result["outcome"] == "not-waiting"
    assert outcome.result["instance_id"] == event["detail"]["instance-id"]
    assert outcome.result["error"] is None


def expect_reconciler(invoker: Invoker, outcome: Outcome) -> None:
    assert outcome.arranged is not None
    left = outcome.arranged.facts["left"]
    assert outcome.result["swept"] == [left]
    assert outcome.result["instances"] == 1
    assert instance_state(invoker, left) == "terminated"  # the sample run asks for it


def expect_notifier(invoker: Invoker, outcome: Outcome) -> None:
    detail = load_event("notifier")["detail"]
    assert outcome.result["execution"] == detail["executionArn"]
    assert outcome.result["status"] == "TIMED_OUT"
    assert outcome.result["message_id"]


EXPECT: dict[str, Callable[[Invoker, Outcome], None]] = {
    "resolver": expect_resolver,
    "inputs": expect_inputs,
    "starter": expect_starter,
    "readiness": expect_readiness,
    "commander": expect_commander,
    "poller": expect_poller,
    "checker": expect_checker,
    "stopper": expect_stopper,
    "stopper-after-failure": expect_stopper_after_failure,
    "sweeper": expect_sweeper,
    "waiter": expect_waiter,
    "settler": expect_settler,
    "settler-instance-gone": expect_settler,
    "reconciler": expect_reconciler,
    "notifier": expect_notifier,
}


def test_every_sample_has_an_expectation() -> None:
    assert {s.name for s in SAMPLES} == set(EXPECT)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: f"{s.function}-{Path(s.name).name}")
def test_function_in_a_container(invoker: Invoker, sample: Sample) -> None:
    outcome = invoker.invoke(sample)

    assert outcome.error is None, outcome.line()
    assert outcome.line().startswith(f"{sample.label()}: {{")
    EXPECT[sample.name](invoker, outcome)
