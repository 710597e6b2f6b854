"""`amirun run` and `amirun validate`: exit codes, and what goes to stdout and stderr.

Exit codes: 0 SUCCEEDED (or a valid file), 1 FAILED (or an invalid file),
2 the rehearsal could not start (usage).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from amirun.cli import main
from amirun.local.runner import RehearsalError, RehearsalOptions, rehearse

pytestmark = pytest.mark.slow


def test_run_json_prints_the_result_as_json_on_stdout(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    code = main(["run", execution_path("basic.json"), "--json", *fast_flags])
    out, err = capsys.readouterr()

    assert code == 0
    result = json.loads(out)  # stdout is the JSON and nothing else
    assert result["status"] == "SUCCEEDED"
    assert result["error"] is None
    assert result["states"][-1] == "Succeeded"
    assert result["output"]["checked_object"]["checked"] is True
    (instance_id,) = result["instances"]
    assert result["instances"] == {instance_id: "terminated"}
    assert result["output"]["instance_id"] == instance_id
    # The progress and the summary went to stderr.
    assert "Rehearsing" in err
    assert "EC2StarterFromAMI" in err
    assert "SUCCEEDED in" in err


def test_run_with_a_failing_fault_exits_1_and_prints_the_error(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    code = main(["run", execution_path("basic.json"), "--fault", "capacity", *fast_flags])
    out, _ = capsys.readouterr()

    assert code == 1
    assert re.search(r"^FAILED in [\d.]+ s: InstanceQueueTimeout$", out, re.MULTILINE), out
    assert "the last launch was refused: t4g.small on-demand: InsufficientInstanceCapacity" in out
    assert "faults injected: capacity" in out
    assert "  instance  " not in out  # nothing was launched


def test_run_has_no_strict_flag(capsys: pytest.CaptureFixture[str], execution_path: Any) -> None:
    """The embedded account starts empty: `--strict` could only ever refuse, so it is gone."""
    with pytest.raises(SystemExit) as exited:
        main(["run", execution_path("basic.json"), "--strict"])

    _, err = capsys.readouterr()
    assert exited.value.code == 2
    assert len(err.splitlines()) == 1
    assert "unrecognized arguments: --strict" in err


def test_handler_logs_go_to_a_file_the_summary_names(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    """A crash logs a whole stack trace: in the log file, not on the console."""
    code = main(["run", execution_path("basic.json"), "--fault", "crash", *fast_flags])
    out, err = capsys.readouterr()

    assert code == 1
    assert "Traceback" not in out + err
    named = re.search(r"note      the handlers' logs: (\S+) \(--verbose shows them here\)", out)
    assert named, out
    logged = Path(named[1]).read_text(encoding="utf-8")
    assert "the look at the command crashed" in logged
    assert max(len(line) for line in (out + err).splitlines()) < 1000


def test_verbose_shows_the_handler_logs_on_stderr(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    code = main(["run", execution_path("basic.json"), "--fault", "crash", "--verbose", *fast_flags])
    out, err = capsys.readouterr()

    assert code == 1
    assert "handlers' logs" not in out
    assert "the look at the command crashed" in err


def test_verbose_shows_the_plumbing_notices(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    code = main(["run", execution_path("basic.json"), "--verbose", *fast_flags])
    out, _ = capsys.readouterr()

    assert code == 0
    assert "no run waits on it" in out


def test_the_plumbing_notices_are_not_shown_by_default(
    capsys: pytest.CaptureFixture[str], execution_path: Any, fast_flags: list[str]
) -> None:
    """The instance's own stop event reaches the Settler after the run's wait has ended:
    routine, shown with --verbose only."""
    code = main(["run", execution_path("basic.json"), *fast_flags])
    out, err = capsys.readouterr()

    assert code == 0
    assert "no run waits on it" not in out + err
    assert '"level"' not in err


def test_run_refuses_an_unknown_fault_as_a_usage_error(
    capsys: pytest.CaptureFixture[str], execution_path: Any
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", execution_path("basic.json"), "--fault", "meteor-strike"])

    assert exited.value.code == 2
    assert "meteor-strike" in capsys.readouterr().err


def test_run_on_a_missing_file_names_it_as_a_usage_error(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.json"

    with pytest.raises(SystemExit) as exited:
        main(["run", str(missing)])

    assert exited.value.code == 2
    assert f"amirun: {missing}: no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    [
        "basic.json",
        "exec-upload.json",
        "execution_gp_example.json",
        "execution_nrds.json",
        "execution_datastream_example.json",
        "nextgen/short_range.json",
        "nextgen/medium_range.json",
        "nextgen/qkrig.json",
    ],
)
def test_validate_accepts_a_good_file(
    name: str, capsys: pytest.CaptureFixture[str], execution_path: Any
) -> None:
    code = main(["validate", execution_path(name)])
    out, _ = capsys.readouterr()

    assert code == 0
    assert out.startswith(f"{execution_path(name)}: valid.")


@pytest.mark.parametrize(
    ("name", "field", "hint"),
    [
        ("invalid-check-s3-typo.json", "run_options.check_s3", "did you mean ii_check_s3?"),
        ("invalid-check-s3-true.json", "run_options.ii_check_s3", "no --s3_bucket or --s3_prefix"),
    ],
)
def test_validate_refuses_a_bad_file_naming_the_field(
    name: str, field: str, hint: str, capsys: pytest.CaptureFixture[str], execution_path: Any
) -> None:
    code = main(["validate", execution_path(name)])
    out, err = capsys.readouterr()

    assert code == 1
    assert out == ""
    assert err.startswith(f"{execution_path(name)}: invalid execution JSON\n")
    assert f"  - {field}: " in err
    assert hint in err


def test_validate_prints_each_problem_whole_on_one_line(
    capsys: pytest.CaptureFixture[str], execution_path: Any
) -> None:
    main(["validate", execution_path("invalid-check-s3-true.json")])
    problems = [
        line.removeprefix("  - ")
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("  - ")
    ]

    assert problems == [
        "run_options.ii_check_s3: `true` checks the output location the commands give, but "
        "there is no --s3_bucket or --s3_prefix (any case) in them; add it, or give "
        '{"bucket": "...", "prefix": "..."}, or false'
    ]


# --- one process, several rehearsals --------------------------------------------------------
def test_a_rehearsal_after_one_whose_stderr_was_closed_still_runs(basic: Any) -> None:
    # --strict stops a rehearsal just after it has set up its logging: a quick way to
    # run two. Both must end with the same RehearsalError.
    strict = RehearsalOptions(strict=True)
    earlier_stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")  # as capsys's is
    with contextlib.redirect_stderr(earlier_stderr), pytest.raises(RehearsalError):
        rehearse(basic(), strict)
    earlier_stderr.close()

    with pytest.raises(RehearsalError, match="security group sg-0a1b2c3d4e5f67890"):
        rehearse(basic(), strict)


def test_run_schedule_rehearses_one_schedule_of_a_file_at_its_scheduled_time(
    capsys: pytest.CaptureFixture[str], fast_flags: list[str]
) -> None:
    from amirun.project import ROOT

    schedules = str(ROOT / "schedules" / "generic" / "nightly-report.yaml")
    code = main(
        [
            "run",
            "--schedule",
            schedules,
            "nightly-report-large",
            "--at",
            "2026-02-09T01:30Z",
            "--json",
            *fast_flags,
        ]
    )
    out, err = capsys.readouterr()

    assert code == 0, err
    assert "Rehearsing schedule nightly-report-large at 2026-02-09T01:30:00Z" in err
    result = json.loads(out)
    assert result["status"] == "SUCCEEDED"
    # No forcing source in the command: DAILY is the day before the scheduled day.
    assert result["output"]["checked_object"]["location"].startswith(
        "s3://my-results/reports/large/20260208/"
    )


def test_run_schedule_needs_at_and_no_execution_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "x.json", "--schedule", "s.yaml", "NAME", "--at", "2026-02-09"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "amirun: --schedule FILE NAME takes --at TIME and no execution file\n"
    )
