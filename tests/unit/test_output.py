"""RunChecker: the output object must be in S3 and written by this run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import RUN_DATE, make_request, make_state

from amirun_core import timing
from amirun_core.errors import OutputMissing
from amirun_core.output import check_output

BUCKET = "amirun-unit-results"


def checking(prefix: str, **fields: Any) -> Any:
    request = make_request(ii_check_s3={"bucket": BUCKET, "prefix": prefix})
    return make_state(request, **fields)


def test_no_check_asked_is_not_checked(s3: Any) -> None:
    record = check_output(s3, make_state(make_request(ii_check_s3=False)))

    assert record.checked is False
    assert record.location is None


def test_an_object_written_after_the_start_passes(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"daily/{RUN_DATE}/result.txt", Body=b"42\n")

    record = check_output(s3, checking("daily/DAILY/result.txt"))

    assert record.checked is True
    assert record.location == f"s3://{BUCKET}/daily/{RUN_DATE}/result.txt"
    assert record.size == 3
    assert record.last_modified is not None


def test_a_missing_object_is_output_missing_naming_it(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="daily/20250531/result.txt", Body=b"yesterday")

    with pytest.raises(OutputMissing) as caught:
        check_output(s3, checking("daily/DAILY/result.txt"))

    assert f"s3://{BUCKET}/daily/{RUN_DATE}/result.txt" in str(caught.value)


def test_a_missing_bucket_is_output_missing(s3: Any) -> None:
    with pytest.raises(OutputMissing, match=f"s3://{BUCKET}/"):
        check_output(s3, checking("daily/DAILY/result.txt"))


def test_an_object_under_the_prefix_passes(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_DATE}/part-0001.nc", Body=b"a")
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_DATE}/part-0002.nc", Body=b"bb")

    record = check_output(s3, checking("runs/DAILY/"))

    assert record.checked is True
    assert record.location is not None
    assert record.location.startswith(f"s3://{BUCKET}/runs/{RUN_DATE}/part-")
    assert record.size in (1, 2)


def test_an_empty_prefix_is_output_missing(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="runs/other/part-0001.nc", Body=b"a")

    with pytest.raises(OutputMissing, match=f"s3://{BUCKET}/runs/{RUN_DATE}/"):
        check_output(s3, checking("runs/DAILY/"))


def test_an_object_older_than_the_run_is_output_missing(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="latest/result.txt", Body=b"stale")
    started_later = timing.now() + timedelta(hours=1)
    state = checking(
        "latest/result.txt",
        execution={"id": "arn:x", "name": "later", "start_time": started_later},
    )

    with pytest.raises(OutputMissing) as caught:
        check_output(s3, state)

    assert f"s3://{BUCKET}/latest/result.txt" in str(caught.value)
    assert "before this run started" in str(caught.value)


def test_an_old_object_passes_when_freshness_is_not_asked(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="latest/result.txt", Body=b"stale")
    request = make_request(
        ii_check_s3={"bucket": BUCKET, "prefix": "latest/result.txt", "newer_than_start": False}
    )
    started_later = timing.now() + timedelta(hours=1)
    state = make_state(request, execution={"id": "arn:x", "name": "n", "start_time": started_later})

    assert check_output(s3, state).checked is True
