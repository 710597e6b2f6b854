"""Errors are the contract with the state machine.

Each class name below is the error name Step Functions sees when a handler
raises it, and the names are matched in `statemachine/amirun.asl.json`
(Retry and Catch). Renaming one is a change to the workflow.
"""

from __future__ import annotations

import json


class AmirunError(Exception):
    """Base of every error amirun raises on purpose."""


# --- Before launch: nothing is running, nothing to clean up. -------------------
class InvalidExecutionInput(AmirunError):
    """The execution JSON is malformed; the message names each bad field."""

    def __init__(self, *problems: str) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class LaunchRejected(AmirunError):
    """EC2 refused the launch for a reason a retry will not fix (bad AMI, subnet...)."""


class InsufficientCapacity(AmirunError):
    """No capacity for the instance type right now (spot and on-demand both tried).

    Not retried in place: capacity comes back in minutes, so it is relaunched
    after `retry_delay_s` when `n_retries_allowed` allows.
    """


class InputsMissing(AmirunError):
    """Objects `run_options.inputs` names were still missing at the input deadline."""


# --- Transient: the state machine retries these with backoff. ------------------
class AwsThrottled(AmirunError):
    """An AWS API throttled us (RequestLimitExceeded, ThrottlingException...)."""


class InstanceNotRegistered(AmirunError):
    """SSM does not know the instance yet although it is online: a short race."""


# --- After launch: the run failed; the instance is stopped, then FAILED. --------
class InstanceNotReady(AmirunError):
    """The instance did not run, or its SSM agent did not come online, in time."""


class InstanceLost(AmirunError):
    """The instance stopped or terminated under the run (e.g. a spot interruption)."""


class CommandFailed(AmirunError):
    """The command ended Failed, Cancelled or with a delivery timeout."""


class CommandTimedOut(AmirunError):
    """The command ran past `timeout_s`; it was cancelled."""


class OutputMissing(AmirunError):
    """The output object the run must produce is not in S3 (or is stale)."""


class CleanupFailed(AmirunError):
    """The instance could not be stopped or terminated: act on it by hand."""


def error_message(cause: str | None) -> str:
    """The readable part of a Task failure's cause: Lambda wraps it in a JSON payload."""
    try:
        payload = json.loads(cause or "")
    except ValueError:
        return cause or ""
    if isinstance(payload, dict) and "errorMessage" in payload:
        return str(payload["errorMessage"])
    return cause or ""


#: Errors after which a relaunch can help (`run_options.n_retries_allowed`).
RELAUNCHABLE = frozenset(
    {
        "InstanceNotReady",
        "InstanceLost",
        "CommandFailed",
        "CommandTimedOut",
        "OutputMissing",
        "InsufficientCapacity",
    }
)
