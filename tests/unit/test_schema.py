"""schema/execution.schema.json is what the model says, and accepts the originals."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import jsonschema
import pytest
from unit_helpers import EVENTS, SCHEMA_FILE, load_json, load_original

from amirun.schema import render
from amirun_core.execution import json_schema


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == render(), (
        "schema/execution.schema.json is out of date: run `make schema`"
    )


def test_python_m_amirun_schema_prints_it() -> None:
    """What `make schema` runs."""
    printed = subprocess.run(
        [sys.executable, "-m", "amirun.schema"], capture_output=True, text=True, check=True
    ).stdout

    assert printed.endswith("}\n")
    assert json.loads(printed) == json_schema()


def test_the_schema_names_its_dialect_and_title() -> None:
    schema = json_schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "amirun execution"
    assert schema["required"] == ["instance_parameters"]
    assert {"required": ["commands"]} in schema["anyOf"]


@pytest.mark.parametrize("name", ["execution_gp_example.json", "execution_nrds.json"])
def test_the_schema_accepts_the_original_commands_executions(validator: Any, name: str) -> None:
    validator.validate(load_original(name))


def test_the_schema_accepts_the_sample_execution(validator: Any) -> None:
    validator.validate(load_json(EVENTS / "execution.json"))


def test_the_schema_flags_unknown_keys_for_editors(validator: Any) -> None:
    raw = load_original("execution_gp_example.json")
    raw["run_options"]["check_s3"] = False

    errors = list(validator.iter_errors(raw))

    assert [list(e.absolute_path) for e in errors] == [["run_options"]]
    assert "check_s3" in errors[0].message
