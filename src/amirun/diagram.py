"""The workflow as a Mermaid flowchart, drawn from the ASL, kept in docs/operations.md.

`make diagram` (python -m amirun.diagram) rewrites the diagram in docs/operations.md from
statemachine/amirun.asl.json; `--check` only says whether it is current, and a
static test fails when it is not, so the picture never drifts from the workflow.

Tasks are boxes, Choices diamonds, Waits rounded, Pass states slanted, the
end states circles; a dashed arrow is a Catch (labelled with its errors), a
labelled solid arrow a Choice rule.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from amirun.project import ROOT, load_workflow

PAGE_NAME = "docs/operations.md"
PAGE = ROOT / PAGE_NAME
BEGIN = "<!-- workflow-diagram:begin (make diagram writes this; do not edit) -->"
END = "<!-- workflow-diagram:end -->"

_SHAPES = {
    "Task": ('["', '"]'),
    "Choice": ('{"', '"}'),
    "Wait": ('("', '")'),
    "Pass": ('[/"', '"/]'),
    "Succeed": ('(("', '"))'),
    "Fail": ('(("', '"))'),
    "Parallel": ('[["', '"]]'),
    "Map": ('[["', '"]]'),
}
_COMPARISONS = {
    "Equals": "=",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}


#: Words Mermaid reads as syntax, never node ids.
_RESERVED = frozenset({"end", "start", "graph", "subgraph", "flowchart", "class", "style"})


def _node_id(prefix: str, name: str) -> str:
    node = prefix + re.sub(r"\W", "_", name)
    return f"{node}_" if node.lower() in _RESERVED else node


def _label(text: str) -> str:
    return text.replace('"', "#quot;")


def _path(path: str) -> str:
    return path.removeprefix("$.").removeprefix("$$.")


def describe_rule(rule: dict[str, Any]) -> str:
    """A Choice rule in a few words: `instance.ready = true`, `error present and ...`."""
    if "And" in rule:
        return " and ".join(describe_rule(r) for r in rule["And"])
    if "Or" in rule:
        return " or ".join(describe_rule(r) for r in rule["Or"])
    if "Not" in rule:
        return f"not ({describe_rule(rule['Not'])})"
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"]).strip("{} %")
    variable = _path(str(rule.get("Variable", "")))
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key == "IsPresent":
            return f"{variable} {'present' if value else 'absent'}"
        if key.startswith("Is"):
            return f"{variable} {'is' if value else 'is not'} {key[2:].lower()}"
        operand = _path(str(value)) if key.endswith("Path") else json.dumps(value)
        base = key.removesuffix("Path")
        # Longest suffix first: GreaterThanEquals is not Equals.
        suffixes = sorted(_COMPARISONS, key=len, reverse=True)
        operator = next((_COMPARISONS[s] for s in suffixes if base.endswith(s)), key)
        return f"{variable} {operator} {operand}"
    return variable


def _catch_label(errors: list[str]) -> str:
    return "any error" if errors == ["States.ALL"] else ", ".join(errors)


def _states(states: dict[str, Any], prefix: str, lines: list[str], indent: str) -> None:
    """Nodes and edges of one state set (the workflow, or a Parallel/Map branch)."""
    for name, state in states.items():
        kind = state.get("Type", "Task")
        node = _node_id(prefix, name)
        left, right = _SHAPES.get(kind, _SHAPES["Task"])
        lines.append(f"{indent}{node}{left}{_label(name)}{right}")
        if kind in ("Succeed", "Fail"):
            lines.append(f"{indent}class {node} {kind.lower()}")
        for index, branch in enumerate(_branches(state)):
            inner = f"{node}_{index}_"
            lines.append(f"{indent}subgraph {inner}sub [{_label(name)}]")
            _states(branch["States"], inner, lines, indent + "  ")
            lines.append(f"{indent}end")
            lines.append(f"{indent}{node} --> {_node_id(inner, branch['StartAt'])}")
    for name, state in states.items():
        node = _node_id(prefix, name)
        for rule in state.get("Choices", []):
            target = _node_id(prefix, rule["Next"])
            lines.append(f'{indent}{node} -->|"{_label(describe_rule(rule))}"| {target}')
        if "Default" in state:
            lines.append(f'{indent}{node} -->|"otherwise"| {_node_id(prefix, state["Default"])}')
        if "Next" in state:
            lines.append(f"{indent}{node} --> {_node_id(prefix, state['Next'])}")
        for catch in state.get("Catch", []):
            label = _label(_catch_label(catch["ErrorEquals"]))
            lines.append(f'{indent}{node} -.->|"{label}"| {_node_id(prefix, catch["Next"])}')


def _branches(state: dict[str, Any]) -> list[dict[str, Any]]:
    if state.get("Type") == "Parallel":
        return list(state.get("Branches", []))
    if state.get("Type") == "Map":
        processor = state.get("ItemProcessor") or state.get("Iterator")
        return [processor] if processor else []
    return []


def mermaid(definition: dict[str, Any]) -> str:
    """The state machine as a Mermaid flowchart."""
    body = ['  start(("start")) --> ' + _node_id("", definition["StartAt"])]
    _states(definition["States"], "", body, "  ")
    return "\n".join(
        [
            "flowchart TD",
            *body,
            "  classDef succeed fill:#d4edda,stroke:#2e7d32",
            "  classDef fail fill:#f8d7da,stroke:#c62828",
        ]
    )


def workflow_definition() -> dict[str, Any]:
    """The ASL the template deploys (placeholders left as they are)."""
    path = load_workflow().definition_file
    return dict(json.loads(path.read_text(encoding="utf-8")))


def diagram_block(definition: dict[str, Any]) -> str:
    return f"{BEGIN}\n```mermaid\n{mermaid(definition)}\n```\n{END}"


def with_diagram(page: str, definition: dict[str, Any]) -> str:
    """The page text with its diagram block replaced by the current one."""
    begin, end = page.find(BEGIN), page.find(END)
    if begin < 0 or end < begin:
        raise ValueError(f"docs/operations.md has no diagram markers: {BEGIN} ... {END}")
    return page[:begin] + diagram_block(definition) + page[end + len(END) :]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amirun.diagram", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the diagram in docs/operations.md is stale"
    )
    args = parser.parse_args(argv)
    current = PAGE.read_text(encoding="utf-8")
    try:
        updated = with_diagram(current, workflow_definition())
    except ValueError as exc:
        print(f"amirun: {exc}", file=sys.stderr)
        return 2
    if updated == current:
        print("docs/operations.md: the workflow diagram is current")
        return 0
    if args.check:
        print(f"{PAGE_NAME}: the workflow diagram is stale: run `make diagram`", file=sys.stderr)
        return 1
    PAGE.write_text(updated, encoding="utf-8")
    print("docs/operations.md: workflow diagram updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
