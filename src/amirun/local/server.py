"""The whole stack on this machine, long-lived and reachable: what `amirun up` runs.

One process holds the emulator (moto, as a server on 127.0.0.1 too), the stack
deployed into it from template.yaml (`amirun.local.stack`), the emulated EC2/SSM
world, the event bus, and a Scheduler that fires the group's schedules on a
clock that runs `1 / time_scale` times faster than the wall clock. Every remote
command works against it with `AWS_ENDPOINT_URL` pointing at the server.

What EventBridge does on AWS besides the world's events is done here too: when
an execution ends, its "Step Functions Execution Status Change" event goes to
the sweeper and the notifier by their rules; the reconciler runs at the
template's ReconcileSchedule rate on the stack's clock.

Leaving the context stops the Scheduler, stops every execution still running
(their instances are then stopped by the sweeper's path, or by the world's
close), and shuts the server down: nothing is left running.
"""

from __future__ import annotations

import contextlib
import gc
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from amirun.local.cron import fire_times
from amirun.local.eventbridge import execution_status_event
from amirun.local.runner import (
    ACCOUNT,
    REGION,
    EmulatorSession,
    RehearsalOptions,
    emulator_server,
)
from amirun.local.scheduler import Clock, Fired, Scheduler, ScheduleView
from amirun.local.stack import SCHEDULE_GROUP, Deployed, deploy, prepared_starts
from amirun.project import load_template

#: Faults a night's rehearsal draws, one per faulted run (--fault-rate).
DRAWN_FAULTS = ("command-fails", "output-missing", "capacity", "spot-interruption")
#: Wall seconds between two looks at the executions (ended ones are announced).
WATCH_S = 0.2
ENDED = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True)
class StackOptions:
    rehearsal: RehearsalOptions = field(default_factory=RehearsalOptions)
    #: The server's port on 127.0.0.1 (0: any free port).
    port: int = 0
    #: Share (0 to 1) of runs that get one fault drawn from DRAWN_FAULTS.
    fault_rate: float = 0.0
    seed: int | None = None
    #: Every so many wall seconds, what is alive is frozen out of the collector's way
    #: (a night's heap grows; full collections would walk it again and again). Garbage
    #: cycles alive at that moment are then never freed: for a run of bounded length.
    freeze_every_s: float | None = None


def _as_json(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json.dumps(value)


def _moment(moment: Any) -> datetime:
    """A moto execution's start or stop date as a datetime (now if it has none yet)."""
    if isinstance(moment, datetime):
        return moment
    if isinstance(moment, str):
        return datetime.fromisoformat(moment)
    return datetime.now(UTC)


class LocalStack:
    """The deployed stack on the emulator; a context manager (see the module's doc)."""

    def __init__(self, options: StackOptions = StackOptions()) -> None:
        if not 0 <= options.fault_rate <= 1:
            raise ValueError(f"fault rate {options.fault_rate}: must be 0 to 1")
        self.options = options
        self._stack = contextlib.ExitStack()
        self._draws = random.Random(options.seed)  # noqa: S311 - drawing faults
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._announced: set[str] = set()
        self._seen = 0
        self._running: list[Any] = []
        self._running_lock = threading.Lock()
        self.session: EmulatorSession
        self.url = ""
        self.deployed: Deployed
        self.scheduler: Scheduler | None = None
        #: Executions whose end was announced, by status; runs that got a drawn fault.
        self.faulted: dict[str, str] = {}
        self.dead_letters = 0

    # --- life cycle ---------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        if self.options.port:
            _refuse_if_taken(self.options.port)
        try:
            self.session = self._stack.enter_context(EmulatorSession(self.options.rehearsal))
            self.url = self._stack.enter_context(emulator_server(self.options.port))
            self.deployed = deploy(self.session)
            self._stack.enter_context(prepared_starts(self.session, self._drawn_fault))
            self._stack.callback(self._stop_everything)
            self._watcher = threading.Thread(
                target=self._watch, name="amirun-execution-watcher", daemon=True
            )
            self._watcher.start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def start_scheduler(
        self,
        at: datetime | None = None,
        on_fired: Callable[[Fired], None] | None = None,
        until: datetime | None = None,
    ) -> Scheduler:
        """Start firing the group's schedules, the clock starting `at` (default now);
        nothing scheduled at or after `until` fires."""
        speed = 1 / self.options.rehearsal.time_scale
        self.scheduler = Scheduler(
            Clock(at, speed),
            self.group_schedules,
            self.session.boto("stepfunctions"),
            self._send_dead_letter,
            on_fired=on_fired,
            seed=self.options.seed,
        )
        self.scheduler.until = until
        self.scheduler.start()
        return self.scheduler

    def _stop_everything(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._watcher is not None:
            self._watcher.join()
        sfn = self.session.boto("stepfunctions")
        for execution in self.running():
            with contextlib.suppress(Exception):
                sfn.stop_execution(
                    executionArn=execution.exec_arn,
                    error="Interrupted",
                    cause="the local stack was stopped",
                )

    # --- what users export --------------------------------------------------------
    def exports(self) -> list[str]:
        """The lines that point a shell's AWS configuration at this stack."""
        return [
            f"export AWS_ENDPOINT_URL={self.url}",
            "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing"
            f" AWS_DEFAULT_REGION={REGION}",
        ]

    def environment(self) -> dict[str, str]:
        """The same as a mapping (for tests and subprocesses)."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }

    # --- the Scheduler's view of the group ----------------------------------------
    def group_schedules(self) -> list[ScheduleView]:
        from moto.scheduler.models import scheduler_backends

        group = scheduler_backends[ACCOUNT][REGION].schedule_groups.get(SCHEDULE_GROUP)
        if group is None:
            return []
        return [ScheduleView.of(s.to_dict()) for s in list(group.schedules.values())]

    def _send_dead_letter(self, queue_arn: str, body: str, attributes: dict[str, str]) -> None:
        sqs = self.session.boto("sqs")
        url = sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[1])["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={
                key: {"DataType": "String", "StringValue": value or "-"}
                for key, value in attributes.items()
            },
        )
        self.dead_letters += 1

    # --- executions ---------------------------------------------------------------
    def _drawn_fault(self, execution_arn: str) -> None:
        if self.options.fault_rate and self._draws.random() < self.options.fault_rate:
            fault = self._draws.choice(DRAWN_FAULTS)
            self.faulted[execution_arn] = fault
            self.session.world.add_faults(execution_arn, frozenset({fault}))

    def executions(self) -> list[Any]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT][REGION]
        machine = backend.describe_state_machine(self.session.state_machine_arn)
        return list(machine.executions)

    def running(self) -> list[Any]:
        """Executions of the workflow not yet ended."""
        return [e for e in self.executions() if _status(e) not in ENDED]

    def _watch(self) -> None:
        # The reconciler's rate in wall seconds (the clock's jumps would not move it).
        every = self._reconcile_every()
        wall_every = every.total_seconds() * self.options.rehearsal.time_scale if every else None
        next_pass = time.monotonic() + (wall_every or 0)
        freeze = self.options.freeze_every_s
        next_freeze = time.monotonic() + (freeze or 0)
        while not self._stop.wait(WATCH_S):
            self._announce_ends()
            if freeze and time.monotonic() >= next_freeze:
                next_freeze = time.monotonic() + freeze
                gc.freeze()
            if wall_every and time.monotonic() >= next_pass:
                next_pass = time.monotonic() + wall_every
                self.session.endpoint.invoke("ReconcilerFunction", _scheduled_event(_now()))

    def _announce_ends(self) -> None:
        executions = self.executions()
        with self._running_lock:
            self._running.extend(executions[self._seen :])
            self._seen = len(executions)
            still = []
            for execution in self._running:
                status = _status(execution)
                if status in ENDED:
                    self._announce(execution, status)
                else:
                    still.append(execution)
            self._running = still

    def _announce(self, execution: Any, status: str) -> None:
        """Step Functions' status-change event for an ended execution, on the bus."""
        described = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": self.session.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _moment(execution.start_date),
            "stopDate": _moment(execution.stop_date),
            "input": execution.execution_input,
            "output": _as_json(execution.output),
            "error": execution.error,
            "cause": execution.cause,
        }
        self.session.bus.send(execution_status_event(described))

    def _reconcile_every(self) -> timedelta | None:
        default = load_template()["Parameters"]["ReconcileSchedule"]["Default"]
        start = datetime(2026, 1, 1, tzinfo=UTC)
        times = fire_times(default, "UTC", start, start + timedelta(days=2))
        return times[1] - times[0] if len(times) > 1 else None


def _refuse_if_taken(port: int) -> None:
    """OSError at once when the port is taken (the server's thread would only log it)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(
                exc.errno, f"port {port} on 127.0.0.1 is taken ({exc.strerror})"
            ) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _status(execution: Any) -> str:
    status = execution.exec_status
    return str(getattr(status, "value", status))


def _scheduled_event(now: datetime) -> dict[str, Any]:
    """What EventBridge hands a function on a schedule."""
    return {
        "version": "0",
        "id": "local-reconcile",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": f"{now:%Y-%m-%dT%H:%M:%SZ}",
        "region": REGION,
        "resources": [],
        "detail": {},
    }
