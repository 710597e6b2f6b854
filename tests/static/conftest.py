"""Shared fixtures for the static checks: the template, the workflow and the tools."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from amirun.project import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "amirun.asl.json"
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
#: The functions by logical id (the rehearsal runner reads these ids) and code folder.
FUNCTIONS = {
    "ClaimFunction": "claim",
    "ResolverFunction": "resolver",
    "InputsFunction": "inputs",
    "RoomFunction": "room",
    "StarterFunction": "starter",
    "ReadinessFunction": "readiness",
    "CommanderFunction": "commander",
    "PollerFunction": "poller",
    "WaiterFunction": "waiter",
    "SettlerFunction": "settler",
    "CheckerFunction": "checker",
    "StopperFunction": "stopper",
    "SweeperFunction": "sweeper",
    "ReconcilerFunction": "reconciler",
    "NotifierFunction": "notifier",
    "RecorderFunction": "recorder",
    "ReporterFunction": "reporter",
}


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    # The same loader the rehearsal runner reads the template with.
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


@pytest.fixture(scope="session")
def asl_text() -> str:
    return ASL.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    return dict(json.loads(asl_text))


def substitute_placeholders(asl_text: str) -> str:
    """The ASL as deployed: each ${XFunctionArn} becomes a plausible Lambda ARN, the
    ${Partition} the commercial one (GovCloud's aws-us-gov and China's aws-cn deploy alike)."""

    def arn(match: re.Match[str]) -> str:
        if match.group(1) == "Partition":
            return "aws"
        name = match.group(1).removesuffix("Arn").removesuffix("Function").lower()
        return f"arn:aws:lambda:us-east-1:123456789012:function:amirun-{name}"

    return PLACEHOLDER.sub(arn, asl_text)


# --- External tools -------------------------------------------------------------------
def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        **kwargs,
    )


def venv_tool(name: str) -> Path:
    """A console script installed next to the interpreter running the tests."""
    tool = Path(sys.executable).parent / name
    if not tool.exists():
        pytest.fail(f"{name} is not installed in {tool.parent}: run `make test` (it installs it)")
    return tool


@pytest.fixture(scope="session")
def sam_cli() -> Path:
    """The SAM CLI from its own environment (the Makefile sets SAM_CLI)."""
    sam = Path(os.environ.get("SAM_CLI") or ROOT / ".venv-sam" / "bin" / "sam")
    if not sam.exists():
        pytest.fail(f"SAM CLI not found at {sam}: run `make test`, or set SAM_CLI")
    return sam


def _python313_dir() -> Path | None:
    """A directory holding a python3.13 that runs (a pyenv shim may exist and fail)."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which("python3.13")]
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"))]
    for candidate in filter(None, candidates):
        if run([candidate, "--version"]).returncode == 0:
            return Path(candidate).parent
    return None


@pytest.fixture(scope="session")
def sam_env() -> dict[str, str]:
    """Environment for SAM: no telemetry, and a region (nothing here calls AWS)."""
    env = dict(os.environ, SAM_CLI_TELEMETRY="0")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


@pytest.fixture(scope="session")
def sam_build(
    sam_cli: Path, sam_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """`sam build` once per session, into a temporary directory (the repo stays clean)."""
    python_dir = _python313_dir()
    if python_dir is None:
        pytest.fail(
            "sam build needs a working python3.13 (the functions' runtime) and none was "
            "found on PATH or under pyenv: install Python 3.13 and put python3.13 on PATH"
        )
    env = dict(sam_env, PATH=os.pathsep.join([str(python_dir), sam_env.get("PATH", "")]))
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # --no-cached: a cached build keeps its dependencies in .aws-sam/deps under the cwd.
    command: list[str | Path] = [
        sam_cli,
        "build",
        "--no-cached",
        "--template-file",
        TEMPLATE,
        "--build-dir",
        build_dir,
    ]
    result = run(command, cwd=ROOT, env=env)
    assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
    return build_dir
