"""Commander and EC2Poller: send the commands once, then follow them to an end."""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws, timing
from amirun_core.errors import (
    CommandFailed,
    CommandTimedOut,
    ConfigurationError,
    InstanceLost,
    InstanceNotRegistered,
)
from amirun_core.execution import read_execution
from amirun_core.launch import LOST_STATES
from amirun_core.state import CommandRecord, WorkflowState

DOCUMENT = "AWS-RunShellScript"

#: SSM statuses after which the command may still succeed.
WAITING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})
#: How much of stdout/stderr the state (and the error cause) carries.
TAIL_CHARS = 1_000
#: GetCommandInvocation returns only the start of each stream, this many characters;
#: past it, the tail is read from the S3 output.
INVOCATION_LIMITS = {"stdout": 24_000, "stderr": 8_000}
#: Where SSM writes a stream of AWS-RunShellScript's output, under the command's prefix.
PLUGIN_OUTPUT = "awsrunShellScript/0.awsrunShellScript"
#: The ranged GET's size: TAIL_CHARS characters of UTF-8 are at most 4 bytes each.
TAIL_BYTES = 4 * TAIL_CHARS
#: How long SSM may take to deliver the command to a busy instance.
DELIVERY_TIMEOUT_S = 600

#: SendCommand refusals a relaunch cannot fix, and the setting each one points at.
SEND_REFUSALS = {
    "InvalidOutputFolder": (
        "the output bucket {bucket} (stack parameter OutputBucketName) must exist, in "
        "this account, and its name must be valid"
    ),
    "InvalidDocument": (
        "the SSM document AWS-RunShellScript must be available in this account and region"
    ),
    "InvalidParameters": (
        "the command's parameters were refused: check the commands, "
        "run_options.working_directory and run_options.timeout_s"
    ),
    "UnsupportedPlatformType": (
        "AWS-RunShellScript runs on Linux and macOS only: the AMI's platform is not one"
    ),
}


def command_comment(state: WorkflowState) -> str:
    """A marker unique to this execution and attempt (SSM Comment: 100 chars max).

    SSM has no idempotency token; a retried Commander finds its own command by
    this comment instead of sending a second one.
    """
    digest = hashlib.sha256(f"{state.execution.id}|{state.attempt}".encode()).hexdigest()
    return f"amirun {digest[:40]} attempt {state.attempt}"


def output_prefix(state: WorkflowState) -> str:
    return f"runs/{state.execution.name}/attempt-{state.attempt}"


def execution_key(state: WorkflowState) -> str:
    """Where the resolved execution is recorded: once per run, beside each attempt's output."""
    return f"runs/{state.execution.name}/execution.json"


def record_execution(s3: Any, bucket: str, state: WorkflowState) -> str:
    """Write what this run executes (DAILY resolved) next to its command output.

    The same content for every attempt (the resolution is kept), so a relaunch
    rewrites the same object: one per run.
    """
    resolution = state.resolution()
    body = {
        "execution": state.execution.id,
        "reference_time": resolution.reference_time.isoformat(),
        "reference": resolution.reference,
        "daily_date": resolution.daily_date,
        "commands": state.resolved_commands(),
        "output_check": resolution.output_check.model_dump(mode="json")
        if resolution.output_check
        else None,
        "inputs": [item.url for item in resolution.inputs],
        "request": state.request,
    }
    key = execution_key(state)
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(body, indent=2).encode(),
            ContentType="application/json",
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "PutObject")
        raise
    return f"s3://{bucket}/{key}"


#: What the Commander's role may write under a run's output prefix (template.yaml).
RECORD_NEEDS = (
    "the Commander may write only <prefix>/datastream-metadata/execution.json and "
    "<prefix>/metadata/execution.json in buckets matching the stack parameter "
    "CheckedBucketPattern (s3:PutObject); the bucket's policy, and the KMS key policy of "
    "an SSE-KMS bucket (kms:GenerateDataKey), must allow it as well"
)


def executed_request(state: WorkflowState) -> dict[str, Any]:
    """The execution JSON as this run executes it: the commands as sent, DAILY resolved.

    `datastream_command_options` becomes the one command built from it, as the
    original's record shows it. Valid input for amirun again (a rerun of that day).
    """
    request = dict(state.request)
    request.pop("datastream_command_options", None)
    request["commands"] = state.resolved_commands()
    return request


def record_beside_outputs(s3: Any, state: WorkflowState) -> str | None:
    """Write the executed request under the run's output prefix, where the original
    wrote it and downstream tools read it; None when the commands give no prefix."""
    record = state.resolution().record
    if record is None:
        return None
    try:
        s3.put_object(
            Bucket=record.bucket,
            Key=record.key,
            Body=json.dumps(executed_request(state), indent=4).encode(),
            ContentType="application/json",
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "PutObject")
        aws.raise_if_denied(exc, f"PutObject on {record.url}", RECORD_NEEDS)
        raise
    return record.url


def _existing_command(ssm: Any, instance_id: str, comment: str) -> dict[str, Any] | None:
    try:
        commands = ssm.list_commands(InstanceId=instance_id)["Commands"]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "ListCommands")
        raise
    return next((c for c in commands if c.get("Comment") == comment), None)


def send_commands(
    ssm: Any, state: WorkflowState, output_bucket: str | None, s3: Any = None
) -> CommandRecord:
    """Send the run's commands (DAILY resolved) with AWS-RunShellScript, once per attempt.

    With `s3` and an output bucket, the resolved execution is recorded there first.
    """
    request = read_execution(state.request)
    if state.instance is None:
        raise CommandFailed("no instance to send the commands to")
    options = request.run_options
    instance_id = state.instance.instance_id
    comment = command_comment(state)
    command = _existing_command(ssm, instance_id, comment)
    prefix = output_prefix(state)
    recorded = record_execution(s3, output_bucket, state) if s3 and output_bucket else None
    beside = record_beside_outputs(s3, state) if s3 else None
    if command is None:
        parameters: dict[str, list[str]] = {
            "commands": request.resolved_commands(state.resolution()),
            "executionTimeout": [str(options.timeout_s)],
        }
        if options.working_directory:
            parameters["workingDirectory"] = [options.working_directory]
        send: dict[str, Any] = {
            "DocumentName": DOCUMENT,
            "InstanceIds": [instance_id],
            "Parameters": parameters,
            "Comment": comment,
            "TimeoutSeconds": DELIVERY_TIMEOUT_S,
        }
        if output_bucket:
            send.update(OutputS3BucketName=output_bucket, OutputS3KeyPrefix=prefix)
        try:
            command = ssm.send_command(**send)["Command"]
        except ClientError as exc:
            _refused(exc, output_bucket)
            raise CommandFailed(f"SendCommand refused the command: {aws.describe(exc)}") from exc
    sent = timing.now()
    deadline = sent + timing.scaled(options.timeout_s)
    return CommandRecord(
        command_id=command["CommandId"],
        instance_id=instance_id,
        sent_at=sent,
        deadline=deadline,
        wait_seconds=_wait_for_end(state, deadline),
        output_url=f"s3://{output_bucket}/{prefix}/{command['CommandId']}/"
        if output_bucket
        else None,
        execution_url=recorded,
        record_url=beside,
    )


def _wait_for_end(state: WorkflowState, deadline: datetime) -> int:
    """How long WaitForCommandEnd waits for the end event before a safety look."""
    options = read_execution(state.request).run_options
    interval = timing.command_look_interval(
        options.poll_interval_s, options.timeout_s, options.attempts
    )
    return timing.wait_seconds_until(deadline, interval)


def _refused(exc: ClientError, output_bucket: str | None) -> None:
    """Raise the error a SendCommand refusal means, unless it is worth a relaunch."""
    aws.raise_if_throttled(exc, "SendCommand")
    code = aws.error_code(exc)
    if code == "InvalidInstanceId":
        # The agent said Online but SSM has not caught up yet: retried.
        raise InstanceNotRegistered(aws.describe(exc)) from exc
    aws.raise_if_denied(
        exc,
        "SendCommand",
        "the commander's role needs ssm:SendCommand on the document AWS-RunShellScript, "
        "on the instance (tagged amirun:stack with this stack's name) and on the output "
        f"bucket {output_bucket or '(none)'}",
    )
    if code in SEND_REFUSALS:
        setting = SEND_REFUSALS[code].format(bucket=output_bucket)
        raise ConfigurationError(
            f"SendCommand refused the command ({aws.describe(exc)}): {setting}"
        ) from exc


def _tail(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= TAIL_CHARS else "..." + text[-TAIL_CHARS:]


def s3_object_of_url(url: str | None) -> tuple[str, str] | None:
    """(bucket, key) of the https URL GetCommandInvocation gives for a stream's full
    output (StandardOutputUrl, StandardErrorUrl; empty when no bucket was given):
    path-style (`https://s3.<region>.amazonaws.com/<bucket>/<key>`) or virtual-hosted
    (`https://<bucket>.s3.<region>.amazonaws.com/<key>`)."""
    if not url:
        return None
    parsed = urllib.parse.urlsplit(url)
    host, path = parsed.hostname or "", urllib.parse.unquote(parsed.path).lstrip("/")
    if parsed.scheme == "s3":
        bucket, key = host, path
    elif host.startswith(("s3.", "s3-")):
        bucket, _, key = path.partition("/")
    elif ".s3." in host or ".s3-" in host:
        bucket, key = re.split(r"\.s3[.-]", host, maxsplit=1)[0], path
    else:
        return None
    return (bucket, key) if bucket and key else None


def stream_tail(s3: Any, stream: str, content: str | None, url: str | None) -> str:
    """The real end of a stream: SSM's answer when it is whole, else a ranged GET of
    the last bytes of the S3 output SSM names in `url` (SSM only returns the start of
    a long output)."""
    content = content or ""
    where = s3_object_of_url(url)
    if len(content) < INVOCATION_LIMITS[stream] or where is None or s3 is None:
        return _tail(content)
    bucket, key = where
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{TAIL_BYTES}")[
            "Body"
        ].read()
    except ClientError as exc:
        # The run's outcome does not depend on its log: say where the end is instead.
        aws.raise_if_throttled(exc, "GetObject")
        start = content[:TAIL_CHARS]
        return f"(the start; the end is in s3://{bucket}/{key}: {aws.describe(exc)}) {start}"
    return "..." + body.decode("utf-8", "replace")[-TAIL_CHARS:]


def _failure_cause(record: CommandRecord) -> str:
    details = (
        f" ({record.status_details})" if record.status_details not in ("", record.status) else ""
    )
    parts = [f"command {record.command_id} on {record.instance_id} ended {record.status}{details}"]
    if record.exit_code is not None:
        parts.append(f"exit code {record.exit_code}")
    if record.stderr_tail.strip():
        parts.append(f"stderr: {record.stderr_tail.strip()}")
    if record.output_url:
        parts.append(f"full output: {record.output_url}")
    return "; ".join(parts)


def cancel(ssm: Any, record: CommandRecord) -> None:
    try:
        ssm.cancel_command(CommandId=record.command_id, InstanceIds=[record.instance_id])
    except ClientError as exc:
        aws.raise_if_throttled(exc, "CancelCommand")
        # Already finished between our look and the cancel: nothing left to stop.
        if aws.error_code(exc) not in ("InvalidCommandId", "DuplicateInstanceId"):
            raise


def follow_command(ssm: Any, ec2: Any, state: WorkflowState, s3: Any = None) -> CommandRecord:
    """EC2Poller's safety look: keep waiting (until when), succeed, or raise a typed error.

    `s3` reads the end of an output too long for GetCommandInvocation.
    """
    if state.command is None:
        raise CommandFailed("no command was sent")
    record = look_at_command(ssm, ec2, state.command, s3)
    if not record.done:
        record.wait_seconds = _wait_for_end(state, record.deadline)
    return record


def look_at_command(ssm: Any, ec2: Any, command: CommandRecord, s3: Any = None) -> CommandRecord:
    """One look at the command: still on its way, ended well, or a typed error.

    The poller, the token wait and the end-event handler all decide with this,
    so the run ends the same whoever notices the end first. `s3` reads the end
    of an output too long for GetCommandInvocation.
    """
    record = command.model_copy()
    try:
        invocation = ssm.get_command_invocation(
            CommandId=record.command_id, InstanceId=record.instance_id
        )
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetCommandInvocation")
        # SSM takes a moment to create the invocation after SendCommand.
        if aws.error_code(exc) != "InvocationDoesNotExist":
            raise
        invocation = {"Status": "Pending", "StatusDetails": "InvocationDoesNotExist"}
    record.status = invocation.get("Status", "Pending")
    record.status_details = invocation.get("StatusDetails", "")
    code = invocation.get("ResponseCode", -1)
    record.exit_code = code if isinstance(code, int) and code >= 0 else None
    record.stdout_tail = _tail(invocation.get("StandardOutputContent"))
    record.stderr_tail = _tail(invocation.get("StandardErrorContent"))

    if record.status in WAITING_STATUSES:
        # SSM keeps a command InProgress for a while after its instance is gone.
        instance = aws.describe_instance(ec2, record.instance_id)
        instance_state = instance["State"]["Name"] if instance else "terminated"
        if instance_state in LOST_STATES:
            raise InstanceLost(
                f"instance {record.instance_id} is {instance_state} while command "
                f"{record.command_id} was {record.status}: a spot interruption, or a "
                "shutdown from inside the instance"
            )
        if timing.now() >= record.deadline:
            cancel(ssm, record)
            record.status = "Cancelled"
            raise CommandTimedOut(
                f"command {record.command_id} on {record.instance_id} still "
                f"{invocation.get('Status')} at its time limit (timeout_s); cancelled"
            )
        return record
    record.done = True
    record.ended_at = timing.now()
    record.stdout_tail = stream_tail(
        s3, "stdout", invocation.get("StandardOutputContent"), invocation.get("StandardOutputUrl")
    )
    record.stderr_tail = stream_tail(
        s3, "stderr", invocation.get("StandardErrorContent"), invocation.get("StandardErrorUrl")
    )
    if record.status == "Success":
        return record
    if record.status == "TimedOut" and "Delivery" not in record.status_details:
        raise CommandTimedOut(_failure_cause(record))
    raise CommandFailed(_failure_cause(record))
