"""`amirun run` at its edges: it validates first, checks its flags before anything starts,
stops cleanly on Ctrl-C or SIGTERM, and prints each line under the state it belongs to."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from amirun.cli import build_parser, main
from amirun.commands.common import MAX_FILE_BYTES
from amirun.local import runner
from amirun.project import load_workflow

pytestmark = pytest.mark.slow


def exit_code(argv: list[str]) -> int | str | None:
    try:
        return main(argv)
    except SystemExit as exited:
        return exited.code


def test_run_validates_first_with_validates_message_and_launches_nothing(
    execution_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rehearsal(*_: Any, **__: Any) -> None:
        raise AssertionError("a rehearsal started")

    monkeypatch.setattr(runner, "rehearse", no_rehearsal)
    path = execution_path("invalid-check-s3-true.json")

    assert exit_code(["validate", path]) == 1
    validated = capsys.readouterr().err
    assert exit_code(["run", path]) == 1
    rehearsed = capsys.readouterr()

    assert rehearsed.err == validated
    assert rehearsed.out == ""


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--time-scale", "2"], "argument --time-scale: must be more than 0 and at most 1, not 2"),
        (["--time-scale", "0"], "argument --time-scale: must be more than 0 and at most 1, not 0"),
        (["--time-scale", "-0.5"], "must be more than 0 and at most 1, not -0.5"),
        (["--time-scale", "nan"], "argument --time-scale: not a finite number: nan"),
        (["--time-scale", "fast"], "argument --time-scale: not a number: fast"),
        (["--agent-delay", "-1"], "argument --agent-delay: must be 0 to 3600 seconds, not -1"),
        (["--command-duration", "inf"], "argument --command-duration: not a finite number: inf"),
        (["--command-duration", "1e9"], "must be 0 to 3600 seconds, not 1e9"),
        (["--fault", "meteor"], "argument --fault: invalid choice: 'meteor'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_get_one_line_and_exit_2_before_anything_starts(
    flags: list[str],
    expected: str,
    execution_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_rehearsal(*_: Any, **__: Any) -> None:
        raise AssertionError("a rehearsal started")

    monkeypatch.setattr(runner, "rehearse", no_rehearsal)

    assert exit_code(["run", execution_path("basic.json"), *flags]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert expected in err
    assert err.count("\n") == 1
    assert err.rstrip().endswith("--help)")


def test_the_rehearsal_refuses_a_time_scale_outside_0_1_itself() -> None:
    """For callers other than the CLI (bench scripts, tests)."""
    with pytest.raises(runner.RehearsalError, match=r"time scale 1\.5"):
        runner.rehearse({}, runner.RehearsalOptions(time_scale=1.5))


@pytest.mark.parametrize("command", sorted(build_parser()._subparsers._group_actions[0].choices))
def test_every_subcommand_describes_itself_and_each_argument(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code([command, "--help"]) == 0
    text = capsys.readouterr().out
    arguments = re.findall(r"^  (\S+)(?: \S+)?\s{2,}(\S.*)$", text, re.MULTILINE)

    assert arguments, text
    # A description under the usage, before the arguments.
    usage, description, *_ = text.split("positional arguments")[0].split("\n\n")
    assert usage.startswith(f"usage: amirun {command}")
    assert len(description.strip()) > 20, text
    assert all(help_text.strip() for _, help_text in arguments)
    # Positional arguments have help text too (no bare line with just the name).
    assert not re.search(r"^  [a-z]+\n", text, re.MULTILINE), text


def test_ctrl_c_prints_one_line(
    execution_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "rehearse", interrupted)

    assert exit_code(["run", execution_path("basic.json")]) == 130
    err = capsys.readouterr().err
    assert err == "amirun: rehearsal stopped; nothing it started is left running\n"


def _commands_running(marker: str) -> list[str]:
    found = subprocess.run(
        ["ps", "-eo", "pid,args"], check=True, capture_output=True, text=True
    ).stdout
    return [line for line in found.splitlines() if marker in line and "ps -eo" not in line]


def _rehearsal_with_default_sigint(path: Path, temp: Path) -> subprocess.Popen[str]:
    """`amirun run --exec-commands` in a child whose SIGINT has its default disposition,
    whatever this process's is (a disposition set to ignore is inherited across exec)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "amirun.cli",
                "run",
                str(path),
                "--exec-commands",
                "--time-scale",
                "0.01",
                "--agent-delay",
                "0.2",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TMPDIR": str(temp)},
        )
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_rehearsal_and_kills_the_commands_process_group(
    how: signal.Signals, tmp_path: Path, basic: Any
) -> None:
    marker = f"amirun-signal-test-{how.name}-{os.getpid()}"
    # `exec -a` names the process after the marker, so `ps` finds this one only.
    request = basic(commands=[f"exec -a {marker} sleep 300"])
    path = tmp_path / "hangs.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    temp = tmp_path / "tmp"
    temp.mkdir()
    # A test started in the background (as some CI runners do) inherits SIGINT ignored,
    # and so would the rehearsal: the child gets the default disposition, on which
    # Python installs its KeyboardInterrupt handler. Pinned by ignoring it here first.
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = _rehearsal_with_default_sigint(path, temp)
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        for _ in range(600):  # the command runs after a few seconds
            if _commands_running(marker):
                break
            time.sleep(0.1)
        assert _commands_running(marker), "the command never started"
        assert [p.name for p in temp.iterdir() if p.name.startswith("amirun-command-")]

        process.send_signal(how)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 130
    assert err.splitlines()[-1] == "amirun: rehearsal stopped; nothing it started is left running"
    assert "Traceback" not in err
    assert _commands_running(marker) == []
    assert [p.name for p in temp.iterdir() if p.name.startswith("amirun-command-")] == []
    # The progress shown so far came before the one-line goodbye (it may lag the
    # running command by a state: lines print in the history's order).
    assert out.startswith("Rehearsing ")


@pytest.fixture(scope="module")
def throttled(rehearsed: Any, basic: Any) -> Any:
    """Many result and error lines: every call throttled once, then retried."""
    return rehearsed(basic(ii_delete_volume=True), faults=["throttle"])


def test_each_result_line_is_under_the_state_that_made_the_call(throttled: Any) -> None:
    definition = json.loads(load_workflow().definition_file.read_text(encoding="utf-8"))
    function_of = {
        # A task-token wait names its function in its parameters.
        name: state.get("Parameters", {})
        .get("FunctionName", state["Resource"])
        .strip("${}")
        .removesuffix("Arn")
        for name, state in definition["States"].items()
        if state["Type"] == "Task"
    }
    current = None
    checked = 0
    for event in throttled.progress:
        if event.kind == "state":
            current = event.state
        elif event.kind in ("result", "error") and event.state in function_of.values():
            # (The Settler is called by EventBridge, whenever an event comes: by no state.)
            assert function_of.get(current or "") == event.state, (current, event)
            checked += 1

    assert checked >= 8
    assert any(event.kind == "error" for event in throttled.progress)


def test_the_summary_lists_the_deleted_volumes(throttled: Any) -> None:
    from amirun.commands.common import print_result

    deleted = throttled.result.volumes_deleted
    assert deleted and all(v.startswith("vol-") for v in deleted)
    assert all(throttled.volumes.get(v) is None for v in deleted)

    out = io.StringIO()
    print_result(throttled.result, out)
    assert f"  volumes   deleted: {', '.join(deleted)}\n" in out.getvalue()


def test_a_spot_run_says_its_instance_is_terminated(
    execution_path: Any, capsys: pytest.CaptureFixture[str], fast_flags: list[str]
) -> None:
    path = execution_path("execution_nrds.json")  # ii_cheapo, stop not asked: terminate

    assert exit_code(["validate", path]) == 0
    assert "terminate" in capsys.readouterr().out
    assert exit_code(["run", path, *fast_flags]) == 0
    out = capsys.readouterr().out
    assert "  spot      the instance is terminated, not stopped" in out


def test_the_rehearsal_page_lists_every_flag_of_run() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "rehearsal.md"
    readme = page.read_text(encoding="utf-8")
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    flags = [o for a in run._actions for o in a.option_strings if o.startswith("--")]

    assert len(flags) >= 8
    missing = [flag for flag in flags if f"| `{flag}" not in readme and flag != "--help"]
    assert missing == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp, "is a directory, not an execution JSON file"),
        (lambda tmp: tmp / "missing.json", "no such file"),
        (lambda tmp: tmp / "file.json" / "inside.json", "cannot read it: Not a directory"),
        (lambda tmp: f"{tmp}/nul\x00.json", "cannot read it: embedded null byte"),
        (lambda tmp: tmp / "huge.json", f"larger than {MAX_FILE_BYTES:,} bytes"),
    ],
    ids=["directory", "missing", "under-a-file", "nul-in-path", "huge"],
)
def test_paths_that_are_no_execution_file_get_one_line_and_exit_2(
    make: Any, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file.json").write_text("{}", encoding="utf-8")
    (tmp_path / "huge.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    path = str(make(tmp_path))

    for command in (["validate", path], ["run", path]):
        assert exit_code(command) == 2
        err = capsys.readouterr().err

        assert err.startswith(f"amirun: {path}: {expected}")
        assert err.count("\n") == 1
