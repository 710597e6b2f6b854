"""What the workflow adds to its input: the room MAX_INPUT_BYTES must leave.

Step Functions fails an execution whose state passes 256 KiB. The state holds
the input once plus the run's records (instance, command with its output
tails, check, cleanup, the causes of past attempts). This rehearses the runs
that grow the state most and prints, for each, the largest state and how much
it exceeds the input:

- a plain success;
- the most attempts allowed (n_retries_allowed 5), each failing with the
  longest stdout and stderr GetCommandInvocation returns, written in the
  characters that cost most once escaped in JSON (control characters, quotes
  and backslashes), commands run for real in a local shell.

    .venv/bin/python bench/state_size.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amirun.local.runner import RehearsalOptions, rehearse
from amirun.local.world import STDERR_LIMIT, STDOUT_LIMIT
from amirun_core.execution import MAX_INPUT_BYTES, STATE_LIMIT_BYTES

ROOT = Path(__file__).resolve().parents[1]
FAST = {"time_scale": 0.01, "agent_delay_s": 0.2, "command_duration_s": 0.3}

#: Writes the costliest output there is, then fails.
_NOISY = (
    'python3 -c "import sys; bad = chr(1) + chr(34) + chr(92); '
    f"sys.stdout.write(bad * {STDOUT_LIMIT}); sys.stderr.write(bad * {STDERR_LIMIT}); "
    'sys.exit(3)"'
)


def scenarios() -> dict[str, tuple[dict[str, Any], RehearsalOptions]]:
    basic = json.loads((ROOT / "tests" / "executions" / "basic.json").read_text("utf-8"))
    noisy = json.loads(json.dumps(basic))
    noisy["commands"] = [_NOISY]
    noisy["run_options"] |= {"n_retries_allowed": 5, "retry_delay_s": 0}
    return {
        "success": (basic, RehearsalOptions(**FAST)),
        "6 attempts, worst output": (noisy, RehearsalOptions(exec_commands=True, **FAST)),
    }


def main() -> None:
    print(f"{'run':28} {'status':10} {'largest state':>14} {'added':>8}")
    worst = 0
    for name, (request, options) in scenarios().items():
        result = rehearse(request, options)
        worst = max(worst, result.largest_state_growth)
        print(
            f"{name:28} {result.status:10} {result.largest_state_bytes:>14,}"
            f" {result.largest_state_growth:>8,}"
        )
    room = STATE_LIMIT_BYTES - MAX_INPUT_BYTES
    print(f"most the workflow added: {worst:,} bytes; MAX_INPUT_BYTES leaves {room:,}")


if __name__ == "__main__":
    main()
