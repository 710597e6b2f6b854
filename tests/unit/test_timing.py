"""Waits and deadlines: a worst-case execution fits in Step Functions' history.

A Standard execution fails on its 25,000th history event. Every wait of the
workflow is a loop (Wait, Task, Choice) whose interval the steps compute, so
the longest execution the execution JSON allows must stay under that limit.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from pydantic import ValidationError
from unit_helpers import launch, make_request, make_state

from amirun_core import timing
from amirun_core.cleanup import stop_instance
from amirun_core.command import send_commands
from amirun_core.execution import MAX_TIMEOUT_S, RunOptions

#: States outside the three loops, per attempt: Starter, Commander, Checker,
#: the relaunch Wait and Pass, Task retries... counted generously.
FIXED_EVENTS_PER_ATTEMPT = 60

#: The slowest polling the execution JSON allows.
WORST_CASE = {
    "timeout_s": MAX_TIMEOUT_S,
    "ready_timeout_s": 3600,
    "n_retries_allowed": 5,
    "poll_interval_s": 5,
}


def loop_intervals(ec2: Any, ssm: Any, **run_options: Any) -> tuple[int, int, int]:
    """The waits the steps hand to the Wait states (ready, command, cleanup), at scale 1."""
    state, instance = launch(ec2, make_state(make_request(**run_options)))
    command = send_commands(ssm, state, None)
    cleanup = stop_instance(ec2, state)
    assert not cleanup.done  # asked EC2 to stop: the loop would wait cleanup.wait_seconds
    return instance.wait_seconds, command.wait_seconds, cleanup.wait_seconds


@pytest.mark.parametrize(
    ("field", "beyond"),
    [
        ("timeout_s", MAX_TIMEOUT_S + 1),
        ("ready_timeout_s", 3601),
        ("n_retries_allowed", 6),
        ("poll_interval_s", 4),
    ],
)
def test_the_worst_case_is_the_limit_of_the_execution_json(field: str, beyond: int) -> None:
    assert RunOptions(**WORST_CASE).timeout_s == 172_800
    with pytest.raises(ValidationError, match=field):
        RunOptions(**{**WORST_CASE, field: beyond})


def test_the_steps_wait_as_timing_says(ec2: Any, ssm: Any) -> None:
    ready, command, cleanup = loop_intervals(ec2, ssm, **WORST_CASE)
    attempts = WORST_CASE["n_retries_allowed"] + 1

    assert ready == timing.ready_poll_interval(WORST_CASE["ready_timeout_s"], attempts)
    assert command == timing.command_look_interval(
        WORST_CASE["poll_interval_s"], WORST_CASE["timeout_s"], attempts
    )
    assert cleanup >= timing.CLEANUP_INTERVAL_S


def test_a_worst_case_execution_stays_under_the_history_limit(ec2: Any, ssm: Any) -> None:
    """Every attempt waits out its readiness timeout, its command timeout and the
    cleanup time limit, polling at the intervals the steps compute."""
    ready, command, cleanup = loop_intervals(ec2, ssm, **WORST_CASE)
    attempts = WORST_CASE["n_retries_allowed"] + 1
    loops_per_attempt = math.ceil(WORST_CASE["ready_timeout_s"] / ready) + math.ceil(
        timing.CLEANUP_TIMEOUT_S / cleanup
    )
    rounds_per_attempt = math.ceil(WORST_CASE["timeout_s"] / command)

    # The input gate runs once, before the first attempt, for up to 24 h.
    gate_loops = math.ceil(86_400 / timing.inputs_poll_interval(86_400))
    events = attempts * (
        loops_per_attempt * timing.EVENTS_PER_LOOP
        + rounds_per_attempt * timing.EVENTS_PER_SAFETY_ROUND
        + FIXED_EVENTS_PER_ATTEMPT
    )
    events += gate_loops * timing.EVENTS_PER_LOOP

    assert events < timing.HISTORY_LIMIT, (
        f"{events} history events: {attempts} attempts x {loops_per_attempt} loops and "
        f"{rounds_per_attempt} safety rounds, {gate_loops} input gate loops "
        f"(ready every {ready} s, command looked at every {command} s, cleanup every "
        f"{cleanup} s)"
    )


def test_a_48_hour_command_uses_under_a_tenth_of_the_history(ec2: Any, ssm: Any) -> None:
    """One attempt whose command runs 48 hours and whose end event never comes: only
    the safety rounds notice it. (The few readiness and stop loops of a real run are
    in the whole histories bench/cost.py counts.)"""
    _, command, _ = loop_intervals(ec2, ssm, timeout_s=MAX_TIMEOUT_S)
    rounds = math.ceil(MAX_TIMEOUT_S / command)
    events = rounds * timing.EVENTS_PER_SAFETY_ROUND + FIXED_EVENTS_PER_ATTEMPT

    assert rounds <= timing.COMMAND_LOOK_BUDGET
    assert events < timing.HISTORY_LIMIT / 10, f"{events} events (safety look every {command} s)"


@pytest.mark.parametrize("n_retries_allowed", [0, 2, 5])
def test_each_loop_keeps_to_its_budget(ec2: Any, ssm: Any, n_retries_allowed: int) -> None:
    options = {**WORST_CASE, "n_retries_allowed": n_retries_allowed}
    ready, command, cleanup = loop_intervals(ec2, ssm, **options)
    attempts = n_retries_allowed + 1
    # One more loop per attempt than the budget is rounding, not a breach.
    loops = {
        "ready": (
            attempts * math.ceil(options["ready_timeout_s"] / ready),
            timing.READY_POLL_BUDGET,
        ),
        "command": (
            attempts * math.ceil(options["timeout_s"] / command),
            timing.COMMAND_LOOK_BUDGET,
        ),
        "cleanup": (
            attempts * math.ceil(timing.CLEANUP_TIMEOUT_S / cleanup),
            timing.CLEANUP_POLL_BUDGET,
        ),
    }

    over = {name: used for name, (used, budget) in loops.items() if used > budget + attempts}
    assert over == {}, f"loops over budget: {over} (budgets: {loops})"


def test_short_jobs_are_looked_at_the_requested_interval(ec2: Any, ssm: Any) -> None:
    _, command, _ = loop_intervals(ec2, ssm, timeout_s=600, poll_interval_s=20)

    assert command == 20


def test_the_safety_look_is_ten_minutes_unless_asked(ec2: Any, ssm: Any) -> None:
    _, command, _ = loop_intervals(ec2, ssm, timeout_s=3600)

    assert command == 600


def test_the_wait_for_the_end_never_passes_the_deadline(ec2: Any, ssm: Any) -> None:
    _, command, _ = loop_intervals(ec2, ssm, timeout_s=300)

    assert command == 300  # the safety interval is 600 s, the command's limit 300 s


# --- AMIRUN_TIME_SCALE ---------------------------------------------------------
def test_time_scale_is_one_when_deployed() -> None:
    assert timing.time_scale() == 1
    assert timing.wait_seconds(30) == 30
    assert timing.scaled(600).total_seconds() == 600


def test_time_scale_shrinks_waits_and_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "0.01")

    assert timing.wait_seconds(30) == 1
    assert timing.wait_seconds(576) == 6
    assert timing.wait_seconds(0.5) == 1  # never below 1 s
    assert timing.scaled(3600).total_seconds() == 36


def test_time_scale_shrinks_what_the_steps_record(
    ec2: Any, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "0.01")
    state, instance = launch(ec2, make_state(make_request(ready_timeout_s=600, timeout_s=900)))
    command = send_commands(ssm, state, None)

    assert (instance.ready_deadline - instance.launched_at).total_seconds() == 6
    assert instance.wait_seconds == 1
    assert (command.deadline - command.sent_at).total_seconds() == 9
    assert command.wait_seconds == 6  # the 600 s safety interval


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "10"])
def test_time_scale_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", value)

    with pytest.raises(ValueError, match="AMIRUN_TIME_SCALE"):
        timing.time_scale()
