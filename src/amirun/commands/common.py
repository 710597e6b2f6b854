"""What every command group shares: exit codes, reading an execution file, printing results."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from amirun.files import FileTooLarge, UnreadableFile, read_regular_file
from amirun.progress import Progress, RunResult
from amirun_core.errors import InvalidExecutionInput, one_line_cause
from amirun_core.execution import (
    MAX_INPUT_BYTES,
    ExecutionRequest,
    RunOptions,
    decode_execution,
    parse_execution,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: After Ctrl-C or SIGTERM, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130


def handler_log_file() -> str:
    """A fresh file for the handlers' logs (in a temporary folder of its own): a summary
    names it, and --verbose shows the logs on stderr instead."""
    return str(Path(tempfile.mkdtemp(prefix="amirun-")) / "amirun-handlers.log")


def usage_error(message: str) -> SystemExit:
    print(f"amirun: {message}", file=sys.stderr)
    return SystemExit(EXIT_USAGE)


#: Larger files are refused unread: an execution JSON is at most MAX_INPUT_BYTES as
#: JSON, and even generous indentation does not make it 16 times that.
MAX_FILE_BYTES = 16 * MAX_INPUT_BYTES


def read_execution_file(path: str) -> dict[str, Any]:
    """The file's JSON object; InvalidExecutionInput (one line) when it cannot be one.

    A FIFO or a device is refused without blocking (see `amirun.files`)."""
    try:
        data = read_regular_file(path, MAX_FILE_BYTES, "an execution JSON file")
    except FileTooLarge:
        raise InvalidExecutionInput(
            f"larger than {MAX_FILE_BYTES:,} bytes: no execution JSON is that big "
            f"(at most {MAX_INPUT_BYTES:,} bytes as JSON)"
        ) from None
    except UnreadableFile as exc:
        raise InvalidExecutionInput(str(exc)) from None
    return decode_execution(data)


def load_execution(path: str) -> dict[str, Any]:
    """The file's JSON object, or exit 2 with one line saying why it cannot be read."""
    try:
        return read_execution_file(path)
    except InvalidExecutionInput as exc:
        raise usage_error(f"{path}: {exc}") from None


def validated_execution(path: str) -> tuple[dict[str, Any], ExecutionRequest] | None:
    """The file's JSON and what it asks for; None, after naming every problem, when
    it is invalid (the command then exits EXIT_FAILED, launching nothing)."""
    raw = load_execution(path)
    try:
        return raw, parse_execution(raw)
    except InvalidExecutionInput as exc:
        print_problems(path, exc, sys.stderr)
        return None


def print_problems(path: str, exc: InvalidExecutionInput, out: TextIO) -> None:
    print(f"{path}: invalid execution JSON", file=out)
    for problem in exc.problems:
        print(f"  - {problem}", file=out)


def progress_printer(out: TextIO, verbose: bool = False) -> Any:
    """Prints progress lines; the plumbing's ("detail") only when `verbose`."""

    def show(event: Progress) -> None:
        if event.kind == "detail" and not verbose:
            return
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


def end_of_run(options: RunOptions) -> str:
    """What happens to the instance once the run is over, as the summaries say it."""
    if options.ii_terminate_instance:
        what = "terminate the instance"
    elif options.ii_cheapo:
        what = "stop the instance, or terminate it if it runs on spot (EC2 cannot stop those)"
    else:
        what = "stop the instance"
    return what + (" and delete its volumes" if options.ii_delete_volume else "")


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
        if output.get("market") == "spot":
            print(
                "  spot      the instance is terminated, not stopped (EC2 cannot stop "
                "a one-time spot instance)",
                file=out,
            )
    else:
        error = f": {result.error}" if result.error else ""
        print(f"{result.status} in {result.elapsed_s:.1f} s{error}", file=out)
        if result.cause:
            print(f"  cause     {one_line_cause(result.cause)}", file=out)
    for instance_id, state in result.instances.items():
        print(f"  instance  {instance_id} {state}", file=out)
    if result.volumes_deleted:
        print(f"  volumes   deleted: {', '.join(result.volumes_deleted)}", file=out)
    for note in result.notes:
        print(f"  note      {note}", file=out)
