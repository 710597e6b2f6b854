"""What EC2 refuses in RunInstances parameters that its API shape does not say.

botocore's shape gives the types and names; EC2's documented limits say more,
and the emulator enforces none of them. Checked before launch, so a file that
EC2 would refuse never gets as far as RunInstances:

- tags: at most 50 per resource, amirun's own counted; keys of 1 to 128
  characters, values of at most 256; keys starting `aws:` are AWS's
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html#tag-restrictions)
  and keys starting `amirun:` amirun's (the sweeper and the reconciler find a
  run's instance by them, so a file may not set them);
- `BlockDeviceMappings[].Ebs.VolumeSize` within the bounds of its volume type
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EbsBlockDevice.html);
- `LaunchTemplate` names one template, by id or by name;
- `NetworkInterfaces` carry their subnet and security groups themselves
  (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html);
- `UserData` at most 16 KB before base64 (boto3 encodes it)
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from amirun_core.errors import Problem

#: Tags whose keys start with this are amirun's: it sets them, a file may not.
OWN_TAG_PREFIX = "amirun:"
#: Resource types amirun tags itself, and how many tags it adds at most
#: (execution, attempt, stack, schedule).
OWN_TAG_COUNT = {"instance": 4, "volume": 4}
MAX_TAGS_PER_RESOURCE = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_USER_DATA_BYTES = 16_384

#: VolumeSize bounds in GiB per volume type.
VOLUME_SIZES = {
    "gp2": (1, 16_384),
    "gp3": (1, 65_536),
    "io1": (4, 16_384),
    "io2": (4, 65_536),
    "st1": (125, 16_384),
    "sc1": (125, 16_384),
    "standard": (1, 1_024),
}
#: Without a volume type (or with one botocore does not know yet): the widest bounds.
ANY_VOLUME_SIZE = (1, 65_536)

_WHERE = "instance_parameters"


def ec2_limit_problems(params: dict[str, Any], own_tags: dict[str, int]) -> list[Problem]:
    """Every documented EC2 limit `params` break; `own_tags`: how many tags amirun adds
    per resource type. Parts of the wrong type are left to the shape check."""
    return [
        *_tag_problems(params.get("TagSpecifications"), own_tags),
        *_volume_problems(params.get("BlockDeviceMappings")),
        *_launch_template_problems(params.get("LaunchTemplate")),
        *_network_problems(params),
        *_user_data_problems(params.get("UserData")),
    ]


def reserved_tag_key(key: str) -> str | None:
    """Why a user may not set a tag with this key, or None."""
    if key.lower().startswith("aws:"):
        return "keys starting aws: are reserved for AWS's own tags"
    if key.lower().startswith(OWN_TAG_PREFIX):
        return (
            f"keys starting {OWN_TAG_PREFIX} are amirun's own (the sweeper and the "
            "reconciler find a run's instance by them); use another prefix"
        )
    return None


def _tag_problems(specs: Any, own_tags: dict[str, int]) -> Iterator[Problem]:
    if not isinstance(specs, list):
        return
    keys_by_type: dict[str, list[str]] = {}
    for i, spec in enumerate(specs):
        tags = spec.get("Tags") if isinstance(spec, dict) else None
        if not isinstance(tags, list):
            continue
        resource_type = spec.get("ResourceType")
        for j, tag in enumerate(tags):
            if not isinstance(tag, dict):
                continue
            where = f"{_WHERE}.TagSpecifications[{i}].Tags[{j}]"
            key, value = tag.get("Key"), tag.get("Value")
            if "Key" not in tag:
                yield Problem(f"{where}.Key", "required (EC2 refuses a tag without a key)")
            elif isinstance(key, str):
                if not 1 <= len(key) <= MAX_TAG_KEY:
                    yield Problem(
                        f"{where}.Key", f"{len(key)} characters; a tag key has 1 to {MAX_TAG_KEY}"
                    )
                why = reserved_tag_key(key)
                if why:
                    yield Problem(f"{where}.Key", f"{key[:40]!r}: {why}")
                if isinstance(resource_type, str):
                    keys_by_type.setdefault(resource_type, []).append(key)
            if isinstance(value, str) and len(value) > MAX_TAG_VALUE:
                yield Problem(
                    f"{where}.Value",
                    f"{len(value)} characters; a tag value has at most {MAX_TAG_VALUE}",
                )
    for resource_type, keys in keys_by_type.items():
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            yield Problem(
                f"{_WHERE}.TagSpecifications",
                f"the {resource_type} tag {twice[0]!r} is given twice (a key has one value)",
            )
        own = own_tags.get(resource_type, 0)
        total = len(set(keys)) + own
        if total > MAX_TAGS_PER_RESOURCE:
            yield Problem(
                f"{_WHERE}.TagSpecifications",
                f"{len(set(keys))} tags for the {resource_type}"
                + (f" and amirun's {own}" if own else "")
                + f" make {total}; EC2 allows {MAX_TAGS_PER_RESOURCE} per resource",
            )


def _volume_problems(mappings: Any) -> Iterator[Problem]:
    if not isinstance(mappings, list):
        return
    for i, mapping in enumerate(mappings):
        ebs = mapping.get("Ebs") if isinstance(mapping, dict) else None
        size = ebs.get("VolumeSize") if isinstance(ebs, dict) else None
        if not isinstance(size, int | float) or isinstance(size, bool):
            continue
        assert isinstance(ebs, dict)
        kind = ebs.get("VolumeType")
        low, high = (
            VOLUME_SIZES.get(kind, ANY_VOLUME_SIZE) if isinstance(kind, str) else (ANY_VOLUME_SIZE)
        )
        if not low <= size <= high:
            of = f"{kind} volumes" if kind in VOLUME_SIZES else "volumes"
            yield Problem(
                f"{_WHERE}.BlockDeviceMappings[{i}].Ebs.VolumeSize",
                f"{size:g} GiB; {of} take {low:,} to {high:,} GiB",
            )


def _launch_template_problems(template: Any) -> Iterator[Problem]:
    if not isinstance(template, dict):
        return
    by_id, by_name = "LaunchTemplateId" in template, "LaunchTemplateName" in template
    if by_id and by_name:
        yield Problem(
            f"{_WHERE}.LaunchTemplate",
            "give LaunchTemplateId or LaunchTemplateName, not both (EC2 refuses both)",
        )
    elif not by_id and not by_name:
        yield Problem(
            f"{_WHERE}.LaunchTemplate",
            "names no launch template: give LaunchTemplateId or LaunchTemplateName",
        )


def _network_problems(params: dict[str, Any]) -> Iterator[Problem]:
    interfaces = params.get("NetworkInterfaces")
    if not isinstance(interfaces, list) or not interfaces:
        return
    clashing = [
        name for name in ("SubnetId", "SecurityGroupIds", "SecurityGroups") if name in params
    ]
    if clashing:
        yield Problem(
            f"{_WHERE}.NetworkInterfaces",
            f"with NetworkInterfaces, EC2 takes no instance-level {' or '.join(clashing)}: "
            "give the subnet and security groups in the interface (SubnetId, Groups)",
        )


def _user_data_problems(user_data: Any) -> Iterator[Problem]:
    if not isinstance(user_data, str):
        return
    size = len(user_data.encode("utf-8", "surrogatepass"))
    if size > MAX_USER_DATA_BYTES:
        yield Problem(
            f"{_WHERE}.UserData",
            f"{size:,} bytes; EC2 takes at most {MAX_USER_DATA_BYTES:,} (16 KB, before base64)",
        )


def integral_numbers(value: Any) -> Any:
    """`value` with every integral float made an int: JSON's 8.0 is an integer, and
    botocore refuses a float where EC2 wants one (RunInstances has no float member)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: integral_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [integral_numbers(item) for item in value]
    return value
