"""The command's end event: every status but the in-flight ones, from the stack's account.

AWS documents terminal invocation statuses beyond the API's enum (Delivery
Timed Out, Execution Timed Out, Undeliverable, Terminated, Invalid Platform,
Access Denied) and does not pin the strings the event carries:
https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
so the rule excludes the in-flight statuses with `anything-but`
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-anything-but
and pins `account`, a field of every event:
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
The rule is the template's, read by the rehearsal's event bus.
"""

from __future__ import annotations

from typing import Any

import pytest

from amirun.local.eventbridge import matches, rules_of
from amirun.project import StackContext, load_template
from amirun_core.completion import SSM_DETAIL_TYPE, event_target

ACCOUNT = "123456789012"
ENDS = [
    "Success",
    "Failed",
    "Cancelled",
    "TimedOut",
    "Delivery Timed Out",
    "Execution Timed Out",
    "DeliveryTimedOut",
    "ExecutionTimedOut",
    "Undeliverable",
    "Terminated",
    "Invalid Platform",
    "InvalidPlatform",
    "Access Denied",
    "AccessDenied",
]
IN_FLIGHT = ["Pending", "InProgress", "In Progress", "Delayed", "Cancelling"]


@pytest.fixture(scope="module")
def command_ended() -> dict[str, Any]:
    template = load_template()
    context = StackContext.of(
        template,
        region="us-east-1",
        account=ACCOUNT,
        stack_name="amirun",
        resources={"AmirunStateMachine": "arn:x"},
    )
    (rule,) = [r for r in rules_of(template, context) if r.pattern.get("source") == ["aws.ssm"]]
    return rule.pattern


def event(status: str, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "source": "aws.ssm",
        "account": account,
        "region": "us-east-1",
        "detail-type": SSM_DETAIL_TYPE,
        "detail": {
            "command-id": "c-1",
            "document-name": "AWS-RunShellScript",
            "instance-id": "i-0123456789abcdef0",
            "status": status,
        },
    }


@pytest.mark.parametrize("status", ENDS)
def test_every_end_reaches_the_settler(command_ended: dict[str, Any], status: str) -> None:
    assert matches(command_ended, event(status))
    assert event_target(event(status)) == ("i-0123456789abcdef0", "c-1")


@pytest.mark.parametrize("status", IN_FLIGHT)
def test_in_flight_statuses_do_not(command_ended: dict[str, Any], status: str) -> None:
    assert not matches(command_ended, event(status))
    assert event_target(event(status)) is None


def test_another_accounts_events_do_not(command_ended: dict[str, Any]) -> None:
    assert not matches(command_ended, event("Success", account="210987654321"))


def test_an_event_without_a_status_does_not(command_ended: dict[str, Any]) -> None:
    """anything-but matches only a field that is there."""
    without = event("Success")
    del without["detail"]["status"]
    assert not matches(command_ended, without)
