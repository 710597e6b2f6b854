"""Check JSON values against a botocore input shape, and render that shape as JSON Schema.

`instance_parameters` go to RunInstances as given, so EC2's own input shape
(shipped in botocore) says what is valid. One walker gives both answers, so the
validator and the published schema agree: JSON types as JSON Schema reads them
(`true` is not an integer, `3.0` is), unknown members, required members, and
the minimums botocore itself enforces.
"""

from __future__ import annotations

import difflib
import re
from datetime import datetime
from typing import Any

from amirun_core.errors import Problem

_INTEGER_TYPES = ("integer", "long")
_NUMBER_TYPES = ("double", "float")


#: Enumerations checked against botocore's list: settings whose values never grow.
#: Others (InstanceType, VolumeType, ResourceType) gain values faster than a pinned
#: botocore learns them, and EC2 itself refuses what it does not know.
CHECKED_ENUMS = frozenset(
    {
        "HttpTokensState",
        "InstanceMetadataEndpointState",
        "InstanceMetadataProtocolState",
        "InstanceMetadataTagsState",
        "ShutdownBehavior",
        "SpotInstanceType",
        "InstanceInterruptionBehavior",
    }
)
#: A timestamp given as text: ISO-8601, with its date first.
_TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ].*)?$"


#: Past this many unknown fields in one object, no "did you mean": the input is no
#: typo, and looking for close matches would cost seconds.
MAX_HINTS = 20


def unknown_field(path: str, known: list[str], cutoff: float = 0.6) -> Problem:
    """'path: unknown field', with the closest of `known` as a hint when one is close."""
    hint = difflib.get_close_matches(path.rsplit(".", 1)[-1], known, n=1, cutoff=cutoff)
    return Problem(path, "unknown field" + (f" (did you mean {hint[0]}?)" if hint else ""))


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as an error message shows it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_integer(value: Any) -> bool:
    """An integer as JSON Schema counts them: 3 and 3.0, not true."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _expected(shape: Any) -> str:
    kind = shape.type_name
    if kind in ("structure", "map"):
        return "an object"
    if kind == "list":
        return "a list"
    if kind in _INTEGER_TYPES:
        return "an integer"
    if kind in _NUMBER_TYPES:
        return "a number"
    if kind == "boolean":
        return "true or false"
    if kind == "timestamp":
        return "a date (string or number)"
    return "a string"


def _type_ok(value: Any, shape: Any) -> bool:
    kind = shape.type_name
    if kind in ("structure", "map"):
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    if kind in _INTEGER_TYPES:
        return is_integer(value)
    if kind in _NUMBER_TYPES:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "timestamp":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def shape_problems(
    value: Any, shape: Any, path: str, skip: frozenset[str] = frozenset()
) -> list[Problem]:
    """Every way `value` breaks `shape`, each as 'path: problem'.

    `skip`: members of the top structure the caller checks itself.
    """
    if not _type_ok(value, shape):
        return [Problem(path, f"invalid type, expected {_expected(shape)}, got {json_type(value)}")]
    kind, minimum = shape.type_name, shape.metadata.get("min")
    problems: list[Problem] = []
    if kind == "structure":
        members = shape.members
        hint = sum(name not in members for name in value) <= MAX_HINTS
        for name, item in value.items():
            if name in skip:
                continue
            if name not in members:
                known = list(members) if hint else []
                problems.append(unknown_field(f"{path}.{name}", known, cutoff=0.5))
            else:
                problems += shape_problems(item, members[name], f"{path}.{name}")
        problems += [
            Problem(f"{path}.{name}", "required")
            for name in shape.required_members
            if name not in value and name not in skip
        ]
    elif kind == "list":
        if minimum is not None and len(value) < minimum:
            problems.append(Problem(path, f"needs at least {minimum} item(s)"))
        for index, item in enumerate(value):
            problems += shape_problems(item, shape.member, f"{path}[{index}]")
    elif kind == "map":
        for key, item in value.items():
            problems += shape_problems(item, shape.value, f"{path}.{key}")
    elif minimum is not None and kind == "string" and len(value) < minimum:
        problems.append(Problem(path, f"too short, at least {minimum} character(s)"))
    elif kind == "string" and shape.name in CHECKED_ENUMS and value not in shape.enum:
        problems.append(Problem(path, f"{value[:40]!r} is not one of {', '.join(shape.enum)}"))
    elif kind == "timestamp" and isinstance(value, str) and not _iso_timestamp(value):
        problems.append(
            Problem(
                path, f"{value[:40]!r} is no time: give ISO-8601 text or a Unix time (a number)"
            )
        )
    elif minimum is not None and kind in _INTEGER_TYPES and value < minimum:
        problems.append(Problem(path, f"must be at least {minimum}"))
    return problems


def _iso_timestamp(text: str) -> bool:
    if not re.fullmatch(_TIMESTAMP_PATTERN, text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def shape_schema(shape: Any, defs: dict[str, Any], skip: frozenset[str] = frozenset()) -> Any:
    """The JSON Schema of `shape`; named shapes go to `defs` and are referenced.

    `skip`: members of the top structure left out (the caller adds its own rules).
    """
    kind, minimum = shape.type_name, shape.metadata.get("min")
    schema: dict[str, Any]
    if kind == "structure":
        schema = {
            "type": "object",
            "properties": {
                name: _reference(member, defs)
                for name, member in shape.members.items()
                if name not in skip
            },
            "additionalProperties": False,
        }
        required = [n for n in shape.required_members if n not in skip]
        if required:
            schema["required"] = required
    elif kind == "list":
        schema = {"type": "array", "items": _reference(shape.member, defs)}
        if minimum is not None:
            schema["minItems"] = minimum
    elif kind == "map":
        schema = {"type": "object", "additionalProperties": _reference(shape.value, defs)}
    elif kind in _INTEGER_TYPES:
        schema = {"type": "integer"}
        if minimum is not None:
            schema["minimum"] = minimum
    elif kind in _NUMBER_TYPES:
        schema = {"type": "number"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "timestamp":
        schema = {"anyOf": [{"type": "number"}, {"type": "string", "pattern": _TIMESTAMP_PATTERN}]}
    else:
        schema = {"type": "string"}
        if minimum is not None:
            schema["minLength"] = minimum
        if shape.name in CHECKED_ENUMS:
            schema["enum"] = list(shape.enum)
    return schema


def _reference(shape: Any, defs: dict[str, Any]) -> dict[str, Any]:
    name = f"ec2.{shape.name}"
    if name not in defs:
        defs[name] = {}  # placeholder first: a shape may refer to itself
        defs[name] = shape_schema(shape, defs)
    return {"$ref": f"#/$defs/{name}"}
