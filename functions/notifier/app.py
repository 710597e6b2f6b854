"""Notifier: one SNS message when an execution ends FAILED, TIMED_OUT or ABORTED.

The same EventBridge status-change event as the sweeper's, on a rule of its
own (SUCCEEDED too when the stack's NotifyOnSuccess is true), so sweeping
keeps its narrow EC2 rights and notifying only reads EC2 and publishes to the
stack's topic.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.notify import execution_instances, execution_notice, publish
from amirun_core.observability import logger, metrics, tracer

EC2 = aws.client("ec2")
SNS = aws.client("sns")
TOPIC_ARN = os.environ.get("TOPIC_ARN", "")


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    detail = dict(event.detail)
    instances = execution_instances(EC2, detail["executionArn"])
    notice = execution_notice(detail, instances)
    message_id = publish(SNS, TOPIC_ARN, notice)
    logger.info("notified", extra={"subject": notice.subject, "message_id": message_id})
    return {
        "execution": detail["executionArn"],
        "status": detail.get("status"),
        "message_id": message_id,
    }
