"""Many executions of the real workflow at once, on one emulator, and what they left behind.

All executions share one state machine, one Lambda endpoint (with its
concurrency limit) and one emulated world, as runs share an account on AWS.
The report says whether each execution did what one execution must: succeed,
launch exactly one instance, and leave it stopped or terminated.
"""

from __future__ import annotations

import json
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amirun.local.runner import EmulatorSession, RehearsalOptions
from amirun_core.launch import TAG_ATTEMPT, TAG_EXECUTION

#: How a run ends when it found no room or no capacity.
CAPACITY_ERRORS = frozenset({"InstanceQueueTimeout", "InsufficientCapacity"})
#: Instance states that no longer bill for compute.
AT_REST = frozenset({"stopped", "terminated"})


@dataclass
class LoadReport:
    executions: int
    statuses: Counter[str] = field(default_factory=Counter)
    #: Instances tagged with one of the executions, and how many are not at rest.
    instances_launched: int = 0
    instances_left_running: int = 0
    #: Instances beyond one per attempt, plus commands beyond one per instance.
    duplicates: int = 0
    commands_sent: int = 0
    wall_s: float = 0.0
    peak_memory_mb: float = 0.0
    lambda_invocations: int = 0
    lambda_peak_concurrency: int = 0
    lambda_throttled: int = 0
    lambda_longest_s: float = 0.0
    #: Attempts of EC2/SSM calls refused as throttled, and calls still throttled after
    #: the SDK's own retries (the steps' AwsThrottled, retried by the state machine).
    throttled_attempts: int = 0
    throttled_calls: int = 0
    #: A few failed executions, `name: error: cause`, to say what went wrong.
    failures: list[str] = field(default_factory=list)
    #: Waiting for room (the stack's vCPU limit) and capacity: the longest wait of a
    #: run that succeeded (seconds on the workflow's clock), the most vCPUs running at
    #: once, launches the emulated quota refused, and runs that ended for capacity.
    longest_room_wait_s: float = 0.0
    peak_vcpus: int = 0
    quota_refusals: int = 0
    failed_for_capacity: int = 0

    @property
    def succeeded(self) -> int:
        return self.statuses["SUCCEEDED"]

    @property
    def executions_per_s(self) -> float:
        return self.executions / self.wall_s if self.wall_s else 0.0

    @property
    def all_good(self) -> bool:
        return (
            self.succeeded == self.executions
            and self.instances_launched == self.executions
            and self.instances_left_running == 0
            and self.duplicates == 0
        )


def run_load(
    request: dict[str, Any],
    executions: int,
    options: RehearsalOptions | None = None,
    on_tick: Callable[[Counter[str], float], None] | None = None,
    poll_s: float = 1.0,
) -> LoadReport:
    """Start `executions` runs of `request` at once and wait for all of them to end."""
    invocations = 0

    def count(_: object) -> None:
        nonlocal invocations
        invocations += 1

    report = LoadReport(executions)
    with EmulatorSession(options or RehearsalOptions(), count) as session:
        session.prepare(request)
        started = time.monotonic()
        arns = [session.start(request, f"load-{i:04d}") for i in range(executions)]
        while True:
            statuses = _statuses(session, arns)
            if on_tick is not None:
                on_tick(statuses, time.monotonic() - started)
            if not statuses["RUNNING"]:
                break
            time.sleep(poll_s)
        report.wall_s = time.monotonic() - started
        report.statuses = statuses
        _look_at_the_account(session, arns, report)
        report.lambda_invocations = invocations
        report.lambda_peak_concurrency = session.endpoint.peak_concurrency
        report.lambda_throttled = session.endpoint.throttled
        report.lambda_longest_s = session.endpoint.longest_s
        report.throttled_attempts = session.world.throttled_attempts
        report.throttled_calls = session.world.throttled_calls
        report.peak_vcpus = session.world.peak_vcpus
        report.quota_refusals = session.world.quota_refusals
    report.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _statuses(session: EmulatorSession, arns: list[str]) -> Counter[str]:
    pages = session.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=session.state_machine_arn
    )
    mine = set(arns)
    return Counter(
        execution["status"]
        for page in pages
        for execution in page["executions"]
        if execution["executionArn"] in mine
    )


def _look_at_the_account(session: EmulatorSession, arns: list[str], report: LoadReport) -> None:
    """Instances per execution and attempt, from their tags; commands per instance."""
    mine = set(arns)
    per_attempt: Counter[tuple[str, str]] = Counter()
    with session.world.emulator_calls():
        pages = list(session.clients["ec2"].get_paginator("describe_instances").paginate())
    for page in pages:
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                execution = tags.get(TAG_EXECUTION, "")
                if execution not in mine:
                    continue
                per_attempt[execution, tags.get(TAG_ATTEMPT, "")] += 1
                report.instances_launched += 1
                if instance["State"]["Name"] not in AT_REST:
                    report.instances_left_running += 1
    commands = session.world.commands_per_instance()
    report.commands_sent = sum(commands.values())
    # One instance per attempt, one command per instance: anything more is a duplicate.
    report.duplicates = sum(n - 1 for n in per_attempt.values()) + sum(
        n - 1 for n in commands.values()
    )
    for arn in arns:
        described = session.describe(arn)
        if described.get("output"):
            waited = json.loads(described["output"]).get("waited_for_room_s") or 0.0
            report.longest_room_wait_s = max(report.longest_room_wait_s, float(waited))
        if described.get("error") in CAPACITY_ERRORS:
            report.failed_for_capacity += 1
        if described["status"] != "SUCCEEDED" and len(report.failures) < 5:
            report.failures.append(
                f"{described['name']}: {described.get('error')}: {described.get('cause')}"
            )
