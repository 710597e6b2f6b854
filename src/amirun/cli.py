"""`amirun`: rehearse an execution locally, validate it, start and follow real runs.

amirun run EXECUTION.json            rehearse on the embedded emulator
amirun validate EXECUTION.json       check the file, no AWS calls
amirun start EXECUTION.json --stack NAME [--name RUN] [--follow]
amirun status RUN --stack NAME
amirun logs RUN --stack NAME
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

from amirun.commands import remote, run, validate
from amirun.commands.common import EXIT_INTERRUPTED, EXIT_USAGE

#: One module per command group, in the order `amirun --help` lists them.
COMMAND_GROUPS = (run, validate, remote)


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
    return code


if __name__ == "__main__":
    sys.exit(main())
