"""Capacity: which instance types a run may use, and launching the first pool that has room.

A run names one `InstanceType` and, in `run_options.instance_types`, alternatives
of the same architecture. A launch tries the pools in order: with `ii_cheapo`,
spot across every type first, then on-demand across every type (the markets
come from the caller, so the last attempt of a relaunching run may be
on-demand only). A pool that answers with a capacity shortage or a quota
refusal is skipped; the first that launches wins, and its record says which
type ran and why the ones before it did not.

EC2 Fleet (`CreateFleet`, type `instant`) picks among pools too, but it takes
its parameters from a launch template: every run would first have to write its
RunInstances parameters (user data, block devices, tags) into a template of its
own. An ordered loop of RunInstances keeps the user's parameters as given and
the launch idempotent by ClientToken, one token per pool.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.errors import InvalidExecutionInput, Problem

#: Launch errors that another pool (another type or market, or a later try) may not hit.
#: VcpuLimitExceeded is the account's on-demand vCPU quota for the type's family
#: class; spot instances count against a quota of their own.
CAPACITY_CODES = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
        "InsufficientHostCapacity",
        "VcpuLimitExceeded",
    }
)


@dataclass(frozen=True)
class InstanceType:
    """What EC2 says about one instance type (DescribeInstanceTypes)."""

    name: str
    vcpus: int
    architectures: frozenset[str]
    memory_mib: int = 0


#: DescribeInstanceTypes' answers, kept for the life of the process (they do not change).
_TYPES: dict[str, InstanceType] = {}


def describe_types(ec2: Any, names: list[str]) -> dict[str, InstanceType]:
    """The instance types `names`, from EC2 (once per process and type)."""
    missing = sorted({n for n in names if n not in _TYPES})
    if missing:
        try:
            pages = ec2.get_paginator("describe_instance_types").paginate(InstanceTypes=missing)
            described = [t for page in pages for t in page["InstanceTypes"]]
        except ClientError as exc:
            aws.raise_if_throttled(exc, "DescribeInstanceTypes")
            if aws.error_code(exc) != "InvalidInstanceType":
                raise
            raise InvalidExecutionInput(
                Problem("run_options.instance_types", aws.describe(exc))
            ) from exc
        for item in described:
            _TYPES[item["InstanceType"]] = InstanceType(
                name=item["InstanceType"],
                vcpus=int(item.get("VCpuInfo", {}).get("DefaultVCpus", 0)),
                architectures=frozenset(
                    item.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
                ),
                memory_mib=int(item.get("MemoryInfo", {}).get("SizeInMiB", 0)),
            )
    return {n: _TYPES[n] for n in names if n in _TYPES}


def image_architecture(ec2: Any, image_id: str | None) -> str | None:
    """The AMI's architecture (`x86_64`, `arm64`...), or None when it cannot be read
    without resolving anything (a `resolve:ssm:` parameter, a launch template)."""
    if not image_id or not image_id.startswith("ami-"):
        return None
    try:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DescribeImages")
        return None  # RunInstances names a missing AMI better than we can
    architecture = images[0].get("Architecture") if images else None
    return str(architecture) if architecture else None


def instance_types_of(params: dict[str, Any], alternatives: list[str]) -> list[str]:
    """The types a run may launch, in order: InstanceType, then the alternatives."""
    first = params.get("InstanceType")
    ordered = ([first] if isinstance(first, str) else []) + list(alternatives)
    return list(dict.fromkeys(ordered))


def check_types(ec2: Any, params: dict[str, Any], alternatives: list[str]) -> list[str]:
    """The run's instance types in order, refused before launch when one cannot run the AMI.

    Every alternative must run the AMI's architecture (read from the AMI), or,
    when the AMI cannot be read, the first type's. The error names the field.
    """
    types = instance_types_of(params, alternatives)
    if not alternatives:
        return types
    known = describe_types(ec2, types)
    problems = [
        Problem(f"run_options.instance_types[{i}]", f"EC2 knows no instance type {name!r}")
        for i, name in enumerate(alternatives)
        if name not in known
    ]
    architecture = image_architecture(ec2, params.get("ImageId"))
    first = known.get(types[0])
    if architecture is not None and first is not None and architecture not in first.architectures:
        problems.append(
            Problem(
                "instance_parameters.InstanceType",
                f"{first.name} runs {'/'.join(sorted(first.architectures))}, the AMI "
                f"{params.get('ImageId')} is {architecture}",
            )
        )
    wanted = {architecture} if architecture else (first.architectures if first else set())
    for index, name in enumerate(alternatives):
        info = known.get(name)
        if info is None or not wanted or info.architectures & wanted:
            continue
        against = f"the AMI {params.get('ImageId')} is" if architecture else f"{types[0]} runs"
        problems.append(
            Problem(
                f"run_options.instance_types[{index}]",
                f"{name} runs {'/'.join(sorted(info.architectures))}, {against} "
                f"{'/'.join(sorted(wanted))}: alternatives must share the architecture",
            )
        )
    if problems:
        raise InvalidExecutionInput(*problems)
    return types


@dataclass(frozen=True)
class Pool:
    """One place to try: a market, an instance type and (when the run names some) a subnet."""

    market: str
    instance_type: str
    subnet: str | None = None

    def __str__(self) -> str:
        where = f" in {self.subnet}" if self.subnet else ""
        return f"{self.instance_type} {self.market}{where}"


def pools(
    markets: Sequence[str], types: Sequence[str], subnets: Sequence[str] | None = None
) -> list[Pool]:
    """Every pool in the order tried: each market across every type (and subnet),
    markets in order: spot everywhere before on-demand anywhere."""
    where: list[str | None] = list(subnets) if subnets else [None]
    return [
        Pool(market, instance_type, subnet)
        for market in markets
        for instance_type in types
        for subnet in where
    ]


@dataclass
class Launched:
    """The pool that launched, its answer, and why the pools before it did not."""

    pool: Pool
    params: dict[str, Any]
    response: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        """Which pool ran and why, in one line."""
        if not self.skipped:
            return f"{self.pool}: the first choice"
        return f"{self.pool}, after " + "; ".join(self.skipped)


class NoCapacity(Exception):
    """Every pool refused for capacity or quota; `refusals` says each one's answer."""

    def __init__(self, refusals: list[str], codes: set[str]) -> None:
        super().__init__("; ".join(refusals))
        self.refusals = refusals
        self.codes = codes


def launch_first_available(
    ec2: Any,
    candidates: list[Pool],
    params_for: Callable[[Pool], dict[str, Any]],
    refused: Callable[[ClientError, dict[str, Any]], None],
) -> Launched:
    """RunInstances in each pool in turn until one launches.

    A capacity or quota answer moves on to the next pool; throttling raises
    AwsThrottled (the state machine retries, and the ClientTokens make the
    pools already tried answer the same); any other refusal goes to `refused`,
    which raises. Raises NoCapacity when every pool refused for capacity.
    """
    skipped: list[str] = []
    codes: set[str] = set()
    for pool in candidates:
        params = params_for(pool)
        try:
            response = ec2.run_instances(**params)
        except ClientError as exc:
            aws.raise_if_throttled(exc, "RunInstances")
            code = aws.error_code(exc)
            if code in CAPACITY_CODES:
                skipped.append(f"{pool}: {aws.describe(exc)}")
                codes.add(code)
                continue
            refused(exc, params)
            raise
        return Launched(pool, params, response, skipped)
    raise NoCapacity(skipped, codes)


#: How far back a spot price may have been set and still be the one in force.
SPOT_PRICE_LOOKBACK = timedelta(days=1)


def spot_price(ec2: Any, instance_type: str, zone: str, at: datetime) -> float | None:
    """The spot price in force for the type in the zone at `at` (USD per hour), or None.

    DescribeSpotPriceHistory lists price changes; the one in force is the
    latest set at or before `at`.
    """
    try:
        history = ec2.describe_spot_price_history(
            InstanceTypes=[instance_type],
            AvailabilityZone=zone,
            ProductDescriptions=["Linux/UNIX"],
            StartTime=at - SPOT_PRICE_LOOKBACK,
            EndTime=at,
        )["SpotPriceHistory"]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "DescribeSpotPriceHistory")
        return None  # the cost falls back to the price table
    prices = [
        p
        for p in history
        if p.get("InstanceType") == instance_type
        and p.get("AvailabilityZone", zone) == zone
        and "SpotPrice" in p
    ]
    if not prices:
        return None
    latest = max(prices, key=lambda p: p.get("Timestamp") or at)
    try:
        return float(latest["SpotPrice"])
    except ValueError:
        return None


@functools.cache
def _family_sizes() -> tuple[str, ...]:
    # The sizes of a family, smallest first (EC2's naming: xlarge doubles large).
    return (
        "nano",
        "micro",
        "small",
        "medium",
        "large",
        "xlarge",
        *(f"{n}xlarge" for n in (2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 48)),
    )


def smaller_sizes(instance_type: str) -> list[str]:
    """Same-family types smaller than `instance_type`, largest first (`m8g.xlarge` ->
    `m8g.large`, `m8g.medium`...). Empty for a type not named family.size."""
    family, _, size = instance_type.partition(".")
    sizes = _family_sizes()
    if size not in sizes:
        return []
    return [f"{family}.{s}" for s in reversed(sizes[: sizes.index(size)])]
