"""RunChecker: the output object must be in S3 and written by this run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from unit_helpers import RUN_DATE, START_TIME, make_request, make_state, with_records

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
    s3.put_object(Bucket=BUCKET, Key="daily/20250530/result.txt", Body=b"the day before")

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


# --- ii_check_s3: true, the key the original checks under the commands' location -------
PREFIX = "outputs/ngen.20250601/short_range/06/VPU_10L"


def derived(
    prefix: str = "outputs/ngen.DAILY/short_range/06/VPU_10L",
    script: str = "/home/ec2-user/datastreamcli/scripts/datastream",
    **fields: Any,
) -> Any:
    """A state whose Resolve step ran at START_TIME (06:00Z, cycle 06: DAILY = 20250601)."""
    request = make_request(ii_check_s3=True)
    request["commands"] = [
        f"{script} -s DAILY --FORCING_SOURCE NWM_V3_SHORT_RANGE_06 "
        f"--S3_BUCKET {BUCKET} --S3_PREFIX {prefix}"
    ]
    resolved = make_state(request).resolution().model_dump(mode="json")
    return make_state(request, resolved=resolved, **fields)


def test_true_passes_with_the_datastreams_merkdir_file(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/merkdir.file", Body=b"tree")

    record = check_output(s3, derived())

    assert record.location == f"s3://{BUCKET}/{PREFIX}/merkdir.file"


def test_true_is_not_fooled_by_other_objects_under_the_prefix(s3: Any) -> None:
    """The run itself writes its execution record under the prefix, and a failed
    datastream leaves partial outputs there: neither is the output the check wants."""
    s3.create_bucket(Bucket=BUCKET)
    for key in ("datastream-metadata/execution.json", "ngen-run/outputs/troute/a.nc"):
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}", Body=b"x")

    with pytest.raises(OutputMissing) as caught:
        check_output(s3, derived())

    assert str(caught.value) == (
        f"s3://{BUCKET}/{PREFIX}/merkdir.file: no such object after the run (ii_check_s3 "
        "true checks this key: a command runs /scripts/datastream)"
    )


def test_true_checks_the_forcing_metadata_when_no_command_runs_the_datastream(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/merkdir.file", Body=b"tree")
    state = derived(script="python3 configure_datastream.py")

    with pytest.raises(OutputMissing, match="no command runs /scripts/datastream"):
        check_output(s3, state)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/metadata/forcings_metadata/metadata.csv", Body=b"")
    record = check_output(s3, state)
    assert record.location == f"s3://{BUCKET}/{PREFIX}/metadata/forcings_metadata/metadata.csv"


def test_true_needs_the_key_written_after_the_run_started(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/merkdir.file", Body=b"")
    later = timing.now() + timedelta(hours=1)
    state = derived(execution={"id": "arn:x", "name": "n", "start_time": later})

    with pytest.raises(OutputMissing, match=r"merkdir\.file was last written .* before this run"):
        check_output(s3, state)


class _Pages:
    """A stand-in S3 client whose listing comes in the pages given (moto pages by 1,000)."""

    def __init__(self, pages: list[list[dict[str, Any]]]) -> None:
        self.pages, self.read = pages, 0

    def head_object(self, **_: Any) -> Any:
        raise ClientError({"Error": {"Code": "404", "Message": "Not Found"}}, "HeadObject")

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **_: Any) -> Any:
        for page in self.pages:
            self.read += 1
            yield {"Contents": page}


def test_a_prefix_check_stops_at_the_first_fresh_object_among_stale_pages() -> None:
    """`{"bucket", "prefix"}` naming a prefix: the listing is stubbed (thousands of
    objects in moto would make a slow test), and so is HeadObject's 404."""
    start = START_TIME.replace(microsecond=0)
    old = [{"Key": f"k{i}", "Size": 1, "LastModified": start - timedelta(days=1)} for i in range(3)]
    fresh = {"Key": "k-new", "Size": 7, "LastModified": start + timedelta(minutes=5)}
    client = _Pages([old, old, [fresh], old])

    record = check_output(client, checking("outputs/"))

    assert (record.location, record.size) == (f"s3://{BUCKET}/k-new", 7)
    assert client.read == 3


def test_a_run_resolved_before_the_key_rule_is_checked_as_it_was(s3: Any) -> None:
    """An execution in flight across a deploy carries its old resolution (a folder to
    look under, no `why`): the new checker keeps that run's rule."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/ngen-run.tar.gz", Body=b"t")
    state = derived()
    old = state.resolution().model_dump(mode="json")
    old["output_check"] = {"bucket": BUCKET, "prefix": f"{PREFIX}/", "source": "commands"}

    record = check_output(s3, with_records(state, resolved=old))

    assert record.location == f"s3://{BUCKET}/{PREFIX}/ngen-run.tar.gz"
