"""The execution's overall time limit, derived from the largest limits a run may ask for.

Every loop in the workflow has its own deadline, but a Standard execution can
otherwise last a year. The state machine's `TimeoutSeconds` caps it at the
longest run the execution JSON allows, so a bug in a loop cannot bill forever;
past it the execution ends TIMED_OUT and the sweeper stops what it left.

The sum, for the largest value each run option accepts:

  input gate (once, before the first launch)            INPUT_GATE_MAX_S
+ per attempt, times the most attempts (1 + 5 relaunches):
    room:      queue_timeout_s (no room, or no capacity) + one look interval
    readiness: ready_timeout_s + one readiness interval
    command:   SSM delivery timeout + timeout_s + one poll interval
               + the command wait's safety interval
    cleanup:   the cleanup time limit + one cleanup interval
    in-place retries of each of the attempt's Tasks     TASK_RETRY_ALLOWANCE_S each
+ the relaunch waits (amirun_core.relaunch), the longer of the two ways to give
  them: the retry_backoff_* options (each wait at most retry_backoff_max_s) or
  retry_delay_s (doubled at each relaunch, no cap)
rounded up to a whole hour.
"""

from __future__ import annotations

import math

from amirun_core import relaunch, timing
from amirun_core.command import DELIVERY_TIMEOUT_S
from amirun_core.execution import BACKOFF_OPTIONS, RunOptions

#: ClaimRoom's shortest look interval and look budget (amirun_core.room, which
#: imports more than this module needs).
ROOM_INTERVAL_S = 30
ROOM_POLL_BUDGET = 150

#: Room for the input gate before the launch (it has its own deadline, at most this).
INPUT_GATE_MAX_S = 86_400
#: The command wait's safety interval: the longest it may take to notice the command's end.
COMMAND_WAIT_SAFETY_S = 600
#: One Task's worst in-place retrying, each retrier counting on its own: Lambda's
#: errors (6 retries, at most 60 s apart), Lambda's throttling (10, at most 60 s
#: apart), the steps' AWS throttling (8, at most 120 s apart), each try up to the
#: 30 s function timeout.
TASK_RETRY_ALLOWANCE_S = 1_800
#: Tasks one attempt runs: room, starter, readiness, commander, the command wait
#: (waiter), poller, checker, stopper.
TASKS_PER_ATTEMPT = 8


def largest(option: str) -> int:
    """The largest value `run_options.<option>` accepts (its `le` bound)."""
    bounds = [getattr(m, "le", None) for m in RunOptions.model_fields[option].metadata]
    value = next(b for b in bounds if b is not None)
    return int(value)


def execution_timeout_s() -> int:
    """The state machine's TimeoutSeconds (statemachine/amirun.asl.json carries it)."""
    attempts = largest("n_retries_allowed") + 1
    ready_timeout = largest("ready_timeout_s")
    command_timeout = largest("timeout_s")
    readiness = ready_timeout + timing.ready_poll_interval(ready_timeout, attempts)
    command = (
        DELIVERY_TIMEOUT_S
        + command_timeout
        + timing.command_look_interval(largest("poll_interval_s"), command_timeout, attempts)
        + COMMAND_WAIT_SAFETY_S
    )
    cleanup = timing.CLEANUP_TIMEOUT_S + timing.cleanup_poll_interval(attempts)
    queue_timeout = largest("queue_timeout_s")
    room = queue_timeout + timing.spread_interval(
        ROOM_INTERVAL_S, queue_timeout, attempts, ROOM_POLL_BUDGET
    )
    per_attempt = room + readiness + command + cleanup + TASKS_PER_ATTEMPT * TASK_RETRY_ALLOWANCE_S
    relaunch_waits = longest_relaunch_waits(attempts)
    total = INPUT_GATE_MAX_S + attempts * per_attempt + relaunch_waits
    return math.ceil(total / 3600) * 3600


def longest_relaunch_waits(attempts: int) -> int:
    """The most a run may wait between its attempts, over both ways to give the waits."""
    retries = attempts - 1
    spellings = (
        {"retry_delay_s": largest("retry_delay_s")},
        {name: largest(name) for name in BACKOFF_OPTIONS},
    )
    return max(
        sum(
            relaunch.wait_before(
                RunOptions.model_validate({**given, "n_retries_allowed": retries}), attempt
            )
            for attempt in range(2, attempts + 1)
        )
        for given in spellings
    )
