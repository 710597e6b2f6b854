"""CLI-test fixtures: the CLI reaches AWS stand-ins over HTTP, as a user's shell would.

The CLI runs in-process (`amirun.cli.main`) with the user's usual AWS
configuration pointed by `AWS_ENDPOINT_URL` at either moto's bare server
(`aws_endpoint`: tests that build the few outputs they need) or the local stack
of `amirun up` (`local_stack`, `live`: runs that really run, the real ASL and
handlers behind it).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import EXECUTION_FILE, REGION, Live, Stack
from moto.server import ThreadedMotoServer

from amirun.commands import remote
from amirun.local.runner import RehearsalOptions
from amirun.local.server import LocalStack, StackOptions


@pytest.fixture(autouse=True)
def no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output goes to a pipe with no width given, as when `make test` runs in one process:
    a test runner's worker may set COLUMNS; a test that means a width sets its own."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1, and an environment whose AWS configuration points at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL_LAMBDA", "AMIRUN_TIME_SCALE"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_SESSION_TOKEN", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        # moto's catalogue of public AMIs is slow to load; any ImageId launches without it.
        env.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def write_execution(tmp_path: Path) -> Any:
    def write(content: dict[str, Any], name: str = "execution.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(content, indent=2), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """`amirun up`'s stack in this process, and an environment whose AWS configuration
    points at it, as a user's shell does after exporting the lines `amirun up` prints.

    The real ASL and handlers run behind the local Lambda endpoint; the emulated world
    moves instances and commands on; the stack's outputs (`--stack amirun-rehearsal`)
    name its state machine, bucket, schedule group, queues and topic. The handlers' logs
    go to a file in the test's temporary folder. Tests elsewhere start one the same
    way: `with LocalStack(options) as local, local_stack_environment(local): ...`.
    """
    log = tmp_path_factory.mktemp("local-stack") / "handlers.log"
    options = StackOptions(
        RehearsalOptions(
            agent_delay_s=0.2, command_duration_s=0.2, event_delay_s=0.05, log_file=str(log)
        )
    )
    with LocalStack(options) as local, local_stack_environment(local):
        # Quiet: the executor logs every absent path an IsPresent test looks at.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        yield local


@contextlib.contextmanager
def local_stack_environment(local: LocalStack) -> Iterator[None]:
    """The user's AWS configuration pointed at `local`, and quick polls for --follow."""
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        for name, value in local.environment().items():
            env.setenv(name, value)
        env.setenv("AWS_CONFIG_FILE", "/dev/null")
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        env.setattr(remote, "POLL_INTERVAL_S", 0.2)
        yield


@pytest.fixture(scope="module")
def live(local_stack: LocalStack) -> Live:
    """The local stack, as the tests of following, listing and rerunning runs see it."""
    execution = json.loads(EXECUTION_FILE.read_text("utf-8"))
    # Its output check's date could change mid-run.
    execution["run_options"]["ii_check_s3"] = False
    outputs = local_stack.deployed.outputs
    stack = Stack(
        local_stack.deployed.name, outputs["StateMachineArn"], outputs["OutputBucketName"]
    )
    return Live(stack, local_stack.session.world, execution)
