"""The execution JSON: what a user hands to `start-execution`.

The fields and defaults of the system amirun replaces are kept, so its
execution files run unchanged; new fields are optional. Validation is strict
(JSON types as the published JSON Schema reads them) and complete: every
problem is reported at once, each as `field: problem` with the full path
(`run_options.timeout_s`), and no check hides another.

To add a field: declare it on its model below (a type from this module gives
strictness, an AfterValidator gives a readable message and `json_schema_extra`
the same rule for editors). A rule that spans fields goes in `_RULES`.
"""

from __future__ import annotations

import collections
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from amirun_core import daily
from amirun_core.daily import DatastreamCommandOptions, Resolution, Schedule
from amirun_core.ec2_limits import OWN_TAG_COUNT, ec2_limit_problems
from amirun_core.errors import InvalidExecutionInput, Problem
from amirun_core.shapes import (
    MAX_HINTS,
    is_integer,
    json_type,
    shape_problems,
    shape_schema,
    unknown_field,
)

#: SSM's own ceiling for AWS-RunShellScript's executionTimeout (48 h).
MAX_TIMEOUT_S = 172_800

#: Step Functions' limit on a state's input or output, in bytes (256 KiB).
STATE_LIMIT_BYTES = 262_144

#: The largest execution input amirun accepts, as `input_size` counts it: half
#: of what a state may hold. Step Functions fails an execution whose state
#: passes STATE_LIMIT_BYTES (States.DataLimitExceeded) and no Catch sees that:
#: the instance would be left running. The state carries the input once
#: (`request`) plus the run's own records; `bench/state_size.py` measured those
#: at 55,431 bytes at most (six failed attempts with the costliest output), so
#: the other half leaves them 2.4 times that.
MAX_INPUT_BYTES = 131_072

#: Deeper than any real execution JSON goes; JSON nested deeper is refused unread.
MAX_DEPTH = 32

#: RunInstances parameters amirun owns; a user value would break a guarantee.
OWNED_INSTANCE_PARAMETERS = {
    "MinCount": "set by amirun (one instance per attempt), remove it",
    "MaxCount": "set by amirun (one instance per attempt), remove it",
    "ClientToken": "set by amirun (it makes the launch idempotent), remove it",
    "DryRun": "amirun launches for real, remove it",
    "DisableApiStop": "would keep amirun from stopping the instance after the run, remove it",
    "DisableApiTermination": (
        "would keep amirun from terminating the instance after the run, remove it"
    ),
}

#: An AMI id, or an SSM parameter holding one: a parameter name has only letters,
#: digits, `_ . - /` (https://docs.aws.amazon.com/systems-manager/latest/userguide/sysman-paramstore-su-create.html),
#: and may end in `:version` or `:label`.
_IMAGE_ID = re.compile(
    r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?|resolve:ssm:[A-Za-z0-9_./-]{1,2048}(?::[A-Za-z0-9_.-]{1,100})?"
)
#: The same rule for editors (JSON Schema patterns are not anchored).
_IMAGE_ID_PATTERN = (
    r"^(ami-[0-9a-f]{8}([0-9a-f]{9})?"
    r"|resolve:ssm:[A-Za-z0-9_./-]{1,2048}(:[A-Za-z0-9_.-]{1,100})?)$"
)


# --- strict JSON types ---------------------------------------------------------------
def _integral(value: Any) -> Any:
    # JSON Schema counts 3600.0 as an integer; pydantic's strict int does not.
    return int(value) if isinstance(value, float) and is_integer(value) else value


#: An integer as JSON Schema reads it: 3600 or 3600.0, never "3600" or true.
Integer = Annotated[int, BeforeValidator(_integral)]


#: Characters that show nothing: zero-width spaces and joiners, direction marks, the
#: byte order mark, soft hyphen, Hangul fillers, variation selectors. A command made
#: only of these and spaces is blank, however long.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0"
)
_VISIBLE = re.compile(f"[^\\s{_INVISIBLE}]")


def _command(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte, which no shell command can carry")
    if not _VISIBLE.search(value):
        raise ValueError(
            "empty command" if not value.strip() else "blank: only spaces or invisible characters"
        )
    return value


#: One shell command: not blank (spaces and invisible characters only), no NUL byte.
Command = Annotated[
    str,
    AfterValidator(_command),
    Field(json_schema_extra={"pattern": f"^[^\\u0000]*[^\\u0000\\s{_INVISIBLE}][^\\u0000]*$"}),
]

_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: S3's naming rules for general purpose buckets, for editors. `DAILY` may stand
#: for the run's date, as in `prefix`.
_BUCKET_PATTERN = (
    "^(?!xn--|sthree-|amzn-s3-demo-)(?!.*\\.\\.)(?!\\d+\\.\\d+\\.\\d+\\.\\d+$)"
    "(?!.*(-s3alias|--ol-s3|\\.mrap|--x-s3|--table-s3)$)"
    "([a-z0-9]|DAILY)([a-z0-9.-]|DAILY)*([a-z0-9]|DAILY)$"
)


def _bucket(value: str) -> str:
    if value.startswith("s3://"):
        bucket, _, key = value.removeprefix("s3://").partition("/")
        raise ValueError(
            f'the bucket name alone, without s3:// (bucket "{bucket}"'
            + (f', and "{key}" goes in prefix)' if key else ")")
        )
    name = value.replace("DAILY", "20000101")  # what the run will use
    if not 3 <= len(name) <= 63:
        raise ValueError("an S3 bucket name has 3 to 63 characters")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name):
        raise ValueError(
            "an S3 bucket name has only lowercase letters, digits, dots and hyphens, "
            "and begins and ends with a letter or digit"
        )
    if ".." in name:
        raise ValueError("an S3 bucket name has no two adjacent dots")
    if _is_ip_address(name):
        raise ValueError("an S3 bucket name is not formatted as an IP address")
    for reserved in _RESERVED_BUCKET_PREFIXES:
        if name.startswith(reserved):
            raise ValueError(f"S3 reserves bucket names starting with {reserved}")
    for reserved in _RESERVED_BUCKET_SUFFIXES:
        if name.endswith(reserved):
            raise ValueError(f"S3 reserves bucket names ending with {reserved}")
    return value


def _is_ip_address(name: str) -> bool:
    if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        # 999.1.1.1 is no address, but S3 refuses the shape all the same.
        return True
    return True


BucketName = Annotated[
    str,
    AfterValidator(_bucket),
    Field(json_schema_extra={"pattern": _BUCKET_PATTERN, "minLength": 3, "maxLength": 63}),
]


def _object_key(value: str) -> str:
    if value.startswith("s3://"):
        key = value.removeprefix("s3://").partition("/")[2]
        raise ValueError(
            "the object key alone, without s3:// and the bucket" + (f' ("{key}")' if key else "")
        )
    return value


ObjectKey = Annotated[
    str, AfterValidator(_object_key), Field(json_schema_extra={"pattern": "^(?!s3://)"})
]


# --- the models ------------------------------------------------------------------------
#: Fields the original's machine adds to an execution's JSON while it runs (the
#: attempt, the region, the relaunch wait, what its checks found). Files replayed from
#: its failed-execution records carry them: amirun accepts and ignores them.
MACHINE_FIELDS = (
    "retry_attempt",
    "region",
    "wait_seconds",
    "ii_s3_object_checked",
    "ii_forcing_found",
    "forcing_check_start_time",
)
_MACHINE_FIELD = (
    "Added by the original's machine while a run ran (files replayed from its records "
    "carry it); accepted and ignored."
)


#: The relaunch backoff's options, as the original names them (`retry_delay_s` is the
#: earlier way to give the same waits: one or the other).
BACKOFF_OPTIONS = ("retry_backoff_base_s", "retry_backoff_rate", "retry_backoff_max_s")


def machine_fields(raw: Any) -> list[str]:
    """The fields of MACHINE_FIELDS an execution JSON carries (ignored, worth a notice)."""
    return [name for name in MACHINE_FIELDS if isinstance(raw, dict) and name in raw]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class S3Check(_Strict):
    """Where the run's output must be after the command succeeds."""

    bucket: BucketName = Field(description="S3 bucket name (no s3://).")
    prefix: ObjectKey = Field(
        min_length=1,
        description=(
            "Object key that must exist, or a prefix under which at least one object "
            "must exist. DAILY becomes the run's DAILY date (see `commands`)."
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
    model_config = ConfigDict(
        # What _backoff_spelling says, for editors: one way to give the relaunch waits.
        json_schema_extra={
            "not": {"anyOf": [{"required": ["retry_delay_s", name]} for name in BACKOFF_OPTIONS]}
        }
    )

    ii_terminate_instance: bool = Field(
        False, description="Terminate the instance after the run instead of stopping it."
    )
    ii_delete_volume: bool = Field(
        False, description="Delete the instance's EBS volumes after the run."
    )
    ii_check_s3: bool | S3Check = Field(
        False,
        description=(
            "`false`: no output check. `true`: one key under the output location the "
            "commands give (`--s3_bucket` and `--s3_prefix`, any case, the last command's "
            "wins; or datastream_command_options' s3_bucket and s3_prefix), as the original "
            "checks it: PREFIX/merkdir.file when a command runs /scripts/datastream (an "
            "`echo` parser hint does not count), else "
            "PREFIX/metadata/forcings_metadata/metadata.csv; it must be written after the "
            "run started, or the run fails with OutputMissing; a file that gives no "
            "location is refused. An object {bucket, prefix}: that object (or one under "
            "that prefix) must exist after the run."
        ),
    )
    timeout_s: Integer = Field(
        3600, ge=60, le=MAX_TIMEOUT_S, description="Time limit of the commands, in seconds."
    )
    ii_cheapo: bool = Field(False, description="Try a spot instance first; fall back to on-demand.")
    n_retries_allowed: Integer = Field(
        0, ge=0, le=5, description="How many times a failed run is relaunched."
    )
    # New in amirun, or in the original since: all optional.
    retry_backoff_base_s: Integer = Field(
        1800,
        ge=0,
        le=86_400,
        description=(
            "Relaunch backoff, as the original computes it: the wait before relaunch n "
            "(1 for the first) is retry_backoff_base_s * retry_backoff_rate^n seconds, at "
            "most retry_backoff_max_s (defaults: 3600 s, then 7200 s)."
        ),
    )
    retry_backoff_rate: float = Field(
        2,
        ge=1,
        le=10,
        description="Growth of the relaunch wait from one relaunch to the next.",
    )
    retry_backoff_max_s: Integer = Field(
        7200, ge=0, le=86_400, description="The longest wait before a relaunch, in seconds."
    )
    # Absent is no type error; an explicit null is (as for `commands`).
    retry_delay_s: Integer = Field(
        None,  # type: ignore[assignment]
        ge=0,
        le=86_400,
        description=(
            "The earlier way to say the backoff, kept for existing files: the first wait, "
            "doubled at each relaunch, with no cap. It stands for retry_backoff_base_s "
            "retry_delay_s/2, retry_backoff_rate 2 and no retry_backoff_max_s; give "
            "either it or the retry_backoff_* options."
        ),
    )
    poll_interval_s: Integer = Field(
        600,
        ge=5,
        le=3600,
        description=(
            "The command's end is an event; a safety look at the command follows "
            "when none came for this long (longer for long commands)."
        ),
    )
    ready_timeout_s: Integer = Field(
        600,
        ge=60,
        le=3600,
        description="How long the instance may take to run and bring its SSM agent online.",
    )
    working_directory: str | None = Field(
        None, min_length=1, description="Directory the commands run in."
    )
    inputs: list[
        Annotated[
            str,
            AfterValidator(daily.s3_url),
            Field(json_schema_extra={"pattern": "^s3://[^/]+/.+$"}),
        ]
    ] = Field(
        [],
        max_length=100,
        description=(
            "S3 objects (s3://bucket/key, DAILY resolved like the S3 prefix) that must "
            "exist before an instance is launched. amirun waits for them up to "
            "inputs_timeout_s, then ends with InputsMissing, having launched nothing."
        ),
    )
    inputs_timeout_s: Integer = Field(
        3600,
        ge=0,
        le=86_400,
        description="How long to wait for `inputs` to appear, counted from the run's start.",
    )
    ii_check_forcing: bool = Field(
        False,
        description=(
            "The forcing file the commands name with `-F s3://...` (DAILY resolved, with "
            "the medium-range member's shift) must exist before an instance is launched; "
            "amirun waits for it up to forcing_check_timeout_s, then ends with "
            "InputsMissing, having launched nothing."
        ),
    )
    forcing_check_wait_s: Integer = Field(
        60,
        ge=10,
        le=3600,
        description=(
            "Shortest interval between two looks for the forcing file (longer when "
            "forcing_check_timeout_s is long, so a run stays within Step Functions' "
            "history limit)."
        ),
    )
    forcing_check_timeout_s: Integer = Field(
        86_400,
        ge=0,
        le=86_400,
        description="How long to wait for the forcing file, counted from the run's start.",
    )

    instance_types: list[
        Annotated[
            str,
            Field(
                pattern=r"^[a-z][a-z0-9-]*\.[a-z0-9]+$",
                json_schema_extra={"pattern": r"^[a-z][a-z0-9-]*\.[a-z0-9]+$"},
            ),
        ]
    ] = Field(
        [],
        max_length=10,
        description=(
            "Alternatives to instance_parameters.InstanceType, tried in order when a type "
            "has no capacity (with ii_cheapo: spot across every type first, then "
            "on-demand). Each must run the AMI's architecture; checked before launch."
        ),
    )
    subnets: list[
        Annotated[
            str,
            Field(
                pattern=r"^subnet-[0-9a-f]{8,17}$",
                json_schema_extra={"pattern": r"^subnet-[0-9a-f]{8,17}$"},
            ),
        ]
    ] = Field(
        [],
        max_length=6,
        description=(
            "Subnets (in other Availability Zones) to try for each type, in order; "
            "instead of instance_parameters.SubnetId."
        ),
    )
    queue_timeout_s: Integer = Field(
        3600,
        ge=60,
        le=21_600,
        description=(
            "When the stack limits concurrent vCPUs: how long the run may wait for room "
            "(and for capacity) before it ends with InstanceQueueTimeout, having "
            "launched nothing."
        ),
    )

    @property
    def attempts(self) -> int:
        """The most attempts one execution may make: the first and its relaunches."""
        return self.n_retries_allowed + 1

    @property
    def output_check(self) -> S3Check | None:
        return self.ii_check_s3 if isinstance(self.ii_check_s3, S3Check) else None

    def backoff(self) -> tuple[float, float, float]:
        """(base, rate, cap) of the relaunch waits; `retry_delay_s` is their older spelling."""
        if self.retry_delay_s is not None:
            return self.retry_delay_s / 2, 2.0, math.inf
        return self.retry_backoff_base_s, self.retry_backoff_rate, self.retry_backoff_max_s


class ExecutionRequest(_Strict):
    """One execution JSON."""

    schema_url: str | None = Field(
        None,
        alias="$schema",
        description="The JSON Schema this file follows, for editors; ignored by amirun.",
    )
    # What the original's machine adds to an execution's JSON as it runs: files
    # replayed from its records carry them. Accepted, ignored (MACHINE_FIELDS).
    retry_attempt: Any = Field(None, description=_MACHINE_FIELD)
    region: Any = Field(None, description=_MACHINE_FIELD)
    wait_seconds: Any = Field(None, description=_MACHINE_FIELD)
    ii_s3_object_checked: Any = Field(None, description=_MACHINE_FIELD)
    ii_forcing_found: Any = Field(None, description=_MACHINE_FIELD)
    forcing_check_start_time: Any = Field(None, description=_MACHINE_FIELD)
    # Absent is no type error (_RULES says when it is missing); an explicit null is.
    commands: list[Command] = Field(
        None,  # type: ignore[arg-type]
        min_length=1,
        description=(
            "Shell commands run in order by SSM Run Command (AWS-RunShellScript). DAILY "
            "becomes a date (YYYYMMDD) as the original did it: the reference time is "
            "schedule.scheduled_time, else the execution's start time; the cycle hour "
            "comes from `--forcing_source` (..._SHORT_RANGE_HH and "
            "..._ANALYSIS_ASSIM_RESTART_CHRT_HH: HH, ..._MEDIUM_RANGE_HH_M: HH, any other "
            "source 16, none 24); the date is the reference's UTC date, or the day before "
            "when the reference's UTC hour is earlier than the cycle hour. It replaces "
            "DAILY in the `--s3_prefix` value; with a forcing source also in the `-F` "
            "forcing file (medium-range member m moves that file's cycle back 6*(m-1) "
            "hours) and nowhere else; without one, every DAILY that is not part of a "
            "longer word. Resolved once per execution; relaunches keep it."
        ),
    )
    datastream_command_options: DatastreamCommandOptions | None = Field(
        None,
        description=(
            "NextGen datastream options instead of `commands`: amirun runs the one "
            "command the original built from them (`./scripts/datastream -s ... -e ... "
            "-C ... -I ... -i ... -v ... -d $(pwd)/data/datastream -R ... -n ...`, plus "
            "`-S s3_bucket -o s3_prefix` when given). DAILY in it resolves as in "
            "`commands`."
        ),
    )
    schedule: Schedule | None = Field(
        None,
        description=(
            "The schedule that started the run: `name` tags the instance and volume, "
            "`scheduled_time` is the run's reference time for DAILY."
        ),
    )
    run_options: RunOptions = Field(default_factory=RunOptions)
    instance_parameters: dict[str, Any] = Field(
        description=(
            "EC2 RunInstances parameters, as boto3 takes them (ImageId, InstanceType, "
            "SecurityGroupIds, IamInstanceProfile, TagSpecifications, ...)."
        )
    )

    model_config = ConfigDict(
        # What _RULES says about the command source, for editors.
        json_schema_extra={
            "anyOf": [
                {"required": ["commands"]},
                {
                    "required": ["datastream_command_options"],
                    "properties": {"datastream_command_options": {"type": "object"}},
                },
            ]
        }
    )

    @property
    def command_list(self) -> list[str]:
        """The commands the run sends, before DAILY is resolved."""
        if self.datastream_command_options is not None:
            return [self.datastream_command_options.command()]
        return list(self.commands or [])

    def resolved_commands(self, resolution: Resolution) -> list[str]:
        """The commands as they are sent, DAILY resolved as `resolution` says."""
        return daily.commands_for(self.command_list, self.datastream_command_options, resolution)

    def resolve(self, start_time: datetime) -> Resolution:
        """This execution as it runs when started at `start_time` (DAILY resolved)."""
        scheduled = self.schedule.scheduled_time if self.schedule else None
        check = self.run_options.ii_check_s3
        return daily.resolve(
            commands=self.command_list,
            options=self.datastream_command_options,
            check=check.model_dump() if isinstance(check, S3Check) else check,
            inputs=self.run_options.inputs,
            reference_time=scheduled or start_time,
            reference="scheduled_time" if scheduled else "start_time",
            check_forcing=self.run_options.ii_check_forcing,
        )


def _command_source(raw: dict[str, Any]) -> Iterable[Problem]:
    if "commands" not in raw and not isinstance(raw.get("datastream_command_options"), dict):
        yield Problem("commands", "required (a list of shell commands)")
    elif "commands" in raw and raw.get("datastream_command_options") is not None:
        yield Problem(
            "datastream_command_options",
            "give either `commands` or `datastream_command_options`, not both",
        )


def _raw_commands(raw: dict[str, Any]) -> list[str]:
    commands = raw.get("commands")
    return [c for c in commands if isinstance(c, str)] if isinstance(commands, list) else []


def _raw_options(raw: dict[str, Any]) -> dict[str, Any] | None:
    options = raw.get("datastream_command_options")
    return options if isinstance(options, dict) else None


def _upload_location(raw: dict[str, Any]) -> Iterable[Problem]:
    options = _raw_options(raw)
    if options is None or bool(options.get("s3_bucket")) == bool(options.get("s3_prefix")):
        return
    missing, given = (
        ("s3_prefix", "s3_bucket") if options.get("s3_bucket") else ("s3_bucket", "s3_prefix")
    )
    yield Problem(
        f"datastream_command_options.{missing}", f"required with {given} (the upload location)"
    )


def _output_location(raw: dict[str, Any]) -> Iterable[Problem]:
    """`ii_check_s3: true` takes its location from the commands: there must be one."""
    run_options = raw.get("run_options")
    if not isinstance(run_options, dict) or run_options.get("ii_check_s3") is not True:
        return
    options = _raw_options(raw)
    if options is not None:
        bucket, prefix = options.get("s3_bucket"), options.get("s3_prefix")
        why = daily.missing_location(
            bucket if isinstance(bucket, str) else None,
            prefix if isinstance(prefix, str) else None,
            "datastream_command_options",
        )
    else:
        why = daily.missing_location(*daily.output_location(_raw_commands(raw), None))
    if why:
        yield Problem("run_options.ii_check_s3", why)


def _alternatives(raw: dict[str, Any]) -> Iterable[Problem]:
    """Alternatives need a first type; subnets replace the parameters' own network."""
    options = raw.get("run_options")
    params = raw.get("instance_parameters")
    if not isinstance(options, dict) or not isinstance(params, dict):
        return
    if options.get("instance_types") and "InstanceType" not in params:
        yield Problem(
            "run_options.instance_types",
            "needs instance_parameters.InstanceType (the first choice)",
        )
    if options.get("subnets") and "NetworkInterfaces" in params:
        yield Problem(
            "run_options.subnets",
            "give the subnet in instance_parameters.NetworkInterfaces or here, not both",
        )


def _forcing_source(raw: dict[str, Any]) -> Iterable[Problem]:
    why = daily.check_forcing_source(_raw_commands(raw))
    if why:
        yield Problem("commands", why)


def _input_buckets(raw: dict[str, Any]) -> Iterable[Problem]:
    """`run_options.inputs` name buckets by S3's naming rules, as `ii_check_s3.bucket`."""
    run_options = raw.get("run_options")
    inputs = run_options.get("inputs") if isinstance(run_options, dict) else None
    if not isinstance(inputs, list):
        return
    for index, url in enumerate(inputs):
        if not isinstance(url, str) or not url.startswith("s3://"):
            continue  # the model says what is wrong with it
        bucket = url.removeprefix("s3://").partition("/")[0]
        if not bucket:
            continue
        try:
            _bucket(bucket)
        except ValueError as exc:
            yield Problem(f"run_options.inputs[{index}]", f"bucket {bucket[:70]!r}: {exc}")


def _working_directory(raw: dict[str, Any]) -> Iterable[Problem]:
    run_options = raw.get("run_options")
    directory = run_options.get("working_directory") if isinstance(run_options, dict) else None
    if isinstance(directory, str) and "\x00" in directory:
        yield Problem(
            "run_options.working_directory", "contains a NUL byte, which no path can carry"
        )


def _backoff_spelling(raw: dict[str, Any]) -> Iterable[Problem]:
    """retry_delay_s and the retry_backoff_* options say the same thing: one of them."""
    run_options = raw.get("run_options")
    if not isinstance(run_options, dict) or "retry_delay_s" not in run_options:
        return
    newer = [name for name in BACKOFF_OPTIONS if name in run_options]
    if newer:
        yield Problem(
            "run_options.retry_delay_s",
            f"the earlier spelling of the relaunch backoff; give it or {', '.join(newer)}, "
            "not both",
        )


def _forcing_file(raw: dict[str, Any]) -> Iterable[Problem]:
    """`ii_check_forcing` checks the `-F` file of the commands: there must be one in S3."""
    run_options = raw.get("run_options")
    if not isinstance(run_options, dict) or run_options.get("ii_check_forcing") is not True:
        return
    why = daily.missing_forcing_file(_raw_commands(raw), _raw_options(raw) is not None)
    if why:
        yield Problem("run_options.ii_check_forcing", why)


#: Rules that span fields, over the raw input: each yields 'field: problem' lines.
#: They run whatever else is wrong, so they must expect any JSON at all.
_RULES: tuple[Callable[[dict[str, Any]], Iterable[Problem]], ...] = (
    _command_source,
    _upload_location,
    _output_location,
    _forcing_source,
    _alternatives,
    _input_buckets,
    _working_directory,
    _backoff_spelling,
    _forcing_file,
)


# --- messages ----------------------------------------------------------------------------
_EXPECTED = {
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "literal_error": "false",
}


def _describe_all(errors: list[Any]) -> list[Problem]:
    """pydantic's errors as 'field: problem' lines, one per field and problem."""
    lines: dict[Problem, None] = {}
    union_types: dict[str, list[str]] = {}
    union_inputs: dict[str, Any] = {}
    hint = sum(error["type"] == "extra_forbidden" for error in errors) <= MAX_HINTS
    for error in errors:
        path, branch, fields = _walk(tuple(error["loc"]))
        fields = fields if hint else []
        if branch is not None:
            union_input = _input_at(error, path, branch)
            if isinstance(union_input, dict) and branch[1] is not None:
                pass  # an object for `false | object`: only the object's errors matter
            elif isinstance(union_input, dict):
                continue
            else:
                union_types.setdefault(branch[0], []).append(_EXPECTED.get(error["type"], "?"))
                union_inputs[branch[0]] = union_input
                continue
        lines[_describe(error, path, fields)] = None
    for path, expected in union_types.items():
        lines[_describe_union(path, expected, union_inputs[path])] = None
    return list(lines)


def _input_at(error: Any, path: str, branch: tuple[str, type[BaseModel] | None]) -> Any:
    # The error's input is the branch's input unless the error is deeper in it.
    return error.get("input") if path == branch[0] else {}


def _walk(
    loc: tuple[int | str, ...],
) -> tuple[str, tuple[str, type[BaseModel] | None] | None, list[str]]:
    """The user's path of a pydantic location, the union branch it went through
    (path of the union, model of the branch or None), and the fields known there."""
    model: type[BaseModel] | None = ExecutionRequest
    path = ""
    branch: tuple[str, type[BaseModel] | None] | None = None
    fields = _field_names(ExecutionRequest)
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        if model is not None and part in fields:
            name = part
            field = _field_by_name(model, name)
            path += f".{name}" if path else name
            model = _nested_model(field.annotation) if field else None
            fields = _field_names(model) if model else []
            continue
        union_model = _nested_model_named(part)
        if union_model is None and "[" not in part and part not in _SCALAR_TAGS:
            path += f".{part}" if path else part  # a field the model does not know
            continue
        # A union's branch tag (`literal[False]`, `S3Check`): not a user-visible field.
        branch = (path, union_model)
        model = union_model
        fields = _field_names(model) if model else []
    return path, branch, fields


#: How pydantic tags a union's scalar branches in an error's location.
_SCALAR_TAGS = frozenset({"bool", "int", "str", "float", "none"})


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _field_by_name(model: type[BaseModel], name: str) -> Any:
    for field_name, field in model.model_fields.items():
        if name in (field.alias, field_name):
            return field
    return None


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", (annotation,))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _nested_model_named(tag: str) -> type[BaseModel] | None:
    # pydantic tags a union's model branch with the model's class name.
    models = {model.__name__: model for model in _Strict.__subclasses__()}
    return models.get(tag)


#: pydantic's bound errors, in words: (the bound's name in the error, the words).
_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "less_than_equal": ("le", "at most"),
    "greater_than": ("gt", "more than"),
    "less_than": ("lt", "less than"),
}


def _describe(error: Any, path: str, fields: list[str]) -> Problem:
    kind = error["type"]
    if kind == "extra_forbidden":
        return unknown_field(path, fields)
    if kind == "missing":
        return Problem(path, "required")
    if kind == "too_short":
        return Problem(path, f"needs at least {error['ctx']['min_length']} item(s)")
    if kind == "string_too_short":
        return Problem(path, "must not be empty")
    if kind in ("string_too_long", "too_long"):
        unit = "characters" if kind == "string_too_long" else "item(s)"
        return Problem(path, f"too long: at most {error['ctx']['max_length']:,} {unit}")
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        limit, given = error["ctx"][name], error.get("input")
        shown = f", not {given!r}" if isinstance(given, int | float) else ""
        return Problem(path, f"must be {words} {limit:,}{shown}")
    if kind in _EXPECTED:
        got = json_type(error.get("input"))
        return Problem(path, f"invalid type, expected {_EXPECTED[kind]}, got {got}")
    return Problem(path, str(error["msg"]).removeprefix("Value error, "))


def _describe_union(path: str, expected: list[str], value: Any) -> Problem:
    if path == "run_options.ii_check_s3" and isinstance(value, str) and value.startswith("s3://"):
        return Problem(path, 'give the location as {"bucket": "...", "prefix": "..."}, not a URL')
    choices = " or ".join(dict.fromkeys(expected))
    return Problem(path, f"invalid type, expected {choices}, got {json_type(value)}")


# --- the checks ----------------------------------------------------------------------------
def input_size(raw: Any) -> int:
    """Bytes of the execution input as `amirun start` sends it (json.dumps defaults:
    ASCII escapes, which count at least what UTF-8 does)."""
    return len(json.dumps(raw))


def _size_problems(raw: dict[str, Any]) -> list[Problem]:
    size = input_size(raw)
    if size <= MAX_INPUT_BYTES:
        return []
    largest = max(raw, key=lambda key: input_size(raw[key]))
    return [
        Problem(
            largest,
            f"makes the execution input {size:,} bytes; at most {MAX_INPUT_BYTES:,} fit in "
            "what Step Functions carries (256 KiB per state, less room for the run's own "
            "records)",
        )
    ]


def _model_problems(raw: dict[str, Any]) -> tuple[ExecutionRequest | None, list[Problem]]:
    try:
        return ExecutionRequest.model_validate(raw), []
    except ValidationError as exc:
        return None, _describe_all(exc.errors())


def parse_execution(raw: Any, ec2_model: Any = None) -> ExecutionRequest:
    """Validate an execution JSON in full; raise InvalidExecutionInput naming every bad field.

    `ec2_model`: EC2's service model, when the caller has a client that loaded it
    already (`ec2.meta.service_model`); otherwise it is loaded from botocore.
    """
    if not isinstance(raw, dict):
        raise InvalidExecutionInput("the execution input must be a JSON object")
    request, problems = _model_problems(raw)
    problems += [problem for rule in _RULES for problem in rule(raw)]
    if isinstance(raw.get("instance_parameters"), dict):
        problems += instance_parameter_problems(raw["instance_parameters"], ec2_model)
    problems += _size_problems(raw)
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
    request, problems = _model_problems(raw)
    if problems or request is None:
        raise InvalidExecutionInput(*problems)
    return request


def decode_execution(data: bytes) -> dict[str, Any]:
    """Parse an execution file's bytes strictly; raise InvalidExecutionInput with one line.

    Refused: invalid UTF-8, text that is not JSON, duplicate keys (JSON parsers
    disagree on which one wins), nesting deeper than MAX_DEPTH, and non-objects.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidExecutionInput(
            f"not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})"
        ) from None
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        raise InvalidExecutionInput(f"JSON nested {depth} levels deep; at most {MAX_DEPTH}")
    odd: list[str] = []  # what calls for a walk over the document: rare, so not always
    try:
        raw = json.loads(
            text,
            object_pairs_hook=functools.partial(_Object, odd),
            parse_constant=_no_constant,
            parse_float=functools.partial(_finite_float, odd),
            parse_int=functools.partial(_bounded_int, odd),
        )
    except json.JSONDecodeError as exc:
        raise InvalidExecutionInput(f"not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN, Infinity
        raise InvalidExecutionInput(f"not valid JSON: {str(exc).split(';')[0]}") from None
    if _SURROGATE_ESCAPE.search(text):
        odd.append("surrogate")
    problems = [p for path, node in _nodes(raw, "") for p in _odd(path, node)] if odd else []
    if problems:
        raise InvalidExecutionInput(*problems)
    if not isinstance(raw, dict):
        raise InvalidExecutionInput(
            f"the execution JSON must be an object, this is {json_type(raw)}"
        )
    return dict(raw)


class _Object(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once."""

    def __init__(self, odd: list[str], pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        counts = collections.Counter(key for key, _ in pairs)
        self.duplicates = [key for key, count in counts.items() if count > 1]
        if self.duplicates:
            odd.append("duplicate")


class _Unrepresentable(str):
    """A number JSON allows but no float or AWS API holds (1e400, thousands of digits)."""


#: Digits an integer may have: far more than any field takes, far below Python's own
#: limit on converting text to an integer (4,300 digits).
MAX_INTEGER_DIGITS = 40
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite_float(odd: list[str], text: str) -> Any:
    value = float(text)
    if math.isfinite(value):
        return value
    odd.append("number")
    return _Unrepresentable(text)


def _bounded_int(odd: list[str], text: str) -> Any:
    if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS:
        return int(text)
    odd.append("number")
    return _Unrepresentable(text)


def _odd(path: str, node: Any) -> Iterator[Problem]:
    """What is wrong with one value of the document, as the reader sees it."""
    if isinstance(node, _Object) and node.duplicates:
        for key in node.duplicates:
            yield Problem(
                _join(path, key), "duplicate key (JSON readers disagree on which value counts)"
            )
    elif isinstance(node, _Unrepresentable):
        shown = node if len(node) <= 24 else f"{node[:20]}... ({len(node):,} characters)"
        yield Problem(path, f"the number {shown} is beyond what a JSON number can hold here")
    elif isinstance(node, str) and not _encodable(node):
        yield Problem(path, "holds a lone surrogate (\\ud800-\\udfff), which is no character")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _nodes(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value in a JSON document with its path; object keys count as values."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield _join(path, "<key>"), key
            yield from _nodes(item, _join(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nodes(item, f"{path}[{index}]")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: A JSON string (an unterminated one runs to the end), or a bracket. Written as an
#: unrolled loop: `(?:[^"\\]|\\.)*` would take time and memory for every character
#: of a long string (a 2 MB string cost 1 s and 250 MB).
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


def _nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, without parsing (no recursion)."""
    depth = deepest = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


@functools.cache
def _botocore_ec2_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("ec2")


def _run_instances_shape(ec2_model: Any) -> Any:
    return (ec2_model or _botocore_ec2_model()).operation_model("RunInstances").input_shape


def instance_parameter_problems(params: dict[str, Any], ec2_model: Any = None) -> list[Problem]:
    """Check RunInstances parameters against EC2's own input shape (shipped in botocore)."""
    problems = [
        Problem(f"instance_parameters.{name}", reason)
        for name, reason in OWNED_INSTANCE_PARAMETERS.items()
        if name in params
    ]
    if "ImageId" not in params and "LaunchTemplate" not in params:
        problems.append(Problem("instance_parameters.ImageId", "required (the AMI to launch)"))
    image = params.get("ImageId")
    if isinstance(image, str) and not _IMAGE_ID.fullmatch(image):
        problems.append(
            Problem(
                "instance_parameters.ImageId",
                f"{image[:60]!r} is not an AMI id (ami- and 8 or 17 hex digits) "
                "nor resolve:ssm:<parameter> (a parameter name has only letters, digits "
                "and _ . - /)",
            )
        )
    problems += shape_problems(
        params,
        _run_instances_shape(ec2_model),
        "instance_parameters",
        skip=frozenset(OWNED_INSTANCE_PARAMETERS),
    )
    # amirun's own tags are counted as if the run were scheduled (one more tag).
    problems += ec2_limit_problems(params, OWN_TAG_COUNT)
    return problems


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the execution JSON, for editors and `schema/`."""
    schema = ExecutionRequest.model_json_schema()
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    owned = frozenset(OWNED_INSTANCE_PARAMETERS)
    params = shape_schema(_run_instances_shape(None), defs, skip=owned)
    params["properties"]["ImageId"] = {"type": "string", "pattern": _IMAGE_ID_PATTERN}
    params["anyOf"] = [{"required": ["ImageId"]}, {"required": ["LaunchTemplate"]}]
    params["description"] = schema["properties"]["instance_parameters"]["description"]
    schema["properties"]["instance_parameters"] = params
    schema["$defs"] = dict(sorted(defs.items()))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "amirun execution"
    return schema
