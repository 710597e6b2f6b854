"""The rehearsal's clock for Step Functions' Retry: shrunk, but for Lambda's throttling.

The local Lambda endpoint's concurrency limit and its invocations' durations are
real, so a burst of throttling lasts real seconds; a retry of it shrunk by the
time scale would give up long before the burst ends, as no retry on AWS does
(its backoff reaches 60 s).
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from amirun.local import runner


def retrier(*errors: str) -> Any:
    names = [SimpleNamespace(error_name=error) for error in errors]
    return SimpleNamespace(error_equals=SimpleNamespace(error_names=names))


@pytest.mark.parametrize(
    ("errors", "slept"),
    [
        (("Lambda.TooManyRequestsException",), 30.0),
        (("Lambda.ServiceException", "Lambda.Unknown"), 0.3),
        (("AwsThrottled",), 0.3),
        (("Lambda.TooManyRequestsException", "States.ALL"), 0.3),
    ],
)
def test_only_lambda_throttling_retries_wait_real_time(
    monkeypatch: pytest.MonkeyPatch, errors: tuple[str, ...], slept: float
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(runner.time, "sleep", waits.append)
    clock = runner._ScaledSleep(0.01)

    def evaluate(_: Any, env: Any) -> None:
        clock.sleep(30.0)  # as the executor's Retrier does, with its computed interval

    runner._retrier_knowing_its_errors(evaluate)(retrier(*errors), None)
    clock.sleep(30.0)  # outside a Retrier: scaled

    assert waits == [pytest.approx(slept), pytest.approx(0.3)]
