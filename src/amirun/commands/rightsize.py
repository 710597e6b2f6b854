"""`amirun report --rightsize`: schedules whose runs would fit a smaller instance type.

Reads the last N nights of the stack's ledger (`RunLedgerTableName` output), where
EC2Stopper records each attempt's type, cost and peak CPU and memory, and prints one
line per schedule block and instance type (`amirun_core.rightsize`). This module
holds the option parsing and the table; the `report` command calls `add_arguments`
and `cmd_rightsize`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from amirun_core.capacity import InstanceType, describe_types
from amirun_core.cost import price_table
from amirun_core.errors import InvalidExecutionInput
from amirun_core.ledger import read_day
from amirun_core.rightsize import RightsizeRow, rightsize


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("right-sizing (--rightsize)")
    group.add_argument("--nights", type=int, default=7, help="nights to read (default 7)")
    group.add_argument(
        "--threshold",
        type=float,
        default=50.0,
        help="a run is oversized when its peak CPU stayed under this percent (default 50)",
    )
    group.add_argument(
        "--ceiling",
        type=float,
        default=80.0,
        help="a smaller type must hold the peak under this percent (default 80)",
    )
    group.add_argument(
        "--block",
        action="append",
        default=[],
        metavar="PREFIX",
        help="a schedule block: schedules whose name starts with PREFIX (repeatable)",
    )


def nights_before(last: date, nights: int) -> list[date]:
    """`nights` UTC days ending with `last`, oldest first."""
    return [last - timedelta(days=n) for n in reversed(range(nights))]


def type_lookup(ec2: Any) -> Callable[[str], InstanceType | None]:
    """An instance type's vCPUs and memory from EC2 (None for a type EC2 does not know)."""

    def lookup(name: str) -> InstanceType | None:
        try:
            return describe_types(ec2, [name]).get(name)
        except InvalidExecutionInput:
            return None

    return lookup


def rightsize_report(
    dynamodb: Any,
    ec2: Any,
    table: str,
    *,
    last_night: date,
    nights: int,
    threshold: float = 50.0,
    ceiling: float = 80.0,
    blocks: list[str] | None = None,
) -> list[RightsizeRow]:
    """The right-sizing rows for the `nights` nights up to `last_night` (UTC dates)."""
    slots = [s for day in nights_before(last_night, nights) for s in read_day(dynamodb, table, day)]
    prices = price_table().on_demand_per_hour
    return rightsize(
        slots,
        nights=nights,
        types=type_lookup(ec2),
        prices=prices.get,
        threshold=threshold,
        ceiling=ceiling,
        prefixes=blocks or [],
    )


HEADER = ("block", "type", "runs", "under", "peak cpu", "peak mem", "smaller", "$/month", "saving")


def format_rows(rows: list[RightsizeRow], threshold: float) -> str:
    """An aligned table, then one line saying what it means."""
    lines = [HEADER]
    for row in rows:
        lines.append(
            (
                row.block,
                row.instance_type,
                str(row.runs),
                str(row.runs_under),
                f"{row.peak_cpu:.0f}%",
                "-" if row.peak_mem is None else f"{row.peak_mem:.0f}%",
                row.suggestion or "-",
                f"{row.monthly_cost_usd:.2f}",
                f"{row.monthly_saving_usd:.2f}" if row.suggestion else "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    saving = sum(r.monthly_saving_usd for r in rows)
    text.append(
        f"{len(rows)} block(s) and type(s); where every run peaked under {threshold:.0f}% CPU, "
        f"a smaller type of the same family saves {saving:.2f} USD a month at recorded prices"
    )
    return "\n".join(line.rstrip() for line in text)


def cmd_rightsize(
    args: argparse.Namespace, dynamodb: Any, ec2: Any, table: str, out: TextIO = sys.stdout
) -> int:
    """Print the table (or `--json`, one object per row) for the nights up to yesterday."""
    if args.nights < 1:
        print("amirun: --nights must be 1 or more", file=sys.stderr)
        return 2
    last = datetime.now(UTC).date() - timedelta(days=1)
    rows = rightsize_report(
        dynamodb,
        ec2,
        table,
        last_night=getattr(args, "last_night", None) or last,
        nights=args.nights,
        threshold=args.threshold,
        ceiling=args.ceiling,
        blocks=args.block,
    )
    if getattr(args, "json", False):
        for row in rows:
            print(json.dumps(row.to_json()), file=out)
    else:
        print(format_rows(rows, args.threshold), file=out)
    return 0
