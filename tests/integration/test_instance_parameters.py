"""Instance parameters as EC2 takes them, rehearsed end to end.

`VolumeSize: 8.0` is an integer as JSON reads it (the README promises it is
accepted); botocore refuses a float for an integer member with
ParamValidationError, so amirun hands EC2 the integer 8. User tags given in two
`instance` TagSpecifications (EC2 takes one per resource type) are merged, and
the instance carries exactly amirun's own `amirun:` values.
"""

from __future__ import annotations

from typing import Any

import pytest

from amirun.local.runner import STACK_NAME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def with_float_volume(rehearsed: Any, basic: Any) -> Any:
    request = basic()
    request["instance_parameters"]["BlockDeviceMappings"] = [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8.0, "VolumeType": "gp3"}}
    ]
    request["instance_parameters"]["TagSpecifications"] = [
        {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "hydrology"}]},
        {"ResourceType": "instance", "Tags": [{"Key": "project", "Value": "ngen"}]},
    ]
    return rehearsed(request)


def test_an_integral_float_volume_size_rehearses_to_succeeded(
    with_float_volume: Any, at_rest: Any
) -> None:
    rehearsal = with_float_volume

    assert rehearsal.result.status == "SUCCEEDED", rehearsal.result.cause
    assert 8 in rehearsal.volume_sizes.values()
    at_rest(rehearsal)


def test_the_instance_carries_the_users_tags_and_exactly_amiruns_own(
    with_float_volume: Any,
) -> None:
    (instance_id,) = with_float_volume.launched
    tags = with_float_volume.instance_tags[instance_id]
    own = {key: value for key, value in tags.items() if key.startswith("amirun:")}

    assert (tags["team"], tags["project"]) == ("hydrology", "ngen")
    assert own == {
        "amirun:execution": with_float_volume.result.execution_arn,
        "amirun:attempt": "1",
        "amirun:stack": STACK_NAME,
    }
