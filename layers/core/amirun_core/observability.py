"""Powertools Logger, Tracer and Metrics, configured by the template's Globals.

One instance of each per process; every handler decorates itself with them in
the same order (inject_lambda_context, capture_lambda_handler, log_metrics),
and logs carry the execution ARN as correlation id.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer

# Most invocations have nothing to count; that is not worth a warning each time.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = Logger()
tracer = Tracer()
metrics = Metrics()

#: Where the execution ARN sits in every Task's input (the workflow state).
CORRELATION_ID_PATH = "execution.id"
