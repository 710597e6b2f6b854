"""Helpers the unit tests import: sample states, event files, botocore hooks.

Fixtures live in conftest.py; plain functions and constants live here so tests
can import them by name.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amirun_core.launch import launch_instance
from amirun_core.state import InstanceRecord, WorkflowState

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"
SCHEMA_FILE = ROOT / "schema" / "execution.schema.json"
#: Verbatim copies of the original project's execution files.
ORIGINALS = Path(__file__).resolve().parents[1] / "executions"

REGION = "us-east-1"
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:amirun:unit-test"
#: A fixed start; anything written during a test is newer. The sample commands name no
#: forcing source, so `DAILY` is the day before the start (the original's rule).
START_TIME = datetime(2025, 6, 1, 6, 0, 0, 123_000, tzinfo=UTC)
RUN_DATE = "20250531"
STACK_NAME = "amirun-unit"
OUTPUT_BUCKET = "amirun-unit-output"
COMMAND_WAIT_TABLE = "amirun-unit-command-wait"
RUN_LEDGER_TABLE = "amirun-unit-run-ledger"
AMI = "ami-0a1b2c3d4e5f67890"

#: The environment the template gives every function.
HANDLER_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "amirun",
    "POWERTOOLS_SERVICE_NAME": "amirun",
    "STACK_NAME": STACK_NAME,
    "OUTPUT_BUCKET": OUTPUT_BUCKET,
    "COMMAND_WAIT_TABLE": COMMAND_WAIT_TABLE,
    "RUN_LEDGER_TABLE": RUN_LEDGER_TABLE,
}


def load_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_event(name: str) -> dict[str, Any]:
    return load_json(EVENTS / f"{name}.json")


def load_original(name: str) -> dict[str, Any]:
    return load_json(ORIGINALS / name)


@dataclass
class FakeLambdaContext:
    """What Powertools reads from the Lambda context object."""

    function_name: str = "amirun-unit"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:amirun-unit"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/amirun-unit"
    log_stream_name: str = "2025/06/01/[$LATEST]0000"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


# --- Workflow states. ------------------------------------------------------------
def make_request(**run_options: Any) -> dict[str, Any]:
    """A small valid execution JSON with the given `run_options`."""
    return {
        "commands": [
            "echo run DAILY > /tmp/result.txt",
            f"aws s3 cp /tmp/result.txt s3://{OUTPUT_BUCKET}/daily/DAILY/result.txt",
        ],
        "run_options": run_options,
        "instance_parameters": {"ImageId": AMI, "InstanceType": "t4g.small"},
    }


def make_state(request: dict[str, Any] | None = None, **fields: Any) -> WorkflowState:
    """The workflow state a Task receives; records (instance, command...) as given."""
    raw: dict[str, Any] = {
        "request": copy.deepcopy(request) if request is not None else make_request(),
        "execution": {"id": EXECUTION_ARN, "name": "unit-test", "start_time": START_TIME},
        "attempt": 1,
        "past_attempts": [],
    }
    raw.update(fields)
    return WorkflowState.model_validate(raw)


def with_records(state: WorkflowState, **records: Any) -> WorkflowState:
    """The same state with records replaced, as a Task's ResultPath does."""
    raw = state.model_dump(mode="json", exclude_none=True)
    for name, record in records.items():
        raw[name] = record.to_json() if hasattr(record, "to_json") else record
    return WorkflowState.model_validate(raw)


def launch(ec2: Any, state: WorkflowState) -> tuple[WorkflowState, InstanceRecord]:
    """Launch the state's instance in moto with the starter's own logic."""
    record = launch_instance(ec2, state, STACK_NAME)
    return with_records(state, instance=record), record


def instance_state(ec2: Any, instance_id: str) -> str:
    found = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return str(found[0]["Instances"][0]["State"]["Name"])


def all_instances(ec2: Any) -> list[dict[str, Any]]:
    reservations = ec2.describe_instances()["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


# --- Answering calls the emulator lacks, or errors it never returns. ------------
class FakeHttpResponse:
    """What botocore needs from the HTTP response a `before-call` hook returns."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


Answer = tuple[FakeHttpResponse, dict[str, Any]]
Responder = Callable[[dict[str, Any]], Answer | None]


def ok(**parsed: Any) -> Answer:
    return FakeHttpResponse(200), {"ResponseMetadata": {"HTTPStatusCode": 200}, **parsed}


def error(code: str, message: str = "", status: int = 400) -> Answer:
    parsed = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return FakeHttpResponse(status), parsed


def answer(client: Any, operation: str, responder: Responder | None = None) -> list[dict[str, Any]]:
    """Answer `operation` on `client` with `responder(params)` instead of the emulator.

    botocore's `before-call` event short-circuits a call when a handler returns
    `(http_response, parsed)`; a responder returning None lets moto answer.
    Without a responder the calls are only recorded. Returns the API parameters
    of every call, in order.
    """
    calls: list[dict[str, Any]] = []
    service = client.meta.service_model.service_id.hyphenize()

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(copy.deepcopy(params))

    def respond(**_: Any) -> Answer | None:
        return responder(calls[-1]) if responder else None

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", record)
    client.meta.events.register(f"before-call.{service}.{operation}", respond)
    return calls


def agent_status(ssm: Any, ping_status: str | None) -> list[dict[str, Any]]:
    """Stand in for ssm.describe_instance_information, which moto does not implement.

    `ping_status` None: SSM does not know the instance (yet).
    """

    def respond(params: dict[str, Any]) -> Answer:
        instance_ids = params["Filters"][0]["Values"]
        info = [{"InstanceId": i, "PingStatus": ping_status} for i in instance_ids]
        return ok(InstanceInformationList=info if ping_status else [])

    return answer(ssm, "DescribeInstanceInformation", respond)


def invocation(params: dict[str, Any], status: str, **fields: Any) -> Answer:
    """A get_command_invocation answer (moto always says Success)."""
    return ok(
        CommandId=params["CommandId"],
        InstanceId=params["InstanceId"],
        Status=status,
        StatusDetails=fields.pop("StatusDetails", status),
        ResponseCode=fields.pop("ResponseCode", -1),
        StandardOutputContent=fields.pop("StandardOutputContent", ""),
        StandardErrorContent=fields.pop("StandardErrorContent", ""),
        **fields,
    )
