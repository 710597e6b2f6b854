"""CLI-test fixtures: moto's server stands in for AWS; the CLI reaches it over HTTP.

The CLI runs in-process (`amirun.cli.main`) with the user's usual AWS
configuration pointed at the server by `AWS_ENDPOINT_URL`. The stack is a
small CloudFormation stack on the server whose outputs name what the real
one's do; the state machine is the project's own ASL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REGION
from moto.server import ThreadedMotoServer


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
