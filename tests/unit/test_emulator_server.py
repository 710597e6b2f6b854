"""The emulator's server answers the SSM call moto lacks, by each instance's EC2 state.

Containers (`sam local invoke`) reach the emulator over HTTP, where no botocore hook
of the tests can answer DescribeInstanceInformation; the server does it itself: a
running instance has an Online agent, any other instance is not registered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from amirun.local.emulator_server import emulator_server

AMI = "ami-0a1b2c3d4e5f67890"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with emulator_server() as url:
        yield url


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def agents(endpoint: str, *instance_ids: str) -> list[dict[str, Any]]:
    answer = client(endpoint, "ssm").describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": list(instance_ids)}]
    )
    return list(answer["InstanceInformationList"])


def test_a_running_instance_has_an_online_agent(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    running = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    (agent,) = agents(endpoint, running)

    assert (agent["InstanceId"], agent["PingStatus"]) == (running, "Online")


def test_a_stopped_or_unknown_instance_is_not_registered(endpoint: str) -> None:
    ec2 = client(endpoint, "ec2")
    stopped = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])

    assert agents(endpoint, stopped, "i-0123456789abcdef0") == []


def test_every_other_call_reaches_moto(endpoint: str) -> None:
    ssm = client(endpoint, "ssm")
    ssm.put_parameter(Name="/amirun/probe", Value="x", Type="String")

    assert ssm.get_parameter(Name="/amirun/probe")["Parameter"]["Value"] == "x"
