"""Errors are the contract with the state machine: the errors `errors.py` files
as transient are retried by the Tasks that raise them (names and Catches are
checked in tests/static)."""

from __future__ import annotations

from typing import Any

import pytest
from unit_helpers import ROOT, load_json

from amirun_core import errors

ASL = ROOT / "statemachine" / "amirun.asl.json"


def tasks() -> dict[str, dict[str, Any]]:
    states = load_json(ASL)["States"]
    return {name: s for name, s in states.items() if s["Type"] == "Task"}


def retried(task: dict[str, Any]) -> set[str]:
    return {name for retrier in task.get("Retry", []) for name in retrier["ErrorEquals"]}


def test_capacity_is_relaunched_not_retried_in_place() -> None:
    """A Retry would sleep minutes inside one attempt; a relaunch waits retry_delay_s."""
    assert "InsufficientCapacity" in errors.RELAUNCHABLE
    assert "InsufficientCapacity" not in retried(tasks()["EC2StarterFromAMI"])


def test_every_relaunchable_error_is_an_amirun_error() -> None:
    assert all(
        issubclass(getattr(errors, name), errors.AmirunError) for name in errors.RELAUNCHABLE
    )


@pytest.mark.parametrize("task", sorted(tasks()))
def test_every_task_retries_throttling(task: str) -> None:
    """Every step calls AWS, and every step turns throttling into AwsThrottled."""
    assert "AwsThrottled" in retried(tasks()[task])


@pytest.mark.parametrize(
    ("task", "error"),
    [
        ("Commander", "InstanceNotRegistered"),
    ],
)
def test_transient_errors_are_retried_where_they_are_raised(task: str, error: str) -> None:
    """errors.py files these under "Transient: the state machine retries these with
    backoff"."""
    assert error in retried(tasks()[task])
