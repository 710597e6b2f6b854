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

from amirun_core.errors import InvalidExecutionInput
from amirun_core.execution import decode_execution, parse_execution

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

_SCHEDULE_NAME = re.compile(r"^[0-9A-Za-z_.-]{1,64}$")
_EXPRESSION = re.compile(
    r"^(cron\(\S+( \S+){5}\)"
    r"|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\)"
    r"|at\(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\))$"
)
_PLACEHOLDER = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")
_EXECUTION_NAME_CHAR = re.compile(r"[^0-9A-Za-z_-]")


class ScheduleFileError(Exception):
    """A schedule file cannot be read or expanded; the message names the file and field."""


# --- The file format -------------------------------------------------------------------------
Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Strict):
    """How Scheduler retries a start that failed (throttled, state machine busy...)."""

    attempts: int = Field(2, ge=0, le=185)
    max_age_s: int = Field(3600, ge=60, le=86_400)


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
        if value is False or (isinstance(value, str) and value.lower() == "off"):
            return "off"
        if isinstance(value, int) and not isinstance(value, bool) and not 1 <= value <= 1440:
            raise ValueError("minutes from 1 to 1440, or off")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (e.g. UTC, America/New_York)"
                ) from None
        return value


class Block(_Settings):
    """Schedules that share a name pattern and an expression: one per row of the matrix."""

    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    matrix: dict[str, list[Scalar] | str] = Field(default_factory=dict)
    description: str | None = Field(None, max_length=512)


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

    def describe_row(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.row.items())

    def label(self) -> str:
        """The schedule and the matrix values of its row."""
        row = self.describe_row()
        return f"{self.name} ({row})" if row else self.name

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
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise _Unresolved(f"${{{text}}}: not an expression ({exc.msg})") from None
    return tree.body


def _number(value: Any, text: str) -> int:
    if isinstance(value, bool):
        raise _Unresolved(f"${{{text}}}: {value!r} is not a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)  # "06" is 6: cycles and members are written zero-padded
    raise _Unresolved(f"${{{text}}}: {value!r} is not a number")


def _evaluate(node: ast.expr, scope: dict[str, Any], tables: dict[str, Any], text: str) -> Any:
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        if node.id in tables:
            return tables[node.id]
        raise _Unresolved(f"${{{text}}}: no value or table named {node.id}")
    if isinstance(node, ast.Constant) and isinstance(node.value, int | str):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        left = _number(_evaluate(node.left, scope, tables, text), text)
        right = _number(_evaluate(node.right, scope, tables, text), text)
        if right == 0 and isinstance(node.op, ast.FloorDiv | ast.Mod):
            raise _Unresolved(f"${{{text}}}: division by zero")
        return _ARITHMETIC[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_number(_evaluate(node.operand, scope, tables, text), text)
    if isinstance(node, ast.Subscript):
        table = _evaluate(node.value, scope, tables, text)
        key = _evaluate(node.slice, scope, tables, text)
        if isinstance(table, dict):
            if str(key) not in table:
                raise _Unresolved(f"${{{text}}}: no entry {key!r} in the table")
            return table[str(key)]
        if isinstance(table, list):
            index = _number(key, text)
            if not 0 <= index < len(table):
                raise _Unresolved(f"${{{text}}}: index {index} outside the list")
            return table[index]
        raise _Unresolved(f"${{{text}}}: {table!r} is not a table")
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
) -> str:
    """Replace every `${...}` in `pattern`; `$${` stands for a literal `${`."""

    def replace(match: re.Match[str]) -> str:
        text = match.group(1)
        if text is None:
            return "${"
        if text in scope:  # the common case: a plain name
            return escape(_as_text(scope[text]))
        return escape(_as_text(_evaluate(_parse_expression(text), scope, tables, text)))

    return _PLACEHOLDER.sub(replace, pattern)


@functools.lru_cache(maxsize=4096)  # the same few values fill every row of a matrix
def _json_string_content(text: str) -> str:
    """`text` as it must appear between the quotes of a JSON string."""
    return json.dumps(text)[1:-1]


# --- Loading and expanding -------------------------------------------------------------------
def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def load_file(path: Path) -> ScheduleFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScheduleFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ScheduleFileError(f"{path}: a directory, not a schedule file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ScheduleFileError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ScheduleFileError(f"{path}: a schedule file is a YAML mapping (template, schedules)")
    try:
        return ScheduleFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown field"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        field = _field_path(tuple(first["loc"]))
        raise ScheduleFileError(f"{path}: {field}: {message}{more}") from None


def _matrix_values(
    where: str, key: str, spec: list[Scalar] | str, tables: dict[str, Any]
) -> list[str]:
    if isinstance(spec, list):
        values = [_as_text(v) for v in spec]
    elif match := _RANGE.match(spec):
        first, last = match.group(1), match.group(2)
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
    if not name:
        raise ScheduleFileError(f"{where}.template: required (the execution JSON template)")
    path = (base / name).resolve()
    try:
        return _Template(path, path.read_text(encoding="utf-8"))
    except OSError:
        raise ScheduleFileError(f"{where}.template: cannot read {path}") from None


def _rows(matrix: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    keys = list(matrix)
    for combination in product(*(matrix[k] for k in keys)):
        yield dict(zip(keys, combination, strict=True))


def expand_file(path: Path) -> list[Schedule]:
    """Every schedule the file declares, in file order; a bad row raises with its values."""
    spec = load_file(path)
    tables: dict[str, Any] = {
        name: ({k: v for k, v in t.items()} if isinstance(t, dict) else list(t))
        for name, t in spec.tables.items()
    }
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
                schedules.append(
                    Schedule(
                        name=name,
                        expression=substitute(block.expression, scope, tables),
                        time_zone=time_zone,
                        flexible_window=None if window == "off" else int(window),
                        enabled=enabled is not False,
                        retry=retry,
                        execution=_execution(template, name, scope, tables),
                        row=row,
                        source=str(path),
                        description=(
                            substitute(block.description, scope, tables)
                            if block.description
                            else None
                        ),
                    )
                )
            except _Unresolved as exc:
                values_text = ", ".join(f"{k}={v}" for k, v in row.items())
                raise ScheduleFileError(f"{where} ({values_text}): {exc}") from None
    return schedules


def _execution(
    template: _Template, name: str, scope: dict[str, Any], tables: dict[str, Any]
) -> dict[str, Any]:
    text = substitute(template.text, scope, tables, escape=_json_string_content)
    try:
        # Read as strictly as `amirun validate` reads an execution file.
        execution = decode_execution(text.encode("utf-8"))
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
    """The set of schedules all the files declare; a name may be declared only once."""
    schedules: list[Schedule] = []
    seen: dict[str, Schedule] = {}
    for path in schedule_files(paths):
        for schedule in expand_file(path):
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
    """What is wrong with one schedule: its name, its expression, its execution input."""
    problems = []
    if not _SCHEDULE_NAME.match(schedule.name):
        problems.append(
            "name: 1 to 64 letters, digits, '-', '_' or '.' (Scheduler's schedule names)"
        )
    if not _EXPRESSION.match(schedule.expression):
        problems.append(
            f"expression: {schedule.expression!r} is not cron(6 fields), rate(N unit) or at(...)"
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
