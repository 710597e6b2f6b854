"""DAILY, the output location and the datastream command: the NextGen conventions.

Execution files generated for NOAA NextGen runs are written once and started
every day. They say `DAILY` where the run's date goes and keep the output
location in the command text (`--S3_BUCKET b --S3_PREFIX p`). This module reads
them the way the system amirun replaces did, as pure functions, so the Resolve
step, the CLI and the rehearsal all resolve a file the same way:

1. The reference time is the schedule's scheduled time, else the execution's
   start time.
2. The cycle hour comes from the forcing source (`--forcing_source` in the
   commands): `..._SHORT_RANGE_HH` and `..._ANALYSIS_ASSIM_RESTART_CHRT_HH` give
   HH, `..._MEDIUM_RANGE_HH_M` gives HH; any other source 16; none 24.
3. The DAILY date is the reference's UTC date, or the day before when the
   reference's UTC hour is earlier than the cycle hour (so with no forcing
   source it is always yesterday's date).
4. The date replaces DAILY in the S3 prefix, wherever that prefix appears.
5. With a forcing source, the `-F` forcing file is the only other place
   resolved (`-s DAILY` is a keyword of the datastream CLI). Without one, every
   DAILY that is not part of a longer word becomes the date.
6. A medium-range member m > 1 reads the forcing of the cycle 6*(m-1) hours
   earlier: the `-F` path's `/HH/` folder and `tHHz` move back, and so does its
   date when that crosses midnight.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

DAILY = "DAILY"

#: Cycle hour with no forcing source: every UTC hour is earlier, so the date is yesterday's.
NO_FORCING_CYCLE = 24
#: Cycle hour of a forcing source without one of its own (analysis_assim_extend runs at 16Z).
OTHER_FORCING_CYCLE = 16
#: A medium-range member m reads the forcing of the cycle 6*(m-1) hours earlier.
MEMBER_SHIFT_HOURS = 6

#: `--name` followed by `=`, spaces or a quote; the value runs to the next space or quote.
_VALUE = r"[=\s'\"]+([^\s'\"]+)"
#: `-F` as a word of its own (not the end of `--FORCING_SOURCE`, not `rm -f`).
_FORCING_FILE = re.compile(r"(?<![^\s'\"])-F" + _VALUE)
_WHOLE_WORD_DAILY = re.compile(r"(?<![A-Za-z0-9])DAILY(?![A-Za-z0-9])")
_SHORT_RANGE = re.compile(r"SHORT_RANGE_(\d{2})$")
_MEDIUM_RANGE = re.compile(r"MEDIUM_RANGE_(\d{2})_(\d)$")
_RESTART = re.compile(r"ANALYSIS_ASSIM_RESTART_CHRT_(\d{2})$")
#: The cycle folder and the `tHHz` of a forcing file path.
_CYCLE_IN_PATH = re.compile(r"/(\d{2})/.*?t(\d{2})z")
#: What each datastream option may hold: (the characters in words, a regex of them).
#: The values go unquoted into `runuser -l ec2-user -c '...'`, so no character a shell
#: reads (spaces, quotes, $ ` ; | & < > ( ) { } [ ] * ? ! ~ \\ newlines) is allowed in
#: any; each takes exactly what its values need: dates, names, versions, paths, URLs.
_TIME = ("letters, digits and : _ -", r"[A-Za-z0-9:_-]+")
_NAME = ("letters, digits and . _ -", r"[A-Za-z0-9._-]+")
OPTION_CHARACTERS: dict[str, tuple[str, str]] = {
    "start_time": _TIME,
    "end_time": _TIME,
    "forcing_source": _NAME,
    # The upstream's files give a path in the datastream folder as `$(pwd)/...`.
    "realization": (
        "letters, digits and . _ - / : % + = @, after an optional leading $(pwd)/",
        r"(?:\$\(pwd\)/)?[A-Za-z0-9._/:%+=@-]+",
    ),
    "subset_id_type": _NAME,
    "subset_id": ("letters, digits and . _ - :", r"[A-Za-z0-9._:-]+"),
    "hydrofabric_version": _NAME,
    "s3_bucket": ("lowercase letters, digits, . and - (or DAILY)", r"(?:[a-z0-9.-]|DAILY)+"),
    "s3_prefix": ("letters, digits and . _ - / = + @ :", r"[A-Za-z0-9._/=+@:-]+"),
}


def _option_schema(name: str) -> dict[str, Any]:
    return {"pattern": f"^{OPTION_CHARACTERS[name][1]}$"}


#: A command that runs the datastream script: `/scripts/datastream` and an argument, as
#: the original's checker matches it (any case).
_RUNS_DATASTREAM = re.compile(r"/scripts/datastream[=\s'\"]+[^\s'\"]", re.IGNORECASE)
#: An S3 object URL as a forcing file path (`-F s3://bucket/key`).
_S3_URL = re.compile(r"s3://[^/\s]+/\S+$")
#: A "parser hint": a command that only echoes options for the location's sake.
_PARSER_HINT = re.compile(r"\s*echo(?:\s|$)")

#: What `ii_check_s3: true` checks under the output prefix (the original's keys since its
#: PR #381): the datastream script uploads merkdir.file on every S3 run; other jobs
#: write the forcing metadata.
DATASTREAM_KEY = "merkdir.file"
OTHER_KEY = "metadata/forcings_metadata/metadata.csv"


def _option(name: str) -> re.Pattern[str]:
    return re.compile(rf"--{name}{_VALUE}", re.IGNORECASE)


S3_BUCKET_OPTION = _option("s3_bucket")
S3_PREFIX_OPTION = _option("s3_prefix")
FORCING_SOURCE_OPTION = _option("forcing_source")


def find_option(commands: list[str], pattern: re.Pattern[str]) -> str | None:
    """The value of an option in the commands: the first in a command, the last command's wins."""
    found = None
    for command in commands:
        match = pattern.search(command)
        if match:
            found = match.group(1)
    return found


def forcing_file(commands: list[str]) -> str | None:
    return find_option(commands, _FORCING_FILE)


def is_parser_hint(command: str) -> bool:
    """An `echo --s3_bucket ... --s3_prefix ...` command: it gives options, runs nothing."""
    return _PARSER_HINT.match(command) is not None


def runs_datastream(commands: list[str]) -> bool:
    """Does a command run the datastream script? A parser hint that names it does not."""
    return any(_RUNS_DATASTREAM.search(c) for c in commands if not is_parser_hint(c))


def checked_key(prefix: str, commands: list[str]) -> tuple[str, str]:
    """The key `ii_check_s3: true` checks under `prefix`, and why that one."""
    folder = prefix.rstrip("/")
    if runs_datastream(commands):
        return f"{folder}/{DATASTREAM_KEY}", "a command runs /scripts/datastream"
    return f"{folder}/{OTHER_KEY}", "no command runs /scripts/datastream"


def record_key(prefix: str) -> str:
    """Where the original writes a run's execution JSON under its output prefix."""
    folder = prefix.rstrip("/")
    if "forcing" in folder:
        return f"{folder}/metadata/execution.json"
    return f"{folder}/datastream-metadata/execution.json"


def cycle_hour(forcing_source: str | None) -> int:
    """The forecast cycle hour a forcing source stands for (rule 2); ValueError if malformed."""
    if forcing_source is None:
        return NO_FORCING_CYCLE
    source = forcing_source.upper()
    for kind, pattern, shape in (
        ("SHORT_RANGE", _SHORT_RANGE, "..._SHORT_RANGE_HH"),
        ("MEDIUM_RANGE", _MEDIUM_RANGE, "..._MEDIUM_RANGE_HH_M"),
        ("ANALYSIS_ASSIM_RESTART_CHRT", _RESTART, "..._ANALYSIS_ASSIM_RESTART_CHRT_HH"),
    ):
        if kind in source:
            match = pattern.search(source)
            if match is None or int(match.group(1)) > 23:
                raise ValueError(
                    f"--forcing_source {forcing_source}: a {kind.lower()} source names its "
                    f"cycle hour, as {shape} (HH 00 to 23)"
                )
            return int(match.group(1))
    return OTHER_FORCING_CYCLE


def medium_range_member(forcing_source: str | None) -> int:
    """The ensemble member of a medium-range forcing source; 1 for any other."""
    match = _MEDIUM_RANGE.search((forcing_source or "").upper())
    return int(match.group(2)) if match else 1


def daily_date(reference: datetime, cycle: int) -> date:
    """Rule 3: the reference's UTC date, or the day before if its hour is before the cycle."""
    utc = reference.astimezone(UTC) if reference.tzinfo else reference
    return utc.date() - timedelta(days=1) if utc.hour < cycle else utc.date()


def shifted_forcing_file(path: str, day: date, member: int) -> str:
    """Rule 6: the forcing file of member `member` with DAILY resolved to `day`."""
    shift = MEMBER_SHIFT_HOURS * (member - 1)
    match = _CYCLE_IN_PATH.search(path)
    if not shift or match is None:
        return path.replace(DAILY, f"{day:%Y%m%d}")
    cycle_start = datetime(day.year, day.month, day.day, int(match.group(1)))
    shifted = cycle_start - timedelta(hours=shift)
    hour = f"{shifted.hour:02d}"
    moved = (
        path[: match.start(1)]
        + hour
        + path[match.end(1) : match.start(2)]
        + hour
        + path[match.end(2) :]
    )
    return moved.replace(DAILY, f"{shifted:%Y%m%d}")


def replace_daily(text: str, day: date) -> str:
    """Every DAILY in `text` becomes the date (S3 prefixes, checked locations, inputs)."""
    return text.replace(DAILY, f"{day:%Y%m%d}")


def resolve_commands(
    commands: list[str],
    day: date,
    *,
    forcing_source: str | None,
    prefix: str | None,
) -> list[str]:
    """Rules 4 to 6 on the command text."""
    resolved = list(commands)
    if prefix and DAILY in prefix:
        resolved = [c.replace(prefix, replace_daily(prefix, day)) for c in resolved]
    if forcing_source is None:
        return [_WHOLE_WORD_DAILY.sub(f"{day:%Y%m%d}", c) for c in resolved]
    path = forcing_file(resolved)
    if path is not None:
        moved = shifted_forcing_file(path, day, medium_range_member(forcing_source))
        resolved = [c.replace(path, moved) for c in resolved]
    return resolved


# --- reference times -----------------------------------------------------------------------
#: The years a reference time may fall in: DAILY is a forecast date, and times far
#: outside these (year 1, year 9999 with an offset) overflow Python's dates.
REFERENCE_YEARS = (2000, 2099)
#: ISO-8601 with a date first: a bare Unix timestamp ("1770000000") is no ISO-8601 time.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ].*)?", re.DOTALL)
_ISO_TIME_PATTERN = "^(20[0-9]{2})-[0-9]{2}-[0-9]{2}([T ].*)?$"


def parse_reference_time(text: str) -> datetime:
    """An ISO-8601 time within REFERENCE_YEARS, UTC when it names no offset; ValueError
    (a message for the user) otherwise."""
    example = "e.g. 2026-02-09T12:00:00Z"
    if not _ISO_TIME.fullmatch(text.strip()):
        raise ValueError(f"{text[:40]!r} is not an ISO-8601 time ({example})")
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not an ISO-8601 time ({example})") from None
    low, high = REFERENCE_YEARS
    if not low <= value.year <= high:
        raise ValueError(f"{text[:40]!r} is outside the years {low} to {high}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- datastream_command_options -------------------------------------------------------------
class DatastreamCommandOptions(BaseModel):
    """The NextGen datastream form: amirun turns it into the one command the original ran."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        # The upload location comes whole, for editors as for the validator.
        json_schema_extra={
            "dependentRequired": {"s3_bucket": ["s3_prefix"], "s3_prefix": ["s3_bucket"]}
        },
    )

    start_time: str = Field(
        json_schema_extra=_option_schema("start_time"),
        description="`-s`: start time (YYYYMMDDHHMM) or DAILY.",
    )
    end_time: str = Field(
        json_schema_extra=_option_schema("end_time"), description="`-e`: end time (YYYYMMDDHHMM)."
    )
    forcing_source: str = Field(
        json_schema_extra=_option_schema("forcing_source"),
        description="`-C`: forcing source, e.g. NWM_RETRO_V3.",
    )
    realization: str = Field(
        json_schema_extra=_option_schema("realization"),
        description="`-R`: path or URL of the NextGen realization file.",
    )
    nprocs: Annotated[
        int,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "integer", "minimum": 1, "maximum": 1024},
                    {"type": "string", "pattern": "^\\s*0*[1-9][0-9]*\\s*$"},
                ]
            }
        ),
    ] = Field(ge=1, le=1024, description='`-n`: processes; a number or a string such as "4".')
    subset_id_type: str = Field(
        json_schema_extra=_option_schema("subset_id_type"),
        description="`-i`: kind of subset id, e.g. hl or vpu.",
    )
    subset_id: str = Field(
        json_schema_extra=_option_schema("subset_id"),
        description="`-I`: subset id, e.g. Gages-09106150 or VPU_01.",
    )
    hydrofabric_version: str = Field(
        json_schema_extra=_option_schema("hydrofabric_version"),
        description="`-v`: hydrofabric version, e.g. 2.2.",
    )
    s3_bucket: str | None = Field(
        None,
        json_schema_extra=_option_schema("s3_bucket"),
        description="`-S`: bucket the datastream uploads to (s3_prefix is then required); "
        "also the output location `ii_check_s3: true` checks.",
    )
    s3_prefix: str | None = Field(
        None,
        json_schema_extra=_option_schema("s3_prefix"),
        description="`-o`: prefix the datastream uploads under (with s3_bucket).",
    )

    @field_validator("nprocs", mode="before")
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # The original's files give it as a string ("4") as often as a number.
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # JSON Schema counts 4.0 as an integer
        raise PydanticCustomError(
            "whole_number",
            '{value} is not a whole number of processes (e.g. 4 or "4")',
            {"value": repr(value)},
        )

    @field_validator(
        "start_time",
        "end_time",
        "forcing_source",
        "realization",
        "subset_id_type",
        "subset_id",
        "hydrofabric_version",
        "s3_bucket",
        "s3_prefix",
    )
    @classmethod
    def _one_shell_word(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        allowed, pattern = OPTION_CHARACTERS[str(info.field_name)]
        if re.fullmatch(pattern, value):
            return value
        if not value:
            raise PydanticCustomError("shell_word", "must not be empty")
        rest = value.removeprefix("$(pwd)/")
        bad = next((c for c in rest if not re.fullmatch(pattern, c) and c not in "DAILY"), rest[:1])
        raise PydanticCustomError(
            "shell_word",
            "{char} cannot be in it (the value goes into a shell command): only {allowed}",
            {
                "char": ascii(bad) if not bad.isprintable() or bad == " " else repr(bad),
                "allowed": allowed,
            },
        )

    def command(self) -> str:
        """Exactly the command the original Commander built from these options."""
        command = (
            "runuser -l ec2-user -c 'cd /home/ec2-user/datastream && ./scripts/datastream"
            f" -s {self.start_time} -e {self.end_time} -C {self.forcing_source}"
            f" -I {self.subset_id} -i {self.subset_id_type} -v {self.hydrofabric_version}"
            f" -d $(pwd)/data/datastream -R {self.realization} -n {self.nprocs}"
        )
        if self.s3_bucket:
            command += f" -S {self.s3_bucket} -o {self.s3_prefix}"
        return command + "'"


class Schedule(BaseModel):
    """Which schedule started the run, and when it was due: the run's reference time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        min_length=1,
        max_length=64,
        description="The schedule's name; tags the instance and volume (amirun:schedule).",
    )
    scheduled_time: datetime | None = Field(
        None,
        description="When the schedule was due (ISO-8601, UTC when no offset is given, "
        f"years {REFERENCE_YEARS[0]} to {REFERENCE_YEARS[1]}), "
        "e.g. filled by EventBridge Scheduler from <aws.scheduler.scheduled-time>. The "
        "run's reference time for DAILY; without it, the execution's start time.",
        json_schema_extra={"pattern": _ISO_TIME_PATTERN},
    )
    rerun: bool = Field(
        False,
        description="Run this schedule's slot (name and scheduled time) again on purpose: "
        "take it over from a run that failed, timed out or was aborted (`amirun rerun` "
        "sets it). Without it, a second run for a slot ends at once as a duplicate.",
    )
    new_slot: bool = Field(
        False,
        description="Run in a slot of its own (as a run started by hand), even though the "
        "schedule's slot is taken (`amirun start --new-slot`); the schedule name and "
        "scheduled time still tag the run and resolve DAILY.",
    )

    @field_validator("scheduled_time", mode="before")
    @classmethod
    def _iso_text(cls, value: Any) -> Any:
        # A number would pass for a Unix time; the field is ISO-8601 text.
        if value is None:
            return value
        if not isinstance(value, str):
            raise PydanticCustomError(
                "iso_time", "an ISO-8601 time as text, e.g. 2026-02-09T12:00:00Z"
            )
        try:
            return parse_reference_time(value)
        except ValueError as exc:
            raise PydanticCustomError("iso_time", "{why}", {"why": str(exc)}) from None


# --- what a run resolves to -------------------------------------------------------------------
class _Resolved(BaseModel):
    # Records the state carries; a newer workflow may add fields.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OutputCheck(_Resolved):
    """Where RunChecker looks: an object or, under a prefix, at least one object.

    With `ii_check_s3: true` (source `commands` or `datastream_command_options`),
    `prefix` is the one key the original checks (`DATASTREAM_KEY` or `OTHER_KEY`
    under the output prefix) and `why` says which rule chose it.
    """

    bucket: str
    prefix: str
    newer_than_start: bool = True
    source: Literal["ii_check_s3", "commands", "datastream_command_options"] = "ii_check_s3"
    why: str | None = None

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class S3Object(_Resolved):
    bucket: str
    key: str
    #: For the input gate, who asked for it: run_options.inputs, or ii_check_forcing.
    source: Literal["inputs", "forcing"] | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


class Resolution(_Resolved):
    """DAILY resolved once for a run; relaunches keep it (the state carries it).

    The commands are not in it: they are the input's, resolved again from
    `daily_date` when sent (`commands_for`), so the state never carries them
    twice (Step Functions allows 256 KiB per state).
    """

    reference_time: datetime
    reference: Literal["scheduled_time", "start_time"]
    daily_date: str = Field(description="What DAILY became (YYYYMMDD).")
    forcing_source: str | None
    cycle_hour: int
    output_check: OutputCheck | None
    inputs: list[S3Object] = []
    record: S3Object | None = Field(
        None,
        description="Where the execution JSON is written beside the outputs, as the "
        "original did: under the output prefix the commands give.",
    )


def output_location(
    commands: list[str], options: DatastreamCommandOptions | None
) -> tuple[str | None, str | None, Literal["commands", "datastream_command_options"]]:
    """The output bucket and prefix `ii_check_s3: true` means (still with DAILY in them)."""
    if options is not None:
        return options.s3_bucket, options.s3_prefix, "datastream_command_options"
    return (
        find_option(commands, S3_BUCKET_OPTION),
        find_option(commands, S3_PREFIX_OPTION),
        "commands",
    )


def missing_location(
    bucket: str | None,
    prefix: str | None,
    source: Literal["commands", "datastream_command_options"],
) -> str | None:
    """Why `ii_check_s3: true` has no location (from `output_location`), or None."""
    if bucket and prefix:
        return None
    wanted = [name for name, value in (("bucket", bucket), ("prefix", prefix)) if not value]
    if source == "datastream_command_options":
        looked = " or ".join(f"datastream_command_options.s3_{n}" for n in wanted)
        where = "datastream_command_options"
    else:
        looked = " or ".join(f"--s3_{n}" for n in wanted) + " (any case)"
        where = "the commands"
    return (
        f"`true` checks the output location {where} give, but there is no {looked} "
        'in them; add it, or give {"bucket": "...", "prefix": "..."}, or false'
    )


def missing_forcing_file(commands: list[str], from_options: bool) -> str | None:
    """Why `ii_check_forcing` has no forcing file to wait for, or None."""
    path = None if from_options else forcing_file(commands)
    if path is not None and _S3_URL.match(path):
        return None
    found = f" (-F {path} is no s3:// URL)" if path else ""
    return (
        "`true` waits for the forcing file the commands name with -F s3://bucket/key, but "
        f"there is none{found}; add it, or list the file in run_options.inputs, or false"
    )


def check_forcing_source(commands: list[str]) -> str | None:
    """Why the commands' forcing source cannot give a cycle hour, or None."""
    try:
        cycle_hour(find_option(commands, FORCING_SOURCE_OPTION))
    except ValueError as exc:
        return str(exc)
    return None


def resolve(
    *,
    commands: list[str],
    options: DatastreamCommandOptions | None,
    check: bool | dict[str, Any],
    inputs: list[str],
    reference_time: datetime,
    reference: Literal["scheduled_time", "start_time"],
    check_forcing: bool = False,
) -> Resolution:
    """Resolve one execution for a reference time (NEXTGEN rules 1-6; the commands
    themselves with `commands_for`).

    `commands` are the ones the run sends (with `options`, the one built from
    them); `check` is `run_options.ii_check_s3` as plain data; `inputs` are
    `s3://` URLs.
    """
    source = find_option(commands, FORCING_SOURCE_OPTION)
    cycle = cycle_hour(source)
    day = daily_date(reference_time, cycle)
    bucket, prefix, origin = output_location(commands, options)
    output: OutputCheck | None = None
    if isinstance(check, dict):
        output = OutputCheck(
            bucket=replace_daily(check["bucket"], day),
            prefix=replace_daily(check["prefix"], day),
            newer_than_start=check.get("newer_than_start", True),
        )
    elif check and bucket and prefix:
        key, why = checked_key(replace_daily(prefix, day), commands)
        output = OutputCheck(bucket=bucket, prefix=key, source=origin, why=why)
    wanted = [
        s3_object(replace_daily(url, day)).model_copy(update={"source": "inputs"}) for url in inputs
    ]
    if check_forcing:
        # The very path the command gets: from the commands as they are sent.
        sent = resolve_commands(commands, day, forcing_source=source, prefix=prefix)
        path = forcing_file(sent)
        if path is not None and _S3_URL.match(path):
            wanted.append(s3_object(path).model_copy(update={"source": "forcing"}))
    record = None
    if bucket and prefix:
        record = S3Object(bucket=bucket, key=record_key(replace_daily(prefix, day)))
    return Resolution(
        reference_time=reference_time,
        reference=reference,
        daily_date=f"{day:%Y%m%d}",
        forcing_source=source,
        cycle_hour=cycle,
        output_check=output,
        inputs=wanted,
        record=record,
    )


def commands_for(
    commands: list[str], options: DatastreamCommandOptions | None, resolution: Resolution
) -> list[str]:
    """The commands as they are sent, for a resolution made from the same execution."""
    _, prefix, _ = output_location(commands, options)
    day = datetime.strptime(resolution.daily_date, "%Y%m%d").date()
    return resolve_commands(commands, day, forcing_source=resolution.forcing_source, prefix=prefix)


def s3_url(url: str) -> str:
    """A pydantic check: `url` is an `s3://bucket/key` URL."""
    s3_object(url)
    return url


def s3_object(url: str) -> S3Object:
    """`s3://bucket/key` as an S3Object; ValueError when it is not one."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise PydanticCustomError(
            "s3_url", "{url} is not an S3 object URL (s3://bucket/key)", {"url": repr(url)}
        )
    return S3Object(bucket=bucket, key=key)
