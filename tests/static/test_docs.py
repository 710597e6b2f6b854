"""The README and docs/ pages: every link leads somewhere, every command they show exists.

A newcomer copies what the pages show. A link to a moved page or a flag that was
renamed is a broken promise, so both are checked against the files and against
the CLI's own parser.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from amirun.cli import build_parser

from .conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
#: `amirun` as a command: not amirun_core, amirun:stack, amirun-*, amirun.asl.json...
COMMAND = re.compile(r"(?<![\w:/.-])(?:\.venv/bin/)?amirun((?: +[^\s#]+)+)")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors: headings lowercased, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def _links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))
        found += [(page, target) for target in LINK.findall(text)]
    return found


@pytest.mark.parametrize(
    ("page", "target"),
    [pytest.param(p, t, id=f"{p.name}:{t}") for p, t in _links() if not t.startswith("http")],
)
def test_every_link_leads_to_a_file_and_heading(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (page.parent / path).resolve() if path else page
    assert destination.exists(), f"{page.name} links to {target}, which does not exist"
    if anchor:
        assert anchor in _anchors(destination), f"{page.name}: no heading for #{anchor}"


def test_the_readme_links_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # `*-notes.md`: release notes of a change, folded into the pages it concerns.
    pages = {p.name for p in (ROOT / "docs").glob("*.md") if not p.name.endswith("-notes.md")}
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"


def _shown_commands() -> list[tuple[str, str]]:
    """(page, command text) for every `amirun ...` a page shows, in code."""
    shown = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        lines = [ln.split(" #")[0] for b in CODE_BLOCK.findall(text) for ln in b.splitlines()]
        spans = CODE_SPAN.findall(CODE_BLOCK.sub("", text))
        for code in lines + spans:
            shown += [(page.name, m.group(0)) for m in COMMAND.finditer(code)]
    return shown


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _check(parser: argparse.ArgumentParser, words: list[str], shown: str) -> None:
    commands = _subparsers(parser)
    if words and commands and not words[0].startswith("-"):
        for choice in words[0].strip("[]").replace("\\|", "|").split("|"):
            assert choice in commands, f"`{shown}`: amirun has no command {choice!r}"
            _check(commands[choice], words[1:], shown)
        return
    known = {o for a in parser._actions for o in a.option_strings}
    for word in words:
        flag = word.strip("[](),").split("=")[0]
        if flag.startswith("--"):
            assert flag in known, f"`{shown}`: {parser.prog} has no flag {flag}"


def test_the_pages_show_commands() -> None:
    assert len(_shown_commands()) >= 20


@pytest.mark.parametrize(
    ("page", "shown"), [pytest.param(p, s, id=f"{p}:{s[:60]}") for p, s in _shown_commands()]
)
def test_every_command_and_flag_a_page_shows_exists(page: str, shown: str) -> None:
    words = shown.split()[1:]
    _check(build_parser(), words, shown)
