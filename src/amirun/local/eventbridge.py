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
from amirun.project import load_template

#: Asynchronous invocation: the first try and two retries (the template's EventInvokeConfig).
ATTEMPTS = 3
#: The step whose invocation means the safety look has moved on (for event-late).
SAFETY_LOOK = "PollerFunction"

Invoke = Callable[[str, dict[str, Any]], tuple[Any, bool]]


@dataclass(frozen=True)
class Rule:
    function: str
    pattern: dict[str, Any]


def resolved(value: Any, refs: dict[str, str]) -> Any:
    """A pattern with `Ref`s replaced by `refs` and each `Fn::If` taken as false
    (the local stack has every optional condition off, e.g. NotifyOnSuccess)."""
    if isinstance(value, list):
        return [resolved(item, refs) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return refs.get(value["Ref"], f"unresolved {value['Ref']}")
    if set(value) == {"Fn::If"}:
        return resolved(value["Fn::If"][2], refs)
    return {key: resolved(item, refs) for key, item in value.items()}


def rules_of(template: dict[str, Any], refs: dict[str, str] | None = None) -> list[Rule]:
    """Every EventBridge rule the template attaches to a function, `Ref`s resolved."""
    rules = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event.get("Type") == "EventBridgeRule":
                rules.append(Rule(logical_id, resolved(event["Properties"]["Pattern"], refs or {})))
    return rules


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for what the template uses: lists of values, nested fields."""
    for key, wanted in pattern.items():
        value = event.get(key)
        if isinstance(wanted, dict):
            if not isinstance(value, dict) or not matches(wanted, value):
                return False
        elif value not in wanted:
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
        refs: dict[str, str] | None = None,
    ) -> None:
        self._invoke: Invoke | None = None
        self._region, self._account = region, account
        self._delay_s = delay_s
        self._faults = faults
        self._rules = rules_of(load_template(), refs) if rules is None else rules
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
        if "instance-id" in detail:
            resources = [
                f"arn:aws:ec2:{self._region}:{self._account}:instance/{detail['instance-id']}"
            ]
        else:
            resources = [detail["executionArn"]] if "executionArn" in detail else []
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": self._account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": resources,
            "detail": detail,
        }
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
