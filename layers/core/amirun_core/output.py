"""RunChecker: the run's output object must be in S3, written by this run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from amirun_core import aws
from amirun_core.command import expand_daily
from amirun_core.errors import OutputMissing
from amirun_core.execution import read_execution
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


def _newest_under(s3: Any, bucket: str, prefix: str) -> dict[str, Any] | None:
    """The most recently written object under `prefix` (first 1,000 keys)."""
    try:
        contents = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    except ClientError as exc:
        aws.raise_if_throttled(exc, "ListObjectsV2")
        aws.raise_if_denied(exc, f"ListObjectsV2 on s3://{bucket}/{prefix}", READ_NEEDS)
        raise OutputMissing(f"cannot list s3://{bucket}/{prefix}: {aws.describe(exc)}") from exc
    return max(contents, key=lambda o: o["LastModified"], default=None)


def check_output(s3: Any, state: WorkflowState) -> CheckRecord:
    """Find the output object; raise OutputMissing if it is absent or stale."""
    check = read_execution(state.request).run_options.output_check
    if check is None:
        return CheckRecord(checked=False)
    bucket = expand_daily(check.bucket, state.run_date)
    prefix = expand_daily(check.prefix, state.run_date)
    location = f"s3://{bucket}/{prefix}"
    found = _head(s3, bucket, prefix)
    if found is not None:
        size, modified = found["ContentLength"], found["LastModified"]
    else:
        newest = _newest_under(s3, bucket, prefix)
        if newest is None:
            raise OutputMissing(f"{location}: no such object or prefix after the run")
        size, modified = newest["Size"], newest["LastModified"]
        location = f"s3://{bucket}/{newest['Key']}"
    # S3 keeps whole seconds; the execution's start has milliseconds.
    started: datetime = state.execution.start_time.replace(microsecond=0)
    if check.newer_than_start and modified < started:
        raise OutputMissing(
            f"{location} was last written {modified.isoformat()}, before this run "
            f"started ({started.isoformat()}): the run did not write it"
        )
    return CheckRecord(checked=True, location=location, size=size, last_modified=modified)
