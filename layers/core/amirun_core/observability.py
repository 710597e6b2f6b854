"""Powertools Logger, Tracer and Metrics, configured by the template's Globals.

One instance of each per process. Every workflow step wears them through
`workflow_step`, so the decorator order is the same everywhere
(inject_lambda_context, capture_lambda_handler, log_metrics, then the parser),
and logs carry the execution ARN as correlation id.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel

from amirun_core import aws
from amirun_core.cost import UsageRecord
from amirun_core.errors import AmirunError, InternalError, one_line_cause
from amirun_core.state import CommandWait, WorkflowState

# Most invocations have nothing to count; that is not worth a warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
tracer = Tracer()
metrics = Metrics()

#: Where the execution ARN sits in every Task's input (the workflow state).
CORRELATION_ID_PATH = "execution.id"


Model = TypeVar("Model", bound=BaseModel)
LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def error_contract(handler: LambdaHandler) -> LambdaHandler:
    """Every failure leaves a step under one of the names in amirun_core.errors.

    An access refusal nobody expected becomes PermissionDenied (naming the call);
    anything else unexpected becomes InternalError, with the original exception's
    name and message in its cause and the stack trace in the function's log.
    """

    @functools.wraps(handler)
    def guarded(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            return handler(event, context)
        except AmirunError:
            raise
        except ClientError as exc:
            aws.raise_if_denied(
                exc, exc.operation_name, "the function's role (template.yaml) lacks this permission"
            )
            logger.exception("unexpected AWS error")
            raise InternalError(f"{exc.operation_name}: {aws.describe(exc)}") from exc
        except Exception as exc:
            logger.exception("unexpected error")
            raise InternalError(f"{type(exc).__name__}: {one_line_cause(str(exc))}") from exc

    return guarded


def _step(
    model: type[Model], correlation_id_path: str
) -> Callable[[Callable[[Model, LambdaContext], dict[str, Any]]], LambdaHandler]:
    def decorate(handler: Callable[[Model, LambdaContext], dict[str, Any]]) -> LambdaHandler:
        parsed = error_contract(event_parser(model=model)(handler))
        traced = tracer.capture_lambda_handler(metrics.log_metrics(parsed))
        wrapped: LambdaHandler = logger.inject_lambda_context(
            traced, correlation_id_path=correlation_id_path
        )
        return wrapped

    return decorate


#: A workflow Task's handler: takes the parsed workflow state, returns a record.
workflow_step = _step(WorkflowState, CORRELATION_ID_PATH)
#: A task-token Task's handler: takes the token and the workflow state.
token_step = _step(CommandWait, f"state.{CORRELATION_ID_PATH}")


def count_usage(usage: UsageRecord, schedule: str | None) -> None:
    """One attempt's instance-seconds and estimated cost, as metrics.

    The schedule, instance type and market ride along as metadata (searchable in
    Logs Insights), not as dimensions: a dimension per schedule would be one
    billed custom metric per schedule and metric, over a thousand of them.
    """
    metrics.add_metric(
        name="InstanceSeconds", unit=MetricUnit.Seconds, value=usage.instance_seconds
    )
    if usage.estimated_cost_usd is not None:
        metrics.add_metric(
            name="EstimatedCostUSD", unit=MetricUnit.NoUnit, value=usage.estimated_cost_usd
        )
    metrics.add_metadata(key="schedule", value=schedule or "")
    metrics.add_metadata(key="instance_type", value=usage.instance_type)
    metrics.add_metadata(key="market", value=usage.market)
