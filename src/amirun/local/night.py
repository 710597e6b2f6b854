"""A whole day of schedules rehearsed on the local stack, on a compressed clock.

The schedules are applied to the local stack's group as `schedules apply` does,
and the stack's own Scheduler fires them. The clock starts at the day's first
second (UTC) and runs `1 / time_scale` times faster than the wall clock; while
fewer than `max_in_flight` runs are under way, it jumps to the next due start
instead of waiting for it. The order of the starts and the scheduled times
they carry are the day's; how much they overlap is not (the quota's refusals
then say how a burst fares, not how that day would). The day ends when every
start due that day has been made or dead-lettered and no run is left running.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from typing import Any

from amirun import schedule_sync
from amirun.local.cron import fire_times
from amirun.local.load import AT_REST
from amirun.local.runner import ACCOUNT, REGION
from amirun.local.scheduler import Fired
from amirun.local.server import LocalStack, StackOptions
from amirun.schedules import Schedule
from amirun_core.cost import price_table
from amirun_core.launch import TAG_ATTEMPT, TAG_EXECUTION

#: Runs under way at most before the clock stops jumping ahead.
MAX_IN_FLIGHT = 200
#: The night's heap is frozen this often (see StackOptions.freeze_every_s).
FREEZE_EVERY_S = 2.0
#: Wall seconds between two looks at the night.
LOOK_S = 0.25


@dataclass
class NightReport:
    day: date
    due: int = 0
    started: int = 0
    dead_lettered: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_error: Counter[str] = field(default_factory=Counter)
    faults_drawn: Counter[str] = field(default_factory=Counter)
    #: Instances launched, and those not stopped or terminated at the end.
    instances: int = 0
    left_running: int = 0
    #: Starts beyond one per schedule and time, instances beyond one per attempt,
    #: commands beyond one per instance.
    duplicates: int = 0
    #: In the rehearsal's time (wall seconds / time scale), priced at on-demand list prices.
    instance_hours: float = 0.0
    cost_usd: float = 0.0
    quota_refusals: int = 0
    #: The longest a run that succeeded waited for room (vCPU limit, quota, capacity),
    #: on the workflow's clock.
    longest_room_wait_s: float = 0.0
    wall_s: float = 0.0
    peak_memory_mb: float = 0.0
    log_file: str | None = None

    @property
    def runs_per_s(self) -> float:
        return self.started / self.wall_s if self.wall_s else 0.0

    @property
    def ended(self) -> int:
        return sum(n for status, n in self.by_status.items() if status != "RUNNING")

    def lines(self) -> list[str]:
        """The night's summary, as a person reads it first."""
        statuses = ", ".join(f"{n} {s.lower()}" for s, n in self.by_status.most_common())
        lines = [
            f"Night of {self.day}: {self.due} starts due, {self.started} started, "
            f"{self.dead_lettered} dead-lettered",
            f"  by end:    {statuses or 'none'}",
        ]
        if self.by_error:
            errors = ", ".join(f"{e} {n}" for e, n in self.by_error.most_common())
            lines.append(f"  by error:  {errors}")
        if self.faults_drawn:
            drawn = ", ".join(f"{f} {n}" for f, n in self.faults_drawn.most_common())
            lines.append(f"  faults drawn: {drawn}")
        lines += [
            f"  instances: {self.instances} launched, {self.left_running} left running, "
            f"{self.duplicates} duplicates"
            + (
                f", {self.quota_refusals} launches refused for the vCPU quota"
                if self.quota_refusals
                else ""
            ),
        ]
        if self.longest_room_wait_s:
            lines.append(
                f"  longest wait for room: {self.longest_room_wait_s:,.0f} s (rehearsal time)"
            )
        lines += [
            f"  instance-hours: {self.instance_hours:.1f} (rehearsal time), "
            f"about ${self.cost_usd:.2f} at on-demand list prices",
            f"  wall {self.wall_s:.1f} s, {self.runs_per_s:.2f} runs/s, "
            f"peak memory {self.peak_memory_mb:.0f} MB",
        ]
        if self.log_file:
            lines.append(f"  the handlers' logs: {self.log_file}")
        return lines


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, day_time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def due_starts(schedules: list[Schedule], day: date) -> int:
    """Starts the schedules make during `day` (UTC)."""
    start, end = day_bounds(day)
    return sum(
        len(fire_times(s.expression, s.time_zone, start, end)) for s in schedules if s.enabled
    )


def rehearse_night(
    schedules: list[Schedule],
    day: date,
    options: StackOptions,
    on_started: Callable[[NightReport, int], None] | None = None,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> NightReport:
    """Fire every schedule of `day` through a local stack; the night's report.

    `on_started(report, in_flight)` is called each time more runs have started."""
    report = NightReport(day, due=due_starts(schedules, day))
    report.log_file = options.rehearsal.log_file
    start, end = day_bounds(day)
    fired: list[Fired] = []
    wall = time.monotonic()
    if options.freeze_every_s is None:
        options = dataclasses.replace(options, freeze_every_s=FREEZE_EVERY_S)
    with LocalStack(options) as local:
        _apply(local, schedules)
        scheduler = local.start_scheduler(start, on_fired=fired.append, until=end)
        while True:
            in_flight = len(local.running())
            # Start what is due next, jumping the clock to it, while there is room.
            while in_flight < max_in_flight:
                due = scheduler.next_due(end)
                if due is None:
                    break
                if due > scheduler.clock.now():
                    scheduler.clock.jump_to(due)
                started = scheduler.tick()
                if not started:
                    break
                in_flight += started
            if on_started is not None:
                now_started = sum(1 for f in fired if f.execution_arn)
                if now_started != report.started:
                    report.started = now_started
                    on_started(report, in_flight)
            # Nothing more due before the day's end, nothing under way.
            if in_flight == 0 and scheduler.next_due(end) is None:
                break
            time.sleep(LOOK_S)
        scheduler.stop()
        report.wall_s = time.monotonic() - wall
        _count(local, fired, report)
    report.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _apply(local: LocalStack, schedules: list[Schedule]) -> None:
    outputs = local.deployed.outputs
    destination = schedule_sync.Destination(
        group=outputs["ScheduleGroupName"],
        state_machine_arn=outputs["StateMachineArn"],
        role_arn=outputs["SchedulerRoleArn"],
        dead_letter_arn=outputs["ScheduleDeadLetterQueueArn"],
    )
    client = local.session.boto("scheduler")
    failures = schedule_sync.apply(client, schedule_sync.plan(client, schedules, destination))
    if failures:
        raise RuntimeError(f"{failures[0].change.name}: {failures[0].message}")


def _count(local: LocalStack, fired: list[Fired], report: NightReport) -> None:
    arns = {f.execution_arn for f in fired if f.execution_arn}
    report.started = len(arns)
    report.dead_lettered = sum(1 for f in fired if f.execution_arn is None)
    starts = Counter((f.schedule, f.scheduled_time) for f in fired if f.execution_arn)
    report.duplicates = sum(n - 1 for n in starts.values())
    for execution in local.executions():
        if execution.exec_arn not in arns:
            continue
        status = str(getattr(execution.exec_status, "value", execution.exec_status))
        report.by_status[status] += 1
        if status != "SUCCEEDED":
            report.by_error[str(execution.error or status)] += 1
        else:
            report.longest_room_wait_s = max(
                report.longest_room_wait_s, _room_wait_s(execution.output)
            )
    report.faults_drawn = Counter(local.faulted.values())
    # The handlers measure the wait on the wall clock; the rehearsal's time runs 1/scale as fast.
    report.longest_room_wait_s /= local.options.rehearsal.time_scale
    _look_at_instances(local, arns, report)
    world = local.session.world
    report.quota_refusals = world.quota_refusals
    scale = local.options.rehearsal.time_scale
    table = price_table()
    for _, instance_type, wall_s in world.instance_lives():
        hours = (wall_s or 0.0) / scale / 3600
        report.instance_hours += hours
        price, _ = table.price(instance_type, "on-demand")
        report.cost_usd += (price or 0.0) * hours


def _room_wait_s(output: Any) -> float:
    """`waited_for_room_s` of a succeeded execution's output (a dict, or its JSON)."""
    if isinstance(output, str):
        output = json.loads(output)
    waited = output.get("waited_for_room_s") if isinstance(output, dict) else None
    return float(waited or 0.0)


def _look_at_instances(local: LocalStack, arns: set[str], report: NightReport) -> None:
    """From the emulator's own tables: a DescribeInstances of a night's instances, all
    serialised and parsed again, would take longer than some of the runs."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][REGION]
    per_attempt: Counter[tuple[str, str]] = Counter()
    for reservation in list(backend.reservations.values()):
        for instance in reservation.instances:
            tags = backend.tags.get(instance.id, {})
            if tags.get(TAG_EXECUTION) not in arns:
                continue
            per_attempt[tags[TAG_EXECUTION], tags.get(TAG_ATTEMPT, "")] += 1
            report.instances += 1
            if instance.state not in AT_REST:
                report.left_running += 1
    commands = local.session.world.commands_per_instance()
    report.duplicates += sum(n - 1 for n in per_attempt.values()) + sum(
        n - 1 for n in commands.values()
    )
