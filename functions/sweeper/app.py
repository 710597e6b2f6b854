"""Sweeper: after an execution ends FAILED, TIMED_OUT or ABORTED, stop what it left.

A Catch never sees an execution timeout or an abort; the EventBridge rule on
the state machine's status changes does, and sends the event here.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.cleanup import sweep_execution
from amirun_core.observability import logger, metrics, tracer

EC2 = aws.client("ec2")


@logger.inject_lambda_context(correlation_id_path="detail.executionArn")
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    execution_arn = event.detail["executionArn"]
    swept = sweep_execution(EC2, execution_arn, event.detail.get("input"))
    if swept:
        metrics.add_metric(name="InstancesSwept", unit=MetricUnit.Count, value=len(swept))
        logger.warning("stopped instances an ended execution left", extra={"swept": swept})
    return {"execution": execution_arn, "status": event.detail.get("status"), "swept": swept}
