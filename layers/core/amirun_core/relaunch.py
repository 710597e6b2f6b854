"""Relaunches as the original makes them: which market each attempt uses, how long before it.

- **Market** (`ii_cheapo`): the first attempt tries spot and falls back to
  on-demand when spot has no capacity; so do the middle ones; the **last**
  attempt of a run that may relaunch goes straight to on-demand, so a spot
  interruption or a capacity shortage does not cost the whole night. Without
  `ii_cheapo`, every attempt is on-demand.
- **Wait** before relaunch n (1 for the first): `retry_backoff_base_s *
  retry_backoff_rate^n`, at most `retry_backoff_max_s` (1800, 2, 7200: one hour,
  then two). n is the original's `retry_attempt` of the attempt that failed, plus
  one. `retry_delay_s: d` says the same with base d/2, rate 2 and no cap.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from amirun_core.execution import RunOptions

Market = Literal["spot", "on-demand"]


def markets(options: RunOptions, attempt: int) -> list[Market]:
    """The markets attempt `attempt` (1 for the first) tries, in order."""
    if not options.ii_cheapo:
        return ["on-demand"]
    last = options.attempts
    if attempt == last and attempt > 1:
        return ["on-demand"]
    return ["spot", "on-demand"]


def wait_before(options: RunOptions, attempt: int) -> int:
    """Seconds the run waits before attempt `attempt` (0 for the first)."""
    if attempt <= 1:
        return 0
    base, rate, cap = options.backoff()
    return math.ceil(min(cap, base * rate ** (attempt - 1)))


def plan(options: RunOptions) -> list[dict[str, Any]]:
    """Every attempt a run may make: its market(s) and the wait before it."""
    return [
        {
            "attempt": attempt,
            "wait_s": wait_before(options, attempt),
            "market": markets(options, attempt)[0],
            "on_demand_fallback": markets(options, attempt) == ["spot", "on-demand"],
        }
        for attempt in range(1, options.attempts + 1)
    ]
