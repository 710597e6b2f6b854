"""The workflow diagram in docs/operations.md is drawn from the ASL and is never stale."""

from __future__ import annotations

import re
from typing import Any

import pytest

from amirun import diagram

from .conftest import ROOT


def test_the_operations_page_diagram_is_current() -> None:
    readme = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")

    current = diagram.with_diagram(readme, diagram.workflow_definition())

    assert readme == current, "docs/operations.md's workflow diagram is stale: run `make diagram`"
    assert readme.count(diagram.BEGIN) == readme.count(diagram.END) == 1


def test_every_state_and_transition_is_drawn(asl: dict[str, Any]) -> None:
    chart = diagram.mermaid(asl)
    edges = set(re.findall(r"^\s*(\w+) (?:-->|-\.->)(?:\|\"[^\"]*\"\|)? (\w+)$", chart, re.M))

    for name, state in asl["States"].items():
        assert re.search(rf"^\s*{name}\W", chart, re.M), f"no node for {name}"
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule["Next"] for rule in state.get("Choices", [])]
        targets += [catch["Next"] for catch in state.get("Catch", [])]
        for target in filter(None, targets):
            assert (name, target) in edges, f"no arrow {name} -> {target}"
    assert f'start(("start")) --> {asl["StartAt"]}' in chart


def test_a_stale_diagram_is_replaced_between_the_markers(asl: dict[str, Any]) -> None:
    stale = f"# Title\n\nbefore\n{diagram.BEGIN}\nold picture\n{diagram.END}\nafter\n"

    updated = diagram.with_diagram(stale, asl)

    assert updated.startswith("# Title\n\nbefore\n" + diagram.BEGIN + "\n```mermaid\nflowchart TD")
    assert updated.endswith(diagram.END + "\nafter\n")
    assert "old picture" not in updated
    assert diagram.with_diagram(updated, asl) == updated


def test_without_markers_it_says_so() -> None:
    with pytest.raises(ValueError, match="no diagram markers"):
        diagram.with_diagram("# no markers here\n", {"StartAt": "A", "States": {}})


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"Variable": "$.instance.ready", "BooleanEquals": True}, "instance.ready = true"),
        ({"Variable": "$.error", "IsPresent": False}, "error absent"),
        ({"Variable": "$.n", "NumericGreaterThanEqualsPath": "$.limit"}, "n >= limit"),
        ({"Variable": "$.s", "StringMatches": "log-*"}, 's matches "log-*"'),
        (
            {"Not": {"Variable": "$.a", "IsNull": True}},
            "not (a is null)",
        ),
        (
            {
                "Or": [
                    {"Variable": "$.a", "StringEquals": "x"},
                    {"Variable": "$.b", "NumericLessThan": 3},
                ]
            },
            'a = "x" or b < 3',
        ),
    ],
)
def test_choice_rules_in_a_few_words(rule: dict[str, Any], words: str) -> None:
    assert diagram.describe_rule(rule) == words


def test_branches_become_subgraphs_and_odd_names_stay_valid() -> None:
    definition = {
        "StartAt": "fan out",
        "States": {
            "fan out": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "end", "States": {"end": {"Type": "Succeed"}}}],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }

    chart = diagram.mermaid(definition)

    assert 'fan_out[["fan out"]]' in chart
    assert "subgraph fan_out_0_sub [fan out]" in chart
    assert 'fan_out_0_end(("end"))' in chart
    assert "fan_out --> fan_out_0_end" in chart
    assert "fan_out --> Done" in chart
