"""The reconciler: stop what this stack launched for executions that are no longer running.

The sweeper hears each execution end, but an instance can outlive that moment: a
launch still in flight when the execution was aborted, or an instance the tag
filters did not show yet. On a schedule, the reconciler lists the instances
tagged with this stack, asks Step Functions about each one's execution, and
stops or terminates, as that run asked, those whose execution is no longer
RUNNING. It touches nothing else: no instance without this stack's tag, no
instance of a running execution.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from amirun_core import aws
from amirun_core.cleanup import LIVE_STATES, sweep_execution
from amirun_core.launch import TAG_EXECUTION, TAG_STACK

#: Step Functions' answer for an execution it no longer knows (90 days after its end).
GONE = "GONE"


class ReconcileReport(BaseModel):
    """What one pass found and did."""

    instances: int = Field(0, description="This stack's instances not yet terminated.")
    executions: dict[str, str] = Field(
        default_factory=dict, description="Execution ARN -> its status (GONE: unknown)."
    )
    swept: list[str] = Field(
        default_factory=list, description="Instances stopped or terminated by this pass."
    )
    failed: dict[str, str] = Field(
        default_factory=dict, description="Execution ARN -> why it could not be handled."
    )


def stack_executions(ec2: Any, stack_name: str) -> dict[str, list[str]]:
    """{execution ARN: its instance ids} for this stack's instances not yet terminated."""
    filters = [
        {"Name": f"tag:{TAG_STACK}", "Values": [stack_name]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    try:
        pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
        instances = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DescribeInstances")
        raise
    found: dict[str, list[str]] = {}
    for instance in instances:
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if tags.get(TAG_STACK) == stack_name and tags.get(TAG_EXECUTION):
            found.setdefault(tags[TAG_EXECUTION], []).append(instance["InstanceId"])
    return found


def execution_status(sfn: Any, execution_arn: str) -> tuple[str, str | None]:
    """The execution's status and input; GONE when Step Functions does not know it."""
    try:
        described = sfn.describe_execution(executionArn=execution_arn)
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DescribeExecution")
        if aws.error_code(exc) in ("ExecutionDoesNotExist", "InvalidArn"):
            return GONE, None
        raise
    return str(described["status"]), described.get("input")


def reconcile(ec2: Any, sfn: Any, stack_name: str) -> ReconcileReport:
    """One pass over this stack's instances; one execution's failure does not stop it."""
    found = stack_executions(ec2, stack_name)
    report = ReconcileReport(instances=sum(len(ids) for ids in found.values()))
    for execution_arn in sorted(found):
        try:
            status, raw_input = execution_status(sfn, execution_arn)
            report.executions[execution_arn] = status
            if status != "RUNNING":
                report.swept += sweep_execution(ec2, execution_arn, raw_input)
        except ClientError as exc:
            report.failed[execution_arn] = aws.describe(exc)
        except Exception as exc:  # noqa: BLE001 - reported, and the next pass tries again
            report.failed[execution_arn] = f"{type(exc).__name__}: {exc}"
    return report
