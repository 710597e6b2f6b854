"""The morning report on moto: the page lands in the bucket, one message on the topic.

What was due is read from a schedule group (moto keeps schedules; it never
fires them); the ledger holds one succeeded, one failed slot, and one missing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from unit_helpers import OUTPUT_BUCKET, RUN_LEDGER_TABLE, FakeLambdaContext, load_event

from amirun.local.runner import create_ledger_table
from amirun_core.ledger import claim_slot, record_end, slot_key
from amirun_core.morning import message_of, row_of
from amirun_core.night import DueSlot, join_night

GROUP = "amirun-unit-group"
NIGHT_START = datetime(2026, 2, 9, tzinfo=UTC)
NAMES = [f"short_range_fcst0{n}_vpu0{n}_schedule_cfe_nom_prod" for n in (1, 2, 3)]


def test_a_nextgen_name_tells_its_family_and_row() -> None:
    assert row_of("medium_range_fcst06_mem1_vpu10L_schedule_cfe_nom_prod") == (
        "medium_range_fcst*_mem*_vpu*_schedule_cfe_nom_prod",
        {"init": "06", "member": "1", "vpu": "10L"},
    )
    assert row_of("nightly-report-large") == ("nightly-report-large", {})


@pytest.fixture
def stack(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    scheduler = boto3.client("scheduler")
    scheduler.create_schedule_group(Name=GROUP)
    for n, name in enumerate(NAMES, 1):
        scheduler.create_schedule(
            Name=name,
            GroupName=GROUP,
            ScheduleExpression=f"cron(0 {n} * * ? *)",
            ScheduleExpressionTimezone="America/New_York",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": "arn:aws:scheduler:::aws-sdk:sfn:startExecution",
                "RoleArn": "r",
                "Input": "{}",
            },
        )
    dynamodb = boto3.client("dynamodb")
    create_ledger_table(dynamodb, RUN_LEDGER_TABLE)
    boto3.client("s3").create_bucket(Bucket=OUTPUT_BUCKET)
    topic = boto3.client("sns").create_topic(Name="amirun-unit")["TopicArn"]
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="amirun-unit-reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    for n, end in ((1, "succeeded"), (2, "failed")):  # 03 never started
        due = NIGHT_START + timedelta(hours=n + 5)  # n o'clock in New York, EST
        arn = f"arn:aws:states:us-east-1:123456789012:execution:amirun:run-{n}"
        key = slot_key(NAMES[n - 1], due)
        claim_slot(dynamodb, RUN_LEDGER_TABLE, slot=key, execution_arn=arn,
                   schedule=NAMES[n - 1], scheduled_time=due, started_at=due)  # fmt: skip
        fields: dict[str, Any] = {"duration_s": 900, "instance_seconds": 800, "cost_usd": 0.04}
        if n == 2:
            fields |= {"error": "CommandFailed", "cause": "exit 3: <no forcing>"}
        record_end(
            dynamodb, RUN_LEDGER_TABLE, slot=key, execution_arn=arn, status=end, fields=fields
        )
    monkeypatch.setenv("SCHEDULE_GROUP", GROUP)
    monkeypatch.setenv("TOPIC_ARN", topic)
    return {"queue": queue}


def test_the_morning_report_writes_the_page_and_publishes_the_counts(
    stack: dict[str, Any], load_handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter = load_handler("reporter")
    monkeypatch.setattr(reporter, "datetime", _FixedClock)

    result = reporter.lambda_handler(load_event("reporter"), FakeLambdaContext())

    assert result["night"] == "2026-02-09"
    assert result["page"] == f"s3://{OUTPUT_BUCKET}/reports/2026-02-09.html"
    assert (result["due"], result["missing"]) == (3, 1)
    page = boto3.client("s3").get_object(Bucket=OUTPUT_BUCKET, Key="reports/2026-02-09.html")
    assert page["ContentType"] == "text/html; charset=utf-8"
    html = page["Body"].read().decode()
    assert html.count('<td class="cell') == 3
    assert "exit 3: &lt;no forcing&gt;" in html  # escaped
    messages = boto3.client("sqs").receive_message(QueueUrl=stack["queue"])["Messages"]
    note = json.loads(messages[0]["Body"])
    assert note["Subject"] == "amirun amirun-unit night 2026-02-09: 2 need a look, 3 due"
    body = note["Message"]
    assert "3 due: 1 succeeded, 1 failed, 1 missing (due, never started)" in body
    assert f"- {NAMES[1]} due 07:00: CommandFailed: exit 3: <no forcing>" in body
    assert f"Missing (1): {NAMES[2]}" in body
    assert body.endswith(f"Page: s3://{OUTPUT_BUCKET}/reports/2026-02-09.html")


def test_an_all_delivered_night_says_so() -> None:
    due = [DueSlot("s", NIGHT_START + timedelta(hours=1))]
    item = {"pk": due[0].key, "schedule": "s", "scheduled_time": "2026-02-09T01:00:00Z",
            "status": "succeeded", "attempts": {}}  # fmt: skip
    night = join_night(NIGHT_START.date(), due, [item], NIGHT_START + timedelta(days=1))
    subject, _ = message_of(night, "amirun", "s3://b/reports/2026-02-09.html")
    assert subject == "amirun amirun night 2026-02-09: all delivered, 1 due"


class _FixedClock(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _FixedClock:  # type: ignore[override]
        return cls(2026, 2, 10, 12, 0, tzinfo=UTC)
