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

from typing import Any

import pytest

from amirun.local.runner import EmulatorSession, image_parameter_grants
from amirun.local.world import parameter_arn
from amirun.project import load_template

pytestmark = pytest.mark.slow

PUBLIC = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"


def request(image: str) -> dict[str, Any]:
    return {
        "commands": ["echo hello"],
        "instance_parameters": {"ImageId": image, "InstanceType": "t4g.nano"},
        "run_options": {"ii_terminate_instance": True},
    }


@pytest.fixture
def run_to_end(emulator_session: Any, until_ended: Any) -> Any:
    def run(execution: dict[str, Any], name: str) -> dict[str, Any]:
        emulator_session.prepare(execution)
        (described,) = until_ended(emulator_session, [emulator_session.start(execution, name)])
        return dict(described)

    return run


def test_a_run_launches_from_the_ami_a_public_parameter_names(
    emulator_session: EmulatorSession, run_to_end: Any
) -> None:
    session = emulator_session
    described = run_to_end(request(f"resolve:ssm:{PUBLIC}"), "public-alias")

    assert described["status"] == "SUCCEEDED", described.get("cause")
    with session.world.emulator_calls():
        ami = session.clients["ssm"].get_parameters(Names=[PUBLIC])["Parameters"][0]["Value"]
        instances = session.clients["ec2"].describe_instances(
            Filters=[{"Name": "tag:amirun:execution", "Values": [described["executionArn"]]}]
        )["Reservations"][0]["Instances"]
    assert [i["ImageId"] for i in instances] == [ami]


def test_an_own_parameter_is_refused_unless_the_stack_names_it(
    emulator_session: EmulatorSession, run_to_end: Any
) -> None:
    """ImageParameterPattern defaults to none: nothing is launched, the cause names it."""
    session = emulator_session
    with session.world.emulator_calls():
        image = session.clients["ec2"].register_image(Name="golden", RootDeviceName="/dev/xvda")
        session.clients["ssm"].put_parameter(
            Name="/golden/ami", Value=image["ImageId"], Type="String", DataType="aws:ec2:image"
        )
    described = run_to_end(request("resolve:ssm:/golden/ami"), "own-alias")

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
