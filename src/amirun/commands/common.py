"""What every command group shares: exit codes, reading an execution file, printing results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from amirun.progress import Progress, RunResult
from amirun_core.errors import InvalidExecutionInput, one_line_cause

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def usage_error(message: str) -> SystemExit:
    print(f"amirun: {message}", file=sys.stderr)
    return SystemExit(EXIT_USAGE)


def load_execution(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise usage_error(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise usage_error(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise usage_error(f"{path}: the execution JSON must be an object")
    return data


def print_problems(path: str, exc: InvalidExecutionInput, out: TextIO) -> None:
    print(f"{path}: invalid execution JSON", file=out)
    for problem in exc.problems:
        print(f"  - {problem}", file=out)


def progress_printer(out: TextIO) -> Any:
    def show(event: Progress) -> None:
        if event.kind == "state":
            line = f"{event.elapsed_s:7.1f}s  {event.state}"
        elif event.kind == "note":
            line = f"  {event.detail}"
        elif event.kind == "error":
            line = f"{'':9}  ! {event.detail}"
        else:
            line = f"{'':9}  {event.detail}"
        print(line, file=out, flush=True)

    return show


def print_result(result: RunResult, out: TextIO) -> None:
    print(file=out)
    if result.succeeded:
        print(f"SUCCEEDED in {result.elapsed_s:.1f} s", file=out)
        output = result.output or {}
        print(
            f"  command   {output.get('command_id')} {output.get('command_status')}"
            f" (exit {output.get('exit_code')})",
            file=out,
        )
        checked = output.get("checked_object") or {}
        if checked.get("checked"):
            print(f"  output    {checked.get('location')} ({checked.get('size')} bytes)", file=out)
        if output.get("output_url"):
            print(f"  logs      {output['output_url']}", file=out)
        usage = output.get("usage") or {}
        if usage:
            cost = usage.get("run_estimated_cost_usd")
            print(
                f"  usage     {usage.get('instance_type')} {usage.get('market')},"
                f" {usage.get('run_instance_seconds')} instance-seconds"
                + (f", about ${cost:.4f} of EC2" if cost is not None else ""),
                file=out,
            )
    else:
        error = f": {result.error}" if result.error else ""
        print(f"{result.status} in {result.elapsed_s:.1f} s{error}", file=out)
        if result.cause:
            print(f"  cause     {one_line_cause(result.cause)}", file=out)
    for instance_id, state in result.instances.items():
        print(f"  instance  {instance_id} {state}", file=out)
    for note in result.notes:
        print(f"  note      {note}", file=out)
