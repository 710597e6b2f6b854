"""checkov over the template: no failed check, and every waiver says why.

A waiver lives only in the resource's own metadata (`Metadata.checkov.skip`, with a
`comment`), next to what it waives, so a reader sees the reason where it applies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, TEMPLATE, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    """checkov from its own environment (it pins its own boto3); the Makefile sets CHECKOV."""
    checkov = Path(os.environ.get("CHECKOV") or ROOT / ".venv-checkov" / "bin" / "checkov")
    if not checkov.exists():
        pytest.fail(f"checkov not found at {checkov}: run `make test`, or set CHECKOV")
    command: list[str | Path] = [
        checkov,
        "--file",
        TEMPLATE,
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--compact",
    ]
    result = run(command, cwd=ROOT)
    assert result.stdout.strip(), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def waivers(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(resource, check id) -> the reason given in the resource's metadata."""
    found = {}
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found[(name, skip["id"])] = skip.get("comment", "")
    return found


def test_no_failed_check(checkov_report: dict[str, Any]) -> None:
    assert checkov_report["summary"]["parsing_errors"] == 0
    assert checkov_report["summary"]["passed"] > 0
    failed = [
        f"{f['check_id']} {f['resource']}: {f['check_name']}"
        for f in checkov_report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks (fix, or waive in the resource's metadata):\n" + (
        "\n".join(failed)
    )


def test_every_waiver_gives_a_reason(template: dict[str, Any]) -> None:
    given = waivers(template)
    assert given, "no waivers found: the template's metadata is not where checkov reads them"
    thin = [f"{name} {check}" for (name, check), reason in given.items() if len(reason) < 30]
    assert not thin, f"waivers without a real reason: {thin}"


def test_every_waiver_is_still_needed(
    template: dict[str, Any], checkov_report: dict[str, Any]
) -> None:
    """A waiver whose check no longer applies is dead text: checkov must have skipped it."""
    skipped = {
        (s["resource"].split(".", 1)[1], s["check_id"])
        for s in checkov_report["results"].get("skipped_checks", [])
    }
    assert set(waivers(template)) == skipped
