"""Errors are the contract with the state machine.

Each class name below is the error name Step Functions sees when a handler
raises it, and the names are matched in `statemachine/amirun.asl.json`
(Retry and Catch). Renaming one is a change to the workflow.
"""

from __future__ import annotations

import json
import re


class AmirunError(Exception):
    """Base of every error amirun raises on purpose."""


# --- Before launch: nothing is running, nothing to clean up. -------------------
class Problem(str):
    """One problem of an execution JSON: `field: message` as text, both parts kept.

    `field` is the full path (`run_options.timeout_s`), empty for the file as a whole.
    """

    field: str
    message: str

    def __new__(cls, field: str, message: str) -> Problem:
        problem = super().__new__(cls, f"{field}: {message}" if field else message)
        problem.field, problem.message = field, message
        return problem

    def shortened(self, chars: int) -> Problem:
        half = chars // 2
        return Problem(_cut(self.field, half), _cut(self.message, chars - half))


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "..."


class InvalidExecutionInput(AmirunError):
    """The execution JSON is malformed; the message names each bad field.

    The message becomes the failure's cause in the workflow's state, so it stays
    short whatever the input: each problem cut at PROBLEM_CHARS, the first
    SHOWN_PROBLEMS of them, then a count.
    """

    PROBLEM_CHARS = 400
    SHOWN_PROBLEMS = 20

    def __init__(self, *problems: str) -> None:
        self.problems = [
            (p if isinstance(p, Problem) else Problem("", p)).shortened(self.PROBLEM_CHARS)
            for p in problems
        ]
        more = len(self.problems) - self.SHOWN_PROBLEMS
        shown = self.problems[: self.SHOWN_PROBLEMS] + ([f"and {more} more"] if more > 0 else [])
        super().__init__("; ".join(shown))


class LaunchRejected(AmirunError):
    """EC2 refused the launch for a reason a retry will not fix (bad AMI, subnet...)."""


class InsufficientCapacity(AmirunError):
    """No capacity for the instance type right now (spot and on-demand both tried).

    Not retried in place: capacity comes back in minutes, so it is relaunched
    after the relaunch backoff when `n_retries_allowed` allows (the last attempt
    on-demand with `ii_cheapo`).
    """


class InstanceQueueTimeout(AmirunError):
    """No room (the stack's vCPU limit) or no capacity for the run's types before
    `run_options.queue_timeout_s`: nothing was launched. Not relaunchable."""


class InputsMissing(AmirunError):
    """Objects the input gate waits for (`run_options.inputs`, the `-F` forcing file with
    `ii_check_forcing`) were still missing at their deadline; nothing was launched."""


class PermissionDenied(AmirunError):
    """AWS refused a call for lack of a permission (IAM, a bucket or key policy).

    Not relaunchable: a fresh instance meets the same refusal. The message names
    the call, the permission and the stack parameter or role to change.
    """


class ConfigurationError(AmirunError):
    """A setting outside the run's own commands is wrong: the output bucket, the SSM
    document, the command's parameters. Not relaunchable; the message names it."""


class InternalError(AmirunError):
    """A step failed in a way amirun does not expect: a bug, or an AWS answer it does
    not know. The cause names the original exception.

    Not relaunchable: a fresh instance would most likely meet it again and bill for
    it (AWS's own transient 5xx answers are already retried by the SDK, and a
    crashed or timed-out function by the state machine's Retry).
    """


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


#: How long a one-line cause may get (Step Functions keeps up to 32,768 characters).
CAUSE_CHARS = 2_000
#: What stands for a line break in a one-line cause.
LINE_JOIN = " | "
#: A line starting with one of these continues the line before it.
_CONTINUES = frozenset(";,.:)")
_TRACEBACK = re.compile(r"\s*Traceback \(most recent call last\):.*", re.DOTALL)


def one_line_cause(cause: str | None) -> str:
    """A failure's cause as one clean line: Lambda's error JSON unwrapped, no stack
    trace, line breaks as " | ", runs of blanks squeezed, at most CAUSE_CHARS.

    The one formatting of a cause for the Fail state, the CLI and notifications.
    """
    text = _TRACEBACK.sub("", error_message(cause))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    flat = ""
    for line in filter(None, lines):
        # A line that starts with punctuation continues the one before ("...\n; next"),
        # where a " | " would leave a stray " | ;".
        joint = LINE_JOIN if flat and line[0] not in _CONTINUES else ""
        flat += joint + line if joint or not flat else line
    flat = flat.strip()
    return flat if len(flat) <= CAUSE_CHARS else flat[: CAUSE_CHARS - 3] + "..."


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
