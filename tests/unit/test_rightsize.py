"""Right-sizing: utilisation read at cleanup, written on the run's slot, and the table."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit_helpers import RUN_LEDGER_TABLE, launch, make_request, make_state, with_records

from amirun.commands.rightsize import cmd_rightsize, format_rows
from amirun.local.runner import create_ledger_table
from amirun_core import aws, ledger
from amirun_core.capacity import InstanceType
from amirun_core.cleanup import stop_instance
from amirun_core.ledger import run_slot as slot_of
from amirun_core.rightsize import rightsize
from amirun_core.slot_facts import record_cleanup
from amirun_core.utilisation import instance_utilisation

DUE = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)


def publish(cloudwatch: Any, instance_id: str, at: datetime, cpu: list[float]) -> None:
    """CPUUtilization as EC2's basic monitoring would publish it (moto keeps what it is given)."""
    cloudwatch.put_metric_data(
        Namespace="AWS/EC2",
        MetricData=[
            {
                "MetricName": "CPUUtilization",
                "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                "Timestamp": at + timedelta(minutes=5 * n),
                "Value": value,
            }
            for n, value in enumerate(cpu)
        ],
    )


def test_cpu_max_and_average_over_the_commands_span(emulator: Any) -> None:
    """GetMetricStatistics with Maximum and Average over 5-minute periods
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html)."""
    cloudwatch = aws.client("cloudwatch")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    publish(cloudwatch, "i-0123456789abcdef0", start, [10.0, 30.0, 20.0])
    publish(cloudwatch, "i-0123456789abcdef0", start + timedelta(hours=2), [99.0])

    used = instance_utilisation(
        cloudwatch, "i-0123456789abcdef0", start, start + timedelta(minutes=12)
    )

    assert (used.cpu_max, used.cpu_avg) == (30.0, 20.0)
    assert used.mem_max is None  # no agent: no memory metric


def test_cleanup_records_the_utilisation_and_the_stopper_writes_it_on_the_slot(
    ec2: Any, emulator: Any
) -> None:
    dynamodb = aws.client("dynamodb")
    create_ledger_table(dynamodb, RUN_LEDGER_TABLE)
    cloudwatch = aws.client("cloudwatch")
    request = make_request(ii_terminate_instance=True)
    request["schedule"] = {"name": "short_range_03W", "scheduled_time": DUE.isoformat()}
    state, instance = launch(ec2, make_state(request))
    sent = datetime.now(UTC) - timedelta(minutes=2)
    state = with_records(
        state,
        command={
            "command_id": "c-1",
            "instance_id": instance.instance_id,
            "sent_at": sent,
            "deadline": sent + timedelta(hours=1),
            "ended_at": sent + timedelta(minutes=1),
        },
    )
    publish(cloudwatch, instance.instance_id, sent, [42.0])
    slot = slot_of(state.request, state.execution.name, state.execution.start_time).key
    assert slot == ledger.slot_key("short_range_03W", DUE)
    ledger.claim_slot(
        dynamodb,
        RUN_LEDGER_TABLE,
        slot=slot,
        execution_arn=state.execution.id,
        schedule="short_range_03W",
        scheduled_time=DUE,
        started_at=DUE,
    )
    record = stop_instance(ec2, state, cloudwatch)
    while not record.done:
        record = stop_instance(ec2, with_records(state, cleanup=record), cloudwatch)

    assert record.usage is not None and record.usage.cpu_max == 42.0
    assert record_cleanup(dynamodb, RUN_LEDGER_TABLE, state, record)
    attempt = ledger.read_slot(dynamodb, RUN_LEDGER_TABLE, slot)["attempts"]["1"]
    assert attempt["instance_type"] == "t4g.small"
    assert attempt["cpu_max"] == 42
    assert attempt["launch_note"] == "t4g.small on-demand: the first choice"
    assert "cost_usd" in attempt


TYPES = {
    "m5.2xlarge": InstanceType("m5.2xlarge", 8, frozenset({"x86_64"}), 32768),
    "m5.xlarge": InstanceType("m5.xlarge", 4, frozenset({"x86_64"}), 16384),
    "m5.large": InstanceType("m5.large", 2, frozenset({"x86_64"}), 8192),
}
PRICES = {"m5.2xlarge": 0.384, "m5.xlarge": 0.192, "m5.large": 0.096}


def slot(
    schedule: str, instance_type: str, cpu: float, cost: float, mem: float | None = None
) -> Any:
    attempt = {"instance_type": instance_type, "cpu_max": cpu, "cost_usd": cost}
    if mem is not None:
        attempt["mem_max"] = mem
    return {"schedule": schedule, "attempts": {"1": attempt}}


def test_a_block_that_never_peaked_over_the_threshold_gets_the_smaller_type() -> None:
    slots = [
        slot("short_range_01", "m5.2xlarge", 30.0, 0.10),
        slot("short_range_02", "m5.2xlarge", 25.0, 0.10),
        slot("medium_range_01", "m5.2xlarge", 70.0, 0.50),
    ]

    rows = rightsize(
        slots,
        nights=2,
        types=TYPES.get,
        prices=PRICES.get,
        prefixes=["short_range_", "medium_range_"],
    )

    short, medium = rows
    # 30% of 8 vCPUs is 60% of 4 (under 80%), 120% of 2: m5.xlarge holds it.
    assert (short.block, short.runs, short.runs_under) == ("short_range_", 2, 2)
    assert short.suggestion == "m5.xlarge"
    assert short.monthly_cost_usd == pytest.approx(0.20 / 2 * 30)
    assert short.monthly_saving_usd == pytest.approx(3.0 * 0.5)
    assert (medium.suggestion, medium.monthly_saving_usd) == (None, 0.0)
    table = format_rows(rows, 50.0)
    assert "short_range_   m5.2xlarge  2     2      30%" in table
    assert table.endswith("saves 1.50 USD a month at recorded prices")


def test_memory_keeps_a_run_on_its_size() -> None:
    rows = rightsize(
        [slot("s", "m5.2xlarge", 10.0, 0.1, mem=70.0)],
        nights=1,
        types=TYPES.get,
        prices=PRICES.get,
    )
    # CPU would fit m5.large; 70% of 32 GiB is 140% of 16 GiB: no smaller type holds it.
    assert rows[0].suggestion is None


def test_the_report_reads_the_nights_from_the_ledger(ec2: Any, emulator: Any) -> None:
    dynamodb = aws.client("dynamodb")
    create_ledger_table(dynamodb, RUN_LEDGER_TABLE)
    for night in range(3):
        due = DUE + timedelta(days=night)
        key = ledger.slot_key("short_range_01", due)
        ledger.claim_slot(
            dynamodb,
            RUN_LEDGER_TABLE,
            slot=key,
            execution_arn=f"arn:x:{night}",
            schedule="short_range_01",
            scheduled_time=due,
            started_at=due,
        )
        ledger.record_attempt(
            dynamodb,
            RUN_LEDGER_TABLE,
            slot=key,
            execution_arn=f"arn:x:{night}",
            attempt=1,
            fields={"instance_type": "m5.2xlarge", "cpu_max": 20.0, "cost_usd": 0.4},
        )
    args = argparse.Namespace(
        nights=2,
        threshold=50.0,
        ceiling=80.0,
        block=[],
        json=True,
        last_night=DUE.date() + timedelta(days=2),
    )
    out = io.StringIO()

    assert cmd_rightsize(args, dynamodb, ec2, RUN_LEDGER_TABLE, out) == 0

    (line,) = out.getvalue().splitlines()
    assert '"runs": 2' in line  # the last two nights only
    assert '"suggestion": "m5.large"' in line  # 20% of 8 vCPUs is 80% of 2
