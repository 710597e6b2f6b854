"""The execution JSON: what a user hands to `start-execution`.

The fields and defaults of the system amirun replaces are kept, so its
execution files run unchanged; new fields are optional. Every error names the
field it is about, with the full path (`run_options.timeout_s`).
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from amirun_core.errors import InvalidExecutionInput

#: SSM's own ceiling for AWS-RunShellScript's executionTimeout (48 h).
MAX_TIMEOUT_S = 172_800

#: Parameters amirun sets on every launch; a user value would break a guarantee.
OWNED_INSTANCE_PARAMETERS = ("MinCount", "MaxCount", "ClientToken")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class S3Check(_Strict):
    """Where the run's output must be after the command succeeds."""

    bucket: str = Field(min_length=3, max_length=63, description="S3 bucket name.")
    prefix: str = Field(
        min_length=1,
        description=(
            "Object key that must exist, or a prefix under which at least one object "
            "must exist. `DAILY` is replaced by the run's UTC date (YYYYMMDD)."
        ),
    )
    newer_than_start: bool = Field(
        True,
        description=(
            "The object must have been written after the execution started, so "
            "yesterday's output does not pass for today's."
        ),
    )


class RunOptions(_Strict):
    ii_terminate_instance: bool = Field(
        False, description="Terminate the instance after the run instead of stopping it."
    )
    ii_delete_volume: bool = Field(
        False, description="Delete the instance's EBS volumes after the run."
    )
    ii_check_s3: bool | S3Check = Field(
        False,
        description=(
            "`false`: no output check. An object {bucket, prefix}: that object must "
            "exist after the run or the run fails with OutputMissing."
        ),
    )
    timeout_s: int = Field(
        3600, ge=60, le=MAX_TIMEOUT_S, description="Time limit of the commands, in seconds."
    )
    ii_cheapo: bool = Field(False, description="Try a spot instance first; fall back to on-demand.")
    n_retries_allowed: int = Field(
        0, ge=0, le=5, description="How many times a failed run is relaunched."
    )
    # New in amirun: all optional.
    retry_delay_s: int = Field(
        600,
        ge=0,
        le=86_400,
        description="Wait before a relaunch, doubled each time (late upstream data).",
    )
    poll_interval_s: int = Field(
        600,
        ge=5,
        le=3600,
        description=(
            "The command's end is an event; a safety look at the command follows "
            "when none came for this long (longer for long commands)."
        ),
    )
    ready_timeout_s: int = Field(
        600,
        ge=60,
        le=3600,
        description="How long the instance may take to run and bring its SSM agent online.",
    )
    working_directory: str | None = Field(
        None, min_length=1, description="Directory the commands run in."
    )

    @property
    def attempts(self) -> int:
        """The most attempts one execution may make: the first and its relaunches."""
        return self.n_retries_allowed + 1

    @property
    def output_check(self) -> S3Check | None:
        return self.ii_check_s3 if isinstance(self.ii_check_s3, S3Check) else None


class ExecutionRequest(_Strict):
    """One execution JSON."""

    commands: list[str] | None = Field(
        None,
        min_length=1,
        description=(
            "Shell commands run in order by SSM Run Command (AWS-RunShellScript). "
            "`DAILY` is replaced by the run's UTC date (YYYYMMDD)."
        ),
    )
    datastream_command_options: dict[str, Any] | None = Field(
        None, description="NextGen datastream options. Not supported yet: use `commands`."
    )
    run_options: RunOptions = Field(default_factory=RunOptions)
    instance_parameters: dict[str, Any] = Field(
        description=(
            "EC2 RunInstances parameters, as boto3 takes them (ImageId, InstanceType, "
            "SecurityGroupIds, IamInstanceProfile, TagSpecifications, ...)."
        )
    )

    @model_validator(mode="after")
    def _check_command_source(self) -> ExecutionRequest:
        if self.datastream_command_options is not None:
            raise ValueError(
                "datastream_command_options: not supported yet; give the commands to "
                "run as `commands`"
            )
        if self.commands is None:
            raise ValueError("commands: required (a list of shell commands)")
        if self.run_options.ii_check_s3 is True:
            raise ValueError(
                "run_options.ii_check_s3: `true` needs a location; give "
                '{"bucket": "...", "prefix": "..."} or `false`'
            )
        for index, command in enumerate(self.commands):
            if not command.strip():
                raise ValueError(f"commands[{index}]: empty command")
        return self


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("bool", "S3Check"):
            # pydantic names the union member it tried; users know only the field.
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _known_fields(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = ExecutionRequest
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if a]
        nested = [a for a in candidates if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _describe(error: Any) -> str | None:
    loc = tuple(error["loc"])
    path = _field_path(loc)
    if error["type"] == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), _known_fields(loc), n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        return f"{path}: unknown field{suggestion}"
    if loc and loc[-1] == "bool" and isinstance(error.get("input"), dict):
        # An object given for `bool | object`: only the object's errors matter.
        return None
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "value_error":
        # Our model-level checks start their message with the field they are about.
        return f"{path}.{message}" if path else message
    return f"{path}: {message}" if path else message


def parse_execution(raw: Any, ec2_model: Any = None) -> ExecutionRequest:
    """Validate an execution JSON in full; raise InvalidExecutionInput naming every bad field.

    `ec2_model`: EC2's service model, when the caller has a client that loaded it
    already (`ec2.meta.service_model`); otherwise it is loaded from botocore.
    """
    if not isinstance(raw, dict):
        raise InvalidExecutionInput("the execution input must be a JSON object")
    request, problems = _validate_model(raw)
    if isinstance(raw.get("instance_parameters"), dict):
        problems += instance_parameter_problems(raw["instance_parameters"], ec2_model)
    if problems or request is None:
        raise InvalidExecutionInput(*problems)
    return request


def read_execution(raw: Any) -> ExecutionRequest:
    """The execution JSON as the steps after launch read it.

    The starter validated it in full before launching anything; this checks the
    model only, so these steps never load EC2's large service model.
    """
    if not isinstance(raw, dict):
        raise InvalidExecutionInput("the execution input must be a JSON object")
    request, problems = _validate_model(raw)
    if problems or request is None:
        raise InvalidExecutionInput(*problems)
    return request


def _validate_model(raw: dict[str, Any]) -> tuple[ExecutionRequest | None, list[str]]:
    try:
        return ExecutionRequest.model_validate(raw), []
    except ValidationError as exc:
        return None, sorted({p for p in map(_describe, exc.errors()) if p})


@functools.cache
def _botocore_ec2_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2")


def instance_parameter_problems(params: dict[str, Any], ec2_model: Any = None) -> list[str]:
    """Check RunInstances parameters against EC2's own input shape (shipped in botocore)."""
    from botocore.validate import ParamValidator

    problems = [
        f"instance_parameters.{name}: set by amirun, remove it"
        for name in OWNED_INSTANCE_PARAMETERS
        if name in params
    ]
    if "ImageId" not in params and "LaunchTemplate" not in params:
        problems.append("instance_parameters.ImageId: required (the AMI to launch)")
    shape = (ec2_model or _botocore_ec2_model()).operation_model("RunInstances").input_shape
    report = ParamValidator().validate({**params, "MinCount": 1, "MaxCount": 1}, shape)
    if report.has_errors():
        lines = (line.strip() for line in report.generate_report().splitlines())
        problems += [
            _describe_botocore(line)
            for line in lines
            if line and not line.startswith("Parameter validation failed")
        ]
    return problems


_UNKNOWN = re.compile(
    r'Unknown parameter in (?P<where>\S+): "(?P<name>[^"]+)", must be one of: (?P<known>.*)'
)
_MISSING = re.compile(r'Missing required parameter in (?P<where>\S+): "(?P<name>[^"]+)"')
_INVALID = re.compile(r"Invalid (?P<what>\w+) for parameter (?P<name>[^,]+), (?P<detail>.*)")


def _ec2_field(where: str, name: str = "") -> str:
    parts = [p for p in (where, name) if p and p != "input"]
    return ".".join(["instance_parameters", *parts])


def _describe_botocore(line: str) -> str:
    """Turn one line of botocore's validation report into 'field: problem'."""
    if match := _UNKNOWN.match(line):
        known = [k.strip() for k in match["known"].split(",")]
        hint = difflib.get_close_matches(match["name"], known, n=1, cutoff=0.5)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        return f"{_ec2_field(match['where'], match['name'])}: unknown field{suggestion}"
    if match := _MISSING.match(line):
        return f"{_ec2_field(match['where'], match['name'])}: required"
    if match := _INVALID.match(line):
        return f"{_ec2_field(match['name'])}: invalid {match['what']}, {match['detail']}"
    return f"instance_parameters: {line}"


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the execution JSON, for editors and `schema/`."""
    schema = ExecutionRequest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "amirun execution"
    return schema
