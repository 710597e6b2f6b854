"""Morning report: last night's page to the output bucket, one SNS message with the counts.

Runs on its own schedule (the stack's MorningReport parameters); what was due
is read from the stack's schedule group, what ran from the slot ledger.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.morning import morning_report
from amirun_core.observability import logger, metrics, tracer

SCHEDULER = aws.client("scheduler")
DYNAMODB = aws.client("dynamodb")
S3 = aws.client("s3")
SNS = aws.client("sns")
SCHEDULE_GROUP = os.environ.get("SCHEDULE_GROUP", "")
LEDGER_TABLE = os.environ.get("RUN_LEDGER_TABLE", "")
OUTPUT_BUCKET = os.environ.get("OUTPUT_BUCKET", "")
TOPIC_ARN = os.environ.get("TOPIC_ARN", "")
STACK_NAME = os.environ.get("STACK_NAME", "amirun")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = morning_report(
        scheduler=SCHEDULER,
        dynamodb=DYNAMODB,
        s3=S3,
        sns=SNS,
        group=SCHEDULE_GROUP,
        table=LEDGER_TABLE,
        bucket=OUTPUT_BUCKET,
        topic_arn=TOPIC_ARN,
        stack=STACK_NAME,
        now=datetime.now(UTC),
    )
    metrics.add_metric(name="DueSlots", unit=MetricUnit.Count, value=report.due)
    metrics.add_metric(name="MissingSlots", unit=MetricUnit.Count, value=report.missing)
    logger.info("morning report", extra=report.to_json())
    return report.to_json()
