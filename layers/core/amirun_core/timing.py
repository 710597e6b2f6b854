"""Clocks, waits and deadlines.

Waiting is done by Step Functions (Wait states fed by `wait_seconds`), never by
sleeping in a Lambda. `AMIRUN_TIME_SCALE` shrinks every wait and deadline for
local rehearsals (0.01 turns a 30 s poll into 1 s); it is 1 when deployed.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

#: The history hard limit of a Standard execution, the events one Wait + Task +
#: Choice loop iteration writes, and the events one safety round of the command
#: wait writes (the token wait timing out, the poller's look, the Choice).
HISTORY_LIMIT = 25_000
EVENTS_PER_LOOP = 9
EVENTS_PER_SAFETY_ROUND = 14

#: Most loop iterations one execution may spend, over all its attempts, waiting
#: for the instance, for the command (safety rounds: its end is an event) and
#: for the stop. With the fixed per-attempt states this keeps a worst-case
#: execution under HISTORY_LIMIT, and a 48-hour command under a tenth of it
#: (unit tests check both).
COMMAND_LOOK_BUDGET = 150
READY_POLL_BUDGET = 400
CLEANUP_POLL_BUDGET = 300
#: Loops the input gate may spend, once per execution (relaunches skip it).
INPUTS_POLL_BUDGET = 150

READY_INTERVAL_S = 10
INPUTS_INTERVAL_S = 60
CLEANUP_INTERVAL_S = 10
CLEANUP_TIMEOUT_S = 900


def time_scale() -> float:
    value = float(os.environ.get("AMIRUN_TIME_SCALE", "1"))
    if not 0 < value <= 1:
        raise ValueError(f"AMIRUN_TIME_SCALE must be in (0, 1], got {value}")
    return value


def now() -> datetime:
    return datetime.now(UTC)


def scaled(seconds: float) -> timedelta:
    """A duration of `seconds` on this deployment's clock (shrunk in rehearsals)."""
    return timedelta(seconds=seconds * time_scale())


def wait_seconds(seconds: float) -> int:
    """What a Wait state should wait for `seconds` of real-world time (at least 1)."""
    return max(1, math.ceil(seconds * time_scale()))


def spread_interval(shortest_s: int, window_s: int, attempts: int, budget: int) -> int:
    """The interval that keeps `attempts` windows of polling within `budget` loops."""
    return max(shortest_s, math.ceil(window_s * attempts / budget))


def command_look_interval(poll_interval_s: int, timeout_s: int, attempts: int) -> int:
    """How long to wait for the command's end event before a safety look."""
    return spread_interval(poll_interval_s, timeout_s, attempts, COMMAND_LOOK_BUDGET)


def wait_seconds_until(deadline: datetime, seconds: float) -> int:
    """`wait_seconds(seconds)`, but never past `deadline` (at least 1 s).

    Rounded up, so the look that follows the wait finds the deadline passed.
    """
    remaining = math.ceil((deadline - now()).total_seconds())
    return max(1, min(wait_seconds(seconds), remaining))


def ready_poll_interval(ready_timeout_s: int, attempts: int) -> int:
    return spread_interval(READY_INTERVAL_S, ready_timeout_s, attempts, READY_POLL_BUDGET)


def cleanup_poll_interval(attempts: int) -> int:
    return spread_interval(CLEANUP_INTERVAL_S, CLEANUP_TIMEOUT_S, attempts, CLEANUP_POLL_BUDGET)


def inputs_poll_interval(inputs_timeout_s: int, shortest_s: int = INPUTS_INTERVAL_S) -> int:
    return spread_interval(shortest_s, inputs_timeout_s, 1, INPUTS_POLL_BUDGET)
