"""`amirun start`, `status` and `logs` against a stand-in stack; its executions do not run.

moto keeps a started execution RUNNING (it does not run state machines unless
asked), which is what a run looks like in its first minutes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from cli_helpers import EXECUTION_FILE, Stack, create_stack, deploy

from amirun.cli import main
from amirun.commands import remote

Capsys = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def stack(aws_endpoint: str) -> Stack:
    return deploy("amirun-cli")


def executions(stack: Stack) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions")
    found: list[dict[str, Any]] = sfn.list_executions(stateMachineArn=stack.state_machine_arn)[
        "executions"
    ]
    return found


def start(stack: Stack, capsys: Capsys, name: str) -> str:
    """Start the sample execution; return its ARN."""
    assert main(["start", str(EXECUTION_FILE), "--stack", stack.name, "--name", name]) == 0
    return f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def test_start_prints_the_execution_and_passes_the_file_unchanged(
    stack: Stack, capsys: Capsys
) -> None:
    assert main(["start", str(EXECUTION_FILE), "--stack", stack.name, "--name", "t-start"]) == 0

    out = capsys.readouterr().out
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":t-start"
    assert f"execution  {arn}" in out
    assert "console    https://us-east-1.console.aws.amazon.com/states/home" in out
    described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING"
    assert json.loads(described["input"]) == json.loads(EXECUTION_FILE.read_text("utf-8"))


def test_start_by_state_machine_arn_names_the_run(stack: Stack, capsys: Capsys) -> None:
    before = len(executions(stack))

    code = main(["start", str(EXECUTION_FILE), "--state-machine", stack.state_machine_arn])

    assert code == 0
    assert len(executions(stack)) == before + 1
    started = capsys.readouterr().out.splitlines()[0]
    assert started.startswith("Started amirun-")


def test_invalid_file_is_refused_before_any_aws_call(
    stack: Stack, capsys: Capsys, write_execution: Callable[..., str]
) -> None:
    request = json.loads(EXECUTION_FILE.read_text("utf-8"))
    request["run_options"]["timeout_s"] = 5
    request["run_option"] = {}
    path = write_execution(request)
    before = len(executions(stack))

    assert main(["start", path, "--stack", stack.name]) == 1

    err = capsys.readouterr().err
    assert f"{path}: invalid execution JSON" in err
    assert "run_options.timeout_s" in err
    assert "run_option: unknown field (did you mean run_options?)" in err
    assert len(executions(stack)) == before


def test_unknown_stack_is_a_clear_error(aws_endpoint: str, capsys: Capsys) -> None:
    assert main(["start", str(EXECUTION_FILE), "--stack", "no-such-stack"]) == 2

    assert capsys.readouterr().err == (
        "amirun: no stack named no-such-stack in us-east-1 (deployed elsewhere? --region)\n"
    )


def test_stack_without_the_output_is_a_clear_error(aws_endpoint: str, capsys: Capsys) -> None:
    create_stack("not-amirun", {"Something": "else"})

    assert main(["start", str(EXECUTION_FILE), "--stack", "not-amirun"]) == 2

    assert "stack not-amirun has no output StateMachineArn" in capsys.readouterr().err


def test_start_needs_a_stack_or_a_state_machine(aws_endpoint: str, capsys: Capsys) -> None:
    assert main(["start", str(EXECUTION_FILE)]) == 2

    assert "give --stack NAME" in capsys.readouterr().err


def test_start_refuses_a_name_in_use(
    stack: Stack, capsys: Capsys, write_execution: Callable[..., str]
) -> None:
    start(stack, capsys, "t-twice")
    # The same name and input is the same start (StartExecution is idempotent); not so here.
    request = json.loads(EXECUTION_FILE.read_text("utf-8"))
    request["run_options"]["timeout_s"] = 600

    assert (
        main(["start", write_execution(request), "--stack", stack.name, "--name", "t-twice"]) == 2
    )

    assert "an execution named t-twice exists already" in capsys.readouterr().err


class _CtrlC:
    """An Event whose wait is interrupted as a Ctrl-C interrupts it."""

    def wait(self, timeout: float) -> bool:
        raise KeyboardInterrupt


def test_ctrl_c_stops_following_not_the_run(
    stack: Stack, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(remote, "threading", SimpleNamespace(Event=_CtrlC))

    code = main(
        ["start", str(EXECUTION_FILE), "--stack", stack.name, "--name", "t-ctrl-c", "--follow"]
    )

    assert code == 130
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + ":t-ctrl-c"
    assert f"Stopped following; the run goes on: amirun status {arn}" in capsys.readouterr().err
    described = boto3.client("stepfunctions").describe_execution(executionArn=arn)
    assert described["status"] == "RUNNING"


def test_status_by_name_and_by_arn(stack: Stack, capsys: Capsys) -> None:
    arn = start(stack, capsys, "t-status")
    capsys.readouterr()

    assert main(["status", "t-status", "--stack", stack.name]) == 0
    by_name = capsys.readouterr().out
    # An ARN needs no stack: it names the state machine and the region.
    assert main(["status", arn]) == 0
    by_arn = capsys.readouterr().out

    for out in (by_name, by_arn):
        assert out.startswith("t-status  RUNNING for ")
        assert f"execution  {arn}" in out
        assert "started    " in out
        assert "stopped" not in out
        assert "(now)" in out


def test_status_of_an_unknown_run(stack: Stack, capsys: Capsys) -> None:
    assert main(["status", "never-started", "--stack", stack.name]) == 2

    assert "amirun: no execution arn:aws:states:" in capsys.readouterr().err


def test_status_of_a_stopped_run(stack: Stack, capsys: Capsys) -> None:
    arn = start(stack, capsys, "t-stopped")
    boto3.client("stepfunctions").stop_execution(executionArn=arn)
    capsys.readouterr()

    assert main(["status", "t-stopped", "--stack", stack.name]) == 1

    out = capsys.readouterr().out
    assert out.startswith("t-stopped  ABORTED\n")
    assert "stopped    " in out
    assert "ABORTED in " in out


def put(stack: Stack, key: str, body: str) -> None:
    boto3.client("s3").put_object(Bucket=stack.bucket, Key=key, Body=body.encode())


def test_logs_prints_each_output_object_newest_attempt_last(stack: Stack, capsys: Capsys) -> None:
    plugin = "awsrunShellScript/0.awsrunShellScript"
    first = f"runs/t-logs/attempt-1/cmd-1/i-1/{plugin}"
    second = f"runs/t-logs/attempt-2/cmd-2/i-2/{plugin}"
    put(stack, f"{second}/stdout", "second stdout\n")
    put(stack, f"{first}/stderr", "first stderr")
    put(stack, f"{first}/stdout", "first stdout\n")
    put(stack, "runs/t-logs-2/attempt-1/cmd-3/i-3/awsrunShellScript/stdout", "another run\n")
    put(stack, "runs/t-logs/attempt-1/notes.txt", "not a stream\n")

    assert main(["logs", "t-logs", "--stack", stack.name]) == 0

    assert capsys.readouterr().out == (
        f"==> s3://{stack.bucket}/{first}/stdout <==\n"
        "first stdout\n"
        "\n"
        f"==> s3://{stack.bucket}/{first}/stderr <==\n"
        "first stderr\n"
        "\n"
        f"==> s3://{stack.bucket}/{second}/stdout <==\n"
        "second stdout\n"
    )


def test_logs_when_there_are_none(stack: Stack, capsys: Capsys) -> None:
    assert main(["logs", "t-no-logs", "--stack", stack.name]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"No command output under s3://{stack.bucket}/runs/t-no-logs/" in captured.err


def test_logs_without_a_stack_of_a_run_that_sent_no_command(stack: Stack, capsys: Capsys) -> None:
    start(stack, capsys, "t-no-command")
    capsys.readouterr()

    code = main(["logs", "t-no-command", "--state-machine", stack.state_machine_arn])

    assert code == 1
    assert "No command output for t-no-command: it has sent no command yet" in (
        capsys.readouterr().err
    )
