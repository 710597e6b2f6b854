"""`amirun`: rehearse an execution locally, validate it, start and follow real runs.

amirun run EXECUTION.json            rehearse on the embedded emulator
amirun validate EXECUTION.json       check the file, no AWS calls
amirun start EXECUTION.json --stack NAME [--name RUN] [--follow]
amirun status RUN --stack NAME
amirun logs RUN --stack NAME
amirun runs --stack NAME [--since 24h] [--status S] [--schedule PREFIX] [--json]
amirun rerun RUN --stack NAME [--name NEW]
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys

from amirun.commands import remote, run, runs, validate

#: One module per command group, in the order `amirun --help` lists them.
COMMAND_GROUPS = (run, validate, remote, runs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    if argv is None:
        # The process ends here: its last collections would walk every object still
        # alive (over a second after a rehearsal, for nothing).
        gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(main())
