"""`amirun`: rehearse an execution locally, validate it, start and follow real runs.

amirun run EXECUTION.json            rehearse on the embedded emulator
amirun validate EXECUTION.json       check the file, no AWS calls
amirun render EXECUTION.json [--at TIME] [--json]   the file as it will run (DAILY resolved)
amirun start EXECUTION.json --stack NAME [--name RUN] [--follow]
amirun status RUN --stack NAME
amirun logs RUN --stack NAME
amirun runs --stack NAME [--since 24h] [--status S] [--schedule PREFIX] [--json] [--wide]
amirun rerun RUN --stack NAME [--name NEW]
amirun report --stack NAME [--night D | --since 7d] [SCHEDULE_FILE...] [--by B] [--json] [--html F]
amirun schedules expand|render|plan|apply|backfill|rehearse ...   schedule sets declared in files
amirun doctor --stack NAME [--canary --instance-profile P]   does the deployed stack work?
amirun up [--port N] [--time-scale X]   the whole stack on this machine, until Ctrl-C
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
from typing import NoReturn

from amirun.commands import doctor, remote, render, report, run, runs, schedules, up, validate
from amirun.commands.common import EXIT_INTERRUPTED, EXIT_USAGE

#: One module per command group, in the order `amirun --help` lists them.
COMMAND_GROUPS = (run, validate, render, remote, runs, report, schedules, doctor, up)


class _Parser(argparse.ArgumentParser):
    """A wrong flag or value gets one line, like every other answer (subparsers too)."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="amirun", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    for action in sub._choices_actions:
        command, summary = sub.choices[action.dest], action.help or ""
        # `amirun X --help` always says what X does, even if its module gave no description.
        command.description = command.description or f"{summary[:1].upper()}{summary[1:]}."
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and hasattr(signal, "SIGPIPE"):
        # `amirun run ... | head` ends quietly, like any command-line tool.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        args = build_parser().parse_args(argv)
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("amirun: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if argv is None:
        # The process ends here: its last collections would walk every object still
        # alive (over a second after a rehearsal, for nothing).
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
