"""The emulated world's throttling share: EC2 and SSM calls only, after the SDK's retries."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from amirun.local.world import EmulatedWorld, WorldSettings
from amirun_core import aws


def test_every_attempt_refused_reaches_the_caller_for_ec2_and_ssm_only(
    emulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMIRUN_TIME_SCALE", "0.001")  # the SDK's backoff, scaled
    ec2, ssm, s3 = (aws.client(name) for name in ("ec2", "ssm", "s3"))
    world = EmulatedWorld(WorldSettings(throttle_share=1.0), s3)
    world.install(ec2, ssm)

    with pytest.raises(ClientError) as ec2_refusal:
        ec2.describe_instances()
    with pytest.raises(ClientError) as ssm_refusal:
        ssm.list_commands()
    s3.create_bucket(Bucket="never-throttled")  # S3 is not part of the share
    with world.emulator_calls():  # nor are the emulator's own look-ups
        ec2.describe_instances()

    assert ec2_refusal.value.response["Error"]["Code"] == "RequestLimitExceeded"
    assert ssm_refusal.value.response["Error"]["Code"] == "ThrottlingException"
    assert world.throttled_calls == 2
    # Each refused call was tried as often as the client's retry mode allows.
    attempts = ec2.meta.config.retries["total_max_attempts"]
    assert world.throttled_attempts == 2 * attempts
