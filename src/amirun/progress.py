"""What a run shows while it goes: the same lines for a rehearsal and a real run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One thing worth showing while a run goes."""

    elapsed_s: float
    kind: str  # "state" | "result" | "error" | "note" | "detail" (shown with --verbose)
    state: str
    detail: str = ""


#: What a look at the command's end did with the waiting task token.
_NOTICE = {
    "succeeded": "ended the wait: command {command} {status}{exit}",
    "failed": "ended the wait: {error}: {cause}",
    "running": "command {command} {status}: waiting for its end event",
    "already-settled": "end event for command {command}: its wait had already ended",
    "not-waiting": "event for {instance}: no run waits on it",
    "foreign": "event ignored: not the end of a command of this run",
}


#: Notices about the plumbing, not the run: an event no run waits on is routine.
_PLUMBING = frozenset({"not-waiting"})


def is_plumbing(result: Any) -> bool:
    """True for a step result that only says how the plumbing did (shown with --verbose)."""
    return isinstance(result, dict) and result.get("outcome") in _PLUMBING


def _describe_notice(result: dict[str, Any]) -> str:
    code = result.get("exit_code")
    return _NOTICE.get(str(result["outcome"]), "{outcome}").format(
        outcome=result["outcome"],
        command=str(result.get("command_id") or "")[:8],
        status=result.get("status"),
        exit=f" (exit {code})" if code is not None else "",
        error=result.get("error"),
        cause=result.get("cause"),
        instance=result.get("instance_id"),
    )


def describe_result(result: Any) -> str:
    """One line saying what a step's result means (empty when it says nothing new)."""
    if not isinstance(result, dict):
        return ""
    if "outcome" in result:
        return _describe_notice(result)
    if "command_id" in result:
        code = result.get("exit_code")
        return f"command {result['command_id'][:8]} {result.get('status')}" + (
            f" (exit {code})" if code is not None else ""
        )
    if "daily_date" in result:
        check = result.get("output_check")
        where = f"s3://{check['bucket']}/{check['prefix']}" if check else "no output check"
        reference = f"{result.get('reference')} {result.get('reference_time')}"
        return f"DAILY = {result['daily_date']} (reference: {reference}); {where}"
    if "missing" in result:
        missing = result["missing"]
        return f"waiting for {', '.join(missing)}" if missing else "inputs all there"
    if "ready" in result:
        return (
            f"instance {result['instance_id']} {result.get('state')} ({result.get('market')}),"
            f" SSM agent {result.get('agent')}"
        )
    if "checked" in result:
        return f"output {result['location']} found" if result["checked"] else "no output check"
    if "action" in result:
        what = (
            f"instance {result.get('instance_id')} {result['action']}"
            if result.get("instance_id")
            else "no instance to stop"
        )
        if not result.get("done"):
            verb = {"stopped": "stopping", "terminated": "terminating"}.get(result["action"], "")
            what = f"instance {result.get('instance_id')} {verb}"
        if result.get("volumes_deleted"):
            what += f", volumes deleted: {', '.join(result['volumes_deleted'])}"
        if result.get("relaunch"):
            what += (
                f"; relaunch as attempt {result.get('next_attempt')}"
                f" in {result.get('relaunch_wait_seconds')} s"
            )
        return what
    return ""


@dataclass(kw_only=True)
class RunResult:
    """How an execution ended (or stands): what the CLI prints at the end."""

    status: str
    elapsed_s: float = 0.0
    output: Any = None
    error: str | None = None
    cause: str | None = None
    #: instance id -> its state (or what the cleanup did to it)
    instances: dict[str, str] = field(default_factory=dict)
    #: EBS volumes the cleanup deleted (`ii_delete_volume`), on success or failure.
    volumes_deleted: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"
