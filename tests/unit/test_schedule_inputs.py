"""The schedule file corpus (tests/schedule_inputs/): what `schedules expand` refuses.

`invalid/` holds hostile or malformed schedule files, `valid/` unusual ones that
must expand with every input valid. `index.json` says, for each refused file,
its class and the fields its message must name ("" for the file as a whole):

- "size": bounded before any work (matrix rows over all files, ranges, values
  that double, YAML aliases), so no file can take the machine's memory or time;
- "template": the template must be a regular file in the schedule file's folder;
- "expression": `${...}` bounded in size, depth and magnitude, division by zero
  named, none of Python's own limits reaching the user;
- "yaml": nesting, invalid UTF-8, integers Python will not convert: one line;
- "scheduler": what EventBridge Scheduler's CreateSchedule would refuse, refused
  at `expand` (see `amirun.schedule_expressions` for the rules and their page,
  https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html,
  and https://docs.aws.amazon.com/scheduler/latest/APIReference/API_CreateSchedule.html
  for descriptions (at most 512 characters) and the flexible window (1 to 1440
  minutes), https://docs.aws.amazon.com/scheduler/latest/APIReference/API_RetryPolicy.html
  for retries (0 to 185 attempts, 60 to 86,400 seconds));
- "messages": pydantic's wording never reaches the user; the key as written does.

What a repository cannot hold (a FIFO, /dev/zero through a symlink, files of
megabytes) is made on the spot below. How long the worst of them take and how
much memory they use is measured by `bench/hostile.py`, not asserted here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from amirun.cli import main
from amirun.schedules import (
    MAX_SCHEDULE_FILE_BYTES,
    MAX_TEMPLATE_BYTES,
    ScheduleFileError,
    check,
    expand,
)

INPUTS = Path(__file__).resolve().parents[1] / "schedule_inputs"
INDEX: dict[str, Any] = json.loads((INPUTS / "index.json").read_text(encoding="utf-8"))
INVALID = sorted(p.name for p in (INPUTS / "invalid").glob("*.yaml"))
VALID = sorted(p.name for p in (INPUTS / "valid").glob("*.yaml"))
CLASSES = {"size", "template", "expression", "yaml", "scheduler", "messages"}


def refusal(path: Path) -> str:
    """What `schedules expand` says about a file: the file's error, or its schedules'
    problems; "" when every schedule is valid."""
    try:
        schedules = expand([path])
    except ScheduleFileError as exc:
        # Without the file's path, which may hold a field's name.
        return str(exc).replace(str(path), "<file>")
    return "\n".join(str(problem) for problem in check(schedules))


def test_the_corpus_is_indexed_whole_and_covers_every_class() -> None:
    assert sorted(INDEX) == INVALID
    assert {entry["class"] for entry in INDEX.values()} == CLASSES
    assert len(VALID) >= 3


@pytest.mark.parametrize("name", INVALID)
def test_each_hostile_file_is_refused_naming_its_fields(name: str) -> None:
    message = refusal(INPUTS / "invalid" / name)

    assert message, f"{name} was accepted"
    for field in INDEX[name]["fields"]:
        assert field in message, message
    assert "Traceback" not in message
    assert "Input should" not in message and "union[" not in message


@pytest.mark.parametrize("name", INVALID)
def test_expand_answers_each_hostile_file_in_one_line_per_problem(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["schedules", "expand", str(INPUTS / "invalid" / name)])
    except SystemExit as exc:  # a file that cannot be expanded: a usage error
        code = int(str(exc.code))
    out, err = capsys.readouterr()

    assert code in (1, 2)
    assert "Traceback" not in out + err
    if code == 2:  # the file itself: one line
        assert err.startswith("amirun: ") and err.count("\n") == 1
    assert all(len(line) < 600 for line in err.splitlines())


@pytest.mark.parametrize("name", VALID)
def test_each_unusual_valid_file_expands_with_every_input_valid(name: str) -> None:
    assert refusal(INPUTS / "valid" / name) == ""


# --- what the corpus does not hold: made on the spot ------------------------------------------
def write(folder: Path, text: str, template: str = "run.json") -> Path:
    (folder / "run.json").write_bytes((INPUTS / "valid" / "run.json").read_bytes())
    path = folder / "set.yaml"
    path.write_text(
        f"template: {template}\nschedules:\n  - {{name: job, expression: 'rate(1 day)'}}\n" + text,
        encoding="utf-8",
    )
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_template_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.json")  # nobody ever writes to it

    message = refusal(write(tmp_path, "", template="pipe.json"))

    assert "schedules[0].template" in message and "not a regular file" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_schedule_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "set.yaml")

    assert "not a regular file" in refusal(tmp_path / "set.yaml")


def test_a_symlink_leading_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "schedules"
    inside.mkdir()
    (tmp_path / "secret.json").write_text("{}")
    (inside / "link.json").symlink_to(tmp_path / "secret.json")

    message = refusal(write(inside, "", template="link.json"))

    assert "schedules[0].template" in message and "outside the schedule file's folder" in message


def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zero.json").symlink_to("/dev/zero")

    message = refusal(write(tmp_path, "", template="zero.json"))

    assert "schedules[0].template" in message


def test_a_symlink_within_the_folder_is_followed(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "real.json").write_bytes((INPUTS / "valid" / "run.json").read_bytes())
    (tmp_path / "link.json").symlink_to(tmp_path / "shared" / "real.json")
    path = write(tmp_path, "values: {what: a}\n", template="link.json")

    assert refusal(path) == ""


def test_a_schedule_file_too_big_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_SCHEDULE_FILE_BYTES + "\n")

    message = refusal(path)

    assert f"larger than {MAX_SCHEDULE_FILE_BYTES:,} bytes" in message


def test_a_template_too_big_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, "", template="big.json")
    (tmp_path / "big.json").write_text(" " * (MAX_TEMPLATE_BYTES + 1))

    message = refusal(path)

    assert "schedules[0].template" in message and "larger than" in message


def test_rows_are_counted_over_all_the_files_given(tmp_path: Path) -> None:
    """Two files of 6,000 schedules each: the second passes the bound, and is named."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            "template: run.json\nschedules:\n"
            f"  - {{name: '{name}-${{n}}', expression: 'rate(1 day)', matrix: {{n: 0000..5999}}}}\n"
        )
    (tmp_path / "run.json").write_bytes((INPUTS / "valid" / "run.json").read_bytes())

    with pytest.raises(ScheduleFileError, match=r"b\.yaml: schedules\[0\]\.matrix: .*6,000"):
        expand([tmp_path])


def test_without_libyaml_the_python_loader_stops_at_the_same_depth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PyYAML without its C extension: the Python loader stops itself past 32 levels
    (its scanner is quadratic in `[` nesting, its composer recursive)."""
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)

    for name in ("yaml-nested-thousands-deep.yaml", "yaml-nested-deep-mappings.yaml"):
        assert "nested more than 32 levels" in refusal(INPUTS / "invalid" / name)
    assert refusal(INPUTS / "valid" / "cron-edges.yaml") == ""
