"""The records the state machine carries from step to step.

The execution's state is one JSON object: the user's execution JSON under
`request`, the execution's context, and one record per step (`instance`,
`command`, `check`, `cleanup`, `error`). Every Task receives the whole state and
its result replaces one record, so a record is all a later step (or the
cleanup after a failure) needs to know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from amirun_core.cost import UsageRecord
from amirun_core.daily import Resolution
from amirun_core.execution import read_execution


class _Record(BaseModel):
    # Records are ours, but a newer state machine may add fields: ignore them.
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ExecutionContext(_Record):
    id: str = Field(description="The execution ARN ($$.Execution.Id).")
    name: str
    start_time: datetime


class InstanceRecord(_Record):
    instance_id: str
    attempt: int
    client_token: str
    market: Literal["spot", "on-demand"]
    launched_at: datetime
    ready_deadline: datetime
    state: str = "pending"
    agent: str = "unknown"
    ready: bool = False
    wait_seconds: int = 1
    instance_type: str | None = Field(None, description="The type that launched.")
    zone: str | None = Field(None, description="Its Availability Zone.")
    launch_note: str = Field(
        "", description="Which pool launched and why the ones tried before it did not."
    )
    spot_price_usd_per_hour: float | None = Field(
        None, description="The spot price in force for the type and zone at launch."
    )


class CommandRecord(_Record):
    command_id: str
    instance_id: str
    sent_at: datetime
    deadline: datetime
    status: str = "Pending"
    status_details: str = ""
    exit_code: int | None = None
    done: bool = False
    wait_seconds: int = 1
    output_url: str | None = Field(None, description="s3:// prefix of the full stdout/stderr.")
    execution_url: str | None = Field(
        None, description="s3:// URL of the resolved execution the Commander recorded."
    )
    record_url: str | None = Field(
        None,
        description="s3:// URL of the execution JSON written under the output prefix.",
    )
    stdout_tail: str = ""
    stderr_tail: str = ""
    ended_at: datetime | None = None


class CheckRecord(_Record):
    checked: bool
    location: str | None = None
    size: int | None = None
    last_modified: datetime | None = None


class InputsRecord(_Record):
    """The input gate: do the objects `run_options.inputs` names exist yet?"""

    ready: bool
    missing: list[str] = []
    deadline: datetime
    wait_seconds: int = 1


class CaughtError(_Record):
    """What a Catch puts in ResultPath: Step Functions' own field names."""

    Error: str
    Cause: str | None = None


class RoomRecord(_Record):
    """ClaimRoom's answer: may the run launch now, and if not, when to look again."""

    granted: bool
    key: str = Field(description="The claim's key: execution name and attempt.")
    vcpus: int = 0
    attempt: int = 1
    first_look: datetime
    deadline: datetime
    wait_seconds: int = 1
    ahead: int | None = Field(None, description="Waiters with older tickets, at the last look.")
    waited_s: float = 0.0
    limited: bool = False


class AttemptRecord(_Record):
    attempt: int
    instance_id: str | None
    error: str
    cause: str | None
    usage: UsageRecord | None = None


class CleanupRecord(_Record):
    instance_id: str | None
    action: Literal["stopped", "terminated", "none"]
    done: bool
    wait_seconds: int = 1
    deadline: datetime | None = None
    volumes: list[str] = []
    volumes_deleted: list[str] = []
    error: str | None = Field(
        None, description="On the failure path: the error that ended the run."
    )
    cause: str | None = None
    relaunch: bool = False
    next_attempt: int | None = None
    relaunch_wait_seconds: int = 0
    attempts: list[AttemptRecord] = []
    usage: UsageRecord | None = Field(
        None, description="The instance's type, market, lifetime and estimated cost."
    )


class ClaimRecord(_Record):
    """ClaimSlot: the run's slot in the ledger, and whether this execution holds it."""

    slot: str = Field(description="The ledger key: slot#<schedule>#<scheduled time>.")
    claimed: bool
    owner: str = Field(description="The execution ARN that holds the slot.")
    schedule: str
    scheduled_time: datetime


class WorkflowState(_Record):
    """The input of every Task in the state machine."""

    request: Any
    execution: ExecutionContext
    claim: ClaimRecord | None = None
    resolved: Resolution | None = Field(
        None, description="The Resolve step's result: DAILY resolved once for every attempt."
    )
    inputs: InputsRecord | None = None
    room: RoomRecord | None = Field(None, description="ClaimRoom: the run's vCPU claim.")
    launch_refused: CaughtError | None = Field(
        None, description="The starter's last capacity refusal, while the run waits for room."
    )
    attempt: int = 1
    past_attempts: list[AttemptRecord] = []
    instance: InstanceRecord | None = None
    command: CommandRecord | None = None
    check: CheckRecord | None = None
    cleanup: CleanupRecord | None = None
    error: CaughtError | None = None

    def resolution(self) -> Resolution:
        """The run as Resolve resolved it; an execution from before that step, on the spot."""
        if self.resolved is not None:
            return self.resolved
        return read_execution(self.request).resolve(self.execution.start_time)

    def resolved_commands(self) -> list[str]:
        """The commands this run sends: the input's, DAILY resolved as Resolve said."""
        return read_execution(self.request).resolved_commands(self.resolution())

    @property
    def schedule_name(self) -> str | None:
        return schedule_name(self.request)


def schedule_name(request: Any) -> str | None:
    """The execution's `schedule.name`, when a schedule started it (else None)."""
    schedule = request.get("schedule") if isinstance(request, dict) else None
    name = schedule.get("name") if isinstance(schedule, dict) else None
    return name if isinstance(name, str) and name else None


class CommandWait(_Record):
    """The input of WaitForCommandEnd: the workflow state and the step's task token."""

    task_token: str = Field(min_length=1, description="$$.Task.Token, ended by SendTask*.")
    state: WorkflowState
