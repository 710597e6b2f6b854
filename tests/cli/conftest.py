"""CLI-test fixtures: moto's server stands in for AWS; the CLI reaches it over HTTP.

The CLI runs in-process (`amirun.cli.main`) with the user's usual AWS
configuration pointed at the server by `AWS_ENDPOINT_URL`. The stack is a
small CloudFormation stack on the server whose outputs name what the real
one's do; the state machine is the project's own ASL.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cli_helpers import (
    ACCOUNT,
    EXECUTION_FILE,
    LIVE_STACK,
    REGION,
    Live,
    deploy,
    function_arns,
    set_moto_config,
)
from moto.server import ThreadedMotoServer

from amirun.commands import remote
from amirun.local.eventbridge import EventBus
from amirun.local.lambda_endpoint import LambdaEndpoint
from amirun.local.runner import create_command_wait_table, create_ledger_table, prepare_standins
from amirun.local.world import EmulatedWorld, WorldSettings, task_tokens_as_on_aws
from amirun.project import load_workflow
from amirun_core import aws


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
def live_stack_name() -> str:
    """The live stack's name; moto's backends outlive a module, so modules use their own."""
    return LIVE_STACK


@pytest.fixture(scope="module")
def live(aws_endpoint: str, live_stack_name: str) -> Iterator[Live]:
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
        env.setenv("STACK_NAME", live_stack_name)
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
        stack = deploy(live_stack_name)
        env.setenv("OUTPUT_BUCKET", stack.bucket)
        # The handlers' clients: created now (pointing at the server), hooked by the world.
        aws.client.cache_clear()
        cleanup.callback(aws.client.cache_clear)
        clients = {name: aws.client(name) for name in ("ec2", "ssm", "s3", "iam")}
        prepare_standins(execution, clients, strict=False)
        fast = WorldSettings(
            pending_s=0.2, agent_delay_s=0.2, command_pending_s=0.2, command_duration_s=0.2
        )
        table = f"{live_stack_name}-command-wait"
        env.setenv("COMMAND_WAIT_TABLE", table)
        create_command_wait_table(aws.client("dynamodb"), table)
        ledger = f"{live_stack_name}-run-ledger"
        env.setenv("RUN_LEDGER_TABLE", ledger)
        create_ledger_table(aws.client("dynamodb"), ledger)
        # The command's end and the instances' stops reach the Settler as events.
        bus = EventBus(region=REGION, account=ACCOUNT, delay_s=0.05)
        world = EmulatedWorld(fast, clients["s3"], publish=bus.publish)
        world.install(clients["ec2"], clients["ssm"])
        cleanup.callback(world.close)
        cleanup.enter_context(task_tokens_as_on_aws())
        endpoint = cleanup.enter_context(
            LambdaEndpoint(workflow.functions, function_arns(live_stack_name))
        )
        bus.connect(endpoint.invoke)
        cleanup.callback(bus.close)
        world.start_clock()
        # moto's executor calls Lambda at localhost:$MOTO_PORT in server mode, or through
        # AWS_ENDPOINT_URL_LAMBDA when moto also mocks in-process (its stubber is on).
        env.setenv("MOTO_PORT", str(urlsplit(endpoint.url).port))
        env.setenv("AWS_ENDPOINT_URL_LAMBDA", endpoint.url)
        env.setattr(remote, "POLL_INTERVAL_S", 0.2)
        yield Live(stack, world, execution)
