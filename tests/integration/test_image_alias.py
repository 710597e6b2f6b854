"""An ImageId `resolve:ssm:<parameter>`: EC2 reads the parameter with the starter's rights.

RunInstances resolves the alias with the caller's IAM permissions: the caller
needs ssm:GetParameters on the parameter, or the launch is refused.
https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/using-systems-manager-parameter-to-find-AMI.html
The emulated EC2 resolves the alias only when template.yaml grants the starter
that parameter (moto knows no aliases, nor IAM), so these runs fail if the
template's grant is missing.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from amirun.local.runner import EmulatorSession, RehearsalOptions, image_parameter_grants
from amirun.local.world import parameter_arn
from amirun.project import load_template

pytestmark = pytest.mark.slow

FAST = RehearsalOptions(time_scale=0.01, agent_delay_s=0.2, command_duration_s=0.3)
PUBLIC = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


def request(image: str) -> dict[str, Any]:
    return {
        "commands": ["echo hello"],
        "instance_parameters": {"ImageId": image, "InstanceType": "t4g.nano"},
        "run_options": {"ii_terminate_instance": True},
    }


def run_to_end(session: EmulatorSession, execution: dict[str, Any], name: str) -> dict[str, Any]:
    session.prepare(execution)
    arn = session.start(execution, name)
    deadline = time.monotonic() + 120
    while (described := session.describe(arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the run did not end in 2 minutes"
        time.sleep(0.2)
    return described


@pytest.fixture(scope="module")
def session() -> Any:
    with EmulatorSession(FAST) as opened:
        yield opened


def test_a_run_launches_from_the_ami_a_public_parameter_names(session: EmulatorSession) -> None:
    described = run_to_end(session, request(f"resolve:ssm:{PUBLIC}"), "public-alias")

    assert described["status"] == "SUCCEEDED", described.get("cause")
    with session.world.emulator_calls():
        ami = session.clients["ssm"].get_parameters(Names=[PUBLIC])["Parameters"][0]["Value"]
        instances = session.clients["ec2"].describe_instances(
            Filters=[{"Name": "tag:amirun:execution", "Values": [described["executionArn"]]}]
        )["Reservations"][0]["Instances"]
    assert [i["ImageId"] for i in instances] == [ami]


def test_an_own_parameter_is_refused_unless_the_stack_names_it(session: EmulatorSession) -> None:
    """ImageParameterPattern defaults to none: nothing is launched, the cause names it."""
    with session.world.emulator_calls():
        image = session.clients["ec2"].register_image(Name="golden", RootDeviceName="/dev/xvda")
        session.clients["ssm"].put_parameter(
            Name="/golden/ami", Value=image["ImageId"], Type="String", DataType="aws:ec2:image"
        )
    described = run_to_end(session, request("resolve:ssm:/golden/ami"), "own-alias")

    assert described["status"] == "FAILED"
    assert "ImageParameterPattern" in described["cause"]
    assert session.instances_of(described["executionArn"]) == {}


def test_the_grant_covers_public_parameters_and_the_stacks_pattern() -> None:
    template = load_template()
    region, account = "us-east-1", "123456789012"
    public = parameter_arn(PUBLIC, region, account)
    own = parameter_arn("/golden/ami", region, account)
    assert public == f"arn:aws:ssm:{region}::parameter{PUBLIC}"

    default = image_parameter_grants(template)
    assert default == (f"arn:aws:ssm:{region}::parameter/aws/service/*",)
    widened = image_parameter_grants(template, {"ImageParameterPattern": "golden/*"})
    assert widened == (*default, f"arn:aws:ssm:{region}:{account}:parameter/golden/*")
    assert own not in default
