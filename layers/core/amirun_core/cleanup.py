"""EC2Stopper and the sweeper: no instance outlives its run.

Stopping is a loop like the others: each call does what the instance's state
allows (stop, terminate, detach, delete) and says whether it is done, so the
state machine waits between calls instead of a Lambda sleeping.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from amirun_core import aws, relaunch, timing
from amirun_core.cost import instance_usage
from amirun_core.errors import (
    RELAUNCHABLE,
    CleanupFailed,
    InvalidExecutionInput,
    one_line_cause,
)
from amirun_core.execution import RunOptions, read_execution
from amirun_core.launch import TAG_ATTEMPT, TAG_EXECUTION
from amirun_core.state import AttemptRecord, CleanupRecord, WorkflowState
from amirun_core.utilisation import instance_utilisation

LIVE_STATES = ("pending", "running", "stopping", "stopped", "shutting-down")


def run_options_of(raw_request: Any) -> RunOptions:
    """The run options to clean up with, even when the request itself was rejected."""
    try:
        return read_execution(raw_request).run_options
    except InvalidExecutionInput:
        pass
    given = raw_request.get("run_options") if isinstance(raw_request, dict) else None
    # Each option that is valid on its own is honoured; the others take their defaults.
    usable = {}
    for name, value in (given if isinstance(given, dict) else {}).items():
        try:
            RunOptions.model_validate({name: value})
        except ValidationError:
            continue
        usable[name] = value
    return RunOptions.model_validate(usable)


def find_instances(
    ec2: Any,
    execution_id: str,
    attempt: int | None = None,
    states: tuple[str, ...] = LIVE_STATES,
) -> list[dict[str, Any]]:
    """Instances amirun launched for an execution (and attempt), found by their tags."""
    filters = [
        {"Name": f"tag:{TAG_EXECUTION}", "Values": [execution_id]},
        {"Name": "instance-state-name", "Values": list(states)},
    ]
    if attempt is not None:
        filters.append({"Name": f"tag:{TAG_ATTEMPT}", "Values": [str(attempt)]})
    try:
        pages = ec2.get_paginator("describe_instances").paginate(Filters=filters)
        return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DescribeInstances")
        raise


def _volume_states(ec2: Any, volume_ids: list[str]) -> dict[str, str]:
    states: dict[str, str] = {}
    for volume_id in volume_ids:
        try:
            volume = ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
            states[volume_id] = volume["State"]
        except ClientError as exc:
            aws.raise_if_throttled(exc, "DescribeVolumes")
            if aws.error_code(exc) != "InvalidVolume.NotFound":
                raise
            states[volume_id] = "deleted"
    return states


def _release_volumes(ec2: Any, instance_id: str, volume_ids: list[str]) -> tuple[bool, list[str]]:
    """Detach what is attached, delete what is free. Returns (all gone, deleted now)."""
    deleted: list[str] = []
    remaining = False
    for volume_id, volume_state in _volume_states(ec2, volume_ids).items():
        try:
            if volume_state == "in-use":
                ec2.detach_volume(VolumeId=volume_id, InstanceId=instance_id)
                remaining = True
            elif volume_state == "available":
                ec2.delete_volume(VolumeId=volume_id)
                deleted.append(volume_id)
            elif volume_state not in ("deleting", "deleted"):
                remaining = True
        except ClientError as exc:
            aws.raise_if_throttled(exc, "DetachVolume/DeleteVolume")
            if aws.error_code(exc) not in ("InvalidVolume.NotFound", "IncorrectState"):
                raise
            remaining = remaining or aws.error_code(exc) == "IncorrectState"
    return not remaining, deleted


def must_terminate(instance: dict[str, Any], options: RunOptions) -> bool:
    """Terminate when asked, when EC2 cannot stop the instance (one-time spot, an
    instance-store root), or when it is already going away (so the record says what
    really happened)."""
    return (
        options.ii_terminate_instance
        or instance.get("InstanceLifecycle") == "spot"
        or instance.get("RootDeviceType") == "instance-store"
        or instance["State"]["Name"] in ("shutting-down", "terminated")
    )


def _advance(ec2: Any, instance: dict[str, Any], terminate: bool) -> bool:
    """Ask EC2 for the next state transition; True once the instance is at rest."""
    instance_id = instance["InstanceId"]
    state = instance["State"]["Name"]
    try:
        if terminate and state in ("pending", "running", "stopping", "stopped"):
            ec2.terminate_instances(InstanceIds=[instance_id])
            return False
        if not terminate and state == "running":
            ec2.stop_instances(InstanceIds=[instance_id])
            return False
    except ClientError as exc:
        aws.raise_if_throttled(exc, "StopInstances/TerminateInstances")
        aws.raise_if_denied(
            exc,
            f"Stopping or terminating {instance_id}",
            "the function's role may stop and terminate only instances tagged amirun:stack "
            "with this stack's name (ec2:StopInstances, ec2:TerminateInstances)",
        )
        code = aws.error_code(exc)
        if code == "IncorrectInstanceState":
            return False  # mid-transition: look again after the next wait
        if code == "UnsupportedOperation" and not terminate:
            # EC2 cannot stop this one (e.g. an instance-store root): terminate instead,
            # or it would keep running; the next look reports it terminated.
            return _advance(ec2, instance, terminate=True)
        raise
    # A terminated instance is at rest even when a stop was asked for (spot interruption).
    return bool(state == "terminated" or (not terminate and state == "stopped"))


def stop_instance(ec2: Any, state: WorkflowState, cloudwatch: Any = None) -> CleanupRecord:
    """One step towards a stopped (or terminated) instance; done when at rest.

    With `cloudwatch`, the usage also says what the instance used over the command.
    """
    options = run_options_of(state.request)
    previous = state.cleanup
    deadline = previous.deadline if previous and previous.deadline else None
    deadline = deadline or timing.now() + timing.scaled(timing.CLEANUP_TIMEOUT_S)

    if state.instance is not None:
        instance_id: str | None = state.instance.instance_id
    elif previous is not None:
        # Found by its tags on the first call; once terminated it no longer matches them.
        instance_id = previous.instance_id
    else:
        # The launch failed after EC2 accepted it: find the instance by its tags.
        found = find_instances(ec2, state.execution.id, state.attempt)
        instance_id = found[0]["InstanceId"] if found else None

    instance = aws.describe_instance(ec2, instance_id) if instance_id else None
    if instance is None:
        return _finish(
            state, options, CleanupRecord(instance_id=instance_id, action="none", done=True)
        )

    volume_ids = [
        m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", []) if "Ebs" in m
    ]
    volume_ids = sorted(set(volume_ids) | set(previous.volumes if previous else []))
    terminate = must_terminate(instance, options)
    action = "terminated" if terminate else "stopped"
    at_rest = _advance(ec2, instance, terminate)
    deleted = list(previous.volumes_deleted) if previous else []
    usage = previous.usage if previous else None
    if at_rest and usage is None:
        # Measured when first found at rest: deleting volumes afterwards costs no instance time.
        earlier = [a.usage for a in state.past_attempts if a.usage is not None]
        spot = state.instance.spot_price_usd_per_hour if state.instance else None
        usage = instance_usage(instance, timing.now(), earlier, spot_price=spot)
        if cloudwatch is not None and state.command is not None:
            used = instance_utilisation(
                cloudwatch,
                instance["InstanceId"],
                state.command.sent_at,
                state.command.ended_at or timing.now(),
            )
            usage = usage.model_copy(update=used.model_dump())
    done = at_rest
    if at_rest and options.ii_delete_volume:
        done, deleted_now = _release_volumes(ec2, instance["InstanceId"], volume_ids)
        deleted += deleted_now
    record = CleanupRecord(
        instance_id=instance_id,
        action=action,
        done=done,
        deadline=deadline,
        volumes=volume_ids,
        volumes_deleted=deleted,
        wait_seconds=timing.wait_seconds(timing.cleanup_poll_interval(options.attempts)),
        usage=usage,
    )
    # The deadline is for an instance that will not come to rest, never for the call that
    # first asked EC2 to stop it: a slow invocation must not fail a stop it just started.
    if not done and previous is not None and timing.now() >= deadline:
        original = f" after {state.error.Error}" if state.error else ""
        raise CleanupFailed(
            f"instance {instance_id} is still {instance['State']['Name']}{original} at the "
            "cleanup time limit: stop or terminate it by hand"
        )
    return _finish(state, options, record) if done else record


def _finish(state: WorkflowState, options: RunOptions, record: CleanupRecord) -> CleanupRecord:
    """Once at rest: on the failure path, say why and whether to relaunch."""
    if state.error is None:
        return record
    cause = one_line_cause(state.error.Cause)
    this = AttemptRecord(
        attempt=state.attempt,
        instance_id=record.instance_id,
        error=state.error.Error,
        cause=cause,
        usage=record.usage,
    )
    record.attempts = [*state.past_attempts, this]
    record.error = state.error.Error
    where = (
        f"instance {record.instance_id} {record.action}" if record.instance_id else "no instance"
    )
    record.cause = f"{cause} [attempt {state.attempt}; {where}]"
    if state.error.Error in RELAUNCHABLE and state.attempt <= options.n_retries_allowed:
        record.relaunch = True
        record.next_attempt = state.attempt + 1
        delay = relaunch.wait_before(options, state.attempt + 1)
        record.relaunch_wait_seconds = timing.wait_seconds(delay) if delay else 0
    return record


def sweep_execution(ec2: Any, execution_id: str, raw_input: str | None) -> list[str]:
    """Stop or terminate whatever an ended execution left behind."""
    try:
        request = json.loads(raw_input) if raw_input else {}
    except ValueError:
        request = {}
    options = run_options_of(request if isinstance(request, dict) else {})
    swept: list[str] = []
    for instance in find_instances(ec2, execution_id):
        # The sweeper runs once, and a pending instance cannot be stopped yet.
        terminate = must_terminate(instance, options) or instance["State"]["Name"] == "pending"
        if _advance(ec2, instance, terminate) is False:
            swept.append(instance["InstanceId"])
    return swept
