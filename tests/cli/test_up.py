"""`amirun up` as a user starts it: a process that serves until Ctrl-C.

It prints the lines to export; with them, `schedules apply` puts a schedule in
the stack's group, the stack's Scheduler fires it at its time on the fast
clock, and `runs` lists the run it started. Ctrl-C ends the process and
leaves nothing running: the port is free again.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from amirun.local.runner import RUN_LEDGER_TABLE
from amirun_core.ledger import read_slot

pytestmark = pytest.mark.slow

SCHEDULE_FILE = """\
template: run.json
time_zone: UTC
flexible_window: off
schedules:
  - name: tiny
    expression: cron(0 1 * * ? *)
"""
EXECUTION = """\
{"commands": ["echo hello"],
 "run_options": {"ii_terminate_instance": true, "ii_check_s3": false, "timeout_s": 600},
 "instance_parameters": {"ImageId": "ami-0a1b2c3d4e5f67890", "InstanceType": "t4g.small"}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def amirun(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amirun.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_up_serves_the_stack_fires_a_schedule_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(SCHEDULE_FILE, encoding="utf-8")
    (tmp_path / "run.json").write_text(EXECUTION, encoding="utf-8")
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "amirun.cli",
                "up",
                "--port",
                str(port),
                "--clock-start",
                "2026-02-09T00:00Z",
                "--time-scale",
                "0.01",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, "TMPDIR": str(tmp_path)},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert server.stdout is not None
        banner = []
        for line in server.stdout:
            banner.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        exports = [line.strip() for line in banner if line.strip().startswith("export ")]
        assert exports[0] == f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}"
        env = dict(clean)
        for line in exports:
            for pair in line.removeprefix("export ").split():
                name, _, value = pair.partition("=")
                env[name] = value

        applied = amirun(
            "schedules",
            "apply",
            str(tmp_path / "tiny.yaml"),
            "--stack",
            "amirun-rehearsal",
            "--yes",
            env=env,
        )
        assert applied.returncode == 0, applied.stderr
        assert "Applied: 1 created" in applied.stdout

        # 01:00 on a clock 100 times as fast: 36 s after the start; then the run runs.
        fired = server.stdout.readline()
        assert re.match(r"^2026-02-09T01:00:00Z  tiny: started tiny_[0-9a-f-]{36}$", fired), fired
        for _ in range(120):
            runs = amirun("runs", "--stack", "amirun-rehearsal", "--json", env=env)
            if '"SUCCEEDED"' in runs.stdout:
                break
            time.sleep(1)
        assert '"SUCCEEDED"' in runs.stdout, runs.stdout + runs.stderr
        assert '"schedule": "tiny"' in runs.stdout
        # The run claimed its slot (ClaimSlot) and its end reached the recorder
        # (RecorderFunction, on the state machine's status-change rule).
        assert recorded_status(env, "slot#tiny#2026-02-09T01:00:00Z") == "succeeded"

        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()

    assert server.returncode == 0
    assert err.splitlines()[-1] == "amirun: stopped; nothing is left running"
    assert "Traceback" not in err
    # Free again: a new `amirun up --port` can listen there. Its probe (and the server)
    # set SO_REUSEADDR, as this one does: the connections the commands made may linger in
    # TIME_WAIT on the port, which only a bind without it refuses.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()


def recorded_status(env: dict[str, str], slot: str) -> str | None:
    """The slot's status in the local stack's ledger, once the recorder has written it."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    item = None
    for _ in range(60):
        item = read_slot(dynamodb, RUN_LEDGER_TABLE, slot)
        if item is not None and item.get("status") != "running":
            break
        time.sleep(0.5)
    return None if item is None else item.get("status")


NIGHT = """\
template: run.json
time_zone: America/New_York
flexible_window: 10
schedules:
  - name: night-${n}
    expression: cron(${n * 7} 1 * * ? *)
    matrix:
      n: [1, 2, 3]
"""


def test_rehearse_fires_every_schedule_of_the_day_and_ends_with_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every run drawn a fault: each still ends, none is left running."""
    from amirun.cli import main

    (tmp_path / "night.yaml").write_text(NIGHT, encoding="utf-8")
    (tmp_path / "run.json").write_text(EXECUTION, encoding="utf-8")

    code = main(
        [
            "schedules",
            "rehearse",
            str(tmp_path / "night.yaml"),
            "--day",
            "2026-02-09",
            "--fault-rate",
            "1",
            "--seed",
            "3",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "Night of 2026-02-09: 3 starts due, 3 started, 0 dead-lettered"
    assert re.match(r"^  by end:    3 failed$|^  by end:    (\d+ \w+(, )?)+$", lines[1])
    assert any(line.startswith("  faults drawn: ") for line in lines)
    assert "  instances: " in out and "0 left running, 0 duplicates" in out
    assert "3 of 3 started" in err  # progress on stderr
    logs = re.search(r"the handlers' logs: (\S+)", out)
    assert logs and Path(logs[1]).exists()
    assert "Traceback" not in out + err


def test_rehearse_under_a_quota_says_how_long_runs_waited_for_room(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Room for one t4g.small at a time: the other two runs wait, then succeed."""
    from amirun.cli import main

    (tmp_path / "night.yaml").write_text(NIGHT, encoding="utf-8")
    (tmp_path / "run.json").write_text(EXECUTION, encoding="utf-8")

    code = main(
        [
            "schedules",
            "rehearse",
            str(tmp_path / "night.yaml"),
            "--day",
            "2026-02-09",
            "--quota-vcpus",
            "2",
            "--quiet",
        ]
    )

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "  by end:    3 succeeded\n" in out
    assert re.search(r"launches refused for the vCPU quota", out)
    waited = re.search(r"^  longest wait for room: ([\d,]+) s \(rehearsal time\)$", out, re.M)
    assert waited, out
    # At least the run ahead's command, on the workflow's clock (the wall's x100).
    assert int(waited[1].replace(",", "")) >= 30


def test_up_on_a_taken_port_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from amirun.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exited:
            main(["up", "--port", str(port)])

    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        f"amirun: cannot start the server: port {port} on 127.0.0.1 is taken"
        " (Address already in use)\n"
    )
