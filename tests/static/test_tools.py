"""The template passes the tools that deploy it: cfn-lint, sam validate, sam build."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import FUNCTIONS, ROOT, TEMPLATE, run, venv_tool

pytestmark = pytest.mark.slow


def test_cfn_lint() -> None:
    # Informational findings too: they ask for explicit policies on stateful resources.
    result = run([venv_tool("cfn-lint"), "--include-checks", "I", "--", TEMPLATE], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint(sam_cli: Path, sam_env: dict[str, str]) -> None:
    result = run(
        [sam_cli, "validate", "--lint", "--template-file", TEMPLATE], cwd=ROOT, env=sam_env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_transform(sam_cli: Path, sam_env: dict[str, str], tmp_path: Path) -> None:
    """Plain `sam validate` runs the SAM transform itself (offline, no credentials).

    An empty config file, because samconfig.toml turns --lint on for validate.
    """
    config = tmp_path / "samconfig.toml"
    config.write_text("version = 0.1\n", encoding="utf-8")
    command: list[str | Path] = [
        sam_cli,
        "validate",
        "--template-file",
        TEMPLATE,
        "--config-file",
        config,
    ]
    result = run(command, cwd=ROOT, env=sam_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_build_ships_each_function_and_the_layer(sam_build: Path) -> None:
    assert (sam_build / "template.yaml").is_file()
    for logical_id in FUNCTIONS:
        assert (sam_build / logical_id / "app.py").is_file(), logical_id
        # amirun_core comes from the layer only, never copied into a function.
        assert not (sam_build / logical_id / "amirun_core").exists(), logical_id
    core = sam_build / "CoreLayer" / "python" / "amirun_core"
    assert (core / "__init__.py").is_file()
    assert (core / "errors.py").is_file()
    # The price table travels with the code that reads it.
    assert (core / "ec2_prices.json").is_file()
