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
    #: placeholder -> pseudo parameter it stands for (`${Partition}`: AWS::Partition).
    pseudo_substitutions: dict[str, str] = field(default_factory=dict)

    def definition(self, arn_of: dict[str, str], pseudo: dict[str, str] | None = None) -> str:
        """The ASL with every function placeholder replaced by `arn_of[logical_id]`,
        and every pseudo parameter's by its value (`pseudo`, default: the aws partition)."""
        text = self.definition_file.read_text(encoding="utf-8")
        for placeholder, logical_id in self.function_substitutions.items():
            text = text.replace("${" + placeholder + "}", arn_of[logical_id])
        values = {"AWS::Partition": "aws", **(pseudo or {})}
        for placeholder, name in self.pseudo_substitutions.items():
            text = text.replace("${" + placeholder + "}", values[name])
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
    substitutions, pseudo = {}, {}
    for placeholder, value in machine.get("DefinitionSubstitutions", {}).items():
        ref = value.get("Ref") if isinstance(value, dict) else None
        if isinstance(ref, str) and ref.startswith("AWS::"):
            pseudo[placeholder] = ref
            continue
        target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if not target or target[1] != "Arn":
            raise ValueError(
                f"{path}: substitution {placeholder} is neither a function's Arn "
                "nor a pseudo parameter"
            )
        substitutions[placeholder] = target[0]
    return Workflow(
        definition_file=path.parent / machine["DefinitionUri"],
        function_substitutions=substitutions,
        functions=_functions(template, path.parent),
        pseudo_substitutions=pseudo,
    )


# --- CloudFormation's intrinsic functions, as far as the template uses them -------------
class _NoValue:
    """AWS::NoValue: the property or list item is left out."""


NO_VALUE = _NoValue()
_SUB_NAME = re.compile(r"\$\{([^}!]+)\}")


@dataclass(frozen=True)
class StackContext:
    """What the intrinsic functions of a deployed (or emulated) stack resolve to.

    `values` names what a Ref or a ${...} may stand for: parameters (their
    defaults unless given), pseudo parameters (AWS::Partition, ...), and the
    physical ids or attributes (`Logical.Attr`) of resources.
    """

    values: dict[str, str]
    conditions: dict[str, Any] = field(default_factory=dict)
    #: False: a name the stack does not know resolves to a value nothing equals.
    strict: bool = True

    @classmethod
    def of(
        cls,
        template: dict[str, Any],
        *,
        partition: str = "aws",
        region: str,
        account: str,
        stack_name: str,
        parameters: dict[str, str] | None = None,
        resources: dict[str, str] | None = None,
        strict: bool = True,
    ) -> StackContext:
        values = {
            name: str(spec.get("Default", ""))
            for name, spec in template.get("Parameters", {}).items()
        }
        values.update(parameters or {})
        values.update(resources or {})
        values.update(
            {
                "AWS::Partition": partition,
                "AWS::Region": region,
                "AWS::AccountId": account,
                "AWS::StackName": stack_name,
                "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
            }
        )
        return cls(values, dict(template.get("Conditions", {})), strict)

    def _lookup(self, name: str) -> str:
        if name not in self.values:
            if not self.strict:
                return f"<{name}: not known here>"
            raise KeyError(f"the template refers to {name}, which this stack does not know")
        return self.values[name]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def resolve(self, value: Any) -> Any:
        """`value` with every Ref, Fn::Sub, Fn::If, Fn::Equals, Fn::Not, Fn::Join resolved."""
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {
                k: v
                for k, v in ((k, self.resolve(v)) for k, v in value.items())
                if v is not NO_VALUE
            }
        ((key, arg),) = value.items()
        if key == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else self._lookup(arg)
        if key == "Fn::GetAtt":
            return self._lookup(".".join(arg))
        if key == "Fn::Sub":
            text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            bound = {name: str(self.resolve(v)) for name, v in local.items()}
            return _SUB_NAME.sub(lambda m: bound.get(m.group(1)) or self._lookup(m.group(1)), text)
        if key == "Fn::If":
            name, when_true, when_false = arg
            return self.resolve(when_true if self.condition(name) else when_false)
        if key == "Fn::Equals":
            left, right = (self.resolve(v) for v in arg)
            return left == right
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(str(item) for item in self.resolve(items))
        return {key: self.resolve(arg)}
