"""What a run's instance cost: instance-seconds and an estimate from the price table.

The price table (`ec2_prices.json`, next to this module) holds EC2 list prices
per instance-hour for one region; `make prices` refreshes it from the Pricing
API and the spot price history. The estimate is EC2 compute only (no EBS, no
data transfer): enough to compare runs and schedules, not an invoice. Billing
itself groups real costs by the instances' `amirun:schedule` tag.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

PRICE_FILE = Path(__file__).with_name("ec2_prices.json")


class PriceTable(BaseModel):
    region: str
    currency: str = "USD"
    product: str = ""
    as_of: str
    how_to_refresh: str = ""
    on_demand_per_hour: dict[str, float]
    spot_per_hour: dict[str, float] = {}

    def price(self, instance_type: str, market: str) -> tuple[float | None, str]:
        """(price per hour, what it is). Spot without a spot price: on-demand, an upper bound."""
        if market == "spot" and instance_type in self.spot_per_hour:
            return self.spot_per_hour[instance_type], f"spot average, {self.region} {self.as_of}"
        on_demand = self.on_demand_per_hour.get(instance_type)
        if on_demand is None:
            return None, f"{instance_type} is not in the price table"
        basis = "on-demand list price"
        if market == "spot":
            basis = "on-demand list price (upper bound: no spot price in the table)"
        return on_demand, f"{basis}, {self.region} {self.as_of}"


@functools.cache
def price_table(path: Path = PRICE_FILE) -> PriceTable:
    return PriceTable.model_validate(json.loads(path.read_text(encoding="utf-8")))


class UsageRecord(BaseModel):
    """One attempt's instance: what it was, how long it lived, what that cost."""

    instance_type: str
    market: str
    instance_seconds: int = Field(description="From launch until stopped or terminated.")
    estimated_cost_usd: float | None = Field(
        None, description="instance_seconds x price_usd_per_hour; None for an unknown type."
    )
    price_usd_per_hour: float | None = None
    price_basis: str = ""
    run_instance_seconds: int = Field(0, description="This attempt and the ones before it.")
    run_estimated_cost_usd: float | None = None
    cpu_max: float | None = Field(None, description="Peak CPUUtilization over the command, %.")
    cpu_avg: float | None = Field(None, description="Average CPUUtilization over the command, %.")
    mem_max: float | None = Field(
        None, description="Peak mem_used_percent, when the AMI runs the CloudWatch agent."
    )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def instance_market(instance: dict[str, Any]) -> str:
    """`spot` or `on-demand`, as EC2 describes the instance."""
    return "spot" if instance.get("InstanceLifecycle") == "spot" else "on-demand"


def instance_usage(
    instance: dict[str, Any],
    ended: datetime,
    earlier: list[UsageRecord] | None = None,
    table: PriceTable | None = None,
    spot_price: float | None = None,
) -> UsageRecord:
    """The usage of an instance as EC2 describes it, at rest at `ended`.

    `spot_price`: the spot price in force at launch (DescribeSpotPriceHistory),
    used for a spot instance instead of the table's.
    """
    table = table or price_table()
    instance_type = str(instance.get("InstanceType", "unknown"))
    market = instance_market(instance)
    launched: datetime | None = instance.get("LaunchTime")
    seconds = max(0, round((ended - launched).total_seconds())) if launched else 0
    if market == "spot" and spot_price is not None:
        price: float | None = spot_price
        zone = instance.get("Placement", {}).get("AvailabilityZone", "")
        basis = f"spot price in force at launch, {zone}"
    else:
        price, basis = table.price(instance_type, market)
    cost = round(price * seconds / 3600, 6) if price is not None else None
    earlier = earlier or []
    earlier_costs = [u.estimated_cost_usd for u in earlier]
    run_cost = None
    if cost is not None and None not in earlier_costs:
        run_cost = round(cost + sum(c for c in earlier_costs if c is not None), 6)
    return UsageRecord(
        instance_type=instance_type,
        market=market,
        instance_seconds=seconds,
        estimated_cost_usd=cost,
        price_usd_per_hour=price,
        price_basis=basis,
        run_instance_seconds=seconds + sum(u.instance_seconds for u in earlier),
        run_estimated_cost_usd=run_cost,
    )
