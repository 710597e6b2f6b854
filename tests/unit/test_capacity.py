"""Spot across types, on-demand last: the ordered launch, the architecture check, the
spot price in force, on moto's EC2.

moto never runs out of capacity and quotes every spot price at 0.00001 USD: the
refusals and the price history are answered by botocore hooks (`answer`), as
each test says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit_helpers import REGION, STACK_NAME, all_instances, answer, error, make_request, ok
from unit_helpers import make_state as state_of

from amirun_core import capacity
from amirun_core.cost import instance_usage
from amirun_core.errors import InsufficientCapacity, InvalidExecutionInput
from amirun_core.launch import launch_instance


def pool_of(params: dict[str, Any]) -> tuple[str, str]:
    spot = params.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    return params["InstanceType"], "spot" if spot else "on-demand"


def short_of(*pools: tuple[str, str], code: str = "InsufficientInstanceCapacity") -> Any:
    """EC2 answering `code` for the given (type, market) pools; moto launches the rest."""

    def respond(params: dict[str, Any]) -> Any:
        if pool_of(params) in pools:
            return error(code, f"no {params['InstanceType']} capacity in us-east-1a")
        return None

    return respond


def alternatives(*types: str, first: str = "m5.xlarge", **options: Any) -> dict[str, Any]:
    request = make_request(instance_types=list(types), **options)
    request["instance_parameters"]["InstanceType"] = first
    return request


def test_ii_cheapo_tries_spot_across_every_type_before_on_demand(ec2: Any) -> None:
    refused = [("m5.xlarge", "spot"), ("c5.xlarge", "spot"), ("m5.xlarge", "on-demand")]
    calls = answer(ec2, "RunInstances", short_of(*refused))

    record = launch_instance(ec2, state_of(alternatives("c5.xlarge", ii_cheapo=True)), STACK_NAME)

    assert [pool_of(c) for c in calls] == [*refused, ("c5.xlarge", "on-demand")]
    assert (record.instance_type, record.market) == ("c5.xlarge", "on-demand")
    assert record.launch_note.startswith("c5.xlarge on-demand, after m5.xlarge spot: ")
    assert "InsufficientInstanceCapacity" in record.launch_note
    (instance,) = all_instances(ec2)
    assert instance["InstanceType"] == "c5.xlarge"
    # One idempotency token per pool: a retried launch finds the pool's own instance.
    assert len({c["ClientToken"] for c in calls}) == len(calls)


def test_the_first_type_with_capacity_wins_and_says_it_was_the_first_choice(ec2: Any) -> None:
    calls = answer(ec2, "RunInstances")

    record = launch_instance(ec2, state_of(alternatives("c5.xlarge")), STACK_NAME)

    assert [pool_of(c) for c in calls] == [("m5.xlarge", "on-demand")]
    assert record.instance_type == "m5.xlarge"
    assert record.launch_note == "m5.xlarge on-demand: the first choice"


def test_a_vcpu_quota_refusal_moves_on_to_the_next_type(ec2: Any) -> None:
    """VcpuLimitExceeded is RunInstances' answer past the account's vCPU quota
    (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-on-demand-instances.html#ec2-on-demand-instances-limits)."""
    answer(ec2, "RunInstances", short_of(("m5.xlarge", "on-demand"), code="VcpuLimitExceeded"))

    record = launch_instance(ec2, state_of(alternatives("m6i.xlarge")), STACK_NAME)

    assert record.instance_type == "m6i.xlarge"
    assert "VcpuLimitExceeded" in record.launch_note


def test_no_pool_with_capacity_is_insufficient_capacity_naming_each(ec2: Any) -> None:
    pools = [(t, m) for m in ("spot", "on-demand") for t in ("m5.xlarge", "c5.xlarge")]
    answer(ec2, "RunInstances", short_of(*pools))

    with pytest.raises(InsufficientCapacity) as raised:
        launch_instance(ec2, state_of(alternatives("c5.xlarge", ii_cheapo=True)), STACK_NAME)

    assert str(raised.value).count("InsufficientInstanceCapacity") == 4
    assert not all_instances(ec2)


def test_subnets_are_tried_for_each_type_in_turn(ec2: Any) -> None:
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]

    def first_zone_full(params: dict[str, Any]) -> Any:
        if params.get("SubnetId") == subnets[0]:
            return error("InsufficientInstanceCapacity", "no capacity in us-east-1a")
        return None

    calls = answer(ec2, "RunInstances", first_zone_full)

    record = launch_instance(ec2, state_of(make_request(subnets=subnets)), STACK_NAME)

    assert [c["SubnetId"] for c in calls] == subnets
    assert record.zone == f"{REGION}b"
    assert subnets[1] in record.launch_note


def test_an_x86_type_for_an_arm64_ami_is_refused_before_launch(ec2: Any, emulator: Any) -> None:
    """The AMI's architecture decides; moto's registered images carry none, so the
    test sets it on moto's own record of the image."""
    from moto.ec2.models import ec2_backends

    image = ec2.register_image(Name="arm image", RootDeviceName="/dev/xvda")["ImageId"]
    ec2_backends["123456789012"][REGION].amis[image].architecture = "arm64"
    request = alternatives("c7g.xlarge", "c5.xlarge", first="m7g.xlarge")
    request["instance_parameters"]["ImageId"] = image
    calls = answer(ec2, "RunInstances")

    with pytest.raises(InvalidExecutionInput) as raised:
        launch_instance(ec2, state_of(request), STACK_NAME)

    assert str(raised.value) == (
        "run_options.instance_types[1]: c5.xlarge runs x86_64, the AMI "
        f"{image} is arm64: alternatives must share the architecture"
    )
    assert not calls


def test_without_the_ami_architecture_the_first_type_decides(ec2: Any) -> None:
    with pytest.raises(InvalidExecutionInput, match=r"run_options.instance_types\[0\]: m7g"):
        launch_instance(ec2, state_of(alternatives("m7g.xlarge")), STACK_NAME)


def test_an_unknown_alternative_is_named() -> None:
    with pytest.raises(InvalidExecutionInput, match=r"run_options.instance_types\[0\]"):
        from amirun_core.execution import parse_execution

        parse_execution(alternatives("not a type"))


def test_alternatives_need_a_first_type() -> None:
    from amirun_core.execution import parse_execution

    request = alternatives("c5.xlarge")
    del request["instance_parameters"]["InstanceType"]
    with pytest.raises(InvalidExecutionInput, match=r"run_options\.instance_types: needs"):
        parse_execution(request)


def test_instance_type_data_is_read_once(ec2: Any) -> None:
    capacity._TYPES.pop("r5.large", None)
    calls = answer(ec2, "DescribeInstanceTypes")

    first = capacity.describe_types(ec2, ["r5.large"])
    again = capacity.describe_types(ec2, ["r5.large"])

    assert first == again
    assert first["r5.large"].vcpus == 2
    assert len(calls) == 1


def test_the_spot_price_is_the_one_in_force_at_launch(ec2: Any) -> None:
    """DescribeSpotPriceHistory lists each price change with its time
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html);
    answered here, as moto quotes 0.00001 for every type."""
    launched = datetime(2026, 3, 1, 12, tzinfo=UTC)

    def history(params: dict[str, Any]) -> Any:
        assert params["InstanceTypes"] == ["m5.xlarge"]
        assert params["AvailabilityZone"] == f"{REGION}a"
        change = {"InstanceType": "m5.xlarge", "AvailabilityZone": f"{REGION}a"}
        return ok(
            SpotPriceHistory=[
                {**change, "SpotPrice": "0.061", "Timestamp": launched - timedelta(hours=1)},
                {**change, "SpotPrice": "0.052", "Timestamp": launched - timedelta(hours=5)},
            ]
        )

    answer(ec2, "DescribeSpotPriceHistory", history)

    assert capacity.spot_price(ec2, "m5.xlarge", f"{REGION}a", launched) == 0.061


def test_a_spot_launch_records_the_price_and_the_cost_uses_it(ec2: Any) -> None:
    change = {"InstanceType": "t4g.small", "AvailabilityZone": f"{REGION}a"}
    answer(
        ec2,
        "DescribeSpotPriceHistory",
        lambda _: ok(SpotPriceHistory=[{**change, "SpotPrice": "0.005", "Timestamp": 0}]),
    )

    record = launch_instance(ec2, state_of(make_request(ii_cheapo=True)), STACK_NAME)

    assert record.market == "spot"
    assert record.spot_price_usd_per_hour == 0.005
    (instance,) = all_instances(ec2)
    ended = instance["LaunchTime"] + timedelta(hours=2)
    usage = instance_usage(instance, ended, spot_price=record.spot_price_usd_per_hour)
    assert (usage.price_usd_per_hour, usage.estimated_cost_usd) == (0.005, 0.01)
    assert usage.price_basis.startswith("spot price in force at launch")


def test_smaller_sizes_of_a_family() -> None:
    assert capacity.smaller_sizes("m8g.xlarge")[:2] == ["m8g.large", "m8g.medium"]
    assert capacity.smaller_sizes("m8g.metal") == []
