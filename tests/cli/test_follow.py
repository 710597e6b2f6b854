"""`amirun start --follow` on runs that really run: the real ASL and handlers on moto's server.

moto's server runs the state machine in this process; its Lambda calls go
to the project's local Invoke endpoint (as in a rehearsal), and the emulated
world makes instances, the SSM agent and commands behave as on AWS, fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cli_helpers import (
    ACCOUNT,
    EXECUTION_FILE,
    REGION,
    Stack,
    deploy,
    function_arns,
    set_moto_config,
)

from amirun.cli import main
from amirun.commands import remote
from amirun.local.eventbridge import EventBus
from amirun.local.lambda_endpoint import LambdaEndpoint
from amirun.local.runner import create_command_wait_table, prepare_standins
from amirun.local.world import EmulatedWorld, WorldSettings, task_tokens_as_on_aws
from amirun.project import load_workflow
from amirun_core import aws

Capsys = pytest.CaptureFixture[str]
STACK = "amirun-live"


@dataclass(frozen=True)
class Live:
    stack: Stack
    world: EmulatedWorld
    #: The sample execution without its output check (whose date could change mid-run).
    execution: dict[str, Any]


@pytest.fixture(scope="module")
def live(aws_endpoint: str) -> Iterator[Live]:
    """A stack whose executions run, reaching the handlers through a local Invoke endpoint."""
    execution = json.loads(EXECUTION_FILE.read_text("utf-8"))
    execution["run_options"]["ii_check_s3"] = False
    set_moto_config(aws_endpoint, {"stepfunctions": {"execute_state_machine": True}})
    with pytest.MonkeyPatch.context() as env, contextlib.ExitStack() as cleanup:
        cleanup.callback(
            set_moto_config, aws_endpoint, {"stepfunctions": {"execute_state_machine": False}}
        )
        workflow = load_workflow()
        # The functions' environment as the template gives it; the rest resolved here.
        for spec in workflow.functions.values():
            for name, value in spec.environment.items():
                if isinstance(value, str | int | float | bool):
                    env.setenv(name, str(value))
        env.setenv("STACK_NAME", STACK)
        env.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        env.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        env.setenv("AMIRUN_TIME_SCALE", "0.01")
        # Configured by that environment, if this is its first import.
        from amirun_core.observability import logger as step_logger

        # Quiet: the executor logs every absent path an IsPresent test looks at,
        # and the steps' JSON logs would land among the CLI's output.
        for log in map(logging.getLogger, ("moto.stepfunctions.parser", step_logger.name)):
            cleanup.callback(log.setLevel, log.level)
            log.setLevel(logging.CRITICAL)
        stack = deploy(STACK)
        env.setenv("OUTPUT_BUCKET", stack.bucket)
        # The handlers' clients: created now (pointing at the server), hooked by the world.
        aws.client.cache_clear()
        cleanup.callback(aws.client.cache_clear)
        clients = {name: aws.client(name) for name in ("ec2", "ssm", "s3", "iam")}
        prepare_standins(execution, clients, strict=False)
        fast = WorldSettings(
            pending_s=0.2, agent_delay_s=0.2, command_pending_s=0.2, command_duration_s=0.2
        )
        env.setenv("COMMAND_WAIT_TABLE", f"{STACK}-command-wait")
        create_command_wait_table(aws.client("dynamodb"), f"{STACK}-command-wait")
        bus = EventBus(region=REGION, account=ACCOUNT, delay_s=0.05)
        world = EmulatedWorld(fast, clients["s3"], publish=bus.publish)
        world.install(clients["ec2"], clients["ssm"])
        cleanup.callback(world.close)
        cleanup.enter_context(task_tokens_as_on_aws())
        endpoint = cleanup.enter_context(LambdaEndpoint(workflow.functions, function_arns(STACK)))
        bus.connect(endpoint.invoke)
        cleanup.callback(bus.close)
        world.start_clock()
        # moto's executor calls Lambda at localhost:$MOTO_PORT in server mode, or through
        # AWS_ENDPOINT_URL_LAMBDA when moto also mocks in-process (its stubber is on).
        env.setenv("MOTO_PORT", str(urlsplit(endpoint.url).port))
        env.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint.url)
        env.setattr(remote, "POLL_INTERVAL_S", 0.2)
        yield Live(stack, world, execution)


@dataclass(frozen=True)
class Followed:
    code: int
    out: str
    arn: str


def follow(live: Live, directory: Path, name: str) -> Followed:
    """`amirun start --follow` on the sample execution, as run `name`."""
    path = directory / f"{name}.json"
    path.write_text(json.dumps(live.execution), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["start", str(path), "--stack", live.stack.name, "--name", name, "--follow"])
    machine = live.stack.state_machine_arn
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    return Followed(code, out.getvalue(), arn)


@pytest.fixture(scope="module")
def succeeded(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Followed:
    """One run followed to its end, for the tests that look at a finished run."""
    return follow(live, tmp_path_factory.mktemp("runs"), "t-follow")


def state_lines(out: str) -> list[str]:
    """The state names in the progress lines (`    1.2s  Name`)."""
    return re.findall(r"^ *\d+\.\ds  (\S+)$", out, flags=re.MULTILINE)


def test_follow_shows_each_state_and_ends_with_the_summary(succeeded: Followed) -> None:
    assert succeeded.code == 0
    states = state_lines(succeeded.out)
    assert states[:3] == ["Prepare", "EC2StarterFromAMI", "WaitForInstance"]
    for name in ("CheckInstanceReady", "Commander", "WaitForCommandEnd", "RunChecker"):
        assert name in states
    # The command's end came as an event: no safety look was needed.
    assert "EC2Poller" not in states
    assert states[-3:] == ["EC2Stopper", "Summarize", "Succeeded"]
    # The Tasks' results, described as a rehearsal describes them.
    assert " SSM agent Online" in succeeded.out
    assert "no output check" in succeeded.out
    result = succeeded.out.split("\n\n")[-1]
    assert result.startswith("SUCCEEDED in ")
    assert "Success (exit 0)" in result
    assert "  instance  i-" in result and result.rstrip().endswith("terminated")


def test_status_of_a_finished_run(live: Live, succeeded: Followed, capsys: Capsys) -> None:
    assert main(["status", "t-follow", "--stack", live.stack.name]) == 0

    out = capsys.readouterr().out
    assert out.startswith("t-follow  SUCCEEDED\n")
    assert "stopped    " in out
    assert "state      Succeeded (last)" in out
    assert "SUCCEEDED in " in out
    assert "Success (exit 0)" in out


def test_logs_of_a_finished_run_found_from_its_history(succeeded: Followed, capsys: Capsys) -> None:
    # No --stack: the output bucket is read from the run's own history.
    assert main(["logs", succeeded.arn]) == 0

    out = capsys.readouterr().out
    assert out.startswith("==> s3://amirun-live-outputbucket-")
    assert "/runs/t-follow/attempt-1/" in out
    assert "(rehearsal: commands recorded, not run)" in out


def test_follow_a_failing_run(
    live: Live, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live.world.settings, "faults", frozenset({"command-fails"}))
    monkeypatch.setitem(live.execution["run_options"], "n_retries_allowed", 0)

    followed = follow(live, tmp_path, "t-fails")

    assert followed.code == 1
    assert "! CommandFailed: command " in followed.out
    states = state_lines(followed.out)
    assert states[-2:] == ["EC2Stopper", "RunFailed"]
    result = followed.out.split("\n\n")[-1]
    assert result.startswith("FAILED in ")
    assert ": CommandFailed\n  cause     " in result
    assert main(["status", followed.arn]) == 1
    assert "t-fails  FAILED" in capsys.readouterr().out
