"""Every ARN names the partition the stack is deployed in (aws, aws-us-gov, aws-cn).

ARNs begin `arn:<partition>:`, and a resource in GovCloud or China is not
reachable under `arn:aws:`; templates derive it from the AWS::Partition pseudo
parameter, the CLI from an ARN the stack gave it.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from amirun.project import load_workflow
from amirun.schedule_sync import Destination, schedule_request
from amirun.schedules import arn_partition, expand, start_execution_target

ROOT = Path(__file__).resolve().parents[2]
#: What deploys or talks to a deployed stack. Tests, the rehearsal (src/amirun/local,
#: an emulated commercial-partition account), benchmarks on it and the sample events
#: (payloads as a commercial region delivers them) may spell ARNs out.
DEPLOYED = [
    "template.yaml",
    "samconfig.toml",
    "statemachine",
    "functions",
    "layers",
    "src/amirun",
    "schema",
    "schedules",
    "docs",
]
REHEARSAL = ROOT / "src" / "amirun" / "local"
LITERAL = re.compile(r"arn:aws:")


def deployed_files() -> list[Path]:
    files: list[Path] = []
    for entry in DEPLOYED:
        path = ROOT / entry
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [
            f
            for f in found
            if REHEARSAL not in f.parents and "__pycache__" not in f.parts and f.suffix != ".pyc"
        ]
    return files


def test_no_literal_commercial_partition_outside_tests_and_the_rehearsal() -> None:
    files = deployed_files()
    assert any(f.name == "amirun.asl.json" for f in files)
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        )
        if LITERAL.search(line)
    ]
    assert found == []


def test_the_workflow_names_the_partition_it_is_deployed_in() -> None:
    """waitForTaskToken is a service integration ARN: `arn:<partition>:states:::...`."""
    workflow = load_workflow()
    arns = {logical_id: "arn:x" for logical_id in workflow.functions}
    for partition in ("aws", "aws-us-gov", "aws-cn"):
        asl = json.loads(workflow.definition(arns, {"AWS::Partition": partition}))
        wait = asl["States"]["WaitForCommandEnd"]["Resource"]
        assert wait == f"arn:{partition}:states:::lambda:invoke.waitForTaskToken"


def test_schedules_start_runs_through_the_target_of_the_state_machines_partition() -> None:
    """Scheduler's universal target is `arn:<partition>:scheduler:::aws-sdk:<service>:<api>`.
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-universal.html
    """
    machine = "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:amirun"
    assert arn_partition(machine) == "aws-us-gov"
    assert start_execution_target(machine) == (
        "arn:aws-us-gov:scheduler:::aws-sdk:sfn:startExecution"
    )
    (schedule, *_) = expand(sorted(ROOT.glob("schedules/**/nightly-report.yaml")))
    destination = Destination(
        group="g",
        state_machine_arn=machine.replace("aws-us-gov", "aws-cn").replace(
            "us-gov-west-1", "cn-north-1"
        ),
        role_arn="arn:aws-cn:iam::123456789012:role/r",
        dead_letter_arn="arn:aws-cn:sqs:cn-north-1:123456789012:q",
    )
    target = schedule_request(schedule, destination)["Target"]
    assert target["Arn"] == "arn:aws-cn:scheduler:::aws-sdk:sfn:startExecution"
    assert dataclasses.asdict(destination)["state_machine_arn"] in target["Input"]
