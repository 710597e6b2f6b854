"""Capacity on the emulator: the real ASL and handlers when the first type has none."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="module")
def next_type(rehearsed: Any, basic: Any) -> Any:
    """`--fault capacity`: t4g.small (the file's type) has no capacity, spot or on-demand."""
    return rehearsed(basic(ii_cheapo=True, instance_types=["t4g.medium"]), faults={"capacity"})


def test_with_an_alternative_the_run_succeeds_on_the_next_type(
    next_type: Any, at_rest: Any
) -> None:
    result = next_type.result
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["instance_type"] == "t4g.medium"
    assert result.output["market"] == "spot"
    at_rest(next_type)


def test_the_record_says_which_type_ran_and_why(next_type: Any) -> None:
    note = next_type.result.output["launch_note"]
    assert note.startswith("t4g.medium spot, after t4g.small spot: InsufficientInstanceCapacity")


def test_the_cost_uses_the_spot_price_in_force(next_type: Any) -> None:
    """The emulated world quotes spot at 35% of the list price (moto quotes 0.00001)."""
    usage = next_type.result.output["usage"]
    assert usage["market"] == "spot"
    assert usage["price_basis"].startswith("spot price in force at launch")
    from amirun_core.cost import price_table

    listed = price_table().on_demand_per_hour["t4g.medium"]
    assert usage["price_usd_per_hour"] == pytest.approx(listed * 0.35, rel=1e-3)
