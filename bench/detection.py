"""How soon the end of a command is noticed: command end -> EC2Stopper entered.

Runs the sample execution N times (one after the other, on one emulator) with
each design: the end as an event (this design) and the previous 30 s poll
loop (bench/cost.py builds it from the current ASL). The command's end is
the moment the emulated world ends it and publishes Run Command's event; the
stop is EC2Stopper's StateEntered in the execution's history. RunChecker runs
in between in both designs (the run checks its output).

Reported in wall seconds and in emulated seconds (wall / time scale). The
emulated figure is what the run's own clock says; it also multiplies the
emulator's unscaled processing time by 1 / time scale, so it overstates what
AWS would take by that much. The event's delivery delay is shown apart.

    nice .venv/bin/python bench/detection.py [--runs 20] [--time-scale 0.1] [--event-delay 0.05]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from cost import use_poll_loop

from amirun.local.runner import EmulatorSession, RehearsalOptions

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "execution.json"
SSM_END = "EC2 Command Invocation Status-change Notification"


def detections(design: str, runs: int, scale: float, event_delay_s: float) -> list[float]:
    """Wall seconds from each run's command end to its EC2Stopper."""
    request = json.loads(SAMPLE.read_text(encoding="utf-8"))
    request["run_options"].update(poll_interval_s=600 if design == "event" else 30)
    options = RehearsalOptions(
        time_scale=scale, agent_delay_s=0.2, command_duration_s=0.5, event_delay_s=event_delay_s
    )
    found: list[float] = []
    with EmulatorSession(options) as session:
        if design == "poll":
            use_poll_loop(session)
        session.prepare(request)
        for run in range(runs):
            published = len(session.bus.published)
            arn = session.start(request, f"detect-{design}-{run}")
            while session.describe(arn)["status"] == "RUNNING":
                time.sleep(0.1)
            history = session.history(arn)
            ends = [
                t
                for t, event in session.bus.published[published:]
                if event["detail-type"] == SSM_END
            ]
            stopper = next(e["timestamp"] for e in history if _entered(e) == "EC2Stopper")
            found.append((stopper - ends[0]).total_seconds())
            print(f"{design} run {run + 1}: {found[-1]:.2f} s", file=sys.stderr, flush=True)
    return found


def _entered(event: dict[str, Any]) -> str:
    return str((event.get("stateEnteredEventDetails") or {}).get("name", ""))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument(
        "--event-delay", type=float, default=0.05, help="EventBridge's delivery delay (wall s)"
    )
    args = parser.parse_args()
    scale = args.time_scale
    print(
        f"command end -> EC2Stopper entered, {args.runs} runs per design, time scale {scale}, "
        f"event delivery delay {args.event_delay:.2f} s wall ({args.event_delay / scale:.1f} s "
        "emulated)"
    )
    print(f"{'design':<24}{'median wall s':>14}{'median emulated s':>19}{'min-max emulated s':>21}")
    for design, title in (("event", "end event"), ("poll", "30 s poll loop")):
        seconds = detections(design, args.runs, scale, args.event_delay)
        median = statistics.median(seconds)
        print(
            f"{title:<24}{median:>14.2f}{median / scale:>19.1f}"
            f"{f'{min(seconds) / scale:.1f}-{max(seconds) / scale:.1f}':>21}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
