"""Unit-test fixtures: fake credentials, moto as the AWS emulator, handler loading.

No test reaches the network: every AWS call is answered by moto, or by a
botocore hook (`unit_helpers.answer`) where moto lacks the call or the error a
test needs.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from unit_helpers import FUNCTIONS, HANDLER_ENV, REGION, FakeLambdaContext

from amirun_core import aws


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region, the handlers' environment, a clean client cache."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AMIRUN_TIME_SCALE"):
        monkeypatch.delenv(name, raising=False)
    for service in ("EC2", "SSM", "S3", "IAM", "LAMBDA", "SFN", "STEPFUNCTIONS"):
        monkeypatch.delenv(f"AWS_ENDPOINT_URL_{service}", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    # moto's catalogue of public AMIs costs a third of a second per reset; any
    # ImageId launches without it.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    for name, value in HANDLER_ENV.items():
        monkeypatch.setenv(name, value)
    aws.client.cache_clear()
    yield
    aws.client.cache_clear()


@pytest.fixture(scope="module")
def _moto() -> Iterator[Any]:
    # Once per module, not per test: a fresh mock gives boto3 a fresh session, which
    # reloads botocore's service models for every client (half a second for EC2).
    # Not per session either: it would stay active for the other test directories.
    with mock_aws() as mock:
        yield mock


@pytest.fixture
def emulator(_moto: Any) -> Any:
    """moto for every AWS service, emptied before each test."""
    _moto.reset()
    return _moto


@pytest.fixture
def ec2(emulator: Any) -> Any:
    return aws.client("ec2")


@pytest.fixture
def ssm(emulator: Any) -> Any:
    return aws.client("ssm")


@pytest.fixture
def s3(emulator: Any) -> Any:
    return aws.client("s3")


@pytest.fixture
def iam(emulator: Any) -> Any:
    return aws.client("iam")


_module_numbers = itertools.count()


@pytest.fixture
def load_handler(emulator: Any) -> Callable[[str], ModuleType]:
    """Import `functions/<name>/app.py` under a fresh module name, inside the mock.

    A handler creates its clients at import time (through `aws.client`, whose
    cache is cleared around each test), so importing it here gives it the
    moto-backed clients the test's own fixtures use.
    """

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            f"amirun_unit_{name}_{next(_module_numbers)}", FUNCTIONS / name / "app.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
