"""Resolve and the input gate: what a run does before anything is launched.

Resolve validates the execution JSON in full and resolves DAILY once, for the
reference time (the schedule's scheduled time, else the execution's start);
the state keeps the result, so relaunches run the same commands. The input
gate then waits (in Wait states) for the S3 objects `run_options.inputs`
names, so a run whose upstream data is late launches nothing until it is there.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws, timing
from amirun_core.daily import Resolution, S3Object
from amirun_core.errors import InputsMissing
from amirun_core.execution import parse_execution, read_execution
from amirun_core.state import InputsRecord, WorkflowState

#: Answers of HeadObject for an object that is not there (403 without s3:ListBucket;
#: a bucket made by the upstream job may not exist yet either).
ABSENT_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket", "403", "AccessDenied"})


def resolve_execution(state: WorkflowState) -> Resolution:
    """Validate the execution JSON in full, then resolve it for its reference time."""
    return parse_execution(state.request).resolve(state.execution.start_time)


def _exists(s3: Any, item: S3Object) -> bool:
    try:
        s3.head_object(Bucket=item.bucket, Key=item.key)
    except ClientError as exc:
        aws.raise_if_throttled(exc, "HeadObject")
        if aws.error_code(exc) in ABSENT_CODES:
            return False
        raise
    return True


def check_inputs(s3: Any, state: WorkflowState) -> InputsRecord:
    """One look at the inputs: all there, keep waiting, or InputsMissing past the deadline."""
    options = read_execution(state.request).run_options
    deadline = state.execution.start_time + timing.scaled(options.inputs_timeout_s)
    missing = [item.url for item in state.resolution().inputs if not _exists(s3, item)]
    if missing and timing.now() >= deadline:
        raise InputsMissing(
            f"{', '.join(missing)} still missing {options.inputs_timeout_s} s after the run "
            "started (run_options.inputs_timeout_s); no instance was launched"
        )
    interval = timing.inputs_poll_interval(options.inputs_timeout_s)
    return InputsRecord(
        ready=not missing,
        missing=missing,
        deadline=deadline,
        wait_seconds=timing.wait_seconds(interval),
    )
