"""The default event bus, as far as amirun listens to it.

The emulated world publishes what AWS would put on the bus (Run Command's
invocation status changes, EC2's instance state changes); the rules are the
`EventBridgeRule` events of the functions in `template.yaml`, patterns and
all; a matching event reaches its function through the local Lambda
endpoint after a delay, asynchronously and with Lambda's two retries, the
way EventBridge invokes a function. The event faults rehearse a bus that
loses, repeats or delays an event.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from amirun.local.lambda_endpoint import Invocation
from amirun.project import StackContext, load_template

#: Asynchronous invocation: the first try and two retries (the template's EventInvokeConfig).
ATTEMPTS = 3
#: The step whose invocation means the safety look has moved on (for event-late).
SAFETY_LOOK = "PollerFunction"

Invoke = Callable[[str, dict[str, Any]], tuple[Any, bool]]


@dataclass(frozen=True)
class Rule:
    function: str
    pattern: dict[str, Any]


def rules_of(template: dict[str, Any], context: StackContext | None = None) -> list[Rule]:
    """Every EventBridge rule the template attaches to a function, its !Refs resolved
    in `context` (the emulated stack's account, region...)."""
    rules = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "EventBridgeRule":
                pattern = event["Properties"]["Pattern"]
                rules.append(Rule(logical_id, context.resolve(pattern) if context else pattern))
    return rules


def _matches_value(wanted: list[Any], value: Any) -> bool:
    """One field: any of the pattern's values, or content filters (anything-but, prefix,
    exists) as EventBridge applies them; an array field matches if one element does."""
    if isinstance(value, list):
        return any(_matches_value(wanted, item) for item in value)
    for item in wanted:
        if not isinstance(item, dict):
            if value == item:
                return True
            continue
        ((operator, operand),) = item.items()
        if operator == "anything-but":
            excluded = operand if isinstance(operand, list) else [operand]
            if value is not None and value not in excluded:
                return True
        elif operator == "prefix":
            if isinstance(value, str) and value.startswith(operand):
                return True
        elif operator == "exists":
            if (value is not None) == operand:
                return True
        else:
            raise ValueError(f"the rehearsal's event bus does not know the filter {operator}")
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for what the template uses: lists of values, nested fields,
    and the content filters anything-but, prefix and exists."""
    for key, wanted in pattern.items():
        value = event.get(key)
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif not _matches_value(wanted, value):
            return False
    return True


class EventBus:
    """Publishes the world's events to the functions whose rules match them."""

    def __init__(
        self,
        *,
        region: str,
        account: str,
        delay_s: float,
        faults: frozenset[str] = frozenset(),
        rules: list[Rule] | None = None,
        stack_name: str = "amirun",
        resources: dict[str, str] | None = None,
    ) -> None:
        self._invoke: Invoke | None = None
        self._region, self._account = region, account
        self._delay_s = delay_s
        self._faults = faults
        if rules is None:
            template = load_template()
            context = StackContext.of(
                template,
                region=region,
                account=account,
                stack_name=stack_name,
                resources=resources,
                strict=False,
            )
            rules = rules_of(template, context)
        self._rules = rules
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._held: list[tuple[str, dict[str, Any]]] = []
        self._closed = False
        #: (time published, event) of everything published, delivered or not.
        self.published: list[tuple[datetime, dict[str, Any]]] = []

    def connect(self, invoke: Invoke) -> None:
        """Deliver through `invoke` (the local Lambda endpoint's) from now on."""
        self._invoke = invoke

    def publish(self, source: str, detail_type: str, detail: dict[str, Any]) -> None:
        instance = f"ec2:{self._region}:{self._account}:instance/{detail['instance-id']}"
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self._account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:{instance}"],
            "detail": detail,
        }
        self.send(event)

    def send(self, event: dict[str, Any]) -> None:
        """Deliver a whole event (e.g. `execution_status_event`'s) to the rules it matches."""
        with self._lock:
            self.published.append((datetime.now(UTC), event))
        if "event-lost" in self._faults:
            return
        for rule in self._rules:
            if not matches(rule.pattern, event):
                continue
            if "event-late" in self._faults:
                with self._lock:
                    self._held.append((rule.function, event))
                continue
            copies = 2 if "event-duplicate" in self._faults else 1
            for copy in range(copies):
                self._later(self._delay_s * (copy + 1), rule.function, event)

    def observe(self, invocation: Invocation) -> None:
        """Release late events once the safety look has moved on without them."""
        if invocation.function != SAFETY_LOOK:
            return
        with self._lock:
            held, self._held = self._held, []
        for function, event in held:
            self._later(self._delay_s, function, event)

    def _later(self, delay_s: float, function: str, event: dict[str, Any]) -> None:
        timer = threading.Timer(delay_s, self._deliver, args=(function, event))
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.append(timer)
        timer.start()

    def _deliver(self, function: str, event: dict[str, Any]) -> None:
        for _ in range(ATTEMPTS):
            with self._lock:
                if self._closed or self._invoke is None:
                    return
            _, failed = self._invoke(function, event)
            if not failed:
                return

    def close(self) -> None:
        with self._lock:
            self._closed = True
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
            # A delivery under way finishes while the emulator still answers its calls.
            timer.join()


def execution_status_event(described: dict[str, Any]) -> dict[str, Any]:
    """Step Functions' status-change event for an ended execution (`describe_execution`),
    as EventBridge delivers it to the functions whose rules hear the state machine
    (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html)."""
    detail = {
        "executionArn": described["executionArn"],
        "stateMachineArn": described["stateMachineArn"],
        "name": described["name"],
        "status": described["status"],
        "startDate": int(described["startDate"].timestamp() * 1000),
        "stopDate": int(described["stopDate"].timestamp() * 1000),
        "input": described.get("input"),
        "output": described.get("output"),
        "error": described.get("error"),
        "cause": described.get("cause"),
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": described["executionArn"].split(":")[4],
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": described["executionArn"].split(":")[3],
        "resources": [described["executionArn"]],
        "detail": detail,
    }
