"""Deploying template.yaml into the emulator: what `sam deploy` creates, found by the same names.

`EmulatorSession` already holds the workflow (the real ASL), the handlers behind
the local Lambda endpoint, the token table and the slot ledger, the output
bucket, the world and the event bus. This adds what users and the remote
commands reach: the schedule group, the role Scheduler assumes, the schedules'
dead-letter queue, the notification topic, the sweeper's failure queue, and a
CloudFormation stack whose outputs name them as the template's `Outputs` do,
so `--stack NAME` finds everything as on AWS.

Every execution started on the state machine, by anyone (a remote `start`, the
local Scheduler), gets what a rehearsal gives it before it runs: stand-ins for
the resources it names, its inputs, and its output once the command succeeds.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from amirun.local.runner import (
    NOTIFICATION_TOPIC_ARN,
    OUTPUT_BUCKET,
    RUN_LEDGER_TABLE,
    STACK_NAME,
    EmulatorSession,
)

SCHEDULE_GROUP = f"{STACK_NAME}-schedules"
SCHEDULER_ROLE = f"{STACK_NAME}-scheduler"
DEAD_LETTER_QUEUE = f"{STACK_NAME}-schedule-dlq"
SWEEPER_FAILURE_QUEUE = f"{STACK_NAME}-sweeper-failures"


@dataclass(frozen=True)
class Deployed:
    """The local stack's name and its outputs, as `describe-stacks` shows them."""

    name: str
    outputs: dict[str, str]


def _queue(sqs: Any, name: str) -> tuple[str, str]:
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def deploy(session: EmulatorSession) -> Deployed:
    """Create the stack's remaining resources and its CloudFormation stack with outputs."""
    boto = session.boto
    sqs, iam = boto("sqs"), boto("iam")
    boto("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)
    role = iam.create_role(
        RoleName=SCHEDULER_ROLE,
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    dlq_url, dlq_arn = _queue(sqs, DEAD_LETTER_QUEUE)
    sweeper_url, _ = _queue(sqs, SWEEPER_FAILURE_QUEUE)
    topic = boto("sns").create_topic(Name=NOTIFICATION_TOPIC_ARN.rsplit(":", 1)[1])["TopicArn"]
    outputs = {
        "StateMachineArn": session.state_machine_arn,
        "StateMachineName": session.state_machine_arn.rsplit(":", 1)[1],
        "OutputBucketName": OUTPUT_BUCKET,
        "ScheduleGroupName": SCHEDULE_GROUP,
        "SchedulerRoleArn": role,
        "ScheduleDeadLetterQueueArn": dlq_arn,
        "ScheduleDeadLetterQueueUrl": dlq_url,
        "NotificationTopicArn": topic,
        "SweeperFailureQueueUrl": sweeper_url,
        "RunLedgerTableName": RUN_LEDGER_TABLE,
    }
    template = {
        # CloudFormation wants a resource; this one creates nothing.
        "Resources": {"Deployed": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    with warnings.catch_warnings():
        # moto says it does not model the handle: nothing is to be modelled.
        warnings.simplefilter("ignore", UserWarning)
        boto("cloudformation").create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(template))
    return Deployed(STACK_NAME, outputs)


@contextlib.contextmanager
def prepared_starts(
    session: EmulatorSession, after: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Every start of the workflow, whoever asks, is prepared as a rehearsal prepares it
    (then `after` is called with the execution's ARN)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    lock = threading.Lock()

    def start_execution(
        backend: Any,
        state_machine_arn: str,
        name: Any = None,
        execution_input: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if state_machine_arn == session.state_machine_arn:
            # Named here when the caller gave none, so the ARN is known before the start.
            name = name or str(uuid.uuid4())
            arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
            try:
                request = json.loads(execution_input or "{}")
            except ValueError:
                request = None  # the emulator refuses it as Step Functions would
            if isinstance(request, dict):
                # Stand-ins are created with patched id generators: one start at a time.
                with lock:
                    session.prepare_execution(request, arn, datetime.now(UTC))
                if after is not None:
                    after(arn)
        return original(backend, state_machine_arn, name, execution_input, *args, **kwargs)

    with mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution):
        yield
