"""`amirun doctor --stack NAME [--canary]`: does the deployed stack really work?

The static checks read the stack from the operator's own account: its outputs,
the Powertools layer its functions use, the EventBridge rules (enabled, and
matching the template's patterns), the schedule group and the role Scheduler
assumes, the notification topic's subscriptions, and the quotas a fleet needs
(Service Quotas: On-Demand and Spot vCPUs for the largest schedule set,
Lambda's concurrency, Step Functions' StartExecution bucket).

The canary (opt-in, a few cents) has Scheduler start one tiny run a couple of
minutes ahead and follows it: the scheduled time in its input, the command's
end as an event, the output check, the cleanup and the cost record. The
schedule and the instance are removed whatever happens, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import secrets
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from amirun.commands.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from amirun.commands.remote import RemoteError, Target, _reported, _target, follow
from amirun.project import ROOT, StackContext, load_template
from amirun.schedules import (
    ScheduleFileError,
    expand,
    schedule_files,
    start_execution_target,
)
from amirun_core.aws import error_code
from amirun_core.errors import one_line_cause
from amirun_core.launch import TAG_EXECUTION

Level = Literal["ok", "warn", "fail"]

#: Service Quotas codes (https://docs.aws.amazon.com/servicequotas/latest/userguide/).
ON_DEMAND_STANDARD_VCPUS = ("ec2", "L-1216C47A")
SPOT_STANDARD_VCPUS = ("ec2", "L-34B43A08")
LAMBDA_CONCURRENCY = ("lambda", "L-B99A9384")
#: The instance families the Standard vCPU quotas cover.
STANDARD_FAMILIES = frozenset("acdhimrtz")
#: The canary: the smallest Graviton type, AWS's public Amazon Linux 2023 AMI.
CANARY_TYPE = "t4g.nano"
CANARY_IMAGE = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
#: How far ahead the canary's one-off schedule fires, and how long the run may take.
CANARY_LEAD_S = 120
CANARY_LIMIT_S = 1_200


@dataclass(frozen=True)
class Finding:
    level: Level
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.level.upper():4}  {self.check:13} {self.detail}"


def _ok(check: str, detail: str) -> Finding:
    return Finding("ok", check, detail)


def _warn(check: str, detail: str) -> Finding:
    return Finding("warn", check, detail)


def _fail(check: str, detail: str) -> Finding:
    return Finding("fail", check, detail)


def _aws_error(exc: ClientError | BotoCoreError) -> str:
    return one_line_cause(str(exc))


# --- The static checks ---------------------------------------------------------------------
@dataclass
class StackView:
    """The deployed stack as the checks need it: outputs, parameters, and a context that
    resolves the template's intrinsic functions as CloudFormation did."""

    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]
    resolved_parameters: dict[str, str]
    state_machine_arn: str
    context: StackContext = field(init=False)

    def __post_init__(self) -> None:
        _, partition, _, region, account, *_ = self.state_machine_arn.split(":")
        self.partition, self.region, self.account = partition, region, account
        self.context = StackContext.of(
            load_template(),
            partition=partition,
            region=region,
            account=account,
            stack_name=self.name,
            parameters=self.parameters,
            resources={"AmirunStateMachine": self.state_machine_arn},
            strict=False,
        )


def stack_view(target: Target) -> StackView:
    target.outputs  # noqa: B018 - a stack that is not there is one clear line
    cloudformation = target.client("cloudformation")
    (stack,) = cloudformation.describe_stacks(StackName=target.stack)["Stacks"]
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters") or []
    }
    resolved = {
        p["ParameterKey"]: p["ResolvedValue"]
        for p in stack.get("Parameters") or []
        if p.get("ResolvedValue")
    }
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    machine = outputs.get("StateMachineArn")
    if not machine:
        raise RemoteError(
            f"stack {target.stack} has no output StateMachineArn: is it an amirun stack?"
        )
    return StackView(str(target.stack), outputs, parameters, resolved, machine)


def check_outputs(view: StackView) -> Finding:
    wanted = set(load_template().get("Outputs", {}))
    missing = sorted(wanted - set(view.outputs))
    if missing:
        return _fail(
            "outputs",
            f"missing {', '.join(missing)}: the stack runs an older template (sam deploy again)",
        )
    return _ok("outputs", f"all {len(wanted)} outputs of the template")


def _function_name(view: StackView, logical_id: str) -> str:
    props = load_template()["Resources"][logical_id]["Properties"]
    return str(view.context.resolve(props["FunctionName"]))


def check_powertools_layer(view: StackView, lambda_client: Any) -> Finding:
    arn = view.resolved_parameters.get("PowertoolsLayerArn")
    if not arn:
        config = lambda_client.get_function_configuration(
            FunctionName=_function_name(view, "ResolverFunction")
        )
        layers = [layer["Arn"] for layer in config.get("Layers") or []]
        arn = next((a for a in layers if "powertools" in a.lower()), None)
        if arn is None:
            return _fail("powertools", f"the functions use no Powertools layer ({layers})")
    name, _, version = arn.rpartition(":")
    try:
        lambda_client.get_layer_version(LayerName=name, VersionNumber=int(version))
    except (ClientError, ValueError) as exc:
        reason = _aws_error(exc) if isinstance(exc, ClientError) else "not a layer version ARN"
        return _fail(
            "powertools",
            f"{arn} cannot be read ({reason}): give PowertoolsLayerArn a parameter naming a "
            "layer published in this region",
        )
    return _ok("powertools", arn)


def template_rules() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(function logical id, event name, pattern) of every EventBridge rule in the template."""
    for logical_id, resource in load_template()["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event.get("Type") == "EventBridgeRule":
                yield logical_id, event_name, event["Properties"]["Pattern"]


def check_rules(view: StackView, events: Any) -> list[Finding]:
    findings = []
    for logical_id, event_name, pattern in template_rules():
        function = _function_name(view, logical_id)
        arn = f"arn:{view.partition}:lambda:{view.region}:{view.account}:function:{function}"
        expected = view.context.resolve(pattern)
        names = events.list_rule_names_by_target(TargetArn=arn).get("RuleNames") or []
        rules = [events.describe_rule(Name=name) for name in names]
        same = [r for r in rules if json.loads(r.get("EventPattern") or "{}") == expected]
        label = f"{logical_id.removesuffix('Function')}.{event_name}"
        if not same:
            what = "no rule targets it" if not rules else "its rule's pattern is not the template's"
            findings.append(_fail("rules", f"{label}: {what} (sam deploy again)"))
        elif not any(r.get("State") == "ENABLED" for r in same):
            findings.append(_fail("rules", f"{label}: the rule {same[0]['Name']} is disabled"))
        else:
            findings.append(_ok("rules", f"{label}: enabled, as the template says"))
    return findings


def check_schedules(view: StackView, scheduler: Any, iam: Any) -> list[Finding]:
    group = view.outputs.get("ScheduleGroupName", "")
    role_arn = view.outputs.get("SchedulerRoleArn", "")
    findings = []
    state = scheduler.get_schedule_group(Name=group).get("State")
    if state == "ACTIVE":
        findings.append(_ok("schedules", f"group {group} active"))
    else:
        findings.append(_fail("schedules", f"group {group} is {state}"))
    group_arn = (
        f"arn:{view.partition}:scheduler:{view.region}:{view.account}:schedule-group/{group}"
    )
    trust = iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]["AssumeRolePolicyDocument"]
    if isinstance(trust, str):
        trust = json.loads(trust)
    statements = trust.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    for statement in statements:
        principal = (statement.get("Principal") or {}).get("Service")
        sources = [
            value
            for test in (statement.get("Condition") or {}).values()
            for key, value in test.items()
            if key.lower() == "aws:sourcearn"
        ]
        if principal == "scheduler.amazonaws.com" and sources in ([], [group_arn]):
            findings.append(_ok("schedules", f"role {role_arn} trusted by the group's schedules"))
            return findings
    findings.append(
        _fail(
            "schedules",
            f"role {role_arn} is not assumable by Scheduler for {group_arn} (aws:SourceArn must "
            "be the schedule group's ARN): no schedule would start a run",
        )
    )
    return findings


def check_notifications(view: StackView, sns: Any) -> Finding:
    topic = view.outputs.get("NotificationTopicArn", "")
    subscriptions: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        subscriptions += page.get("Subscriptions") or []
    confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
    pending = len(subscriptions) - len(confirmed)
    if not confirmed:
        waiting = f" ({pending} awaiting confirmation)" if pending else ""
        return _warn(
            "notifications",
            f"nobody hears of failed runs: no confirmed subscription to {topic}{waiting}",
        )
    endpoints = ", ".join(f"{s['Protocol']}:{s['Endpoint']}" for s in confirmed)
    return _ok(
        "notifications", endpoints + (f" ({pending} awaiting confirmation)" if pending else "")
    )


@dataclass(frozen=True)
class FleetNeed:
    """What one schedule set asks for if all its runs are under way at once."""

    source: str
    runs: int
    vcpus: dict[str, int]  # market -> vCPUs of Standard-family types
    other_families: frozenset[str]


def fleet_needs(schedules_dir: Path, ec2: Any) -> list[FleetNeed]:
    """Each schedule file's runs, and their vCPUs by market (instance types' vCPUs from EC2).

    `schedules_dir`: a schedule file, or a folder whose schedule files (in subfolders
    too) are read."""
    files = (
        sorted([*schedules_dir.rglob("*.yaml"), *schedules_dir.rglob("*.yml")])
        if schedules_dir.is_dir()
        else [schedules_dir]
    )
    schedules = expand(schedule_files(files)) if files else []
    types = {str(s.execution.get("instance_parameters", {}).get("InstanceType")) for s in schedules}
    types.discard("None")
    vcpus: dict[str, int] = {}
    listed = sorted(types)
    for start in range(0, len(listed), 100):
        answer = ec2.describe_instance_types(InstanceTypes=listed[start : start + 100])
        for item in answer.get("InstanceTypes") or []:
            vcpus[item["InstanceType"]] = item["VCpuInfo"]["DefaultVCpus"]
    by_source: dict[str, list[Any]] = {}
    for schedule in schedules:
        by_source.setdefault(schedule.source, []).append(schedule)
    needs = []
    for source, members in by_source.items():
        need: Counter[str] = Counter()
        others: set[str] = set()
        for schedule in members:
            kind = str(schedule.execution.get("instance_parameters", {}).get("InstanceType"))
            cheapo = (schedule.execution.get("run_options") or {}).get("ii_cheapo") is True
            if kind[:1] not in STANDARD_FAMILIES:
                others.add(kind)
                continue
            need["spot" if cheapo else "on-demand"] += vcpus.get(kind, 0)
        needs.append(FleetNeed(source, len(members), dict(need), frozenset(others)))
    return needs


def _quota(quotas: Any, service: str, code: str) -> float | None:
    try:
        return float(
            quotas.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"]
        )
    except ClientError as exc:
        if error_code(exc) == "NoSuchResourceException":
            return None
        raise


def _need_of(market: str, need: FleetNeed) -> tuple[int, int]:
    return need.vcpus.get(market, 0), need.runs


def check_quotas(needs: list[FleetNeed], quotas: Any) -> list[Finding]:
    if not needs:
        return [_warn("quotas", "no schedule files: nothing to size the quotas against")]
    busiest = max(needs, key=lambda n: n.runs)
    findings = []
    for market, (service, code), name in (
        ("on-demand", ON_DEMAND_STANDARD_VCPUS, "On-Demand Standard vCPUs"),
        ("spot", SPOT_STANDARD_VCPUS, "Spot Standard vCPUs"),
    ):
        # The set that needs the most of this market's vCPUs, all its runs at once.
        largest = max(needs, key=functools.partial(_need_of, market))
        wanted = largest.vcpus.get(market, 0)
        value = _quota(quotas, service, code)
        if value is None:
            findings.append(_warn("quotas", f"{name} ({code}): not found in Service Quotas"))
        elif wanted > value:
            findings.append(
                _warn(
                    "quotas",
                    f"{name} {value:g} < {wanted} for {largest.source} all at once "
                    f"({largest.runs} runs): launches past the quota fail (VcpuLimitExceeded)",
                )
            )
        else:
            findings.append(_ok("quotas", f"{name} {value:g} >= {wanted} for {largest.source}"))
    others = sorted({kind for need in needs for kind in need.other_families})
    if others:
        findings.append(
            _warn(
                "quotas",
                f"the schedules also use {', '.join(others)}: their families have vCPU quotas "
                "of their own, not checked",
            )
        )
    service, code = LAMBDA_CONCURRENCY
    concurrency = _quota(quotas, service, code)
    if concurrency is not None and concurrency < busiest.runs:
        findings.append(
            _warn(
                "quotas",
                f"Lambda concurrency {concurrency:g} < {busiest.runs} runs of {busiest.source}: "
                "steps will be throttled (they retry)",
            )
        )
    elif concurrency is not None:
        findings.append(_ok("quotas", f"Lambda concurrency {concurrency:g}"))
    for quota in _quotas_named(quotas, "states", "StartExecution"):
        value = float(quota["Value"])
        if "bucket" in quota["QuotaName"].lower() and value < busiest.runs:
            findings.append(
                _warn(
                    "quotas",
                    f"Step Functions {quota['QuotaName']} {value:g} < {busiest.runs} runs of "
                    f"{busiest.source}: a burst of starts is throttled (Scheduler retries)",
                )
            )
        else:
            findings.append(_ok("quotas", f"Step Functions {quota['QuotaName']} {value:g}"))
    return findings


def _quotas_named(quotas: Any, service: str, word: str) -> list[dict[str, Any]]:
    found = []
    for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode=service):
        found += [q for q in page.get("Quotas") or [] if word in q.get("QuotaName", "")]
    return found


def static_checks(target: Target, schedules_dir: Path) -> list[Finding]:
    """Every static check, in order; an AWS error in one is that check's failure."""
    view = stack_view(target)
    checks: list[tuple[str, Callable[[], Finding | list[Finding]]]] = [
        ("outputs", lambda: check_outputs(view)),
        ("powertools", lambda: check_powertools_layer(view, target.client("lambda"))),
        ("rules", lambda: check_rules(view, target.client("events"))),
        (
            "schedules",
            lambda: check_schedules(view, target.client("scheduler"), target.client("iam")),
        ),
        ("notifications", lambda: check_notifications(view, target.client("sns"))),
        (
            "quotas",
            lambda: check_quotas(
                fleet_needs(schedules_dir, target.client("ec2")),
                target.client("service-quotas"),
            ),
        ),
    ]
    findings: list[Finding] = []
    for name, check in checks:
        try:
            found = check()
        except (ClientError, BotoCoreError) as exc:
            found = _fail(name, _aws_error(exc))
        except ScheduleFileError as exc:
            found = _warn(name, f"cannot read the schedule files: {exc}")
        findings += found if isinstance(found, list) else [found]
    return findings


# --- The canary ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CanaryPlan:
    """One tiny scheduled run: where it writes its marker, when it is due."""

    name: str
    due: datetime
    bucket: str
    marker_key: str
    instance_profile: str
    subnet: str | None = None
    security_groups: tuple[str, ...] = ()

    def execution(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "ImageId": CANARY_IMAGE,
            "InstanceType": CANARY_TYPE,
            "IamInstanceProfile": {"Name": self.instance_profile},
        }
        if self.subnet:
            params["SubnetId"] = self.subnet
        if self.security_groups:
            params["SecurityGroupIds"] = list(self.security_groups)
        marker = f"s3://{self.bucket}/{self.marker_key}"
        return {
            # Long enough that the wait stores its token before the end: the end is an event.
            "commands": [
                "sleep 20",
                "echo amirun canary",
                f"echo amirun canary | aws s3 cp - {marker}",
            ],
            "run_options": {
                "ii_terminate_instance": True,
                "ii_check_s3": {"bucket": self.bucket, "prefix": self.marker_key},
                "n_retries_allowed": 0,
                "timeout_s": 600,
            },
            "instance_parameters": params,
            "schedule": {"name": self.name, "scheduled_time": "<aws.scheduler.scheduled-time>"},
        }

    @property
    def due_text(self) -> str:
        return self.due.strftime("%Y-%m-%dT%H:%M:%S")


def canary_plan(
    view: StackView, instance_profile: str, *, lead_s: float = CANARY_LEAD_S, **where: Any
) -> CanaryPlan:
    name = f"amirun-doctor-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    due = (datetime.now(UTC) + timedelta(seconds=lead_s)).replace(microsecond=0)
    return CanaryPlan(
        name=name,
        due=due,
        bucket=view.outputs["OutputBucketName"],
        marker_key=f"runs/{name}/canary-marker",
        instance_profile=instance_profile,
        **where,
    )


def schedule_canary(view: StackView, scheduler: Any, plan: CanaryPlan) -> None:
    """A one-off at() schedule in the stack's group, as `schedules apply` makes them."""
    machine = view.state_machine_arn
    scheduler.create_schedule(
        Name=plan.name,
        GroupName=view.outputs["ScheduleGroupName"],
        ScheduleExpression=f"at({plan.due_text})",
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Description="amirun doctor --canary: one tiny run, removed afterwards",
        Target={
            "Arn": start_execution_target(machine),
            "RoleArn": view.outputs["SchedulerRoleArn"],
            "Input": json.dumps(
                {
                    "StateMachineArn": machine,
                    "Name": f"{plan.name}_<aws.scheduler.execution-id>",
                    "Input": json.dumps(plan.execution(), separators=(",", ":")),
                },
                separators=(",", ":"),
            ),
            "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 300},
        },
    )


class Canary:
    """Schedule, find, follow and check the canary run; clean up whatever happens."""

    def __init__(
        self,
        target: Target,
        view: StackView,
        plan: CanaryPlan,
        *,
        poll_s: float = 10.0,
        start_limit_s: float = 300.0,
        run_limit_s: float = CANARY_LIMIT_S,
        say: Callable[[str], None] = print,
    ) -> None:
        self.target, self.view, self.plan = target, view, plan
        self.poll_s, self.start_limit_s, self.run_limit_s = poll_s, start_limit_s, run_limit_s
        self.say = say
        self.execution_arn: str | None = None
        self._wake = threading.Event()  # never set: an interruptible wait

    def run(self) -> list[Finding]:
        sfn = self.target.client("stepfunctions")
        try:
            schedule_canary(self.view, self.target.client("scheduler"), self.plan)
            self.say(f"canary: schedule {self.plan.name} fires at {self.plan.due_text} UTC")
            arn = self._wait_for_start(sfn)
            if arn is None:
                return [
                    _fail(
                        "canary",
                        f"no run started by {self.plan.name} within "
                        f"{self.start_limit_s:.0f} s of its time: Scheduler could not start the "
                        "state machine (the role's trust, the dead-letter queue says why)",
                    )
                ]
            self.execution_arn = arn
            self.say(f"canary: run {arn.rsplit(':', 1)[-1]} started; following it")
            described = self._follow(sfn, arn)
            return self.checks(sfn, described)
        finally:
            self.cleanup(sfn)

    def _wait_for_start(self, sfn: Any) -> str | None:
        deadline = self.plan.due + timedelta(seconds=self.start_limit_s)
        prefix = f"{self.plan.name}_"
        while True:
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.view.state_machine_arn
            )
            for page in pages:
                for execution in page["executions"]:
                    if execution["name"].startswith(prefix):
                        return str(execution["executionArn"])
                # Newest first: one page covers what started since the schedule fired.
                break
            if datetime.now(UTC) >= deadline:
                return None
            self._wake.wait(self.poll_s)

    def _follow(self, sfn: Any, arn: str) -> dict[str, Any]:
        started = time.monotonic()

        def quiet(_: Any) -> None:
            if time.monotonic() - started > self.run_limit_s:
                raise TimeoutError(f"the canary run took over {self.run_limit_s:.0f} s")

        return follow(sfn, arn, quiet)

    def checks(self, sfn: Any, described: dict[str, Any]) -> list[Finding]:
        findings = []
        status = described["status"]
        if status != "SUCCEEDED":
            cause = one_line_cause(described.get("cause"))
            findings.append(_fail("canary", f"run {status}: {described.get('error')}: {cause}"))
        else:
            findings.append(_ok("canary", "run SUCCEEDED"))
        request = json.loads(described.get("input") or "{}")
        scheduled = (request.get("schedule") or {}).get("scheduled_time")
        if scheduled == self.plan.due_text + "Z":
            findings.append(_ok("canary", f"scheduled time {scheduled} arrived in the input"))
        else:
            findings.append(
                _fail(
                    "canary",
                    f"the input's scheduled_time is {scheduled!r}, not {self.plan.due_text}Z",
                )
            )
        findings.append(self._end_as_event(sfn, described["executionArn"]))
        output = json.loads(described.get("output") or "{}")
        checked = output.get("checked_object") or {}
        marker = f"s3://{self.plan.bucket}/{self.plan.marker_key}"
        if checked.get("checked") and checked.get("location") == marker:
            findings.append(_ok("canary", f"output check found {marker}"))
        else:
            findings.append(_fail("canary", f"the output check did not find {marker}"))
        cleanup = output.get("cleanup") or {}
        if cleanup.get("action") == "terminated":
            findings.append(_ok("canary", f"instance {output.get('instance_id')} terminated"))
        else:
            findings.append(
                _fail("canary", f"the cleanup says {cleanup.get('action')!r}, not terminated")
            )
        usage = output.get("usage") or {}
        seconds, cost = usage.get("run_instance_seconds"), usage.get("run_estimated_cost_usd")
        if seconds is None:
            findings.append(_fail("canary", "no cost record (usage) in the run's output"))
        elif cost is None:
            findings.append(
                _warn(
                    "canary",
                    f"cost recorded: {seconds} instance-seconds of {usage.get('instance_type')}, "
                    "no price for it in the stack's price table (make prices)",
                )
            )
        else:
            findings.append(
                _ok("canary", f"cost recorded: {seconds} instance-seconds, about ${cost:.4f}")
            )
        return findings

    def _end_as_event(self, sfn: Any, arn: str) -> Finding:
        """The wait stored its token and found the command still running, and no safety
        look was needed: the command's end reached the stack as an EventBridge event."""
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
        events = [event for page in pages for event in page["events"]]
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
        ]
        waits = []
        for event in events:
            if event["type"] == "TaskSubmitted":
                output = json.loads(event["taskSubmittedEventDetails"].get("output") or "{}")
                payload = output.get("Payload")
                waits.append(payload if isinstance(payload, dict) else {})
        if "EC2Poller" in entered:
            return _fail(
                "canary",
                "the command's end came from the safety look, not as an event: check the "
                "Settler's rule (CommandEnded) and its logs",
            )
        if not waits or any(w.get("outcome") != "running" for w in waits):
            return _warn(
                "canary",
                "the command had ended before the wait stored its token: its end event was "
                "not needed (run the canary again)",
            )
        return _ok("canary", "the command's end came as an event")

    def cleanup(self, sfn: Any) -> None:
        """Remove the schedule, stop the run, terminate its instance: each on its own."""
        with contextlib.suppress(ClientError, BotoCoreError):
            self.target.client("scheduler").delete_schedule(
                Name=self.plan.name, GroupName=self.view.outputs["ScheduleGroupName"]
            )
        arn = self.execution_arn or self._find_started(sfn)
        if arn is None:
            return
        with contextlib.suppress(ClientError, BotoCoreError):
            if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                sfn.stop_execution(executionArn=arn, error="Interrupted", cause="amirun doctor")
        with contextlib.suppress(ClientError, BotoCoreError):
            ec2 = self.target.client("ec2")
            reservations = ec2.describe_instances(
                Filters=[
                    {"Name": f"tag:{TAG_EXECUTION}", "Values": [arn]},
                    {
                        "Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"],
                    },
                ]
            )["Reservations"]
            alive = [i["InstanceId"] for r in reservations for i in r["Instances"]]
            if alive:
                ec2.terminate_instances(InstanceIds=alive)
                self.say(f"canary: terminated {', '.join(alive)}")

    def _find_started(self, sfn: Any) -> str | None:
        with contextlib.suppress(ClientError, BotoCoreError):
            page = sfn.list_executions(stateMachineArn=self.view.state_machine_arn, maxResults=100)
            for execution in page["executions"]:
                if execution["name"].startswith(f"{self.plan.name}_"):
                    return str(execution["executionArn"])
        return None


# --- The command ---------------------------------------------------------------------------
def report(findings: Iterable[Finding], out: Any = None) -> int:
    """One line per finding, then the counts; EXIT_FAILED when a check failed."""
    out = out or sys.stdout
    findings = list(findings)
    for finding in findings:
        print(finding.line(), file=out)
    counts = Counter(f.level for f in findings)
    print(
        f"\n{counts['ok']} ok, {counts['warn']} warning{'s' if counts['warn'] != 1 else ''}, "
        f"{counts['fail']} failed",
        file=out,
    )
    return EXIT_FAILED if counts["fail"] else EXIT_OK


@_reported
def cmd_doctor(args: argparse.Namespace) -> int:
    if not args.stack:
        raise RemoteError("give --stack NAME (the deployed amirun stack)")
    if args.canary and not args.instance_profile:
        raise RemoteError(
            "--canary needs --instance-profile NAME: a profile whose role matches the stack's "
            "InstanceRoleNamePattern and has AmazonSSMManagedInstanceCore"
        )
    target = Target(args)
    findings = static_checks(target, Path(args.schedules))
    if args.canary:
        view = stack_view(target)
        plan = canary_plan(
            view,
            args.instance_profile,
            subnet=args.subnet,
            security_groups=tuple(args.security_group or ()),
        )
        canary = Canary(target, view, plan)
        try:
            findings += canary.run()
        except KeyboardInterrupt:
            report(findings)
            print(
                "amirun: interrupted; the canary's schedule and instance were removed",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        except TimeoutError as exc:
            findings.append(_fail("canary", f"{exc}; its run was stopped, its instance terminated"))
    return report(findings)


def register(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="check that a deployed stack really works (--canary: one tiny real run)",
        description="Check a deployed stack from your account: outputs, the Powertools layer, "
        "the event rules, the schedule group and its role, the notification subscriptions, "
        "and the quotas the largest schedule set needs. --canary also has Scheduler start one "
        "tiny run (t4g.nano, a few cents) and checks it end to end; its schedule and instance "
        "are removed whatever happens. Exit 0 when nothing failed (warnings allowed), 1 "
        "otherwise.",
    )
    doctor.add_argument("--canary", action="store_true", help="also run one tiny scheduled run")
    doctor.add_argument(
        "--instance-profile", help="the canary's instance profile (role in InstanceRoleNamePattern)"
    )
    doctor.add_argument("--subnet", help="the canary's subnet (default: the default VPC's)")
    doctor.add_argument(
        "--security-group", action="append", help="the canary's security group (repeatable)"
    )
    doctor.add_argument(
        "--schedules",
        default=str(ROOT / "schedules"),
        help="schedule file, or folder of them (subfolders too), to size the quotas against "
        "(default: schedules/)",
    )
    _target(doctor)
    doctor.set_defaults(func=cmd_doctor)
