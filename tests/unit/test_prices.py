"""`make prices`: the price table refreshed from the Price List API and spot history.

moto has no Price List API and invents its spot history, so both calls are
answered by botocore's Stubber with responses shaped as AWS documents them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from amirun import prices
from amirun_core.cost import PRICE_FILE, PriceTable, price_table

NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def product(usd: str) -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceType": "m8g.xlarge"}},
            "terms": {
                "OnDemand": {
                    "SKU.JRTCKXETXF": {
                        "priceDimensions": {
                            "SKU.JRTCKXETXF.6YS6EN2CT7": {
                                "unit": "Hrs",
                                "pricePerUnit": {"USD": usd},
                            }
                        }
                    }
                }
            },
        }
    )


@pytest.fixture
def clients() -> tuple[Any, Any]:
    # Credentials are the fake ones the unit tests' environment sets.
    return boto3.client("pricing", region_name="us-east-1"), boto3.client("ec2")


def test_refresh_reads_on_demand_and_averages_spot(clients: tuple[Any, Any]) -> None:
    pricing, ec2 = clients
    table = PriceTable(region="us-east-1", as_of="2026-01", on_demand_per_hour={"m8g.xlarge": 1})
    with Stubber(pricing) as priced, Stubber(ec2) as spot:
        priced.add_response(
            "get_products",
            {"PriceList": [product("0.1795200000")], "FormatVersion": "aws_v1"},
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "MaxResults": 10},
        )
        priced.add_response("get_products", {"PriceList": []}, None)
        history = [
            {"AvailabilityZone": z, "InstanceType": "m8g.xlarge", "SpotPrice": p, "Timestamp": NOW}
            for z, p in (("us-east-1a", "0.0700"), ("us-east-1b", "0.0740"))
        ]
        spot.add_response("describe_spot_price_history", {"SpotPriceHistory": history}, None)

        updated, missing = prices.refresh(
            table, pricing, ec2, region="us-east-1", add=["x9.huge"], now=NOW
        )

    assert updated.on_demand_per_hour == {"m8g.xlarge": 0.17952}
    assert updated.spot_per_hour == {"m8g.xlarge": 0.072}
    assert (updated.as_of, missing) == ("2026-11-27", ["x9.huge"])


def test_the_filters_ask_for_linux_shared_tenancy_in_the_region(clients: tuple[Any, Any]) -> None:
    pricing, _ = clients
    filters = {
        "instanceType": "t4g.small",
        "regionCode": "eu-west-1",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    expected = {
        "ServiceCode": "AmazonEC2",
        "Filters": [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in filters.items()],
        "MaxResults": 10,
    }
    with Stubber(pricing) as priced:
        priced.add_response("get_products", {"PriceList": [product("0.0184")]}, expected)

        assert prices.on_demand_price(pricing, "t4g.small", "eu-west-1") == 0.0184


def test_the_shipped_table_round_trips_through_the_refresher_format(tmp_path: Path) -> None:
    """What `make prices` writes is what the functions read."""
    table = price_table()
    copy = tmp_path / "ec2_prices.json"
    copy.write_text(json.dumps(table.model_dump(mode="json"), indent=2), encoding="utf-8")

    assert price_table(copy) == table
    assert json.loads(PRICE_FILE.read_text(encoding="utf-8"))["region"] == table.region
