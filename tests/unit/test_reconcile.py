"""The reconciler on moto: it stops or terminates, as their run asked, this stack's
instances whose execution is no longer RUNNING, and touches nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from unit_helpers import (
    STACK_NAME,
    FakeLambdaContext,
    all_instances,
    instance_state,
    load_event,
    make_request,
)

from amirun_core import aws
from amirun_core.launch import launch_instance
from amirun_core.reconcile import GONE, reconcile
from amirun_core.state import WorkflowState

ROLE = "arn:aws:iam::123456789012:role/amirun-states"
DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def sfn(emulator: Any) -> Any:
    return aws.client("stepfunctions")


@pytest.fixture
def machine(sfn: Any) -> str:
    created = sfn.create_state_machine(name="amirun", definition=DEFINITION, roleArn=ROLE)
    return str(created["stateMachineArn"])


def run_with_instance(
    ec2: Any,
    sfn: Any,
    machine: str,
    name: str,
    *,
    ended: bool,
    stack: str = STACK_NAME,
    **run_options: Any,
) -> str:
    """An execution of `machine` and the instance amirun launched for it."""
    request = make_request(**run_options)
    started = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(request))
    arn = started["executionArn"]
    if ended:
        sfn.stop_execution(executionArn=arn)
    state = WorkflowState.model_validate(
        {
            "request": request,
            "execution": {"id": arn, "name": name, "start_time": started["startDate"]},
        }
    )
    return launch_instance(ec2, state, stack).instance_id


def test_an_ended_executions_instance_is_stopped_as_its_run_asked(
    ec2: Any, sfn: Any, machine: str
) -> None:
    stop = run_with_instance(ec2, sfn, machine, "aborted-stop", ended=True)
    terminate = run_with_instance(
        ec2, sfn, machine, "aborted-terminate", ended=True, ii_terminate_instance=True
    )

    report = reconcile(ec2, sfn, STACK_NAME)

    assert sorted(report.swept) == sorted([stop, terminate])
    assert instance_state(ec2, stop) in ("stopping", "stopped")
    assert instance_state(ec2, terminate) in ("shutting-down", "terminated")
    assert set(report.executions.values()) == {"ABORTED"}
    assert report.instances == 2
    assert report.failed == {}


def test_a_running_executions_instance_is_left_alone(ec2: Any, sfn: Any, machine: str) -> None:
    running = run_with_instance(ec2, sfn, machine, "still-running", ended=False)

    report = reconcile(ec2, sfn, STACK_NAME)

    assert report.swept == []
    assert report.executions == {next(iter(report.executions)): "RUNNING"}
    assert instance_state(ec2, running) == "running"


def test_other_stacks_and_untagged_instances_are_not_touched(
    ec2: Any, sfn: Any, machine: str
) -> None:
    theirs = run_with_instance(ec2, sfn, machine, "other-stack", ended=True, stack="other")
    untagged = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]

    report = reconcile(ec2, sfn, STACK_NAME)

    assert report.instances == 0
    assert report.swept == []
    assert instance_state(ec2, theirs) == "running"
    assert instance_state(ec2, untagged["InstanceId"]) == "running"


def test_an_execution_step_functions_no_longer_knows_is_over(
    ec2: Any, sfn: Any, machine: str
) -> None:
    gone = run_with_instance(ec2, sfn, machine, "forgotten", ended=True)
    sfn.delete_state_machine(stateMachineArn=machine)

    report = reconcile(ec2, sfn, STACK_NAME)

    assert list(report.executions.values()) in ([GONE], ["ABORTED"])
    assert report.swept == [gone]


def test_an_instance_already_at_rest_is_not_counted(ec2: Any, sfn: Any, machine: str) -> None:
    stopped = run_with_instance(ec2, sfn, machine, "stopped-already", ended=True)
    ec2.stop_instances(InstanceIds=[stopped])

    report = reconcile(ec2, sfn, STACK_NAME)

    assert report.instances == 1
    assert report.swept == []


def test_the_handler_reports_in_logs_and_metrics(
    load_handler: Any,
    ec2: Any,
    machine: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sfn = aws.client("stepfunctions")  # the one the `machine` fixture used
    swept = run_with_instance(ec2, sfn, machine, "aborted", ended=True)
    reconciler = load_handler("reconciler")

    result = reconciler.lambda_handler(load_event("reconciler"), FakeLambdaContext())

    assert result["swept"] == [swept]
    printed = capsys.readouterr().out
    metrics = [json.loads(line) for line in printed.splitlines() if '"_aws"' in line]
    assert [m.get("InstancesReconciled") for m in metrics] == [[1.0]], printed
    assert "instances whose execution had ended" in caplog.text
    assert len(all_instances(ec2)) == 1
