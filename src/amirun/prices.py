"""Refresh the EC2 price table the cost estimates use (`make prices`; needs AWS credentials).

For every instance type in layers/core/amirun_core/ec2_prices.json (and any
given with --add), the on-demand Linux price per hour comes from the AWS Price
List API and the spot price is the average of the last day's spot price
history across the region's zones. The table is rewritten in place; commit it
and redeploy so the functions' layer carries it.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import fmean
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from amirun_core.cost import PRICE_FILE, PriceTable

#: The Price List API answers in these regions only; us-east-1 holds every region's prices.
PRICING_REGION = "us-east-1"


def on_demand_price(pricing: Any, instance_type: str, region: str) -> float | None:
    """USD per hour for Linux, shared tenancy, no pre-installed software; None if unlisted."""
    filters = {
        "instanceType": instance_type,
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    response = pricing.get_products(
        ServiceCode="AmazonEC2",
        Filters=[{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        MaxResults=10,
    )
    for product in map(json.loads, response.get("PriceList", [])):
        for term in product.get("terms", {}).get("OnDemand", {}).values():
            for dimension in term.get("priceDimensions", {}).values():
                usd = float(dimension.get("pricePerUnit", {}).get("USD", 0))
                if dimension.get("unit") == "Hrs" and usd > 0:
                    return usd
    return None


def spot_price(ec2: Any, instance_type: str, now: datetime) -> float | None:
    """The mean Linux spot price of the last day over every zone; None without history."""
    pages = ec2.get_paginator("describe_spot_price_history").paginate(
        InstanceTypes=[instance_type],
        ProductDescriptions=["Linux/UNIX"],
        StartTime=now - timedelta(days=1),
        EndTime=now,
    )
    prices = [float(p["SpotPrice"]) for page in pages for p in page["SpotPriceHistory"]]
    return round(fmean(prices), 6) if prices else None


def refresh(
    table: PriceTable, pricing: Any, ec2: Any, *, region: str, add: list[str], now: datetime
) -> tuple[PriceTable, list[str]]:
    """The table with current prices, and the types no price was found for."""
    types = sorted(set(table.on_demand_per_hour) | set(add))
    on_demand: dict[str, float] = {}
    spot: dict[str, float] = {}
    missing = []
    for instance_type in types:
        price = on_demand_price(pricing, instance_type, region)
        if price is None:
            missing.append(instance_type)
            continue
        on_demand[instance_type] = price
        average = spot_price(ec2, instance_type, now)
        if average is not None:
            spot[instance_type] = average
    updated = table.model_copy(
        update={
            "region": region,
            "as_of": f"{now:%Y-%m-%d}",
            "on_demand_per_hour": on_demand,
            "spot_per_hour": spot,
        }
    )
    return updated, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amirun.prices", description=__doc__)
    parser.add_argument("--region", help="the stack's region (default: the table's)")
    parser.add_argument("--add", action="append", default=[], help="also price this type")
    parser.add_argument("--file", type=Path, default=PRICE_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    table = PriceTable.model_validate(json.loads(args.file.read_text(encoding="utf-8")))
    region = args.region or table.region
    try:
        updated, missing = refresh(
            table,
            boto3.client("pricing", region_name=PRICING_REGION),
            boto3.client("ec2", region_name=region),
            region=region,
            add=args.add,
            now=datetime.now(UTC),
        )
    except (ClientError, BotoCoreError) as exc:
        print(f"amirun: cannot read prices: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(updated.model_dump(mode="json"), indent=2, sort_keys=False)
    args.file.write_text(text + "\n", encoding="utf-8")
    print(
        f"{args.file.name}: {len(updated.on_demand_per_hour)} on-demand and "
        f"{len(updated.spot_per_hour)} spot prices for {region} as of {updated.as_of}"
    )
    for instance_type in missing:
        print(f"  no on-demand price for {instance_type} in {region}: left out", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
