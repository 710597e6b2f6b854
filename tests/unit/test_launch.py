"""EC2StarterFromAMI: exactly one instance, owned, idempotent, with spot fallback."""

from __future__ import annotations

from typing import Any

import pytest
from unit_helpers import (
    EXECUTION_ARN,
    STACK_NAME,
    all_instances,
    answer,
    error,
    make_request,
    make_state,
)

from amirun_core.errors import (
    AwsThrottled,
    InsufficientCapacity,
    InvalidExecutionInput,
    LaunchRejected,
)
from amirun_core.execution import _run_instances_shape, read_execution
from amirun_core.launch import (
    TAG_ATTEMPT,
    TAG_EXECUTION,
    TAG_STACK,
    client_token,
    launch_instance,
    launch_parameters,
)

OWN_TAGS = {TAG_EXECUTION: EXECUTION_ARN, TAG_ATTEMPT: "1", TAG_STACK: STACK_NAME}


def tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def spec_tags(params: dict[str, Any], resource_type: str) -> dict[str, str]:
    specs = [s for s in params["TagSpecifications"] if s["ResourceType"] == resource_type]
    assert len(specs) == 1, f"one TagSpecification per resource type, got {specs}"
    return tags(specs[0])


def capacity_error(market: str) -> Any:
    """Stand-in for EC2 running out of capacity, which moto never does."""

    def respond(params: dict[str, Any]) -> Any:
        is_spot = params.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
        if market == "both" or is_spot == (market == "spot"):
            return error("InsufficientInstanceCapacity", "no t4g.small capacity in us-east-1a")
        return None

    return respond


def test_launch_sets_one_instance_a_token_and_imdsv2(ec2: Any) -> None:
    calls = answer(ec2, "RunInstances")

    record = launch_instance(ec2, make_state(), STACK_NAME)

    (params,) = calls
    assert (params["MinCount"], params["MaxCount"]) == (1, 1)
    assert params["ClientToken"] == client_token(EXECUTION_ARN, 1, "on-demand")
    assert params["MetadataOptions"]["HttpTokens"] == "required"
    assert "InstanceMarketOptions" not in params
    (instance,) = all_instances(ec2)
    assert instance["InstanceId"] == record.instance_id
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert record.market == "on-demand"
    assert record.attempt == 1
    assert record.client_token == params["ClientToken"]
    assert record.ready is False
    assert record.ready_deadline > record.launched_at


def test_ownership_tags_go_on_the_instance_and_its_volumes_with_the_users_tags(ec2: Any) -> None:
    request = make_request()
    request["instance_parameters"].update(
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "ds_test"}]},
            {"ResourceType": "volume", "Tags": [{"Key": "Team", "Value": "hydro"}]},
        ],
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 16}}],
    )
    calls = answer(ec2, "RunInstances")

    launch_instance(ec2, make_state(request), STACK_NAME)

    (params,) = calls
    assert spec_tags(params, "instance") == {"Name": "ds_test", **OWN_TAGS}
    assert spec_tags(params, "volume") == {"Team": "hydro", **OWN_TAGS}
    (instance,) = all_instances(ec2)
    assert tags(instance) == {"Name": "ds_test", **OWN_TAGS}
    volumes = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    assert volumes
    assert all(tags(v) == {"Team": "hydro", **OWN_TAGS} for v in volumes)


def test_ownership_tags_are_added_when_the_user_gives_none(ec2: Any) -> None:
    calls = answer(ec2, "RunInstances")

    launch_instance(ec2, make_state(), STACK_NAME)

    assert spec_tags(calls[0], "instance") == OWN_TAGS
    assert spec_tags(calls[0], "volume") == OWN_TAGS


def test_the_users_metadata_options_win(ec2: Any) -> None:
    request = make_request()
    request["instance_parameters"]["MetadataOptions"] = {"HttpTokens": "optional"}
    calls = answer(ec2, "RunInstances")

    launch_instance(ec2, make_state(request), STACK_NAME)

    assert calls[0]["MetadataOptions"] == {"HttpTokens": "optional"}


def test_client_token_is_per_execution_attempt_and_market() -> None:
    token = client_token(EXECUTION_ARN, 1, "on-demand")

    assert token == client_token(EXECUTION_ARN, 1, "on-demand")
    assert len(token) <= 64  # EC2's limit
    assert token != client_token(EXECUTION_ARN, 2, "on-demand")
    assert token != client_token(EXECUTION_ARN, 1, "spot")
    assert token != client_token(EXECUTION_ARN + "-other", 1, "on-demand")


def test_a_retried_launch_reuses_the_token_and_the_next_attempt_does_not(ec2: Any) -> None:
    """A retried Starter sends the same ClientToken, so EC2 returns the instance it
    already launched. (moto does not honour ClientToken: only the token is checked.)"""
    calls = answer(ec2, "RunInstances")

    launch_instance(ec2, make_state(), STACK_NAME)
    launch_instance(ec2, make_state(), STACK_NAME)
    launch_instance(ec2, make_state(attempt=2), STACK_NAME)

    first, retry, next_attempt = (c["ClientToken"] for c in calls)
    assert first == retry
    assert next_attempt != first
    assert next_attempt == client_token(EXECUTION_ARN, 2, "on-demand")
    assert spec_tags(calls[2], "instance")[TAG_ATTEMPT] == "2"


def test_cheapo_launches_spot_first(ec2: Any) -> None:
    calls = answer(ec2, "RunInstances")

    record = launch_instance(ec2, make_state(make_request(ii_cheapo=True)), STACK_NAME)

    (params,) = calls
    assert params["InstanceMarketOptions"]["MarketType"] == "spot"
    assert params["ClientToken"] == client_token(EXECUTION_ARN, 1, "spot")
    assert record.market == "spot"
    (instance,) = all_instances(ec2)
    assert instance["InstanceLifecycle"] == "spot"


def test_cheapo_falls_back_to_on_demand_when_spot_has_no_capacity(ec2: Any) -> None:
    """The capacity error is injected by a botocore hook: moto never runs out of capacity."""
    calls = answer(ec2, "RunInstances", capacity_error("spot"))

    record = launch_instance(ec2, make_state(make_request(ii_cheapo=True)), STACK_NAME)

    spot, on_demand = calls
    assert spot["InstanceMarketOptions"]["MarketType"] == "spot"
    assert "InstanceMarketOptions" not in on_demand
    assert spot["ClientToken"] != on_demand["ClientToken"]
    assert record.market == "on-demand"
    assert record.client_token == on_demand["ClientToken"]
    (instance,) = all_instances(ec2)
    assert instance["InstanceId"] == record.instance_id
    assert "InstanceLifecycle" not in instance


def test_no_capacity_anywhere_is_insufficient_capacity(ec2: Any) -> None:
    """The capacity error is injected by a botocore hook: moto never runs out of capacity."""
    answer(ec2, "RunInstances", capacity_error("both"))

    with pytest.raises(InsufficientCapacity) as caught:
        launch_instance(ec2, make_state(make_request(ii_cheapo=True)), STACK_NAME)

    assert "spot: InsufficientInstanceCapacity" in str(caught.value)
    assert "on-demand: InsufficientInstanceCapacity" in str(caught.value)
    assert all_instances(ec2) == []


def test_throttling_is_aws_throttled(ec2: Any) -> None:
    """RequestLimitExceeded is injected by a botocore hook: moto does not throttle."""
    answer(ec2, "RunInstances", lambda _: error("RequestLimitExceeded", "Request limit exceeded."))

    with pytest.raises(AwsThrottled, match="RunInstances: RequestLimitExceeded"):
        launch_instance(ec2, make_state(), STACK_NAME)


def test_a_refused_launch_is_launch_rejected(ec2: Any) -> None:
    request = make_request()
    request["instance_parameters"]["SecurityGroupIds"] = ["sg-0123456789abcdef0"]

    with pytest.raises(LaunchRejected) as caught:
        launch_instance(ec2, make_state(request), STACK_NAME)

    assert "InvalidGroup.NotFound" in str(caught.value)
    assert all_instances(ec2) == []


def test_invalid_input_launches_nothing(ec2: Any) -> None:
    request = make_request()
    request["instance_parameters"]["BlockDeviceMappings"] = [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": "16"}}
    ]
    calls = answer(ec2, "RunInstances")

    with pytest.raises(InvalidExecutionInput, match=r"BlockDeviceMappings\[0\]\.Ebs\.VolumeSize"):
        launch_instance(ec2, make_state(request), STACK_NAME)

    assert calls == []
    assert all_instances(ec2) == []


# --- amirun's tags are amirun's; numbers as EC2 takes them ---------------------------------
def test_a_launched_instance_carries_exactly_amiruns_own_tag_values(ec2: Any) -> None:
    """Two `instance` TagSpecifications in the input (EC2 takes one per type) are merged
    into one; the user's tags stay, and amirun's are the only `amirun:` tags there."""
    request = make_request()
    request["instance_parameters"]["TagSpecifications"] = [
        {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "hydro"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "cost-center", "Value": "42"}]},
        {"ResourceType": "instance", "Tags": [{"Key": "project", "Value": "ngen"}]},
    ]

    launch_instance(ec2, make_state(request), STACK_NAME)
    (instance,) = all_instances(ec2)
    volume_ids = [m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"]]
    volumes = ec2.describe_volumes(VolumeIds=volume_ids)["Volumes"]

    assert tags(instance) == {**OWN_TAGS, "team": "hydro", "project": "ngen"}
    assert all(tags(v) == {**OWN_TAGS, "cost-center": "42"} for v in volumes)


def test_tags_with_amiruns_prefix_never_reach_ec2_whatever_the_input(ec2: Any) -> None:
    """The validator refuses them (tests/inputs); the launch drops them all the same, so
    no input can hide its instance from the sweeper or point it at another stack."""
    calls = answer(ec2, "RunInstances")
    request = make_request()
    request["instance_parameters"]["TagSpecifications"] = [
        {
            "ResourceType": "instance",
            "Tags": [
                {"Key": "amirun:stack", "Value": "someone-else"},
                {"Key": "AMIRUN:execution", "Value": "hidden"},
                {"Key": "owner", "Value": "me"},
            ],
        }
    ]
    state = make_state(request)

    with pytest.raises(InvalidExecutionInput, match="amirun's own"):
        launch_instance(ec2, state, STACK_NAME)
    params = launch_parameters(read_execution(request), state, STACK_NAME, spot=False)

    assert spec_tags(params, "instance") == {**OWN_TAGS, "owner": "me"}
    assert calls == []


def test_integral_floats_reach_ec2_as_integers(ec2: Any) -> None:
    """JSON's 8.0 is an integer (the README promises VolumeSize: 8.0 works); botocore
    refuses a float for an integer member with ParamValidationError."""
    request = make_request()
    request["instance_parameters"]["BlockDeviceMappings"] = [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8.0, "VolumeType": "gp3"}}
    ]
    request["instance_parameters"]["CpuOptions"] = {"CoreCount": 1.0, "ThreadsPerCore": 2.0}

    params = launch_parameters(read_execution(request), make_state(request), STACK_NAME, spot=False)
    launch_instance(ec2, make_state(request), STACK_NAME)

    assert params["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 8
    assert type(params["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]) is int
    assert type(params["CpuOptions"]["CoreCount"]) is int
    assert len(all_instances(ec2)) == 1


def test_run_instances_has_no_float_member() -> None:
    """`integral_numbers` makes every integral float an int, which is right only while
    RunInstances takes no float or double anywhere."""
    shape = _run_instances_shape(None)
    found: list[str] = []

    def walk(current: Any, path: str, depth: int) -> None:
        if depth > 8:
            return
        if current.type_name == "structure":
            for name, member in current.members.items():
                walk(member, f"{path}.{name}", depth + 1)
        elif current.type_name == "list":
            walk(current.member, f"{path}[]", depth + 1)
        elif current.type_name in ("double", "float"):
            found.append(path)

    walk(shape, "RunInstances", 0)

    assert found == []


def test_imdsv2_reaches_the_jobs_containers(ec2: Any) -> None:
    """amirun's MetadataOptions: IMDSv2 with a PUT response hop limit of 2, which AWS
    recommends in a container environment (with 1, a container behind Docker's bridge
    gets no token): https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html
    """
    calls = answer(ec2, "RunInstances")

    launch_instance(ec2, make_state(), STACK_NAME)

    (params,) = calls
    assert params["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpEndpoint": "enabled",
        "HttpPutResponseHopLimit": 2,
    }
