"""Cost fields: instance type, market, instance-seconds and an estimate from the price table.

moto starts and stops instances at once, so the clock is moved forward an hour
(timing.now) to give the instance a lifetime worth pricing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from unit_helpers import (
    STACK_NAME,
    FakeLambdaContext,
    launch,
    make_request,
    make_state,
    with_records,
)

from amirun_core import timing
from amirun_core.cleanup import stop_instance
from amirun_core.cost import PRICE_FILE, PriceTable, UsageRecord, instance_usage, price_table
from amirun_core.execution import parse_execution
from amirun_core.launch import TAG_SCHEDULE, launch_parameters

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

T4G_SMALL = 0.0168
LAUNCHED = datetime(2025, 6, 1, 6, 0, tzinfo=UTC)


def instance(instance_type: str = "t4g.small", spot: bool = False) -> dict[str, Any]:
    described: dict[str, Any] = {"InstanceType": instance_type, "LaunchTime": LAUNCHED}
    if spot:
        described["InstanceLifecycle"] = "spot"
    return described


def test_the_price_table_is_valid_and_names_its_region_and_date() -> None:
    table = price_table()

    assert table.region == "us-east-1"
    assert table.as_of
    assert "make prices" in table.how_to_refresh
    assert table.on_demand_per_hour["t4g.small"] == T4G_SMALL
    # The instance types the NextGen schedules use are priced.
    assert {"m8g.xlarge", "m8g.2xlarge", "m8g.4xlarge"} <= table.on_demand_per_hour.keys()
    assert all(price > 0 for price in table.on_demand_per_hour.values())
    assert PRICE_FILE.name == "ec2_prices.json"


def test_an_hour_on_demand_costs_the_hourly_price() -> None:
    usage = instance_usage(instance(), LAUNCHED + timedelta(hours=1))

    assert (usage.instance_type, usage.market) == ("t4g.small", "on-demand")
    assert usage.instance_seconds == usage.run_instance_seconds == 3600
    assert usage.estimated_cost_usd == usage.run_estimated_cost_usd == T4G_SMALL
    assert usage.price_usd_per_hour == T4G_SMALL
    assert usage.price_basis.startswith("on-demand list price, us-east-1")


def test_spot_uses_the_spot_price_when_the_table_has_one() -> None:
    table = PriceTable(
        region="us-east-1",
        as_of="2026-11",
        on_demand_per_hour={"m8g.xlarge": 0.17952},
        spot_per_hour={"m8g.xlarge": 0.072},
    )
    with_spot = instance_usage(
        instance("m8g.xlarge", spot=True), LAUNCHED + timedelta(minutes=30), table=table
    )
    without = instance_usage(
        instance("m8g.xlarge", spot=True),
        LAUNCHED + timedelta(minutes=30),
        table=table.model_copy(update={"spot_per_hour": {}}),
    )

    assert (with_spot.market, with_spot.estimated_cost_usd) == ("spot", 0.036)
    assert with_spot.price_basis.startswith("spot average")
    assert without.estimated_cost_usd == round(0.17952 / 2, 6)
    assert "upper bound" in without.price_basis


def test_an_unknown_type_has_seconds_but_no_estimate() -> None:
    usage = instance_usage(instance("x9z.huge"), LAUNCHED + timedelta(seconds=90))

    assert usage.instance_seconds == 90
    assert usage.estimated_cost_usd is None
    assert usage.run_estimated_cost_usd is None
    assert usage.price_basis == "x9z.huge is not in the price table"


def test_run_totals_add_the_earlier_attempts() -> None:
    earlier = instance_usage(instance(), LAUNCHED + timedelta(minutes=30))

    usage = instance_usage(instance(), LAUNCHED + timedelta(hours=1), [earlier])

    assert usage.instance_seconds == 3600
    assert usage.run_instance_seconds == 5400
    assert usage.run_estimated_cost_usd == round(T4G_SMALL * 1.5, 6)


@pytest.fixture
def an_hour_later(monkeypatch: pytest.MonkeyPatch) -> Callable[[], datetime]:
    """timing.now is an hour after the real clock (moto's LaunchTime is the real clock)."""
    real = timing.now
    monkeypatch.setattr(timing, "now", lambda: real() + timedelta(hours=1))
    return real


def stopped(ec2: Any, state: Any) -> Any:
    first = stop_instance(ec2, state)
    return stop_instance(ec2, with_records(state, cleanup=first))


def test_the_stopper_records_usage_once_at_rest(ec2: Any, an_hour_later: Any) -> None:
    state, _ = launch(ec2, make_state(make_request(ii_terminate_instance=True)))

    first = stop_instance(ec2, state)
    final = stop_instance(ec2, with_records(state, cleanup=first))

    assert first.usage is None  # still shutting down
    assert final.done and final.usage is not None
    assert (final.usage.instance_type, final.usage.market) == ("t4g.small", "on-demand")
    assert 3590 <= final.usage.instance_seconds <= 3610
    assert final.usage.estimated_cost_usd == pytest.approx(T4G_SMALL, rel=0.01)


def test_a_failed_attempt_keeps_its_usage_for_the_next(ec2: Any, an_hour_later: Any) -> None:
    state, _ = launch(ec2, make_state(make_request(n_retries_allowed=1, retry_delay_s=0)))
    state = with_records(state, error={"Error": "CommandFailed", "Cause": "exit code 1"})

    final = stopped(ec2, state)

    (attempt,) = final.attempts
    assert attempt.usage == final.usage
    assert final.usage is not None
    second = make_state(make_request(), attempt=2, past_attempts=[attempt.to_json()])
    second, _ = launch(ec2, second)
    again = stopped(ec2, second)
    assert again.usage is not None
    assert again.usage.run_instance_seconds == (
        again.usage.instance_seconds + final.usage.instance_seconds
    )


def test_the_stopper_counts_usage_in_its_metrics_with_the_schedule(
    ec2: Any,
    load_handler: Callable[[str], ModuleType],
    capsys: pytest.CaptureFixture[str],
    an_hour_later: Any,
) -> None:
    request = {**make_request(ii_terminate_instance=True), "schedule": {"name": "vpu03W-m1"}}
    state, _ = launch(ec2, make_state(request))
    stopper = load_handler("stopper")
    event = state.to_json()
    first = stopper.lambda_handler(event, FakeLambdaContext())
    capsys.readouterr()

    stopper.lambda_handler({**event, "cleanup": first}, FakeLambdaContext())

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    (blob,) = [b for b in emitted if "InstanceSeconds" in b]
    metrics = {m["Name"]: m for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert metrics["InstanceSeconds"]["Unit"] == "Seconds"
    (seconds,) = blob["InstanceSeconds"]
    (cost,) = blob["EstimatedCostUSD"]
    assert 3590 <= seconds <= 3610
    assert cost == pytest.approx(T4G_SMALL, rel=0.01)
    assert (blob["schedule"], blob["instance_type"], blob["market"]) == (
        "vpu03W-m1",
        "t4g.small",
        "on-demand",
    )


def test_the_starter_tags_instance_and_volume_with_the_schedule(ec2: Any) -> None:
    request = {**make_request(), "schedule": {"name": "vpu03W-m1"}}

    _, record = launch(ec2, make_state(request))

    instance = ec2.describe_instances(InstanceIds=[record.instance_id])["Reservations"][0]
    tags = {t["Key"]: t["Value"] for t in instance["Instances"][0]["Tags"]}
    assert tags[TAG_SCHEDULE] == "vpu03W-m1"
    params = launch_parameters(
        parse_execution(request), make_state(request), STACK_NAME, spot=False
    )
    (volume,) = [s for s in params["TagSpecifications"] if s["ResourceType"] == "volume"]
    assert {"Key": TAG_SCHEDULE, "Value": "vpu03W-m1"} in volume["Tags"]


def test_no_schedule_no_schedule_tag() -> None:
    request = make_request()

    params = launch_parameters(
        parse_execution(request), make_state(request), STACK_NAME, spot=False
    )

    keys = {t["Key"] for spec in params["TagSpecifications"] for t in spec["Tags"]}
    assert TAG_SCHEDULE not in keys


def test_usage_record_is_json() -> None:
    usage = instance_usage(instance(), LAUNCHED + timedelta(hours=1))

    assert UsageRecord.model_validate(json.loads(json.dumps(usage.to_json()))) == usage
    assert Path(PRICE_FILE).is_file()
