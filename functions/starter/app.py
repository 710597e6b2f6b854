"""EC2StarterFromAMI: validate the execution JSON, then launch its one instance."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from amirun_core import aws
from amirun_core.launch import launch_instance
from amirun_core.observability import logger, metrics, workflow_step
from amirun_core.slot_facts import ledger_table, record_launch
from amirun_core.state import WorkflowState

EC2 = aws.client("ec2")
DYNAMODB = aws.client("dynamodb")
LEDGER_TABLE = ledger_table()
STACK_NAME = os.environ.get("STACK_NAME", "amirun")
#: Named in the error when IAM refuses to pass the instance's role.
ROLE_PATTERN = os.environ.get("INSTANCE_ROLE_NAME_PATTERN")


@workflow_step
def lambda_handler(state: WorkflowState, context: LambdaContext) -> dict[str, Any]:
    instance = launch_instance(EC2, state, STACK_NAME, ROLE_PATTERN)
    metrics.add_metric(name="InstancesLaunched", unit=MetricUnit.Count, value=1)
    record_launch(DYNAMODB, LEDGER_TABLE, state, instance)
    logger.info("instance launched", extra=instance.to_json())
    return instance.to_json()
