"""Telling people how a run ended: one short SNS message per ended execution.

The notifier function gets the state machine's "Execution Status Change"
event from EventBridge (FAILED, TIMED_OUT and ABORTED; SUCCEEDED too when the
stack is asked to), finds the execution's instances by their tags, and
publishes what a person needs to decide what to do next: which run and
schedule, the error and the first line of its cause, where the instance is
now, and a link to the execution in the console.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from amirun_core.cleanup import LIVE_STATES, find_instances, must_terminate, run_options_of
from amirun_core.cost import instance_market
from amirun_core.errors import LINE_JOIN, one_line_cause
from amirun_core.launch import TAG_ATTEMPT
from amirun_core.state import schedule_name

#: SNS refuses a subject longer than this.
SUBJECT_LIMIT = 100
#: Instances stay visible in DescribeInstances for about an hour after they terminate.
REPORTED_STATES = (*LIVE_STATES, "terminated")
#: Statuses that leave the instance at rest by themselves; others leave it to the sweeper.
_AT_REST = ("stopped", "terminated")


class Notice(BaseModel):
    """One SNS message: subject, body, and attributes subscribers can filter on."""

    subject: str
    message: str
    attributes: dict[str, str]


def console_url(execution_arn: str) -> str:
    """The execution's page in the Step Functions console."""
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 else ""
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def first_line(cause: str | None) -> str:
    """The cause's first line: its one-line form up to the first line break it joined."""
    return one_line_cause(cause).split(LINE_JOIN, 1)[0]


def _tag(instance: dict[str, Any], key: str) -> str | None:
    return next((t["Value"] for t in instance.get("Tags") or [] if t.get("Key") == key), None)


def describe_instance_end(instance: dict[str, Any], request: Any) -> str:
    """`i-0abc (t4g.small on-demand, attempt 2) terminated`; a live one says what happens next."""
    market = instance_market(instance)
    attempt = _tag(instance, TAG_ATTEMPT)
    what = f"{instance.get('InstanceType', '?')} {market}" + (
        f", attempt {attempt}" if attempt else ""
    )
    state = str(instance["State"]["Name"])
    line = f"{instance['InstanceId']} ({what}) {state}"
    if state not in _AT_REST:
        ending = "terminates" if must_terminate(instance, run_options_of(request)) else "stops"
        line += f": the sweeper {ending} it"
    return line


def _request_of(detail: dict[str, Any]) -> Any:
    try:
        return json.loads(detail.get("input") or "null")
    except ValueError:
        return None


def _usage_of(detail: dict[str, Any]) -> str | None:
    """A succeeded run's estimated cost, from its output (a failed run has none)."""
    try:
        output = json.loads(detail.get("output") or "null")
    except ValueError:
        return None
    usage = output.get("usage") if isinstance(output, dict) else None
    if not isinstance(usage, dict):
        return None
    cost = usage.get("run_estimated_cost_usd")
    seconds = usage.get("run_instance_seconds", 0)
    money = f"~${cost:.4f}" if isinstance(cost, int | float) else "unknown (type not priced)"
    return f"{money} for {seconds} instance-seconds (EC2 compute, estimated)"


def _moment(epoch_ms: Any) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC) if isinstance(epoch_ms, int) else None


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def execution_notice(detail: dict[str, Any], instances: list[dict[str, Any]]) -> Notice:
    """The message for an ended execution, from its EventBridge event's detail."""
    status = str(detail.get("status", "UNKNOWN"))
    name = str(detail.get("name", ""))
    arn = str(detail.get("executionArn", ""))
    request = _request_of(detail)
    schedule = schedule_name(request)
    rows: list[tuple[str, str]] = [("execution", name)]
    rows.append(("schedule", schedule or "none (started by hand)"))
    if status != "SUCCEEDED":
        rows.append(("error", str(detail.get("error") or _DEFAULT_ERROR.get(status, status))))
        cause = first_line(detail.get("cause"))
        if cause:
            rows.append(("cause", cause))
    ordered = sorted(instances, key=lambda i: (_tag(i, TAG_ATTEMPT) or "", i["InstanceId"]))
    for instance in ordered:
        rows.append(("instance", describe_instance_end(instance, request)))
    if not instances:
        rows.append(("instance", "none running or recently ended"))
    usage = _usage_of(detail)
    if usage:
        rows.append(("cost", usage))
    started, stopped = _moment(detail.get("startDate")), _moment(detail.get("stopDate"))
    if started and stopped:
        minutes = (stopped - started).total_seconds() / 60
        rows.append(("ran", f"{minutes:.0f} min, from {started:%Y-%m-%d %H:%M} UTC"))
    rows.append(("console", console_url(arn)))
    headline = f"amirun run {status}: {name}"
    body = "\n".join([headline, "", *(f"{key:<10} {value}" for key, value in rows)])
    attributes = {"status": status}
    if schedule:
        attributes["schedule"] = schedule
    return Notice(subject=_ascii(headline)[:SUBJECT_LIMIT], message=body, attributes=attributes)


#: What an execution that ended without an error name ended with.
_DEFAULT_ERROR = {
    "TIMED_OUT": "States.Timeout (the execution ran past its TimeoutSeconds)",
    "ABORTED": "aborted (stopped by hand or by StopExecution)",
}


def execution_instances(ec2: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every instance the execution launched that EC2 still describes."""
    return find_instances(ec2, execution_arn, states=REPORTED_STATES)


def publish(sns: Any, topic_arn: str, notice: Notice) -> str:
    """Publish the notice; returns SNS's message id."""
    response = sns.publish(
        TopicArn=topic_arn,
        Subject=notice.subject,
        Message=notice.message,
        MessageAttributes={
            key: {"DataType": "String", "StringValue": value}
            for key, value in notice.attributes.items()
        },
    )
    return str(response["MessageId"])
