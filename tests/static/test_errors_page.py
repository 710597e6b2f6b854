"""The error page is the workflow's error contract, written for people."""

from __future__ import annotations

import re

from amirun_core import errors

from .conftest import ROOT
from .test_asl import AMIRUN_ERRORS


def error_table_names() -> set[str]:
    """The names in the first column of the table whose header is `| Error | Meaning |`."""
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    table = text.split("| Error | Meaning |", 1)[1].split("\n\n", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([\w.]+)`", cell)}


def test_every_error_the_workflow_can_end_with_is_documented() -> None:
    documented = error_table_names()
    ours = AMIRUN_ERRORS - {errors.AmirunError.__name__}
    assert ours <= documented, f"not in docs/errors.md: {sorted(ours - documented)}"


def test_the_error_page_names_no_error_that_does_not_exist() -> None:
    lambda_errors = {n for n in error_table_names() if n.startswith("Lambda.")}
    assert error_table_names() - lambda_errors <= AMIRUN_ERRORS
