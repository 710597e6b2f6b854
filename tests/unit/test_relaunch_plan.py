"""Relaunches as the original makes them: the market of each attempt and the wait before it."""

from __future__ import annotations

from typing import Any

import pytest
from unit_helpers import STACK_NAME, answer, make_request, make_state, with_records

from amirun_core import limits, relaunch
from amirun_core.cleanup import stop_instance
from amirun_core.execution import RunOptions
from amirun_core.launch import launch_instance


def options(**given: Any) -> RunOptions:
    return RunOptions.model_validate(given)


def waits(run_options: RunOptions) -> list[int]:
    return [relaunch.wait_before(run_options, a) for a in range(1, run_options.attempts + 1)]


def test_the_original_backoff_by_default() -> None:
    """base 1800 x rate 2 ^ (retry_attempt + 1), capped at 7200: one hour, then two."""
    assert waits(options(n_retries_allowed=4)) == [0, 3600, 7200, 7200, 7200]


def test_each_backoff_option_counts() -> None:
    given = options(
        n_retries_allowed=3,
        retry_backoff_base_s=100,
        retry_backoff_rate=1.5,
        retry_backoff_max_s=300,
    )
    assert waits(given) == [0, 150, 225, 300]
    assert waits(options(n_retries_allowed=2, retry_backoff_base_s=0)) == [0, 0, 0]


@pytest.mark.parametrize("delay", [0, 300, 600, 45])
def test_retry_delay_s_keeps_its_waits(delay: int) -> None:
    """The earlier option: the first wait, doubled at each relaunch, no cap (existing
    files wait exactly as before)."""
    assert waits(options(n_retries_allowed=5, retry_delay_s=delay)) == [
        0,
        *(delay * 2**n for n in range(5)),
    ]


@pytest.mark.parametrize(
    ("ii_cheapo", "n_retries_allowed", "markets"),
    [
        (False, 2, [["on-demand"]] * 3),
        # The original: the first attempt spot, the middle ones spot, the last on-demand.
        (True, 2, [["spot", "on-demand"], ["spot", "on-demand"], ["on-demand"]]),
        (True, 1, [["spot", "on-demand"], ["on-demand"]]),
        # The only attempt is the first: spot, falling back to on-demand.
        (True, 0, [["spot", "on-demand"]]),
    ],
)
def test_the_last_attempt_runs_on_demand(
    ii_cheapo: bool, n_retries_allowed: int, markets: list[list[str]]
) -> None:
    given = options(ii_cheapo=ii_cheapo, n_retries_allowed=n_retries_allowed)
    assert [relaunch.markets(given, a) for a in range(1, given.attempts + 1)] == markets


def test_the_plan_lists_every_attempt() -> None:
    plan = relaunch.plan(options(ii_cheapo=True, n_retries_allowed=2))
    assert plan == [
        {"attempt": 1, "wait_s": 0, "market": "spot", "on_demand_fallback": True},
        {"attempt": 2, "wait_s": 3600, "market": "spot", "on_demand_fallback": True},
        {"attempt": 3, "wait_s": 7200, "market": "on-demand", "on_demand_fallback": False},
    ]


def test_the_last_attempts_launch_asks_for_on_demand_only(ec2: Any) -> None:
    """Attempt 3 of 3 with ii_cheapo: one RunInstances call, no InstanceMarketOptions,
    even when on-demand has no capacity (no spot attempt after it). The capacity error
    is injected by a botocore hook: moto never runs out of capacity."""
    request = make_request(ii_cheapo=True, n_retries_allowed=2)
    calls = answer(ec2, "RunInstances")
    record = launch_instance(ec2, make_state(request, attempt=3), STACK_NAME)
    (params,) = calls
    assert "InstanceMarketOptions" not in params
    assert record.market == "on-demand"

    middle = answer(ec2, "RunInstances")
    assert launch_instance(ec2, make_state(request, attempt=2), STACK_NAME).market == "spot"
    assert middle[0]["InstanceMarketOptions"]["MarketType"] == "spot"


def test_the_stopper_hands_the_backoff_to_the_relaunch_wait(
    ec2: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the ASL's WaitBeforeRelaunch waits ($.cleanup.relaunch_wait_seconds)."""
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "1")
    request = make_request(n_retries_allowed=2)
    for attempt, wait in ((1, 3600), (2, 7200)):
        state = make_state(request, attempt=attempt)
        failed = with_records(state, error={"Error": "CommandFailed", "Cause": "exit 1"})
        record = stop_instance(ec2, failed)
        assert (record.relaunch, record.relaunch_wait_seconds) == (True, wait)


def test_the_execution_limit_holds_the_longest_waits_either_spelling_allows() -> None:
    """retry_delay_s 86,400 doubled five times (31 days) outlasts five capped backoff
    waits (5 x 86,400 s); the state machine's TimeoutSeconds is derived from the longer."""
    assert limits.longest_relaunch_waits(6) == 31 * 86_400
    backoff = options(
        n_retries_allowed=5,
        retry_backoff_base_s=86_400,
        retry_backoff_rate=10,
        retry_backoff_max_s=86_400,
    )
    assert sum(waits(backoff)) == 5 * 86_400 < limits.longest_relaunch_waits(6)
