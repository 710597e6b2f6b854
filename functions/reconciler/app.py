"""Reconciler: on a schedule, stop what this stack launched for executions that ended.

The sweeper acts on each execution's end; this catches what appeared after it
(a launch still in flight during an abort). See amirun_core/reconcile.py.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.observability import logger, metrics, tracer
from amirun_core.reconcile import execution_status, reconcile
from amirun_core.room import Limits, free_ended

EC2 = aws.client("ec2")
SFN = aws.client("stepfunctions")
STACK_NAME = os.environ.get("STACK_NAME", "amirun")
DYNAMODB = aws.client("dynamodb")
TABLE = os.environ.get("RUN_LEDGER_TABLE", "")
LIMITS = Limits.from_environment()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = reconcile(EC2, SFN, STACK_NAME)
    metrics.add_metric(name="InstancesReconciled", unit=MetricUnit.Count, value=len(report.swept))
    metrics.add_metric(name="ReconcileFailures", unit=MetricUnit.Count, value=len(report.failed))
    summary = report.model_dump(mode="json")
    # vCPU claims and places in line of executions that ended without giving them back.
    summary["claims_released"] = free_ended(
        DYNAMODB, TABLE, LIMITS, lambda arn: execution_status(SFN, arn)[0]
    )
    if report.swept or report.failed or summary["claims_released"]:
        logger.warning("instances whose execution had ended", extra=summary)
    else:
        logger.info("nothing to reconcile", extra=summary)
    return summary
