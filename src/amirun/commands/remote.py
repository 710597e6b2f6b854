"""`amirun start | status | logs`: runs on a deployed stack, with your AWS configuration.

The stack is found by name (`--stack`: its outputs name the state machine and
the output bucket) or the state machine by ARN (`--state-machine`). Progress
is read from the execution's history and shown as a rehearsal shows it.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from amirun.commands.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    print_result,
    progress_printer,
    validated_execution,
)
from amirun.progress import Progress, RunResult, describe_result
from amirun_core.aws import error_code
from amirun_core.errors import one_line_cause
from amirun_core.ledger import manual_schedule, read_slot, record_end, run_slot
from amirun_core.notify import console_url

#: Seconds between two looks at a followed execution.
POLL_INTERVAL_S = 5.0
#: History events that end a Task's call of its Lambda function, with error and cause.
_TASK_FAILURES = re.compile(r"^(LambdaFunction|Task)\w*(Failed|TimedOut)$")

CliCommand = Callable[[argparse.Namespace], int]


class RemoteError(Exception):
    """What the command needs cannot be found; the message says what and where."""


def _reported(command: CliCommand) -> CliCommand:
    """Run a command; AWS and lookup failures become one line on stderr and exit 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except RemoteError as exc:
            message = str(exc)
        except NoRegionError:
            message = "no AWS region: give --region or configure one (AWS_REGION, aws configure)"
        except NoCredentialsError:
            message = (
                "no AWS credentials: configure them (aws configure, AWS_PROFILE, aws sso login)"
            )
        except (ClientError, BotoCoreError) as exc:
            message = str(exc)
        except KeyboardInterrupt:
            # Ctrl-C while reading: nothing was changed, nothing to undo.
            print("\namirun: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(f"amirun: {message}", file=sys.stderr)
        return EXIT_USAGE

    return run


def _arn_region(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" and parts[3] else None


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of the state machine's execution called `name`."""
    prefix, found, machine = state_machine_arn.partition(":stateMachine:")
    if not found:
        raise RemoteError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine.split(':')[0]}:{name}"


class Target:
    """The deployed amirun a command talks to: a stack, or a state machine by ARN."""

    def __init__(self, args: argparse.Namespace, run: str | None = None) -> None:
        region = args.region or _arn_region(args.state_machine) or _arn_region(run)
        # Imported here, not with the module: commands that never call AWS (expand,
        # validate, render) start a third faster without it.
        import boto3

        self._session = boto3.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self.stack: str | None = args.stack
        self._state_machine: str | None = args.state_machine

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)
        return self._clients[service]

    @functools.cached_property
    def outputs(self) -> dict[str, str]:
        if not self.stack:
            raise RemoteError("give --stack NAME (the deployed amirun stack)")
        cloudformation = self.client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
        except ClientError as exc:
            # CloudFormation's answer for a stack that does not exist.
            if error_code(exc) == "ValidationError":
                raise RemoteError(
                    f"no stack named {self.stack} in {cloudformation.meta.region_name}"
                    " (deployed elsewhere? --region)"
                ) from exc
            raise
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs") or []}

    def output(self, key: str) -> str:
        value = self.outputs.get(key)
        if not value:
            raise RemoteError(f"stack {self.stack} has no output {key}: is it an amirun stack?")
        return value

    @functools.cached_property
    def state_machine_arn(self) -> str:
        if self._state_machine:
            return self._state_machine
        if not self.stack:
            raise RemoteError(
                "give --stack NAME (the deployed amirun stack) or --state-machine ARN"
            )
        return self.output("StateMachineArn")

    def execution_arn(self, run: str) -> str:
        """`run` is an execution's ARN or its name (then the state machine is needed)."""
        return run if run.startswith("arn:") else execution_arn(self.state_machine_arn, run)


# --- the execution and its history ---------------------------------------------------------
def run_result_of(described: dict[str, Any]) -> RunResult:
    """From `describe_execution`; the output is the workflow's summary (Summarize)."""
    output = _json(described.get("output"))
    ended = described.get("stopDate") or datetime.now(UTC)
    result = RunResult(
        status=described["status"],
        elapsed_s=(ended - described["startDate"]).total_seconds(),
        output=output,
        error=described.get("error"),
        cause=described.get("cause"),
    )
    if isinstance(output, dict) and output.get("instance_id"):
        cleanup = output.get("cleanup") or {}
        result.instances[output["instance_id"]] = str(cleanup.get("action", ""))
        result.volumes_deleted = list(cleanup.get("volumes_deleted") or [])
    return result


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return text


def describe(sfn: Any, arn: str) -> dict[str, Any]:
    try:
        described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
    except ClientError as exc:
        if error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            raise RemoteError(f"no execution {arn}") from exc
        raise
    return described


def _details(event: dict[str, Any]) -> dict[str, Any]:
    """The `...EventDetails` of a history event (each type has its own key)."""
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


def _history(sfn: Any, arn: str, newest_first: bool = False) -> Iterator[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=arn, reverseOrder=newest_first
    )
    for page in pages:
        yield from sorted(page["events"], key=lambda e: int(e["id"]), reverse=newest_first)


def new_events(sfn: Any, arn: str, after_id: int) -> list[dict[str, Any]]:
    """The events after `after_id`, oldest first; reads newest-first, only as far as needed."""
    new = []
    for event in _history(sfn, arn, newest_first=True):
        if event["id"] <= after_id:
            break
        new.append(event)
    return new[::-1]


class Narrator:
    """Turns history events into the Progress a rehearsal shows."""

    def __init__(self, started: datetime, emit: Callable[[Progress], None]) -> None:
        self._started, self._emit = started, emit
        self.state = ""  # the state entered last
        self.last_id = 0

    def read(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.last_id = max(self.last_id, int(event["id"]))
            progress = self._progress(event)
            if progress is not None:
                self._emit(progress)

    def _progress(self, event: dict[str, Any]) -> Progress | None:
        kind, details = event["type"], _details(event)
        elapsed = (event["timestamp"] - self._started).total_seconds()
        if kind.endswith("StateEntered"):
            self.state = details["name"]
            if kind.startswith("Choice"):
                return None
            return Progress(
                elapsed, "state", self.state, "waiting" if kind == "WaitStateEntered" else ""
            )
        if kind in ("LambdaFunctionSucceeded", "TaskSucceeded"):
            detail = describe_result(_json(details.get("output")))
            return Progress(elapsed, "result", self.state, detail) if detail else None
        if _TASK_FAILURES.match(kind):
            message = one_line_cause(details.get("cause"))
            error = f"{details.get('error')}: {message}".removesuffix(": ")
            return Progress(elapsed, "error", self.state, error)
        return None


def follow(sfn: Any, arn: str, emit: Callable[[Progress], None]) -> dict[str, Any]:
    """Show the execution's progress until it ends; return its last description."""
    wake = threading.Event()  # never set: an interruptible wait between looks
    described = describe(sfn, arn)
    narrator = Narrator(described["startDate"], emit)
    while True:
        # History read after the description: once that says it ended, nothing is left.
        narrator.read(new_events(sfn, arn, narrator.last_id))
        if described["status"] != "RUNNING":
            return described
        wake.wait(POLL_INTERVAL_S)
        described = describe(sfn, arn)


def last_state(sfn: Any, arn: str) -> str | None:
    for event in _history(sfn, arn, newest_first=True):
        if "stateEnteredEventDetails" in event:
            return str(event["stateEnteredEventDetails"]["name"])
    return None


# --- the slot ledger -----------------------------------------------------------------------
#: How the ledger spells the ends a deliberate rerun may take a slot over from.
_LEDGER_END = {"FAILED": "failed", "TIMED_OUT": "timed_out", "ABORTED": "aborted"}


def settle_slot_owner(target: Target, request: dict[str, Any]) -> str | None:
    """Before a deliberate rerun of a slot (`schedule.rerun`): tell the ledger how the
    execution holding the slot ended, if it has not been told, so the rerun may take
    it over. Returns a note for the user, or None."""
    slot = run_slot(request, "", datetime.now(UTC))
    if not slot.takeover or slot.schedule == manual_schedule(""):
        return None
    if not target.stack:
        return (
            "without --stack the slot ledger is not checked: a slot still marked running "
            "stays taken"
        )
    table = target.outputs.get("RunLedgerTableName")
    if not table:
        return f"stack {target.stack} has no slot ledger (RunLedgerTableName): redeploy it"
    dynamodb = target.client("dynamodb")
    item = read_slot(dynamodb, table, slot.key)
    if item is None or item.get("status") != "running":
        return None
    owner = str(item["execution"])
    try:
        described = describe(target.client("stepfunctions"), owner)
    except RemoteError:
        return f"the slot's run {owner} is not found: the slot stays taken"
    status = _LEDGER_END.get(described["status"])
    if status is None:
        return None
    ended = described.get("stopDate")
    fields = {"ended_at": ended.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")} if ended else {}
    record_end(dynamodb, table, slot=slot.key, execution_arn=owner, status=status, fields=fields)
    return None


# --- the commands --------------------------------------------------------------------------
def default_name() -> str:
    return f"amirun-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def start_execution(target: Target, name: str, request: dict[str, Any], note: str = "") -> str:
    """Start `request` as execution `name`, say so; returns the execution's ARN."""
    machine = target.state_machine_arn
    sfn = target.client("stepfunctions")
    try:
        arn: str = sfn.start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(request)
        )["executionArn"]
    except ClientError as exc:
        if error_code(exc) == "ExecutionAlreadyExists":
            raise RemoteError(
                f"an execution named {name} exists already: choose another --name"
            ) from exc
        if error_code(exc) == "StateMachineDoesNotExist":
            raise RemoteError(f"no state machine {machine}") from exc
        raise
    print(f"Started {name}{note}")
    print(f"  execution  {arn}")
    print(f"  console    {console_url(arn)}")
    return arn


@_reported
def cmd_start(args: argparse.Namespace) -> int:
    checked = validated_execution(args.execution)
    if checked is None:
        return EXIT_FAILED
    request, _ = checked
    if args.new_slot and isinstance(request.get("schedule"), dict):
        request["schedule"] = {**request["schedule"], "new_slot": True}
    target = Target(args)
    sfn = target.client("stepfunctions")
    note = settle_slot_owner(target, request)
    if note:
        print(f"amirun: {note}", file=sys.stderr)
    arn = start_execution(target, args.name or default_name(), request)
    if not args.follow:
        print(f"  status     amirun status {arn}")
        return EXIT_OK
    try:
        described = follow(sfn, arn, progress_printer(sys.stdout))
    except KeyboardInterrupt:
        print(f"\nStopped following; the run goes on: amirun status {arn}", file=sys.stderr)
        return EXIT_INTERRUPTED
    result = run_result_of(described)
    print_result(result, sys.stdout)
    return EXIT_OK if result.succeeded else EXIT_FAILED


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@_reported
def cmd_status(args: argparse.Namespace) -> int:
    target = Target(args, args.run)
    arn = target.execution_arn(args.run)
    sfn = target.client("stepfunctions")
    described = describe(sfn, arn)
    result = run_result_of(described)
    running = result.status == "RUNNING"
    print(
        f"{described['name']}  {result.status}"
        + (f" for {result.elapsed_s:.0f} s" if running else "")
    )
    print(f"  execution  {arn}")
    print(f"  started    {_utc(described['startDate'])}")
    if described.get("stopDate"):
        print(f"  stopped    {_utc(described['stopDate'])}")
    state = last_state(sfn, arn)
    print(f"  state      {state or '-'} ({'now' if running else 'last'})")
    print(f"  console    {console_url(arn)}")
    if not running:
        print_result(result, sys.stdout)
    return EXIT_OK if result.status in ("SUCCEEDED", "RUNNING") else EXIT_FAILED


def _bucket_from_history(sfn: Any, arn: str) -> str | None:
    """The output bucket, from the Commander's `output_url` in the execution's history."""
    for event in _history(sfn, arn):
        output = _json(_details(event).get("output"))
        url = output.get("output_url") if isinstance(output, dict) else None
        if isinstance(url, str) and url.startswith("s3://"):
            return url.removeprefix("s3://").split("/", 1)[0]
    return None


def _log_order(key: str) -> tuple[int, str, bool]:
    """Oldest attempt first; in each command's folder, stdout before stderr."""
    attempt = re.search(r"/attempt-(\d+)/", key)
    folder, _, stream = key.rpartition("/")
    return int(attempt.group(1)) if attempt else 0, folder, stream != "stdout"


@_reported
def cmd_logs(args: argparse.Namespace) -> int:
    target = Target(args, args.run)
    name = args.run.rsplit(":", 1)[-1]
    if target.stack:
        bucket = target.output("OutputBucketName")
    else:
        sfn = target.client("stepfunctions")
        arn = target.execution_arn(args.run)
        describe(sfn, arn)  # an unknown run is a clear error, not an empty history
        found = _bucket_from_history(sfn, arn)
        if found is None:
            print(
                f"No command output for {name}: it has sent no command yet"
                " (--stack NAME looks in the stack's output bucket)",
                file=sys.stderr,
            )
            return EXIT_FAILED
        bucket = found
    prefix = f"runs/{name}/"
    s3 = target.client("s3")
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [
            o["Key"]
            for page in pages
            for o in page.get("Contents") or []
            if o["Key"].rpartition("/")[2] in ("stdout", "stderr")
        ]
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            raise RemoteError(f"the output bucket {bucket} does not exist") from exc
        raise
    if not keys:
        print(
            f"No command output under s3://{bucket}/{prefix} (commands not sent yet, or the "
            "instance role cannot write there: see the stack's InstanceOutputPolicyArn)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    for index, key in enumerate(sorted(keys, key=_log_order)):
        text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        print(("\n" if index else "") + f"==> s3://{bucket}/{key} <==")
        print(text, end="" if text.endswith("\n") or not text else "\n")
    return EXIT_OK


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stack", help="name of the deployed amirun stack (its outputs name the state machine)"
    )
    parser.add_argument("--state-machine", help="state machine ARN (instead of --stack)")
    parser.add_argument("--region", help="AWS region (default: your AWS configuration)")


def register(sub: Any) -> None:
    start = sub.add_parser(
        "start",
        help="start an execution on a deployed stack",
        description="Validate an execution JSON (as `amirun validate` does), then start it "
        "on the deployed stack's state machine. Exit 0 when started (or, with --follow, "
        "SUCCEEDED); 1 invalid file or failed run; 2 unreadable file or usage error.",
    )
    start.add_argument("execution", help="execution JSON file")
    start.add_argument("--name", help="execution name (default: generated)")
    start.add_argument("--follow", action="store_true", help="show progress until it ends")
    start.add_argument(
        "--new-slot",
        action="store_true",
        help="run even if the file's schedule slot (name and scheduled time) is taken: in a "
        "slot of its own (without it, a second run of a slot ends at once as a duplicate)",
    )
    _target(start)
    start.set_defaults(func=cmd_start)

    status = sub.add_parser(
        "status",
        help="how an execution is doing or how it ended",
        description="Show an execution's state, its instance and, once it ended, its "
        "result or error and cause.",
    )
    status.add_argument("run", help="execution name or ARN")
    _target(status)
    status.set_defaults(func=cmd_status)

    logs = sub.add_parser(
        "logs",
        help="the command's stdout and stderr from the output bucket",
        description="Print the full stdout and stderr of an execution's command, read "
        "from the stack's output bucket (runs/<execution name>/attempt-<n>/).",
    )
    logs.add_argument("run", help="execution name or ARN")
    _target(logs)
    logs.set_defaults(func=cmd_logs)
