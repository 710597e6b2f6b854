"""The local Invoke endpoint's concurrency limit, over real HTTP.

The handler here is a stand-in (a file written by the test) that holds its
invocation open until the test lets it go, so the number running at once is
known without timing anything.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amirun.local.lambda_endpoint import INVOKE_PATH, LambdaEndpoint
from amirun.project import FunctionSpec

ARN = "arn:aws:lambda:us-east-1:123456789012:function:held"
HELD_HANDLER = """
import threading

ENTERED = threading.Semaphore(0)
RELEASE = threading.Event()


def handler(event, context):
    ENTERED.release()
    RELEASE.wait(30)
    return {"echo": event}
"""


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[LambdaEndpoint]:
    (tmp_path / "app.py").write_text(HELD_HANDLER, encoding="utf-8")
    spec = FunctionSpec(logical_id="HeldFunction", code_dir=tmp_path, handler="app.handler")
    with LambdaEndpoint({"HeldFunction": spec}, {"HeldFunction": ARN}, concurrency=2) as served:
        yield served


def invoke(endpoint: LambdaEndpoint, event: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """POST an Invoke as boto3 does: (payload, X-Amz-Function-Error)."""
    request = urllib.request.Request(  # noqa: S310 - the endpoint on 127.0.0.1
        f"{endpoint.url}{INVOKE_PATH}{ARN}/invocations",
        data=json.dumps(event).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read()), response.headers.get("X-Amz-Function-Error")


def test_one_invocation_past_the_limit_is_throttled_as_lambda_throttles(
    endpoint: LambdaEndpoint,
) -> None:
    held: list[tuple[dict[str, Any], str | None]] = []
    callers = [
        threading.Thread(target=lambda n=n: held.append(invoke(endpoint, {"n": n})))
        for n in range(2)
    ]
    for caller in callers:
        caller.start()
    handler_globals = endpoint._handler_for(endpoint._specs["HeldFunction"]).__globals__
    for _ in callers:  # both are inside the handler now
        assert handler_globals["ENTERED"].acquire(timeout=30)

    refused, function_error = invoke(endpoint, {"n": 2})

    handler_globals["RELEASE"].set()
    for caller in callers:
        caller.join(timeout=30)
    # Named as Step Functions names Lambda's 429, so the ASL's Retry matches it.
    assert function_error == "Unhandled"
    assert refused["errorType"] == "Lambda.TooManyRequestsException"
    assert "concurrency limit" in refused["errorMessage"]
    assert sorted(payload["echo"]["n"] for payload, error in held if error is None) == [0, 1]
    assert endpoint.peak_concurrency == 2
    assert endpoint.throttled == 1
    assert endpoint.longest_s > 0
    # The slots are free again once the held invocations ended.
    assert invoke(endpoint, {"n": 3}) == ({"echo": {"n": 3}}, None)


def test_a_limit_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1"):
        LambdaEndpoint({}, {}, concurrency=0)
