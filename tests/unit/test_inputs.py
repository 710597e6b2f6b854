"""The input corpus (tests/inputs/): the validator, the JSON Schema and the CLI agree on it.

`invalid/` holds malformed execution files, `valid/` unusual ones that must pass.
`index.json` says, for each malformed file, the fields its problems must name
("" for the file as a whole) and who refuses it:

- "reader": reading the file (invalid UTF-8, duplicate keys, NaN, nesting...):
  no JSON Schema sees these, since a schema judges parsed JSON;
- "both": the validator and the published JSON Schema, each naming the field;
- "validator": a rule no JSON Schema keyword expresses (the output location
  `ii_check_s3: true` reads from the command text, one command form not both).

One gap is by design and tested at the end: the input size bound (Step
Functions' state limit) is a byte count no JSON Schema keyword expresses.

Files that pin EC2's documented limits (moto enforces none of them), each
refused before launch (`amirun_core.ec2_limits`):

- tags: 50 per resource with amirun's own, keys 1-128 characters and not
  `aws:`, values up to 256
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions);
- volume sizes per type
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html);
- LaunchTemplate by id or name, NetworkInterfaces without instance-level subnet
  or groups (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html);
- user data up to 16 KB before base64
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html);
- `resolve:ssm:` parameter names of letters, digits and `_ . - /`
  (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from unit_helpers import SCHEMA_FILE, make_request

from amirun.cli import main
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import MAX_INPUT_BYTES, decode_execution, input_size, parse_execution

INPUTS = Path(__file__).resolve().parents[1] / "inputs"
INDEX: dict[str, Any] = json.loads((INPUTS / "index.json").read_text(encoding="utf-8"))
INVALID = sorted(p.name for p in (INPUTS / "invalid").iterdir())
VALID = sorted(p.name for p in (INPUTS / "valid").iterdir())


@pytest.fixture(scope="module")
def schema() -> Any:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def problems_of(data: bytes) -> tuple[str, list[Any]]:
    """(who refused, the problems) for a file's bytes; ("", []) when it is valid."""
    try:
        raw = decode_execution(data)
    except InvalidExecutionInput as exc:
        return "reader", exc.problems
    try:
        parse_execution(raw)
    except InvalidExecutionInput as exc:
        return "validator", exc.problems
    return "", []


def schema_paths(schema: Any, raw: Any) -> list[str]:
    """Where the JSON Schema finds errors, as the validator writes paths."""
    paths = []
    for error in schema.iter_errors(raw):
        path = ""
        for part in error.absolute_path:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
        paths.append(path)
    return paths


def test_the_corpus_is_big_enough_and_indexed_whole() -> None:
    assert len(INVALID) >= 60
    assert len(VALID) >= 10
    assert sorted(INDEX) == INVALID
    assert {entry["refused_by"] for entry in INDEX.values()} == {"reader", "both", "validator"}


@pytest.mark.parametrize("name", INVALID)
def test_each_malformed_file_is_refused_naming_its_fields(name: str, schema: Any) -> None:
    entry = INDEX[name]
    refused_by, problems = problems_of((INPUTS / "invalid" / name).read_bytes())

    assert refused_by == ("reader" if entry["refused_by"] == "reader" else "validator")
    named = {problem.field for problem in problems}
    for field in entry["fields"]:
        assert field in named, problems
    assert all("\n" not in problem for problem in problems)
    if entry["refused_by"] == "both":
        raw = json.loads((INPUTS / "invalid" / name).read_text(encoding="utf-8"))
        found = schema_paths(schema, raw)
        assert found, f"the JSON Schema accepts {name}"
        for field in entry["fields"]:
            # The schema reports a field's error at the field or at an object above it.
            assert any(field.startswith(path) for path in found), (field, found)


@pytest.mark.parametrize("name", VALID)
def test_each_unusual_valid_file_passes_the_validator_and_the_schema(
    name: str, schema: Any
) -> None:
    data = (INPUTS / "valid" / name).read_bytes()

    assert problems_of(data) == ("", [])
    assert schema_paths(schema, decode_execution(data)) == []


@pytest.mark.parametrize("name", INVALID)
def test_validate_answers_each_malformed_file_without_a_traceback(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(INPUTS / "invalid" / name)
    code = main(["validate", path])
    out, err = capsys.readouterr()

    assert "Traceback" not in out + err
    if INDEX[name]["refused_by"] == "reader":
        assert code == 2
        assert err.startswith(f"amirun: {path}: ")
        assert err.count("\n") == 1
    else:
        assert code == 1
        assert err.startswith(f"{path}: invalid execution JSON\n")


@pytest.mark.parametrize("name", INVALID)
def test_validate_json_lists_the_same_fields(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["validate", "--json", str(INPUTS / "invalid" / name)])
    listed = json.loads(capsys.readouterr().out)

    assert all(set(item) == {"field", "message"} for item in listed)
    assert set(INDEX[name]["fields"]) <= {item["field"] for item in listed}


def test_validate_json_of_a_valid_file_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(INPUTS / "valid" / VALID[0])]) == 0
    assert json.loads(capsys.readouterr().out) == []


# --- what the corpus does not hold: made on the spot ------------------------------------------
def test_an_input_too_big_for_the_workflow_is_the_one_thing_the_schema_cannot_see(
    tmp_path: Path, schema: Any
) -> None:
    raw = make_request()
    raw["commands"].append("echo " + "x" * MAX_INPUT_BYTES)
    path = tmp_path / "too-big.json"
    path.write_text(json.dumps(raw), encoding="utf-8")

    refused_by, problems = problems_of(path.read_bytes())

    assert input_size(raw) > MAX_INPUT_BYTES
    assert (refused_by, [p.field for p in problems]) == ("validator", ["commands"])
    assert schema_paths(schema, raw) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nobody writes to the FIFO: opening it to read would wait forever."""
    path = tmp_path / "pipe.json"
    os.mkfifo(path)

    code = main(["validate", str(path)])

    assert code == 2
    assert capsys.readouterr().err == (
        f"amirun: {path}: not a regular file (a FIFO, a device or a socket), "
        "so not an execution JSON file\n"
    )


def test_a_device_is_refused_unread(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "/dev/zero"]) == 2
    assert "not a regular file" in capsys.readouterr().err
