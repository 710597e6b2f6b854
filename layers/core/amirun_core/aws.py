"""AWS clients and the translation of SDK failures into amirun's errors."""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from amirun_core.errors import AwsThrottled, PermissionDenied

THROTTLING_CODES = frozenset(
    {
        "RequestLimitExceeded",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestThrottled",
        "SlowDown",
    }
)

#: What AWS answers when IAM, a bucket policy or a key policy refuses a call.
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"}
)

#: Short SDK timeouts and few retries: the state machine's Retry does the
#: patient retrying, with backoff and jitter, without burning Lambda time.
_CONFIG = Config(
    connect_timeout=5,
    read_timeout=20,
    retries={"mode": "standard", "max_attempts": 3},
)


@functools.cache
def client(service: str) -> Any:
    """One client per service and process, created on first use and reused."""
    # boto3 (with s3transfer) is imported on first use: the CLI's commands that make
    # no AWS call (`schedules expand`, `validate`, `render`) start without it.
    import boto3

    return boto3.client(service, config=_CONFIG)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def raise_if_throttled(exc: ClientError, action: str) -> None:
    """Turn throttling into AwsThrottled (retried by the state machine)."""
    if error_code(exc) in THROTTLING_CODES:
        raise AwsThrottled(f"{action}: {error_code(exc)}") from exc


def describe_instance(ec2: Any, instance_id: str) -> dict[str, Any] | None:
    """The instance as EC2 describes it, or None when EC2 does not know it (yet)."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as exc:
        raise_if_throttled(exc, "DescribeInstances")
        if error_code(exc) != "InvalidInstanceID.NotFound":
            raise
        return None
    return dict(reservations[0]["Instances"][0]) if reservations else None


def describe(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")


def raise_if_denied(exc: ClientError, action: str, needs: str) -> None:
    """Turn an access refusal into PermissionDenied, saying what permission is missing."""
    if error_code(exc) in ACCESS_DENIED_CODES:
        raise PermissionDenied(f"{action} was refused ({describe(exc)}): {needs}") from exc
