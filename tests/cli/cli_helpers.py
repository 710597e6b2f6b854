"""Helpers the CLI tests import: the stand-in stack and moto's server settings.

Fixtures live in conftest.py; plain functions and constants live here so tests
can import them by name.
"""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from amirun.cli import main
from amirun.local.world import EmulatedWorld
from amirun.project import ROOT, load_workflow

REGION = "us-east-1"
ACCOUNT = "123456789012"
#: The sample execution that `sam local invoke` and the unit tests use too.
EXECUTION_FILE = ROOT / "events" / "execution.json"


@dataclass(frozen=True)
class Stack:
    name: str
    state_machine_arn: str
    bucket: str


def function_arns(prefix: str) -> dict[str, str]:
    return {
        logical_id: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{prefix}-{logical_id}"
        for logical_id in load_workflow().functions
    }


def create_stack(name: str, outputs: dict[str, Any]) -> None:
    """A CloudFormation stack with the output bucket and the given outputs."""
    template = {
        "Resources": {"OutputBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def deploy(name: str) -> Stack:
    """A stand-in of the deployed stack: the real workflow, outputs as the template names them."""
    workflow = load_workflow()
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"{name}-workflow",
        definition=workflow.definition(function_arns(name)),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}-workflow",
    )["stateMachineArn"]
    create_stack(
        name,
        {
            "StateMachineArn": machine,
            "OutputBucketName": {"Ref": "OutputBucket"},
            # The `live` fixture creates it under this name.
            "RunLedgerTableName": f"{name}-run-ledger",
        },
    )
    outputs = boto3.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["Outputs"]
    bucket = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "OutputBucketName")
    return Stack(name, machine, bucket)


def set_moto_config(endpoint: str, config: dict[str, Any]) -> None:
    """Change moto's settings (e.g. whether state machines run) over its own API."""
    request = urllib.request.Request(  # noqa: S310 - our own server's http:// URL
        f"{endpoint}/moto-api/config",
        data=json.dumps(config).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        response.read()


@dataclass(frozen=True)
class Live:
    """A stand-in stack whose executions really run (the `live` fixture)."""

    stack: Stack
    world: EmulatedWorld
    #: The sample execution without its output check (whose date could change mid-run).
    execution: dict[str, Any]


@dataclass(frozen=True)
class Followed:
    code: int
    out: str
    arn: str


def follow(
    live: Live, directory: Path, name: str, execution: dict[str, Any] | None = None
) -> Followed:
    """`amirun start --follow` on the sample execution (or `execution`), as run `name`."""
    path = directory / f"{name}.json"
    path.write_text(json.dumps(execution or live.execution), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["start", str(path), "--stack", live.stack.name, "--name", name, "--follow"])
    machine = live.stack.state_machine_arn
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    return Followed(code, out.getvalue(), arn)
