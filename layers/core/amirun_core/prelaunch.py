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
from amirun_core.execution import RunOptions, parse_execution, read_execution
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


def _gate(options: RunOptions, item: S3Object) -> tuple[int, str]:
    """(timeout in seconds, the option that sets it) for one object the gate waits for."""
    if item.source == "forcing":
        return options.forcing_check_timeout_s, "run_options.forcing_check_timeout_s"
    return options.inputs_timeout_s, "run_options.inputs_timeout_s"


def gate_interval(options: RunOptions, inputs: list[S3Object]) -> int:
    """Seconds between two looks: the shortest asked for, spread over the longest wait."""
    forcing = any(item.source == "forcing" for item in inputs)
    given = any(item.source != "forcing" for item in inputs)
    shortest = min(
        [options.forcing_check_wait_s] * forcing + [timing.INPUTS_INTERVAL_S] * given
        or [timing.INPUTS_INTERVAL_S]
    )
    longest = max([_gate(options, item)[0] for item in inputs] or [options.inputs_timeout_s])
    return timing.inputs_poll_interval(longest, shortest)


def check_inputs(s3: Any, state: WorkflowState) -> InputsRecord:
    """One look at the inputs: all there, keep waiting, or InputsMissing past a deadline.

    `run_options.inputs` wait up to inputs_timeout_s, the `-F` forcing file
    (ii_check_forcing) up to forcing_check_timeout_s, both from the run's start.
    """
    options = read_execution(state.request).run_options
    inputs = state.resolution().inputs
    start, now = state.execution.start_time, timing.now()
    missing = [item for item in inputs if not _exists(s3, item)]
    late = [item for item in missing if now >= start + timing.scaled(_gate(options, item)[0])]
    if late:
        raise InputsMissing(
            "; ".join(
                f"{item.url} still missing {_gate(options, item)[0]} s after the run started "
                f"({_gate(options, item)[1]})"
                for item in late
            )
            + "; no instance was launched"
        )
    longest = max([_gate(options, item)[0] for item in inputs] or [options.inputs_timeout_s])
    return InputsRecord(
        ready=not missing,
        missing=[item.url for item in missing],
        deadline=start + timing.scaled(longest),
        wait_seconds=timing.wait_seconds(gate_interval(options, inputs)),
    )
