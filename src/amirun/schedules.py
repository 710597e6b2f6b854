"""Schedule sets: many EventBridge Scheduler schedules declared in one YAML file.

A file names an execution template (JSON with `${name}` placeholders, as the
upstream's Terraform templates have them), tables of values, and blocks of
schedules: each block is a matrix whose every row is one schedule, with a name
pattern, a cron/rate expression and values computed from the row
(`${(init + 1) % 24}`, `${types[vpu]}`, `${vcpus[instance_type] - 1}`).
The format is described in docs/schedules.md.

Expanding a file needs no AWS call; `amirun.schedule_sync` turns the expanded
set into the Scheduler API calls that make a schedule group equal to it.
"""

from __future__ import annotations

import ast
import functools
import json
import operator
import re
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from amirun.files import FileTooLarge, UnreadableFile, read_regular_file
from amirun.schedule_expressions import expression_problem
from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import MAX_INPUT_BYTES, decode_execution, parse_execution

#: Scheduler's universal target that calls Step Functions' StartExecution, in a partition.
START_EXECUTION_TARGET = "arn:{partition}:scheduler:::aws-sdk:sfn:startExecution"


def arn_partition(arn: str) -> str:
    """The partition an ARN names (aws, aws-us-gov, aws-cn...)."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[1]:
        raise ValueError(f"not an ARN: {arn}")
    return parts[1]


def start_execution_target(state_machine_arn: str) -> str:
    """The universal target in the state machine's own partition."""
    return START_EXECUTION_TARGET.format(partition=arn_partition(state_machine_arn))


#: Context attributes Scheduler replaces in a target's input when it fires.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID = "<aws.scheduler.execution-id>"
#: Step Functions' limit on execution names; Scheduler's execution id is a 36-character UUID.
EXECUTION_NAME_MAX = 80
EXECUTION_ID_LENGTH = 36
#: What a run's scheduled time stands in for when an input is checked before it is deployed.
SAMPLE_SCHEDULED_TIME = "2026-01-01T00:00:00Z"

_SCHEDULE_NAME = re.compile(r"[0-9A-Za-z_.-]{1,64}")
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_RANGE = re.compile(r"(\d+)\.\.(\d+)")
_EXECUTION_NAME_CHAR = re.compile(r"[^0-9A-Za-z_-]")

# --- Bounds: a file is refused before it can use much memory or time -------------------------
#: A schedule file larger than this is refused unread (NextGen's 580 schedules take 3 KB).
MAX_SCHEDULE_FILE_BYTES = 65_536
#: A template is an execution JSON with placeholders: as big as an execution file may be.
MAX_TEMPLATE_BYTES = 16 * MAX_INPUT_BYTES
#: Schedules over all the files given at once (eight times NextGen's daily set of 1,238).
#: Counted from the matrices before anything is expanded.
MAX_SCHEDULES = 10_000
#: Execution input text all the schedules may expand to, together.
MAX_EXPANDED_BYTES = 16 * 1_048_576
#: One value, once its placeholders are filled in: no execution input holds more.
MAX_VALUE_CHARS = MAX_INPUT_BYTES
#: Nodes (mappings, lists and scalars) a schedule file may hold once read, and its nesting.
MAX_YAML_NODES = 200_000
MAX_YAML_DEPTH = 32
#: Inside ${...}: characters, nesting of the expression, digits of a number and the size
#: of any result. Far past what a cron field or a process count needs.
MAX_EXPRESSION_CHARS = 200
MAX_EXPRESSION_DEPTH = 16
MAX_NUMBER_DIGITS = 12
MAX_RESULT = 10**15
#: The digits a range's ends may have (`0..99999999999` is refused unexpanded anyway).
MAX_RANGE_DIGITS = 9

# --- What Scheduler takes ---------------------------------------------------------------------
#: Scheduler's schedule description, at most this many characters (CreateSchedule).
MAX_DESCRIPTION_CHARS = 512
#: Flexible time window, minutes (FlexibleTimeWindow.MaximumWindowInMinutes).
WINDOW_MINUTES = (1, 1440)
#: RetryPolicy: MaximumRetryAttempts and MaximumEventAgeInSeconds.
RETRY_ATTEMPTS = (0, 185)
RETRY_MAX_AGE_S = (60, 86_400)


class ScheduleFileError(Exception):
    """A schedule file cannot be read or expanded; the message names the file and field."""


# --- The file format -------------------------------------------------------------------------
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _whole_number(value: Any, bounds: tuple[int, int], unit: str) -> int:
    """`value` as an integer within `bounds`, whatever YAML made of it; ValueError otherwise."""
    low, high = bounds
    wanted = f"a whole number of {unit} from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{wanted}, not {_shown(value)}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{wanted}, not {_shown(value)}")
    if not low <= value <= high:
        raise ValueError(f"{wanted}, not {_shown(value)}")
    return int(value)


def _shown(value: Any) -> str:
    """A value as a message shows it: short, on one line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class RetrySettings(_Strict):
    """How Scheduler retries a start that failed (throttled, state machine busy...)."""

    attempts: int = 2
    max_age_s: int = 3600

    @field_validator("attempts", mode="before")
    @classmethod
    def _attempts(cls, value: Any) -> int:
        return _whole_number(value, RETRY_ATTEMPTS, "attempts")

    @field_validator("max_age_s", mode="before")
    @classmethod
    def _max_age(cls, value: Any) -> int:
        return _whole_number(value, RETRY_MAX_AGE_S, "seconds")


class _Settings(_Strict):
    """What a block inherits from the file unless it sets its own."""

    template: str | None = None
    time_zone: str | None = None
    flexible_window: Literal["off"] | int | None = None
    enabled: bool | None = None
    retry: RetrySettings | None = None
    values: dict[str, Scalar] = Field(default_factory=dict)

    @field_validator("flexible_window", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        # YAML reads a bare `off` as false.
        if value is None or value is False or (isinstance(value, str) and value.lower() == "off"):
            return None if value is None else "off"
        if isinstance(value, str) and value.strip().isdigit() and len(value) <= MAX_RANGE_DIGITS:
            value = int(value)
        try:
            return _whole_number(value, WINDOW_MINUTES, "minutes")
        except ValueError as exc:
            raise ValueError(f"{exc}, or off") from None

    @field_validator("enabled", mode="before")
    @classmethod
    def _boolean(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"true or false, not {_shown(value)}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                raise ValueError(
                    f"unknown time zone {_shown(value)} (e.g. UTC, America/New_York)"
                ) from None
        return value


class Block(_Settings):
    """Schedules that share a name pattern and an expression: one per row of the matrix."""

    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    matrix: dict[str, list[Scalar] | str] = Field(default_factory=dict)
    #: At most MAX_DESCRIPTION_CHARS once expanded (checked per schedule).
    description: str | None = None


class ScheduleFile(_Settings):
    tables: dict[str, dict[str, Scalar] | list[Scalar]] = Field(default_factory=dict)
    schedules: list[Block] = Field(min_length=1)


# --- What a file expands to ------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    """One schedule as Scheduler will hold it, and the execution input it starts."""

    name: str
    expression: str
    time_zone: str
    flexible_window: int | None  # minutes; None: off
    enabled: bool
    retry: RetrySettings
    execution: dict[str, Any]
    row: dict[str, str] = field(compare=False)
    source: str = field(compare=False)
    description: str | None = None
    #: The block's name with its matrix keys as `*`: the family the schedule belongs to.
    family: str = field(default="", compare=False)

    def describe_row(self) -> str:
        return ", ".join(f"{k}={v if v.isprintable() else ascii(v)}" for k, v in self.row.items())

    def label(self) -> str:
        """The schedule and the matrix values of its row, on one line."""
        row = self.describe_row()
        name = self.name if self.name.isprintable() else ascii(self.name)
        return f"{name} ({row})" if row else name

    def input_at(self, scheduled_time: str) -> dict[str, Any]:
        """The execution input as Scheduler hands it over when it fires at `scheduled_time`."""
        text = json.dumps(self.execution).replace(SCHEDULED_TIME, scheduled_time)
        loaded: dict[str, Any] = json.loads(text)
        return loaded

    @property
    def execution_name_prefix(self) -> str:
        """The schedule name cut so that `<prefix>_<execution id>` is a valid execution name."""
        room = EXECUTION_NAME_MAX - EXECUTION_ID_LENGTH - 1
        return _EXECUTION_NAME_CHAR.sub("-", self.name)[:room]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expression": self.expression,
            "time_zone": self.time_zone,
            "flexible_window_minutes": self.flexible_window,
            "enabled": self.enabled,
            "retry": self.retry.model_dump(),
            "description": self.description,
            "row": self.row,
            "source": self.source,
            "input": self.execution,
        }


# --- ${...}: names, table lookups and integer arithmetic --------------------------------------
_ARITHMETIC: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}


class _Unresolved(Exception):
    """A placeholder that cannot be computed; the message says why."""


@functools.cache
def _parse_expression(text: str) -> ast.expr:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _Unresolved(
            f"${{{text[:20]}...}}: an expression of {len(text):,} characters; "
            f"at most {MAX_EXPRESSION_CHARS}"
        )
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _Unresolved(f"${{{text}}}: not an expression ({exc.msg})") from None
    except (RecursionError, MemoryError, ValueError):
        raise _Unresolved(f"${{{text}}}: not an expression (nested too deep)") from None
    _check_depth(tree.body, text)
    return tree.body


def _check_depth(node: ast.AST, text: str) -> None:
    """Refuse an expression nested deeper than MAX_EXPRESSION_DEPTH, without recursion."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise _Unresolved(
                f"${{{text}}}: nested more than {MAX_EXPRESSION_DEPTH} levels deep "
                "(operators, minus signs, lookups)"
            )
        stack += [(child, depth + 1) for child in ast.iter_child_nodes(current)]


def _number(value: Any, text: str) -> int:
    if isinstance(value, bool):
        raise _Unresolved(f"${{{text}}}: {_shown(value)} is not a number")
    if isinstance(value, str):
        digits = value.strip().removeprefix("-")
        if not digits.isascii() or not digits.isdigit():
            raise _Unresolved(f"${{{text}}}: {_shown(value)} is not a number")
        if len(digits) > MAX_NUMBER_DIGITS:
            raise _Unresolved(
                f"${{{text}}}: {_shown(value)} has more than {MAX_NUMBER_DIGITS} digits"
            )
        value = int(value)  # "06" is 6: cycles and members are written zero-padded
    if isinstance(value, int):
        return _bounded(value, text)
    raise _Unresolved(f"${{{text}}}: {_shown(value)} is not a number")


def _bounded(value: int, text: str) -> int:
    if abs(value) >= MAX_RESULT:
        raise _Unresolved(
            f"${{{text}}}: a number beyond {MAX_NUMBER_DIGITS + 3} digits; integers here "
            "are cron fields, counts and sizes"
        )
    return value


def _evaluate(node: ast.expr, scope: dict[str, Any], tables: dict[str, Any], text: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        if node.id in tables:
            return tables[node.id]
        raise _Unresolved(f"${{{text}}}: no value or table named {node.id}")
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str):
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return _number(str(node.value), text) if node.value >= 0 else node.value
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _number(_evaluate(node.left, scope, tables, text), text)
        right = _number(_evaluate(node.right, scope, tables, text), text)
        if right == 0 and isinstance(node.op, ast.FloorDiv | ast.Mod):
            what = "division" if isinstance(node.op, ast.FloorDiv) else "modulo"
            raise _Unresolved(f"${{{text}}}: {what} by zero")
        return _bounded(_ARITHMETIC[type(node.op)](left, right), text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(_evaluate(node.operand, scope, tables, text), text)
    if isinstance(node, ast.Subscript):
        table = _evaluate(node.value, scope, tables, text)
        key = _evaluate(node.slice, scope, tables, text)
        if isinstance(table, dict):
            if _as_text(key) not in table:
                raise _Unresolved(f"${{{text}}}: no entry {_shown(key)} in the table")
            return table[_as_text(key)]
        if isinstance(table, list):
            index = _number(key, text)
            if not 0 <= index < len(table):
                raise _Unresolved(f"${{{text}}}: index {index} outside the list")
            return table[index]
        raise _Unresolved(f"${{{text}}}: {_shown(table)} is not a table")
    raise _Unresolved(f"${{{text}}}: only names, table[key], integers and + - * // % are allowed")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(
    pattern: str,
    scope: dict[str, Any],
    tables: dict[str, Any],
    escape: Callable[[str], str] = str,
    limit: int = MAX_VALUE_CHARS,
) -> str:
    """Replace every `${...}` in `pattern`; `$${` stands for a literal `${`.

    The result may not pass `limit` characters: values that refer to each other
    would otherwise double at every step.
    """
    pieces: list[str] = []
    size = 0
    end = 0
    for match in _PLACEHOLDER.finditer(pattern):
        text = match.group(1)
        if text is None:
            filled = "${"
        elif text in scope:  # the common case: a plain name
            filled = escape(_as_text(scope[text]))
        else:
            filled = escape(_as_text(_evaluate(_parse_expression(text), scope, tables, text)))
        before = pattern[end : match.start()]
        pieces += [before, filled]
        size += len(before) + len(filled)
        end = match.end()
        if size > limit:
            break
    pieces.append(pattern[end:])
    size += len(pattern) - end
    if size > limit:
        raise _Unresolved(
            f"filled in, {_shown(pattern)} passes {limit:,} characters, more than an "
            "execution input holds"
        )
    return "".join(pieces)


@functools.lru_cache(maxsize=4096)  # the same few values fill every row of a matrix
def _json_string_content(text: str) -> str:
    """`text` as it must appear between the quotes of a JSON string."""
    return json.dumps(text)[1:-1]


# --- Loading and expanding -------------------------------------------------------------------
class _TooDeep(Exception):
    pass


class _BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader, stopped as soon as the nesting passes MAX_YAML_DEPTH.

    PyYAML's scanner takes time quadratic in the nesting of `[` and `{`, and its
    composer recurses once per level: a few thousand brackets would take seconds,
    then overflow the stack.
    """

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        if self.flow_level >= MAX_YAML_DEPTH:
            raise _TooDeep
        super().fetch_flow_collection_start(token_class)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_YAML_DEPTH:
            raise _TooDeep
        added: bool = super().add_indent(column)
        return added


_OPENING = (
    yaml.FlowSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.BlockMappingStartToken,
)
_CLOSING = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


def _load_yaml(text: str) -> Any:
    """Safe YAML, refused past MAX_YAML_DEPTH levels before it is composed.

    libyaml (PyYAML's C loader) reads a file several times faster than PyYAML's
    Python loader; its tokens are counted first, since its composer recurses once
    per level. Without libyaml, the Python loader stops itself (_BoundedLoader).
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader)
    depth = 0
    for token in yaml.scan(text, Loader=fast):
        if isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise _TooDeep
        elif isinstance(token, _CLOSING):
            depth -= 1
    return yaml.load(text, Loader=fast)  # noqa: S506 (a SafeLoader)


def _read_yaml(path: Path) -> Any:
    try:
        data = read_regular_file(path, MAX_SCHEDULE_FILE_BYTES, "a schedule file")
    except FileTooLarge:
        raise ScheduleFileError(
            f"{path}: larger than {MAX_SCHEDULE_FILE_BYTES:,} bytes; no schedule file is "
            "that big (a matrix declares many schedules in a few lines)"
        ) from None
    except UnreadableFile as exc:
        raise ScheduleFileError(f"{path}: {exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScheduleFileError(
            f"{path}: not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None
    try:
        raw = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ScheduleFileError(f"{path}: not valid YAML{where}") from None
    except (_TooDeep, RecursionError):
        raise ScheduleFileError(
            f"{path}: YAML nested more than {MAX_YAML_DEPTH} levels deep"
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise ScheduleFileError(
            f"{path}: not valid YAML: a number of thousands of digits"
        ) from None
    _check_size(path, raw)
    return raw


def _check_size(path: Path, raw: Any) -> None:
    """Refuse YAML nested too deep, holding too many nodes (aliases repeat them) or
    text that is no character (a lone surrogate, which YAML's escapes can make)."""
    stack: list[tuple[Any, int, str]] = [(raw, 1, "")]
    nodes = 0
    while stack:
        value, depth, where = stack.pop()
        nodes += 1
        if nodes > MAX_YAML_NODES:
            raise ScheduleFileError(
                f"{path}: more than {MAX_YAML_NODES:,} values once read (aliases count "
                "each time they are used)"
            )
        if depth > MAX_YAML_DEPTH:
            raise ScheduleFileError(f"{path}: YAML nested more than {MAX_YAML_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                inner = f"{where}.{key}" if where else str(key)
                stack += [(key, depth + 1, inner), (item, depth + 1, inner)]
        elif isinstance(value, list):
            stack += [(item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value)]
        elif isinstance(value, str) and not _encodable(value):
            shown = where.encode("utf-8", "backslashreplace").decode("utf-8")
            raise ScheduleFileError(
                f"{path}: {shown}: holds a lone surrogate (\\ud800-\\udfff), which is no character"
            )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_file(path: Path) -> ScheduleFile:
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise ScheduleFileError(f"{path}: a schedule file is a YAML mapping (template, schedules)")
    try:
        return ScheduleFile.model_validate(raw)
    except ValidationError as exc:
        problems = _user_problems(exc.errors(), raw)
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        more = len(problems) - _SHOWN_PROBLEMS
        rest = f"; and {more} more problem(s) after these" if more > 0 else ""
        raise ScheduleFileError(f"{path}: {shown}{rest}") from None


#: Problems named in the one line a refused file gets.
_SHOWN_PROBLEMS = 3

_KINDS = {
    "string_type": "text",
    "int_type": "a number",
    "int_from_float": "a whole number",
    "int_parsing": "a number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "off",
}


def _user_path(loc: tuple[int | str, ...], raw: Any) -> str:
    """A pydantic location as the user wrote it: keys and indexes found in the file,
    never pydantic's tags for the branches of a union."""
    path, node = "", raw
    for part in loc:
        if isinstance(node, dict) and part in node:
            path += f".{part}" if path else str(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path += f"[{part}]"
            node = node[part]
        elif (
            isinstance(node, dict)
            and not isinstance(part, int)
            and "[" not in part
            and (part not in _UNION_TAGS)
        ):
            path += f".{part}" if path else str(part)  # a missing or unknown key
            node = None
    return path


#: How pydantic tags a union's scalar branches in an error's location.
_UNION_TAGS = frozenset({"str", "int", "float", "bool", "none", "RetrySettings"})


def _user_problems(errors: list[Any], raw: Any) -> list[str]:
    """pydantic's errors as 'field: problem', in the user's words, one per field."""
    expected: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    messages: dict[str, str] = {}
    for error in errors:
        path = _user_path(tuple(error["loc"]), raw)
        kind = error["type"]
        if kind == "extra_forbidden":
            messages.setdefault(path, "unknown field")
        elif kind == "missing":
            messages.setdefault(path, "required")
        elif kind == "too_short":
            messages.setdefault(path, "needs at least one item")
        elif kind == "string_too_short":
            messages.setdefault(path, "must not be empty")
        elif kind in _KINDS:
            expected.setdefault(path, []).append(_KINDS[kind])
            given[path] = error.get("input")
        else:
            messages.setdefault(path, str(error["msg"]).removeprefix("Value error, "))
    for path, kinds in expected.items():
        if path not in messages:
            unique = list(dict.fromkeys(kinds))
            choices = ", ".join(unique[:-1]) + " or " + unique[-1] if len(unique) > 1 else unique[0]
            messages[path] = f"expected {choices}, not {_yaml_kind(given[path])}"
    return [f"{path}: {message}" if path else message for path, message in messages.items()]


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"the number {_shown(value)}"
    if isinstance(value, str):
        return f"the text {_shown(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _range_bounds(where: str, key: str, spec: str) -> tuple[str, str] | None:
    match = _RANGE.fullmatch(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if max(len(first), len(last)) > MAX_RANGE_DIGITS:
        raise ScheduleFileError(
            f"{where}.matrix.{key}: the range {_shown(spec)} has ends of more than "
            f"{MAX_RANGE_DIGITS} digits; at most {MAX_SCHEDULES:,} schedules in all"
        )
    if int(first) > int(last):
        raise ScheduleFileError(f"{where}.matrix.{key}: the range {spec} runs backwards")
    return first, last


def _value_count(where: str, key: str, spec: list[Scalar] | str, tables: dict[str, Any]) -> int:
    """How many values a matrix key has, without listing a range."""
    if isinstance(spec, list):
        return len(spec)
    bounds = _range_bounds(where, key, spec)
    if bounds is not None:
        return int(bounds[1]) - int(bounds[0]) + 1
    if isinstance(tables.get(spec), list):
        return len(tables[spec])
    raise ScheduleFileError(
        f"{where}.matrix.{key}: a list, a range like 00..23, or the name of a list in tables"
    )


def _matrix_values(
    where: str, key: str, spec: list[Scalar] | str, tables: dict[str, Any]
) -> list[str]:
    if isinstance(spec, list):
        values = [_as_text(v) for v in spec]
    elif bounds := _range_bounds(where, key, spec):
        first, last = bounds
        width = len(first) if first.startswith("0") else 0
        values = [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    elif isinstance(tables.get(spec), list):
        values = [_as_text(v) for v in tables[spec]]
    else:
        raise ScheduleFileError(
            f"{where}.matrix.{key}: a list, a range like 00..23, or the name of a list in tables"
        )
    if not values:
        raise ScheduleFileError(f"{where}.matrix.{key}: no values")
    if len(set(values)) != len(values):
        raise ScheduleFileError(f"{where}.matrix.{key}: a value is listed twice")
    return values


@dataclass(frozen=True)
class _Template:
    path: Path
    text: str


def _read_template(where: str, base: Path, name: str | None) -> _Template:
    """The template a block names: a regular file inside the schedule file's folder."""
    if not name:
        raise ScheduleFileError(f"{where}.template: required (the execution JSON template)")
    folder = base.resolve()
    try:
        path = (folder / name).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        raise ScheduleFileError(f"{where}.template: cannot read {_shown(name)}") from None
    if Path(name).is_absolute() or not path.is_relative_to(folder):
        raise ScheduleFileError(
            f"{where}.template: {_shown(name)} is outside the schedule file's folder; "
            "a template lies next to the schedule file or below it"
        )
    try:
        data = read_regular_file(path, MAX_TEMPLATE_BYTES, "an execution JSON template")
    except FileTooLarge:
        raise ScheduleFileError(
            f"{where}.template: {path.name} is larger than {MAX_TEMPLATE_BYTES:,} bytes; "
            f"an execution input holds at most {MAX_INPUT_BYTES:,}"
        ) from None
    except UnreadableFile as exc:
        raise ScheduleFileError(f"{where}.template: {path}: {exc}") from None
    try:
        return _Template(path, data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ScheduleFileError(
            f"{where}.template: {path.name} is not valid UTF-8 (byte {exc.start})"
        ) from None


def _rows(matrix: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    keys = list(matrix)
    for combination in product(*(matrix[k] for k in keys)):
        yield dict(zip(keys, combination, strict=True))


def _tables(spec: ScheduleFile) -> dict[str, Any]:
    return {
        name: ({k: v for k, v in t.items()} if isinstance(t, dict) else list(t))
        for name, t in spec.tables.items()
    }


def _count_rows(path: Path, spec: ScheduleFile, counted: int) -> int:
    """`counted` plus the schedules the file declares, refused past MAX_SCHEDULES before
    any row is made."""
    tables = _tables(spec)
    for index, block in enumerate(spec.schedules):
        where = f"{path}: schedules[{index}]"
        rows = 1
        for key, values in block.matrix.items():
            rows *= _value_count(where, key, values, tables)
            if counted + rows > MAX_SCHEDULES:
                raise ScheduleFileError(
                    f"{where}.matrix: declares more than {MAX_SCHEDULES:,} schedules"
                    + (f" with the {counted:,} before it" if counted else "")
                    + f"; at most {MAX_SCHEDULES:,} over all the files given"
                )
        counted += rows
    return counted


@dataclass
class _Budget:
    """Execution input text expanded so far, over all files."""

    used: int = 0

    def spend(self, size: int) -> None:
        self.used += size
        if self.used > MAX_EXPANDED_BYTES:
            raise _Unresolved(
                f"the schedules expand to more than {MAX_EXPANDED_BYTES // 1_048_576} MB of "
                "execution input in all; make the template or the matrix smaller"
            )


def expand_file(path: Path) -> list[Schedule]:
    """Every schedule the file declares, in file order; a bad row raises with its values."""
    spec = load_file(path)
    _count_rows(path, spec, 0)
    return _expand_spec(path, spec, _Budget())


def _expand_spec(path: Path, spec: ScheduleFile, budget: _Budget) -> list[Schedule]:
    tables = _tables(spec)
    templates: dict[str, _Template] = {}
    schedules: list[Schedule] = []
    for index, block in enumerate(spec.schedules):
        where = f"{path}: schedules[{index}]"
        template_name = block.template or spec.template
        if template_name not in templates:
            templates[str(template_name)] = _read_template(where, path.parent, template_name)
        template = templates[str(template_name)]
        matrix = {k: _matrix_values(where, k, v, tables) for k, v in block.matrix.items()}
        clash = sorted(set(block.values) & set(matrix))
        if clash:
            raise ScheduleFileError(f"{where}.values.{clash[0]}: also a matrix key")
        # The file's values are defaults: a matrix key or the block's values replace them.
        values = {k: v for k, v in spec.values.items() if k not in matrix} | block.values
        window = block.flexible_window or spec.flexible_window or "off"
        time_zone = block.time_zone or spec.time_zone or "UTC"
        enabled = block.enabled if block.enabled is not None else spec.enabled
        retry = block.retry or spec.retry or RetrySettings()
        for row in _rows(matrix):
            try:
                scope: dict[str, Any] = dict(row)
                for name, value in values.items():
                    scope[name] = (
                        substitute(value, scope, tables)
                        if isinstance(value, str) and "${" in value
                        else value
                    )
                name = substitute(block.name, scope, tables)
                try:
                    family = substitute(block.name, scope | dict.fromkeys(row, "*"), tables)
                except _Unresolved:
                    family = block.name
                execution = _execution(template, name, scope, tables, budget)
                schedules.append(
                    Schedule(
                        name=name,
                        expression=substitute(block.expression, scope, tables),
                        time_zone=time_zone,
                        flexible_window=None if window == "off" else int(window),
                        enabled=enabled is not False,
                        retry=retry,
                        execution=execution,
                        row=row,
                        source=str(path),
                        description=(
                            substitute(block.description, scope, tables)
                            if block.description
                            else None
                        ),
                        family=family,
                    )
                )
            except _Unresolved as exc:
                values_text = ", ".join(
                    f"{k}={v if v.isprintable() else ascii(v)}" for k, v in row.items()
                )
                raise ScheduleFileError(f"{where} ({values_text}): {exc}") from None
    return schedules


def _execution(
    template: _Template,
    name: str,
    scope: dict[str, Any],
    tables: dict[str, Any],
    budget: _Budget,
) -> dict[str, Any]:
    text = substitute(
        template.text, scope, tables, escape=_json_string_content, limit=MAX_TEMPLATE_BYTES
    )
    budget.spend(len(text))
    try:
        # Read as strictly as `amirun validate` reads an execution file.
        execution = decode_execution(text.encode("utf-8", "surrogatepass"))
    except InvalidExecutionInput as exc:
        hint = (
            "; a text placeholder outside quotes needs quotes around it"
            if "not valid JSON" in str(exc)
            else ""
        )
        raise _Unresolved(f"{template.path.name} once filled in: {exc}{hint}") from None
    if "schedule" in execution:
        raise _Unresolved(f"{template.path.name}: `schedule` is set for each schedule, remove it")
    # The run's reference time is the time it was scheduled for, whenever it starts.
    execution["schedule"] = {"name": name, "scheduled_time": SCHEDULED_TIME}
    return execution


def schedule_files(paths: Iterable[Path]) -> list[Path]:
    """Files and directories (their *.yaml and *.yml files, not their subdirectories)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                raise ScheduleFileError(f"{path}: no *.yaml schedule files in it")
            files += found
        else:
            files.append(path)
    return files


def expand(paths: Iterable[Path]) -> list[Schedule]:
    """The set of schedules all the files declare; a name may be declared only once.

    Every file is read and its schedules counted before any is expanded, so a
    matrix too large is refused at once.
    """
    specs = [(path, load_file(path)) for path in schedule_files(paths)]
    counted = 0
    for path, spec in specs:
        counted = _count_rows(path, spec, counted)
    budget = _Budget()
    schedules: list[Schedule] = []
    seen: dict[str, Schedule] = {}
    for path, spec in specs:
        for schedule in _expand_spec(path, spec, budget):
            first = seen.get(schedule.name)
            if first is not None:
                raise ScheduleFileError(
                    f"{schedule.source}: the name {schedule.name} is declared twice:"
                    f" {first.label()} in {first.source}, {schedule.label()}"
                )
            seen[schedule.name] = schedule
            schedules.append(schedule)
    return schedules


# --- Checking ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    schedule: Schedule
    messages: list[str]

    def __str__(self) -> str:
        return f"{self.schedule.label()}: " + "; ".join(self.messages)


def schedule_problems(schedule: Schedule, ec2_model: Any = None) -> list[str]:
    """What is wrong with one schedule, as Scheduler and `amirun validate` would see it:
    its name, its expression, its description, its execution input."""
    problems = []
    if not _SCHEDULE_NAME.fullmatch(schedule.name):
        problems.append(
            f"name: {_shown(schedule.name)} is not 1 to 64 letters, digits, '-', '_' or '.' "
            "(Scheduler's schedule names)"
        )
    why = expression_problem(schedule.expression)
    if why:
        problems.append(f"expression: {why}")
    if schedule.description is not None and len(schedule.description) > MAX_DESCRIPTION_CHARS:
        problems.append(
            f"description: {len(schedule.description):,} characters once filled in; "
            f"Scheduler takes at most {MAX_DESCRIPTION_CHARS}"
        )
    try:
        # The same check as `amirun validate`, with a sample time for the scheduled time.
        parse_execution(schedule.input_at(SAMPLE_SCHEDULED_TIME), ec2_model)
    except InvalidExecutionInput as exc:
        problems += exc.problems
    return problems


def check(schedules: Iterable[Schedule]) -> list[Problem]:
    import botocore.session

    ec2_model = botocore.session.get_session().get_service_model("ec2")
    found = []
    for schedule in schedules:
        messages = schedule_problems(schedule, ec2_model)
        if messages:
            found.append(Problem(schedule, messages))
    return found


def find(schedules: Iterable[Schedule], name: str) -> Schedule:
    by_name = {s.name: s for s in schedules}
    if name in by_name:
        return by_name[name]
    import difflib

    close = difflib.get_close_matches(name, list(by_name), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ScheduleFileError(f"no schedule named {name}{hint}")
