"""RunChecker: the run's output object must be in S3, written by this run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.errors import OutputMissing
from amirun_core.state import CheckRecord, WorkflowState

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
#: What the checker's role may do (template.yaml), for the message when S3 refuses it.
READ_NEEDS = (
    "the checker may read buckets matching the stack parameter CheckedBucketPattern "
    "(s3:GetObject, and s3:ListBucket, without which a missing key is a 403 too); the "
    "bucket's policy, and the KMS key policy of an SSE-KMS bucket (kms:Decrypt), must "
    "allow it as well"
)


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        aws.raise_if_throttled(exc, "HeadObject")
        if aws.error_code(exc) in NOT_FOUND_CODES:
            return None
        aws.raise_if_denied(exc, f"HeadObject on s3://{bucket}/{key}", READ_NEEDS)
        raise OutputMissing(f"cannot read s3://{bucket}/{key}: {aws.describe(exc)}") from exc


def _fresh_under(s3: Any, bucket: str, prefix: str, since: datetime) -> dict[str, Any] | None:
    """An object under `prefix` written at or after `since`, else the newest one seen.

    Stops at the first fresh object; a large output tree costs one page.
    """
    newest: dict[str, Any] | None = None
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["LastModified"] >= since:
                    return dict(item)
                if newest is None or item["LastModified"] > newest["LastModified"]:
                    newest = dict(item)
    except ClientError as exc:
        aws.raise_if_throttled(exc, "ListObjectsV2")
        aws.raise_if_denied(exc, f"ListObjectsV2 on s3://{bucket}/{prefix}", READ_NEEDS)
        raise OutputMissing(f"cannot list s3://{bucket}/{prefix}: {aws.describe(exc)}") from exc
    return newest


def check_output(s3: Any, state: WorkflowState) -> CheckRecord:
    """Find the output; raise OutputMissing if it is absent or older than the run.

    `ii_check_s3: {bucket, prefix}`: that object, or one under that prefix.
    `ii_check_s3: true`: the one key the original checks under the location the
    commands give (merkdir.file, or the forcing metadata), never "any object": the
    run writes its execution record under that prefix itself.
    """
    check = state.resolution().output_check
    if check is None:
        return CheckRecord(checked=False)
    bucket, prefix = check.bucket, check.prefix
    # S3 keeps whole seconds; the execution's start has milliseconds.
    started: datetime = state.execution.start_time.replace(microsecond=0)
    since = started if check.newer_than_start else datetime.min.replace(tzinfo=started.tzinfo)
    exact = _head(s3, bucket, prefix)
    if exact is not None:
        found = {
            "Key": prefix,
            "Size": exact["ContentLength"],
            "LastModified": exact["LastModified"],
        }
    elif check.why is not None:
        # ii_check_s3 true: the one key. (A run resolved before that rule, still in
        # flight during a deploy, has no `why` and is checked as it was: under the prefix.)
        raise OutputMissing(
            f"{check.location}: no such object after the run (ii_check_s3 true checks this "
            f"key: {check.why})"
        )
    else:
        under = _fresh_under(s3, bucket, prefix, since)
        if under is None:
            raise OutputMissing(f"{check.location}: no such object or prefix after the run")
        found = under
    location = f"s3://{bucket}/{found['Key']}"
    modified: datetime = found["LastModified"]
    if modified < since:
        raise OutputMissing(
            f"{location} was last written {modified.isoformat()}, before this run "
            f"started ({started.isoformat()}): the run did not write it"
        )
    return CheckRecord(checked=True, location=location, size=found["Size"], last_modified=modified)
