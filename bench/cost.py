"""What waiting for the command costs: this design, the 30 s poll loop before it, the original.

Rehearses the sample execution with commands lasting 10 min, 1 h, 6 h and 48 h
(shrunk by the time scale) on the real ASL and handlers, and counts from each
execution's real history the state transitions, Lambda invocations and (with
a hook on the handlers' DynamoDB client) the token table's writes and reads
spent between the Commander's exit and RunChecker's entry: the wait, where
the designs differ. Everything else in a run is the same in both amirun
designs.

A rehearsal's clock is shrunk, but the emulator's own overhead is not: in a
rehearsal a wait round takes a little longer than its scaled interval, so it
makes fewer rounds than AWS would. Each row is therefore priced as
    (the end of the wait, as measured) + (one round, as measured) x (rounds on AWS)
where the rounds on AWS follow from the intervals the steps compute; the
rounds the rehearsal made are shown next to them. The previous design is
the current ASL with the token wait replaced by its Wait state (poll every
30 s, longer for long commands as it was); its 6 h and 48 h rows are priced
from its 1 h rehearsal's rounds. The original is priced from its shape: a
128 MB x86 Lambda sleeping through the run, 800 s per invocation.

Prices: AWS_FACTS.md (us-east-1 list prices). Lambda time is charged as
BILLED_MS per invocation at the template's 256 MB arm64.

    nice .venv/bin/python bench/cost.py [--durations 600,3600,21600,172500]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amirun.local.lambda_endpoint import Invocation
from amirun.local.runner import (
    ACCOUNT,
    REGION,
    STACK_NAME,
    EmulatorSession,
    RehearsalOptions,
)
from amirun.project import load_workflow
from amirun_core import timing

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"

# --- Prices (AWS_FACTS.md, "Prices") --------------------------------------------------------
TRANSITION = 0.000025
LAMBDA_REQUEST = 0.20 / 1e6
ARM_GB_S = 0.0000133334
X86_GB_S = 0.0000166667
DDB_WRITE = 0.625 / 1e6
DDB_READ = 0.125 / 1e6
#: What one of our invocations is billed (a look at SSM and a DynamoDB call), 256 MB arm64.
BILLED_MS = 200
MEMORY_GB = 0.25
HISTORY_LIMIT = timing.HISTORY_LIMIT

#: The previous design: every 30 s at least, its loops spread over 1,800 per execution.
PREVIOUS_POLL_S = 30
PREVIOUS_BUDGET = 1_800
#: The original: the poller sleeps in a 128 MB x86 Lambda, up to 800 s per invocation.
ORIGINAL_INVOCATION_S = 800
ORIGINAL_GB = 0.125
#: Its loop per invocation: the poller Task, then the Choice that sends it back.
ORIGINAL_TRANSITIONS_PER_INVOCATION = 2

LOOP_STATES = {"event": "EC2Poller", "poll": "WaitForCommand"}


@dataclass
class Counts:
    transitions: float = 0
    invocations: float = 0
    writes: float = 0
    reads: float = 0
    history: float = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def __mul__(self, k: float) -> Counts:
        return Counts(*(a * k for a in self.astuple()))

    def __sub__(self, other: Counts) -> Counts:
        return self + other * -1

    def astuple(self) -> tuple[float, ...]:
        return (self.transitions, self.invocations, self.writes, self.reads, self.history)

    def dollars(self) -> float:
        return (
            self.transitions * TRANSITION
            + self.invocations * (LAMBDA_REQUEST + BILLED_MS / 1000 * MEMORY_GB * ARM_GB_S)
            + self.writes * DDB_WRITE
            + self.reads * DDB_READ
        )


@dataclass
class Measured:
    design: str
    duration_s: int
    wait: Counts
    rounds: int
    whole_history: int
    detection_s: float | None = None
    calls: Counter[str] = field(default_factory=Counter)


def poll_loop_definition(definition: str) -> str:
    """The current ASL with the token wait replaced by the previous Wait-and-poll loop."""
    asl = json.loads(definition)
    states: dict[str, Any] = {}
    for name, state in asl["States"].items():
        if name == "WaitForCommandEnd":
            states["WaitForCommand"] = {
                "Type": "Wait",
                "SecondsPath": "$.command.wait_seconds",
                "Next": "EC2Poller",
            }
        else:
            states[name] = state
    states["Commander"]["Next"] = "WaitForCommand"
    states["IsCommandDone"]["Default"] = "WaitForCommand"
    asl["States"] = states
    return json.dumps(asl)


def use_poll_loop(session: EmulatorSession) -> None:
    """Start the session's executions on the previous design's state machine from now on."""
    workflow = load_workflow()
    arn_of = {
        logical_id: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{logical_id}"
        for logical_id in workflow.functions
    }
    session.state_machine_arn = session.sfn.create_state_machine(
        name=f"{STACK_NAME}-poll-loop",
        definition=poll_loop_definition(workflow.definition(arn_of)),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-workflow",
        type="STANDARD",
    )["stateMachineArn"]


def look_interval(design: str, timeout_s: int) -> int:
    if design == "event":
        return timing.command_look_interval(600, timeout_s, 1)
    return timing.spread_interval(PREVIOUS_POLL_S, timeout_s, 1, PREVIOUS_BUDGET)


def timeout_for(duration_s: int) -> int:
    """The run's timeout_s: room above the command, within SSM's 48 hours."""
    return min(172_800, max(3_600, math.ceil(duration_s * 1.25)))


def rehearse_wait(design: str, duration_s: int, agent_delay_s: float = 0.2) -> Measured:
    """One rehearsal whose command lasts `duration_s` (emulated); the wait's counts."""
    timeout_s = timeout_for(duration_s)
    interval = look_interval(design, timeout_s)
    scale = 1 / interval  # each wait round is one second
    request = json.loads(SAMPLE.read_text(encoding="utf-8"))
    request["run_options"].update(
        timeout_s=timeout_s,
        poll_interval_s=600 if design == "event" else interval,
        ii_check_s3=False,
        n_retries_allowed=0,
    )
    options = RehearsalOptions(
        time_scale=scale,
        agent_delay_s=agent_delay_s,
        command_duration_s=duration_s * scale,
        event_delay_s=0.05,
    )
    invoked: Counter[str] = Counter()
    calls: Counter[str] = Counter()

    def on_invoke(invocation: Invocation) -> None:
        invoked[invocation.function] += 1

    with EmulatorSession(options, on_invoke) as session:
        from amirun_core import aws

        dynamodb = aws.client("dynamodb")

        def count(event_name: str, **_: Any) -> None:
            calls[event_name.rsplit(".", 1)[1]] += 1

        dynamodb.meta.events.register("before-call.dynamodb", count)
        if design == "poll":
            use_poll_loop(session)
        session.prepare(request)
        arn = session.start(request, f"cost-{design}-{duration_s}")
        while session.describe(arn)["status"] == "RUNNING":
            time.sleep(0.2)
        status = session.describe(arn)["status"]
        if status != "SUCCEEDED":
            raise SystemExit(f"{design} {duration_s} s: the rehearsal ended {status}")
        history = session.history(arn)
        ended = [t for t, e in session.bus.published if _is_command_end(e)]
    return _count_wait(design, duration_s, history, invoked=invoked, calls=calls, ended=ended)


def _is_command_end(event: dict[str, Any]) -> bool:
    return bool(
        event["detail-type"] == "EC2 Command Invocation Status-change Notification"
        and event["detail"]["status"] == "Success"
    )


def _count_wait(
    design: str,
    duration_s: int,
    history: list[dict[str, Any]],
    *,
    invoked: Counter[str],
    calls: Counter[str],
    ended: list[Any],
) -> Measured:
    entered = [
        (i, e["stateEnteredEventDetails"]["name"])
        for i, e in enumerate(history)
        if e["type"].endswith("StateEntered")
    ]
    start = next(i for i, name in entered if name == "Commander")
    end = next(i for i, name in entered if name == "RunChecker")
    window = history[start:end]
    states_entered = sum(1 for e in window if e["type"].endswith("StateEntered")) - 1  # Commander
    scheduled = [e for e in window if e["type"] in ("TaskScheduled", "LambdaFunctionScheduled")]
    # A retry schedules the Task again without entering the state again: it is billed too.
    task_entries = sum(
        1 for e in window if e["type"] == "TaskStateEntered" and _name(e) != "Commander"
    )
    commander_schedules = 1
    retries = max(0, len(scheduled) - commander_schedules - task_entries)
    lambdas = len(scheduled) - commander_schedules + invoked.get("SettlerFunction", 0)
    rounds = sum(1 for _, name in entered if name == LOOP_STATES[design])
    stopper = next(e["timestamp"] for e in history if _name(e) == "EC2Stopper")
    detection = (stopper - ended[0]).total_seconds() if ended else None
    wait = Counts(
        transitions=states_entered + retries,
        invocations=lambdas,
        writes=calls.get("PutItem", 0) + calls.get("DeleteItem", 0),
        reads=calls.get("GetItem", 0),
        history=len(window),
    )
    return Measured(design, duration_s, wait, rounds, len(history), detection, calls)


def _name(event: dict[str, Any]) -> str:
    return str((event.get("stateEnteredEventDetails") or {}).get("name", ""))


def on_aws(measured: Measured, per_round: Counts, duration_s: int) -> tuple[Counts, int, int]:
    """The wait of a `duration_s` command on AWS: (counts, rounds, whole-run history events)."""
    interval = look_interval(measured.design, timeout_for(duration_s))
    if measured.design == "event":
        rounds = duration_s // interval
    else:
        rounds = math.ceil(duration_s / interval)
    end = measured.wait - per_round * measured.rounds
    counts = end + per_round * rounds
    history = round(measured.whole_history + per_round.history * (rounds - measured.rounds))
    return counts, rounds, history


def per_round_of(measured: Measured, end_only: Measured) -> Counts:
    """One round's counts: the difference a rehearsal's rounds make over a run with fewer."""
    extra = measured.rounds - end_only.rounds
    if extra <= 0:
        raise SystemExit(f"{measured.design}: the longer rehearsal made no more rounds")
    return (measured.wait - end_only.wait) * (1 / extra)


def original(duration_s: int) -> float:
    invocations = math.ceil(duration_s / ORIGINAL_INVOCATION_S)
    return (
        duration_s * ORIGINAL_GB * X86_GB_S
        + invocations * LAMBDA_REQUEST
        + invocations * ORIGINAL_TRANSITIONS_PER_INVOCATION * TRANSITION
    )


def label(seconds: int) -> str:
    """The duration, to the nearest hour or minute (48 h is 172,500 s)."""
    return f"{round(seconds / 3600)} h" if seconds >= 3600 else f"{round(seconds / 60)} min"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--durations",
        default="600,3600,21600,172500",
        help="command durations in seconds (48 h is 172,500 s: under SSM's 172,800 s limit)",
    )
    args = parser.parse_args()
    durations = [int(d) for d in args.durations.split(",")]

    rows = []
    measured: dict[tuple[str, int], Measured] = {}
    for design, runs in (("event", durations), ("poll", [d for d in durations if d <= 3600])):
        for duration in runs:
            began = time.monotonic()
            measured[design, duration] = rehearse_wait(design, duration)
            m = measured[design, duration]
            print(
                f"rehearsed {design} {label(duration)}: {m.rounds} rounds, "
                f"{m.whole_history} history events, {time.monotonic() - began:.0f} s wall",
                file=sys.stderr,
                flush=True,
            )
    shortest, longest_event = min(durations), max(durations)
    per_round = {
        "event": per_round_of(measured["event", longest_event], measured["event", shortest]),
        "poll": per_round_of(
            measured["poll", max(d for d in durations if d <= 3600)], measured["poll", shortest]
        ),
    }
    for duration in durations:
        hours = duration / 3600
        reference = original(duration) / hours
        for design, title in (("event", "events + safety look"), ("poll", "30 s poll loop")):
            base = (
                measured.get((design, duration))
                or measured[design, max(d for d in durations if (design, d) in measured)]
            )
            counts, rounds, history = on_aws(base, per_round[design], duration)
            per_hour = counts.dollars() / hours
            rows.append(
                (
                    label(duration),
                    title,
                    f"{counts.transitions:.0f}",
                    f"{counts.invocations:.0f}",
                    f"{counts.writes:.0f}",
                    f"{rounds} ({base.rounds if base.duration_s == duration else '-'})",
                    f"${per_hour:.5f}",
                    f"{per_hour / reference:.3f}",
                    f"{history} ({history / HISTORY_LIMIT:.1%})",
                )
            )
        rows.append(
            (
                label(duration),
                "original (sleeping Lambda)",
                f"{math.ceil(duration / ORIGINAL_INVOCATION_S) * 2}",
                f"{math.ceil(duration / ORIGINAL_INVOCATION_S)}",
                "0",
                "-",
                f"${reference:.5f}",
                "1.000",
                "-",
            )
        )
    header = (
        "command",
        "design",
        "transitions",
        "Lambda calls",
        "DDB writes",
        "rounds AWS (rehearsal)",
        "$/run-hour",
        "x original",
        "history events (of 25,000)",
    )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    event_round = per_round["event"]
    print(
        f"\none safety round: {event_round.transitions:.1f} transitions, "
        f"{event_round.invocations:.1f} Lambda calls, {event_round.writes:.1f} DynamoDB writes, "
        f"{event_round.history:.1f} history events (timing.EVENTS_PER_SAFETY_ROUND = "
        f"{timing.EVENTS_PER_SAFETY_ROUND}); Lambda billed {BILLED_MS} ms at 256 MB arm64"
    )
    detections = [m.detection_s for m in measured.values() if m.detection_s is not None]
    if detections:
        median = statistics.median(detections)
        print(f"(command end -> EC2Stopper, wall seconds, median {median:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
