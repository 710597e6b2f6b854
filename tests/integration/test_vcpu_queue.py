"""Runs wait for room: several executions at once on one emulator, under a vCPU limit.

The real ASL and handlers; the emulated account refuses launches past its vCPU
quota with VcpuLimitExceeded, as EC2 does
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-on-demand-instances.html#ec2-on-demand-instances-limits).
"""

from __future__ import annotations

from typing import Any

import pytest

from amirun.local.load import LoadReport, run_load
from amirun.local.runner import RehearsalOptions

pytestmark = pytest.mark.slow

#: Five runs of t4g.small (2 vCPUs each) where 4 vCPUs fit: two at a time.
RUNS = 5
LIMIT = 4


def load(basic: Any, **options: Any) -> LoadReport:
    fast = RehearsalOptions(agent_delay_s=0.2, command_duration_s=0.3, **options)
    return run_load(basic(queue_timeout_s=3600), RUNS, fast, poll_s=0.3)


@pytest.fixture(scope="module")
def under_the_stack_limit(basic: Any) -> LoadReport:
    return load(basic, quota_vcpus=LIMIT, vcpu_limit=LIMIT)


@pytest.fixture(scope="module")
def under_the_quota_only(basic: Any) -> LoadReport:
    return load(basic, quota_vcpus=LIMIT)


def test_runs_wait_for_room_and_all_succeed(under_the_stack_limit: LoadReport) -> None:
    report = under_the_stack_limit
    assert report.all_good, report.failures
    assert report.failed_for_capacity == 0
    assert report.peak_vcpus <= LIMIT
    # The stack's own limit keeps the runs under the quota: EC2 never refuses one.
    assert report.quota_refusals == 0
    assert report.longest_room_wait_s > 0


def test_a_quota_refusal_is_a_wait_not_a_failure(under_the_quota_only: LoadReport) -> None:
    report = under_the_quota_only
    assert report.all_good, report.failures
    assert report.quota_refusals > 0
    assert report.peak_vcpus <= LIMIT


def test_a_run_larger_than_the_stacks_limit_ends_at_once_naming_both(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    """`amirun run --vcpu-limit 1`: a t4g.small (2 vCPUs) could never start; nothing waits."""
    from amirun.cli import main

    code = main(["run", execution_path("basic.json"), "--vcpu-limit", "1", *fast_flags])
    out, _ = capsys.readouterr()

    assert code == 1
    assert "InstanceQueueTimeout" in out
    assert "the run needs 2 vCPUs, more than the limit of capacity#stack (1)" in out
    assert "  instance  " not in out


def test_a_negative_quota_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], execution_path: Any
) -> None:
    from amirun.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", execution_path("basic.json"), "--quota-vcpus", "-1"])
    assert exited.value.code == 2
    assert "--quota-vcpus: -1: must be 0 or more" in capsys.readouterr().err
