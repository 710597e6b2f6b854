"""EC2StarterFromAMI and the readiness check: launch once, then wait for SSM."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws, capacity, relaunch, timing
from amirun_core.capacity import NoCapacity, Pool
from amirun_core.ec2_limits import OWN_TAG_PREFIX, integral_numbers
from amirun_core.errors import (
    InstanceLost,
    InstanceNotReady,
    InsufficientCapacity,
    LaunchRejected,
    PermissionDenied,
)
from amirun_core.execution import ExecutionRequest, parse_execution
from amirun_core.state import InstanceRecord, WorkflowState

TAG_EXECUTION = "amirun:execution"
TAG_ATTEMPT = "amirun:attempt"
TAG_STACK = "amirun:stack"
#: The schedule that started the run, for cost-allocation reports.
TAG_SCHEDULE = "amirun:schedule"

#: Instance states from which a run can no longer succeed.
LOST_STATES = frozenset({"shutting-down", "terminated", "stopping", "stopped"})


def client_token(execution_id: str, attempt: int, market: str, pool: str = "") -> str:
    """RunInstances' idempotency token: one per execution, attempt, market and pool.

    A retried launch reuses it, so EC2 returns the instance it already launched
    instead of launching a second one. 64 hex characters, EC2's maximum. `pool`
    is empty for the first choice of type and subnet, and names an alternative.
    """
    key = f"{execution_id}|{attempt}|{market}" + (f"|{pool}" if pool else "")
    return hashlib.sha256(key.encode()).hexdigest()


def ownership_tags(state: WorkflowState, stack_name: str) -> list[dict[str, str]]:
    tags = [
        {"Key": TAG_EXECUTION, "Value": state.execution.id},
        {"Key": TAG_ATTEMPT, "Value": str(state.attempt)},
        {"Key": TAG_STACK, "Value": stack_name},
    ]
    if state.schedule_name:
        tags.append({"Key": TAG_SCHEDULE, "Value": state.schedule_name})
    return tags


def launch_parameters(
    request: ExecutionRequest,
    state: WorkflowState,
    stack_name: str,
    *,
    spot: bool,
    pool: Pool | None = None,
) -> dict[str, Any]:
    """The user's RunInstances parameters plus what amirun guarantees.

    `pool`: the instance type and subnet to use instead of the parameters' own.
    """
    params = copy.deepcopy(request.instance_parameters)
    market = "spot" if spot else "on-demand"
    alternative = ""
    if pool is not None:
        if pool.instance_type != params.get("InstanceType"):
            alternative = pool.instance_type
            params["InstanceType"] = pool.instance_type
        if pool.subnet is not None:
            alternative += f"@{pool.subnet}"
            params["SubnetId"] = pool.subnet
    params.update(
        MinCount=1,
        MaxCount=1,
        ClientToken=client_token(state.execution.id, state.attempt, market, alternative),
    )
    # IMDSv2; a hop limit of 2 lets the job's containers reach it (AWS's advice for
    # containers: with 1, Docker's bridge network cannot get a token).
    params.setdefault(
        "MetadataOptions",
        {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
    )
    if spot:
        params.setdefault(
            "InstanceMarketOptions",
            {
                "MarketType": "spot",
                "SpotOptions": {
                    "SpotInstanceType": "one-time",
                    "InstanceInterruptionBehavior": "terminate",
                },
            },
        )
    params["TagSpecifications"] = tag_specifications(
        params.get("TagSpecifications", []), ownership_tags(state, stack_name)
    )
    # JSON's 8.0 is an integer; botocore refuses a float where EC2 wants one.
    launched: dict[str, Any] = integral_numbers(params)
    return launched


def tag_specifications(
    specs: list[dict[str, Any]], own: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """One TagSpecification per resource type: the user's tags merged in order, then
    amirun's on the instance and its volumes.

    EC2 may take only one specification per type, and amirun's tags decide what the
    sweeper and the reconciler clean up: no user tag with amirun's prefix is kept
    (the validator refuses them; this holds for any input that reaches the launch).
    """
    merged: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        tags = merged.setdefault(spec["ResourceType"], [])
        tags += [
            tag
            for tag in spec.get("Tags", [])
            if not str(tag.get("Key", "")).lower().startswith(OWN_TAG_PREFIX)
        ]
    for resource_type in ("instance", "volume"):
        merged[resource_type] = merged.get(resource_type, []) + own
    return [{"ResourceType": kind, "Tags": tags} for kind, tags in merged.items()]


_PASSED_ROLE = re.compile(r"iam:PassRole on resource: \S*:role/(?:\S*/)?([\w+=,.@-]+)")


def _refused_launch(exc: ClientError, params: dict[str, Any], role_pattern: str | None) -> None:
    """Raise PermissionDenied when IAM refused the launch, naming what to change."""
    message = str(exc.response.get("Error", {}).get("Message", ""))
    profile = params.get("IamInstanceProfile") or {}
    profile_name = profile.get("Name") or profile.get("Arn") or "(none)"
    if "iam:PassRole" in message:
        found = _PASSED_ROLE.search(message)
        role = found.group(1) if found else "of that profile"
        pattern = f" ({role_pattern})" if role_pattern else ""
        raise PermissionDenied(
            f"RunInstances may not pass the role {role} of instance profile {profile_name} "
            f"to EC2: the starter may pass only roles whose names match the stack parameter "
            f"InstanceRoleNamePattern{pattern}, which is matched against role names, not "
            "instance profile names, under the IAM path InstanceRolePath (default /). "
            "Redeploy with a pattern and path that match the role, or use a profile whose "
            "role matches"
        ) from exc
    if "ssm:GetParameters" in message:
        raise PermissionDenied(
            f"RunInstances could not read the SSM parameter of ImageId {params.get('ImageId')}"
            ": the starter may read AWS's public parameters (/aws/service/...) and yours "
            "matching the stack parameter ImageParameterPattern (default: none). Redeploy "
            "with a pattern that covers the parameter"
        ) from exc
    aws.raise_if_denied(
        exc,
        "RunInstances",
        "the starter's role may launch only instances and volumes tagged with this stack "
        "(ec2:RunInstances) and pass roles matching InstanceRoleNamePattern (iam:PassRole); "
        "an encoded message can be read with `aws sts decode-authorization-message`",
    )


def launch_instance(
    ec2: Any, state: WorkflowState, stack_name: str, role_pattern: str | None = None
) -> InstanceRecord:
    """Validate the request, then launch exactly one instance for this attempt.

    The first pool with capacity wins (`capacity.pools`: spot across the run's
    types, then on-demand). `role_pattern` is the stack's InstanceRoleNamePattern,
    named when PassRole is refused.
    """
    request = parse_execution(state.request, ec2.meta.service_model)
    options = request.run_options
    types = capacity.check_types(ec2, request.instance_parameters, options.instance_types)
    markets = relaunch.markets(options, state.attempt)
    candidates = capacity.pools(markets, types or [""], options.subnets or None)

    def params_for(pool: Pool) -> dict[str, Any]:
        return launch_parameters(
            request,
            state,
            stack_name,
            spot=pool.market == "spot",
            pool=pool if pool.instance_type else None,
        )

    def refused(exc: ClientError, params: dict[str, Any]) -> None:
        _refused_launch(exc, params, role_pattern)
        raise LaunchRejected(f"RunInstances refused the launch: {aws.describe(exc)}") from exc

    try:
        launched = capacity.launch_first_available(ec2, candidates, params_for, refused)
    except NoCapacity as exc:
        raise InsufficientCapacity(str(exc)) from exc
    instance = launched.response["Instances"][0]
    launched_at = timing.now()
    zone = instance.get("Placement", {}).get("AvailabilityZone")
    instance_type = str(instance.get("InstanceType") or launched.pool.instance_type or "")
    price = None
    if launched.pool.market == "spot" and zone and instance_type:
        price = capacity.spot_price(ec2, instance_type, zone, launched_at)
    return InstanceRecord(
        instance_id=instance["InstanceId"],
        attempt=state.attempt,
        client_token=launched.params["ClientToken"],
        market="spot" if launched.pool.market == "spot" else "on-demand",
        launched_at=launched_at,
        ready_deadline=launched_at + timing.scaled(options.ready_timeout_s),
        state=instance.get("State", {}).get("Name", "pending"),
        wait_seconds=timing.wait_seconds(
            timing.ready_poll_interval(options.ready_timeout_s, options.attempts)
        ),
        instance_type=instance_type or None,
        zone=zone,
        launch_note=launched.note,
        spot_price_usd_per_hour=price,
    )


def check_readiness(ec2: Any, ssm: Any, state: WorkflowState) -> InstanceRecord:
    """One look: is the instance running and its SSM agent online? Never waits."""
    if state.instance is None:
        raise InstanceNotReady("no instance was launched")
    record = state.instance.model_copy()
    instance_id = record.instance_id
    instance = aws.describe_instance(ec2, instance_id)
    # Right after launch EC2 may not list the instance yet (eventual consistency).
    record.state = instance["State"]["Name"] if instance else "pending"
    if record.state in LOST_STATES:
        raise InstanceLost(f"instance {instance_id} is {record.state} before the run started")
    if record.state == "running":
        try:
            info = ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
            )["InstanceInformationList"]
        except ClientError as exc:
            aws.raise_if_throttled(exc, "DescribeInstanceInformation")
            raise
        record.agent = info[0].get("PingStatus", "unknown") if info else "not registered"
    record.ready = record.state == "running" and record.agent == "Online"
    if not record.ready and timing.now() >= record.ready_deadline:
        raise InstanceNotReady(
            f"instance {instance_id} is {record.state} and its SSM agent is "
            f"{record.agent} after the readiness timeout: check that the AMI runs the "
            "SSM agent, that the instance profile allows SSM "
            "(AmazonSSMManagedInstanceCore) and that the subnet reaches SSM"
        )
    return record
