"""Settler: a command or an instance of ours ended; end the run's wait for it.

EventBridge sends Run Command's invocation status changes (terminal ones)
and EC2's instance state changes (stopping, shutting down, gone). An event
for an instance no run waits on, for another command, or for a token already
settled is logged and dropped: duplicates and late arrivals are harmless.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core.completion import handle_event, services_from_environment
from amirun_core.observability import logger, metrics, tracer

SERVICES = services_from_environment()


@logger.inject_lambda_context(correlation_id_path='detail."instance-id"')
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    notice = handle_event(SERVICES, event.raw_event)
    if notice.outcome == "succeeded":
        metrics.add_metric(name="CommandsSucceeded", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="EndsFoundByEvent", unit=MetricUnit.Count, value=1)
    logger.info("end event", extra={"detail_type": event.detail_type, "event_detail": event.detail})
    logger.info("what the event did", extra=notice.to_json())
    return notice.to_json()
