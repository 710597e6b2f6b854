"""The largest input amirun accepts runs to the end: no state nears Step Functions' limit.

Step Functions fails an execution whose state passes 256 KiB
(States.DataLimitExceeded) and no Catch sees it, so the validator bounds the
input (MAX_INPUT_BYTES). The emulator does not enforce the limit; the
rehearsal measures every state the execution carried instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from amirun_core.execution import MAX_INPUT_BYTES, STATE_LIMIT_BYTES, input_size, parse_execution

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def biggest(rehearsed: Any, basic: Any) -> Any:
    """basic.json with one more command, padded to exactly MAX_INPUT_BYTES."""
    request = basic()
    request["commands"].append("echo ")
    request["commands"][-1] += "x" * (MAX_INPUT_BYTES - input_size(request))
    assert input_size(request) == MAX_INPUT_BYTES
    parse_execution(request)
    return rehearsed(request)


def test_the_biggest_accepted_input_runs_to_success(biggest: Any, success_path: list[str]) -> None:
    assert biggest.result.status == "SUCCEEDED", biggest.result.cause
    assert biggest.milestones == success_path


def test_every_state_it_carried_stays_under_the_limit(biggest: Any) -> None:
    assert MAX_INPUT_BYTES < biggest.result.largest_state_bytes < STATE_LIMIT_BYTES
    assert biggest.result.largest_state_growth < STATE_LIMIT_BYTES - MAX_INPUT_BYTES


def test_the_commands_reach_the_instance_whole(biggest: Any) -> None:
    [sent] = biggest.result.sent_commands
    assert sent[-1] == biggest.request["commands"][-1].replace("DAILY", biggest.run_date)
