"""`amirun start --follow` on runs that really run: the real ASL and handlers on moto's server.

moto's server runs the state machine in this process; its Lambda calls go
to the project's local Invoke endpoint (as in a rehearsal), and the emulated
world makes instances, the SSM agent and commands behave as on AWS, fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_helpers import Followed, Live, follow

from amirun.cli import main

Capsys = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def succeeded(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Followed:
    """One run followed to its end, for the tests that look at a finished run."""
    return follow(live, tmp_path_factory.mktemp("runs"), "t-follow")


def state_lines(out: str) -> list[str]:
    """The state names in the progress lines (`    1.2s  Name`)."""
    return re.findall(r"^ *\d+\.\ds  (\S+)$", out, flags=re.MULTILINE)


def test_follow_shows_each_state_and_ends_with_the_summary(succeeded: Followed) -> None:
    assert succeeded.code == 0
    states = state_lines(succeeded.out)
    assert states[:6] == [
        "Prepare",
        "ClaimSlot",
        "Resolve",
        "ClaimRoom",
        "EC2StarterFromAMI",
        "WaitForInstance",
    ]
    for name in ("CheckInstanceReady", "Commander", "WaitForCommandEnd", "RunChecker"):
        assert name in states
    # The command's end came as an event: no safety look was needed.
    assert "EC2Poller" not in states
    assert states[-3:] == ["EC2Stopper", "Summarize", "Succeeded"]
    # The Tasks' results, described as a rehearsal describes them.
    assert " SSM agent Online" in succeeded.out
    assert "no output check" in succeeded.out
    result = succeeded.out.split("\n\n")[-1]
    assert result.startswith("SUCCEEDED in ")
    assert "Success (exit 0)" in result
    assert "  instance  i-" in result and result.rstrip().endswith("terminated")


def test_status_of_a_finished_run(live: Live, succeeded: Followed, capsys: Capsys) -> None:
    assert main(["status", "t-follow", "--stack", live.stack.name]) == 0

    out = capsys.readouterr().out
    assert out.startswith("t-follow  SUCCEEDED\n")
    assert "stopped    " in out
    assert "state      Succeeded (last)" in out
    assert "SUCCEEDED in " in out
    assert "Success (exit 0)" in out


def test_logs_of_a_finished_run_found_from_its_history(
    live: Live, succeeded: Followed, capsys: Capsys
) -> None:
    # No --stack: the output bucket is read from the run's own history.
    assert main(["logs", succeeded.arn]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"==> s3://{live.stack.bucket}/")
    assert "/runs/t-follow/attempt-1/" in out
    assert "(rehearsal: commands recorded, not run)" in out


def test_follow_a_failing_run(
    live: Live, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live.world.settings, "faults", frozenset({"command-fails"}))
    monkeypatch.setitem(live.execution["run_options"], "n_retries_allowed", 0)

    followed = follow(live, tmp_path, "t-fails")

    assert followed.code == 1
    assert "! CommandFailed: command " in followed.out
    states = state_lines(followed.out)
    assert states[-2:] == ["EC2Stopper", "RunFailed"]
    result = followed.out.split("\n\n")[-1]
    assert result.startswith("FAILED in ")
    assert ": CommandFailed\n  cause     " in result
    assert main(["status", followed.arn]) == 1
    assert "t-fails  FAILED" in capsys.readouterr().out
