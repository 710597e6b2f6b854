"""What the local runner reads from the project: the SAM template and the workflow.

The rehearsal runs what deploys: functions, handlers, environment and
definition substitutions all come from `template.yaml`, not from a copy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """YAML loader that reads CloudFormation's short tags (!Ref, !Sub, !GetAtt...)."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return dict(yaml.load(handle, Loader=_CfnLoader))  # noqa: S506 - SafeLoader subclass


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def module_file(self) -> Path:
        return self.code_dir / f"{self.handler.rsplit('.', 1)[0]}.py"

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class Workflow:
    """The state machine as the template declares it."""

    definition_file: Path
    #: placeholder -> logical id of the function it names (`${StarterFunctionArn}`).
    function_substitutions: dict[str, str]
    functions: dict[str, FunctionSpec]

    def definition(self, arn_of: dict[str, str]) -> str:
        """The ASL with every function placeholder replaced by `arn_of[logical_id]`."""
        text = self.definition_file.read_text(encoding="utf-8")
        for placeholder, logical_id in self.function_substitutions.items():
            text = text.replace("${" + placeholder + "}", arn_of[logical_id])
        left = sorted(set(re.findall(r"\$\{([^}]+)\}", text)))
        if left:
            raise ValueError(f"placeholders without a substitution: {', '.join(left)}")
        json.loads(text)
        return text


def _functions(template: dict[str, Any], root: Path) -> dict[str, FunctionSpec]:
    globals_env = (
        template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    )
    specs = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {**globals_env, **props.get("Environment", {}).get("Variables", {})}
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_dir=root / props["CodeUri"],
            handler=props["Handler"],
            environment=env,
        )
    return specs


def load_workflow(path: Path = TEMPLATE) -> Workflow:
    template = load_template(path)
    machines = [
        r["Properties"]
        for r in template["Resources"].values()
        if r.get("Type") == "AWS::Serverless::StateMachine"
    ]
    if len(machines) != 1:
        raise ValueError(
            f"{path}: expected one AWS::Serverless::StateMachine, found {len(machines)}"
        )
    machine = machines[0]
    substitutions = {}
    for placeholder, value in machine.get("DefinitionSubstitutions", {}).items():
        target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if not target or target[1] != "Arn":
            raise ValueError(f"{path}: substitution {placeholder} is not a function's Arn")
        substitutions[placeholder] = target[0]
    return Workflow(
        definition_file=path.parent / machine["DefinitionUri"],
        function_substitutions=substitutions,
        functions=_functions(template, path.parent),
    )
