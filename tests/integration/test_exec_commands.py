"""`--exec-commands`: the commands run in a local shell against the emulated AWS.

What RunChecker finds is what the command uploaded, and a failing command's exit
code and stderr come back as SSM reports them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.slow

FAILING_COMMANDS = [
    "echo 'reading the forcing for DAILY'",
    "echo 'forcing file missing: /data/forcing.nc' >&2",
    "exit 3",
]


@pytest.fixture(scope="module")
def upload(rehearsed: Any, execution: Any) -> Any:
    """executions/exec-upload.json: the command writes result.txt and uploads it."""
    return rehearsed(execution("exec-upload.json"), exec_commands=True)


@pytest.fixture(scope="module")
def exits_3(rehearsed: Any, basic: Any) -> Any:
    return rehearsed(basic(commands=FAILING_COMMANDS), exec_commands=True)


@pytest.fixture(scope="module")
def runs_too_long(rehearsed: Any, basic: Any) -> Any:
    # 60 s is 0.6 s at the time scale 0.01; the command would take 30 s.
    return rehearsed(basic(commands=["sleep 30"], timeout_s=60), exec_commands=True)


def test_the_checker_finds_what_the_command_uploaded(upload: Any, at_rest: Any) -> None:
    result = upload.result
    location = f"s3://amirun-example-results/uploads/{upload.run_date}/result.txt"

    assert result.status == "SUCCEEDED", result.cause
    checked = result.output["checked_object"]
    assert checked["checked"] is True
    assert checked["location"] == location
    # Written by the command (DAILY expanded in it), not put in place by the rehearsal.
    assert upload.objects[location] == f"amirun example result for {upload.run_date}\n".encode()
    assert checked["size"] == len(upload.objects[location])
    assert result.standin_outputs == []
    assert not any("stand-in" in note or "recorded" in note for note in result.notes)
    at_rest(upload)


def test_the_output_carries_the_commands_stdout(upload: Any) -> None:
    output = upload.result.output

    assert (output["command_status"], output["exit_code"]) == ("Success", 0)
    assert output["stdout_tail"] == (
        f"uploaded result.txt to s3://amirun-example-results/uploads/{upload.run_date}/result.txt\n"
    )


def test_a_failing_command_reports_its_exit_code_and_stderr(exits_3: Any, at_rest: Any) -> None:
    result = exits_3.result
    (instance_id,) = exits_3.launched

    assert (result.status, result.error) == ("FAILED", "CommandFailed")
    assert f"on {instance_id} ended Failed" in result.cause
    assert "exit code 3" in result.cause
    assert "stderr: forcing file missing: /data/forcing.nc" in result.cause
    assert result.cause.endswith(f" [attempt 1; instance {instance_id} terminated]")
    # Its end came as an event: no safety look.
    assert exits_3.milestones[-3:] == ["WaitForCommandEnd", "EC2Stopper", "RunFailed"]
    at_rest(exits_3)


def test_a_failing_commands_full_output_is_where_the_cause_says(exits_3: Any) -> None:
    location = re.search(r"full output: (s3://\S+/)", exits_3.result.cause)
    assert location, exits_3.result.cause
    streams = {
        url.rsplit("/", 1)[1]: body
        for url, body in exits_3.objects.items()
        if url.startswith(location[1])
    }

    assert streams == {
        "stdout": f"reading the forcing for {exits_3.run_date}\n".encode(),
        "stderr": b"forcing file missing: /data/forcing.nc\n",
    }


def test_a_command_running_past_its_time_limit_is_stopped(runs_too_long: Any, at_rest: Any) -> None:
    result = runs_too_long.result
    (instance_id,) = runs_too_long.launched

    assert (result.status, result.error) == ("FAILED", "CommandTimedOut")
    # The emulated agent ends the command at its executionTimeout, as SSM's would.
    (command_id,) = runs_too_long.command_statuses
    assert f"command {command_id} on {instance_id} ended TimedOut" in result.cause
    assert runs_too_long.command_statuses == {command_id: "TimedOut"}
    assert result.cause.endswith(f" [attempt 1; instance {instance_id} terminated]")
    at_rest(runs_too_long)


@pytest.fixture(scope="module")
def long_stderr(rehearsed: Any, basic: Any) -> Any:
    """A failure whose stderr passes SSM's 8,000 characters: the cause must show its end."""
    commands = [
        "echo 'starting the model' >&2",
        'for i in $(seq 1 400); do echo "step $i: still converging..." >&2; done',
        "echo 'FATAL: out of disk on /scratch' >&2",
        "exit 4",
    ]
    return rehearsed(basic(commands=commands), exec_commands=True)


def test_a_long_stderrs_cause_shows_its_real_end_read_from_s3(long_stderr: Any) -> None:
    cause = long_stderr.result.cause

    assert long_stderr.result.error == "CommandFailed"
    assert "exit code 4" in cause
    # The end of stderr (past SSM's first 8,000 characters), read from the S3 output.
    assert "FATAL: out of disk on /scratch" in cause
    assert "starting the model" not in cause
    # One line: stderr's line breaks are shown as " | ".
    assert "\n" not in cause
    assert "step 400: still converging... | FATAL: out of disk" in cause
    # So is the error the rehearsal shows as the end event ends the wait.
    (shown,) = [r for r in long_stderr.results("SettlerFunction") if "CommandFailed" in r]
    assert shown.startswith("ended the wait: CommandFailed: command ")
    assert "\n" not in shown
    assert "FATAL: out of disk on /scratch" in shown
