"""Many executions at once on one emulator: each succeeds with one instance, left at rest.

A small `bench/load.py`: the same code, a few executions, with a share of the
steps' EC2 and SSM calls throttled so that the SDK's retries and the state
machine's Retry both come into play. Nothing here is timed.
"""

from __future__ import annotations

from typing import Any

import pytest

from amirun.local.load import LoadReport, run_load
from amirun.local.runner import RehearsalOptions

pytestmark = pytest.mark.slow

EXECUTIONS = 6


@pytest.fixture(scope="module")
def throttled_load(execution: Any) -> LoadReport:
    options = RehearsalOptions(agent_delay_s=0.2, command_duration_s=0.3, throttle_share=0.3)
    return run_load(execution("basic.json"), EXECUTIONS, options, poll_s=0.2)


def test_every_execution_succeeds(throttled_load: LoadReport) -> None:
    assert dict(throttled_load.statuses) == {"SUCCEEDED": EXECUTIONS}, throttled_load.failures


def test_one_instance_per_execution_and_none_left_running(throttled_load: LoadReport) -> None:
    assert throttled_load.instances_launched == EXECUTIONS
    assert throttled_load.instances_left_running == 0
    assert throttled_load.commands_sent == EXECUTIONS
    assert throttled_load.duplicates == 0
    assert throttled_load.all_good


def test_calls_were_throttled_and_the_run_went_through(throttled_load: LoadReport) -> None:
    assert throttled_load.throttled_attempts > 0
    # Five steps per execution at least: the endpoint ran them, several at once.
    assert throttled_load.lambda_invocations >= 5 * EXECUTIONS
    assert throttled_load.lambda_peak_concurrency > 1
    assert throttled_load.lambda_throttled == 0


def test_the_steps_metrics_do_not_pile_up_across_invocations(throttled_load: LoadReport) -> None:
    """Unpublished in a rehearsal, Powertools would keep them and print them at 100 values."""
    from amirun_core.observability import metrics

    assert throttled_load.lambda_invocations > 0
    assert not metrics.metric_set
