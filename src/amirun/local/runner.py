"""Rehearse one execution: the real ASL and handlers on moto, in this process.

No Docker, no AWS account, no network: moto emulates EC2, SSM, S3, IAM and
executes the state machine; its Lambda tasks reach the real handlers through
a local Invoke endpoint; the emulated world fills in what moto leaves out.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import io
import json
import logging
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import boto3
import botocore.session
from botocore.exceptions import ClientError
from moto import mock_aws

from amirun.local import emulator_patches
from amirun.local.eventbridge import EventBus
from amirun.local.lambda_endpoint import LAMBDA_CONCURRENCY, Invocation, LambdaEndpoint
from amirun.local.world import (
    FAULTS,
    IMAGE_ALIAS,
    MAX_DELAY_S,
    EmulatedWorld,
    WorldSettings,
    atomic_dynamodb_writes,
    image_parameter_name,
    task_tokens_as_on_aws,
)
from amirun.progress import Progress, RunResult, describe_result, is_plumbing
from amirun.project import StackContext, load_template, load_workflow
from amirun_core.daily import Resolution
from amirun_core.errors import InvalidExecutionInput, one_line_cause
from amirun_core.execution import STATE_LIMIT_BYTES, instance_parameter_problems, read_execution

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "amirun-rehearsal"
OUTPUT_BUCKET = "amirun-rehearsal-output"
COMMAND_WAIT_TABLE = "amirun-rehearsal-command-wait"
RUN_LEDGER_TABLE = "amirun-rehearsal-run-ledger"
NOTIFICATION_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK_NAME}-notifications"
STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK_NAME}-workflow"
#: Default: a 30 s poll becomes 1 s, a 600 s readiness limit 6 s, 3600 s run limit 36 s.
DEFAULT_TIME_SCALE = 0.01

_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    # Stand-ins cover the AMIs an execution names; moto's public catalogue costs ~1.5 s.
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


class RehearsalError(Exception):
    """The rehearsal could not start (e.g. --strict and a missing resource)."""


@dataclass(frozen=True)
class RehearsalOptions:
    exec_commands: bool = False
    faults: frozenset[str] = frozenset()
    strict: bool = False
    time_scale: float = DEFAULT_TIME_SCALE
    agent_delay_s: float = 1.5
    command_duration_s: float = 1.5
    #: How long EventBridge takes to deliver an event (wall seconds, not scaled).
    event_delay_s: float = 0.2
    name: str | None = None
    #: Share (0 to 1) of the steps' EC2 and SSM calls refused as throttled.
    throttle_share: float = 0.0
    #: Lambda invocations that may run at once, like an account's concurrency limit.
    lambda_concurrency: int = LAMBDA_CONCURRENCY
    #: The emulated account's vCPU quota (0: none): launches past it get VcpuLimitExceeded.
    quota_vcpus: int = 0
    #: The stack's VcpuLimit and BlockVcpuLimits parameters (0 and "": off).
    vcpu_limit: int = 0
    block_vcpu_limits: str = ""
    #: (peak CPU %, peak memory %) of a run's command by execution ARN; None: drawn
    #: from the execution's name (see `world.emulated_utilisation`).
    utilisation: Callable[[str], tuple[float, float]] | None = None
    #: Where the handlers' logs go (None: stderr).
    log_file: str | None = None


@dataclass(kw_only=True)
class RehearsalResult(RunResult):
    execution_arn: str
    states: list[str] = field(default_factory=list)
    standins: list[str] = field(default_factory=list)
    sent_commands: list[list[str]] = field(default_factory=list)
    standin_outputs: list[str] = field(default_factory=list)
    #: The execution's whole history, and every event the world put on the bus (for bench/).
    history: list[dict[str, Any]] = field(default_factory=list)
    bus_events: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    standin_inputs: list[str] = field(default_factory=list)
    #: Bytes of the largest state the execution carried (Step Functions allows
    #: STATE_LIMIT_BYTES), and by how much it exceeded the input.
    largest_state_bytes: int = 0
    largest_state_growth: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "execution_arn": self.execution_arn,
            "output": self.output,
            "error": self.error,
            "cause": self.cause,
            "elapsed_s": round(self.elapsed_s, 2),
            "states": self.states,
            "instances": self.instances,
            "standins": self.standins,
            "notes": self.notes,
            "largest_state_bytes": self.largest_state_bytes,
        }


@contextlib.contextmanager
def _isolated_environment(time_scale: float, extra: dict[str, str]) -> Iterator[None]:
    """Fake credentials and the emulator's settings, restored afterwards."""
    saved = dict(os.environ)
    for name in _UNSET:
        os.environ.pop(name, None)
    os.environ.update(_ENVIRONMENT)
    os.environ.update(extra)
    os.environ["AMIRUN_TIME_SCALE"] = str(time_scale)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _function_environment(env: dict[str, Any]) -> dict[str, str]:
    """Resolve the template's environment values for the rehearsal stack."""
    resolved = {}
    for name, value in env.items():
        if isinstance(value, str | int | float | bool):
            resolved[name] = str(value)
        elif name == "STACK_NAME":
            resolved[name] = STACK_NAME
        elif name == "OUTPUT_BUCKET":
            resolved[name] = OUTPUT_BUCKET
        elif name == "COMMAND_WAIT_TABLE":
            resolved[name] = COMMAND_WAIT_TABLE
        elif name == "RUN_LEDGER_TABLE":
            resolved[name] = RUN_LEDGER_TABLE
        elif name == "TOPIC_ARN":
            resolved[name] = NOTIFICATION_TOPIC_ARN
        elif name in ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"):
            resolved[name] = "WARNING"
    return resolved


# --- stand-ins for what the execution refers to ------------------------------------
@contextlib.contextmanager
def _next_moto_id(module: str, function: str, wanted: str) -> Iterator[None]:
    # moto draws ids at random; the stand-in takes the id the execution file uses.
    with mock.patch(f"moto.ec2.models.{module}.{function}", return_value=wanted):
        yield


@dataclass(frozen=True)
class _Reference:
    """A resource the execution names: how to look it up, and how to stand it in."""

    kind: str
    ident: str
    look_up: Callable[[], Any]
    not_found: tuple[str, ...]
    create: Callable[[], Any]

    def missing(self) -> bool:
        try:
            self.look_up()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in self.not_found:
                return True
            raise
        return False


def _image_parameter_references(image: str, ec2: Any, ssm: Any) -> list[_Reference]:
    """An ImageId `resolve:ssm:<name>`: the parameter, and the AMI it names."""
    name = image_parameter_name(image)

    def ami() -> str | None:
        found = ssm.get_parameters(Names=[name])["Parameters"]
        return str(found[0]["Value"]) if found else None

    def look_up_parameter() -> None:
        if ami() is None:
            raise ClientError(
                {"Error": {"Code": "ParameterNotFound", "Message": name}}, "GetParameters"
            )

    def make_parameter() -> None:
        standin = ec2.register_image(Name=f"stand-in for {name}", RootDeviceName="/dev/xvda")
        ssm.put_parameter(
            Name=name, Value=standin["ImageId"], Type="String", DataType="aws:ec2:image"
        )

    def look_up_image() -> None:
        ec2.describe_images(ImageIds=[ami() or "ami-00000000"])

    def make_image() -> None:
        with _next_moto_id("amis", "random_ami_id", ami() or "ami-00000000"):
            ec2.register_image(Name=f"stand-in {image}", RootDeviceName="/dev/xvda")

    return [
        _Reference(
            "SSM parameter", name, look_up_parameter, ("ParameterNotFound",), make_parameter
        ),
        _Reference(
            "AMI",
            f"named by {name}",
            look_up_image,
            ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"),
            make_image,
        ),
    ]


def image_parameter_grants(
    template: dict[str, Any], parameters: dict[str, str] | None = None
) -> tuple[str, ...]:
    """The ssm:GetParameters resources template.yaml grants the starter, in the
    rehearsal's stack (the stack parameters at their defaults unless given)."""
    context = StackContext.of(
        template,
        region=REGION,
        account=ACCOUNT,
        stack_name=STACK_NAME,
        parameters=parameters,
        strict=False,
    )
    grants: list[str] = []
    for policy in template["Resources"]["StarterFunction"]["Properties"].get("Policies", []):
        for statement in policy.get("Statement", []):
            actions = statement["Action"]
            if "ssm:GetParameters" in ([actions] if isinstance(actions, str) else actions):
                resources = context.resolve(statement["Resource"])
                grants += [resources] if isinstance(resources, str) else resources
    return tuple(grants)


def _references(
    request: dict[str, Any], ec2: Any, iam: Any, s3: Any, ssm: Any = None
) -> list[_Reference]:
    params = request.get("instance_parameters") or {}
    refs: list[_Reference] = []
    image = params.get("ImageId")
    if isinstance(image, str) and image.startswith(IMAGE_ALIAS):
        refs.extend(_image_parameter_references(image, ec2, ssm))
    elif isinstance(image, str):

        def make_image() -> None:
            with _next_moto_id("amis", "random_ami_id", image):
                ec2.register_image(Name=f"stand-in {image}", RootDeviceName="/dev/xvda")

        refs.append(
            _Reference(
                "AMI",
                image,
                lambda: ec2.describe_images(ImageIds=[image]),
                ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed"),
                make_image,
            )
        )
    for group in params.get("SecurityGroupIds") or []:

        def make_group(group: str = group) -> None:
            with _next_moto_id("security_groups", "random_security_group_id", group):
                ec2.create_security_group(GroupName=f"stand-in-{group}", Description="stand-in")

        refs.append(
            _Reference(
                "security group",
                group,
                functools.partial(ec2.describe_security_groups, GroupIds=[group]),
                ("InvalidGroup.NotFound",),
                make_group,
            )
        )
    subnet = params.get("SubnetId")
    if isinstance(subnet, str):

        def make_subnet() -> None:
            default = [{"Name": "is-default", "Values": ["true"]}]
            vpc = ec2.describe_vpcs(Filters=default)["Vpcs"][0]["VpcId"]
            with _next_moto_id("subnets", "random_subnet_id", subnet):
                ec2.create_subnet(VpcId=vpc, CidrBlock="172.31.250.0/24")

        refs.append(
            _Reference(
                "subnet",
                subnet,
                lambda: ec2.describe_subnets(SubnetIds=[subnet]),
                ("InvalidSubnetID.NotFound",),
                make_subnet,
            )
        )
    key = params.get("KeyName")
    if isinstance(key, str):
        refs.append(
            _Reference(
                "key pair",
                key,
                lambda: ec2.describe_key_pairs(KeyNames=[key]),
                ("InvalidKeyPair.NotFound",),
                lambda: ec2.create_key_pair(KeyName=key),
            )
        )
    profile_ref = params.get("IamInstanceProfile") or {}
    profile = profile_ref.get("Name") or str(profile_ref.get("Arn", "")).rsplit("/", 1)[-1]
    if profile:
        refs.append(
            _Reference(
                "instance profile",
                profile,
                lambda: iam.get_instance_profile(InstanceProfileName=profile),
                ("NoSuchEntity",),
                lambda: iam.create_instance_profile(InstanceProfileName=profile),
            )
        )
    resolution = planned_resolution(request, datetime.now(UTC))
    buckets = [check.bucket] if resolution and (check := resolution.output_check) else []
    buckets += [item.bucket for item in resolution.inputs] if resolution else []
    buckets += [resolution.record.bucket] if resolution and resolution.record else []
    for bucket in dict.fromkeys(buckets):
        refs.append(
            _Reference(
                "bucket",
                bucket,
                functools.partial(s3.head_bucket, Bucket=bucket),
                ("404", "NoSuchBucket"),
                functools.partial(s3.create_bucket, Bucket=bucket),
            )
        )
    return refs


def prepare_standins(
    request: dict[str, Any],
    clients: dict[str, Any],
    strict: bool,
    known: set[tuple[str, str]] | None = None,
) -> list[str]:
    """Create what the execution refers to; return one line per stand-in.

    With `strict`, nothing is created and a missing resource is an error.
    `known` holds (kind, id) of what earlier calls found or created: not looked up again.
    """
    refs = _references(request, clients["ec2"], clients["iam"], clients["s3"], clients.get("ssm"))
    if known is not None:
        refs = [ref for ref in refs if (ref.kind, ref.ident) not in known]
        known.update((ref.kind, ref.ident) for ref in refs)
    missing = [ref for ref in refs if ref.missing()]
    if strict and missing:
        names = ", ".join(f"{ref.kind} {ref.ident}" for ref in missing)
        raise RehearsalError(f"--strict: the emulated account has no {names}")
    for ref in missing:
        ref.create()
    return [f"{ref.kind} {ref.ident}" for ref in missing]


def create_table(dynamodb: Any, resource: str, name: str) -> None:
    """One of the stack's tables, with the keys, indexes and TTL template.yaml gives it."""
    props = load_template()["Resources"][resource]["Properties"]
    dynamodb.create_table(
        TableName=name,
        **{
            key: props[key]
            for key in (
                "BillingMode",
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
            )
            if key in props
        },
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"]
    )


def create_command_wait_table(dynamodb: Any, name: str = COMMAND_WAIT_TABLE) -> None:
    """The stack's task-token table."""
    create_table(dynamodb, "CommandWaitTable", name)


def create_ledger_table(dynamodb: Any, name: str = RUN_LEDGER_TABLE) -> None:
    """The stack's slot ledger."""
    create_table(dynamodb, "RunLedgerTable", name)


def planned_resolution(request: dict[str, Any], start: datetime) -> Resolution | None:
    """The execution as the workflow resolves it when started at `start` (None if invalid)."""
    try:
        return read_execution(request).resolve(start)
    except InvalidExecutionInput:
        return None


def expected_output(resolution: Resolution | None) -> tuple[str, str] | None:
    """(bucket, key) of a stand-in output that RunChecker accepts: the key it checks
    (with `ii_check_s3: true`, the datastream's merkdir.file or the forcing metadata)."""
    check = resolution.output_check if resolution else None
    if check is None:
        return None
    return check.bucket, check.prefix


# --- following the execution -----------------------------------------------------------
def state_bytes(payload: str) -> int:
    """Bytes of a state as Step Functions carries it: compact JSON, UTF-8."""
    compact = json.dumps(json.loads(payload), separators=(",", ":"), ensure_ascii=False)
    return len(compact.encode("utf-8"))


#: History events that end a Lambda call: the call's result line goes right after them,
#: so it shows under the state that made the call, before the next state's line.
_CALL_ENDS = re.compile(
    r"^(LambdaFunction(Succeeded|Failed|TimedOut)|Task(Submitted|Succeeded|Failed|TimedOut))$"
)


class _Follower:
    """Turns history events and invocations into Progress, in order."""

    def __init__(
        self,
        sfn: Any,
        arn: str,
        started: float,
        emit: Callable[[Progress], None],
        invocations: queue.Queue[Invocation],
        *,
        called_by_states: frozenset[str] = frozenset(),
    ) -> None:
        self._sfn, self._arn, self._started, self._emit = sfn, arn, started, emit
        self._invocations = invocations
        #: Functions the states call; the others (called by EventBridge) are reported
        #: when they return, under whatever state is current.
        self._called_by_states = called_by_states
        self._pending: collections.deque[Invocation] = collections.deque()
        #: A task-token Task's call ends at TaskSubmitted; its wait's end is no call.
        self._submitted = False
        self._seen = 0
        self.states: list[str] = []
        self.largest_state = 0
        self.volumes_deleted: list[str] = []

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def wait(self, timeout: float) -> None:
        """Sleep until a Lambda call returns, or `timeout` seconds."""
        with contextlib.suppress(queue.Empty):
            self._take(self._invocations.get(timeout=timeout))

    def _take(self, invocation: Invocation) -> None:
        if invocation.function in self._called_by_states:
            self._pending.append(invocation)
        else:
            self.invocation(invocation)

    def _next_call(self) -> Invocation | None:
        while not self._invocations.empty():
            self._take(self._invocations.get_nowait())
        return self._pending.popleft() if self._pending else None

    def _ends_a_call(self, event_type: str) -> bool:
        if event_type == "TaskScheduled":
            self._submitted = False
        if not _CALL_ENDS.match(event_type):
            return False
        if event_type == "TaskSubmitted":
            self._submitted = True
            return True
        if event_type.startswith("Task") and self._submitted:
            self._submitted = False
            return False
        return True

    def read_history(self) -> None:
        events = self._sfn.get_execution_history(executionArn=self._arn, maxResults=1000)["events"]
        for event in events[self._seen :]:
            payload = (event.get("stateEnteredEventDetails") or {}).get("input") or (
                event.get("stateExitedEventDetails") or {}
            ).get("output")
            if payload:
                self.largest_state = max(self.largest_state, state_bytes(payload))
            if event["type"].endswith("StateEntered"):
                name = event["stateEnteredEventDetails"]["name"]
                self.states.append(name)
                if not event["type"].startswith("Choice"):
                    detail = ""
                    if event["type"].startswith("Wait"):
                        detail = "waiting"
                    self._emit(Progress(self.elapsed(), "state", name, detail))
            elif self._ends_a_call(event["type"]):
                # The endpoint reports a call before it answers, so it is queued by now.
                call = self._next_call()
                if call is not None:
                    self.invocation(call)
        self._seen = len(events)

    def flush(self) -> None:
        """Report the calls no history event claimed (the execution has ended)."""
        while (call := self._next_call()) is not None:
            self.invocation(call)

    def invocation(self, invocation: Invocation) -> None:
        if isinstance(invocation.result, dict):
            self.volumes_deleted += invocation.result.get("volumes_deleted") or []
        if invocation.error:
            self._emit(
                Progress(
                    self.elapsed(),
                    "error",
                    invocation.function,
                    f"{invocation.error}: {one_line_cause(invocation.message)}",
                )
            )
        else:
            detail = describe_result(invocation.result)
            kind = "detail" if is_plumbing(invocation.result) else "result"
            if detail:
                self._emit(Progress(self.elapsed(), kind, invocation.function, detail))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _invoked(
    metrics: Any, on_invoke: Callable[[Invocation], None] | None, invocation: Invocation
) -> None:
    # Metrics are not published in a rehearsal (POWERTOOLS_METRICS_DISABLED), and
    # Powertools then keeps them: at 100 values of one metric it prints them anyway.
    # Each invocation leaves none behind, as each Lambda environment would publish them.
    metrics.clear_metrics()
    if on_invoke is not None:
        on_invoke(invocation)


#: Errors whose Retry waits real time in the rehearsal: the local Lambda endpoint's
#: concurrency limit is real, and so is the time its invocations take (a burst on a
#: busy machine lasts real seconds), so a retry shrunk by the time scale would give
#: up long before the burst is over, as no retry on AWS does.
REAL_TIME_RETRIES = frozenset({"Lambda.TooManyRequestsException"})
_retrying_real_time = threading.local()


class _ScaledSleep:
    """`time` as the executor's Retry sees it: every interval times the rehearsal's
    scale, but for the retries of REAL_TIME_RETRIES."""

    def __init__(self, scale: float) -> None:
        self._scale = scale

    def sleep(self, seconds: float) -> None:
        real = getattr(_retrying_real_time, "on", False)
        time.sleep(seconds if real else seconds * self._scale)


def _retrier_knowing_its_errors(original: Callable[..., None]) -> Callable[..., None]:
    """The executor's Retrier evaluation, telling _ScaledSleep which errors it retries."""

    def eval_body(retrier: Any, env: Any) -> None:
        names = {name.error_name for name in retrier.error_equals.error_names}
        _retrying_real_time.on = bool(names) and names <= REAL_TIME_RETRIES
        try:
            original(retrier, env)
        finally:
            _retrying_real_time.on = False

    return eval_body


class EmulatorSession:
    """One emulated account: moto, the state machine, one Lambda endpoint, one world.

    Every execution started here runs the real ASL and the real handlers on the
    same emulator, concurrently if started so; `rehearse()` runs one, the load
    benchmark many. Used as a context manager: the emulator lives inside it.
    """

    def __init__(
        self,
        options: RehearsalOptions = RehearsalOptions(),
        on_invoke: Callable[[Invocation], None] | None = None,
    ) -> None:
        if not 0 < options.time_scale <= 1:
            raise RehearsalError(f"time scale {options.time_scale}: must be more than 0, at most 1")
        for name in ("agent_delay_s", "command_duration_s", "event_delay_s"):
            value = getattr(options, name)
            if not 0 <= value <= MAX_DELAY_S:
                raise RehearsalError(f"{name} {value}: must be 0 to {MAX_DELAY_S} seconds")
        unknown = sorted(options.faults - FAULTS.keys())
        if unknown:
            raise RehearsalError(
                f"unknown fault(s): {', '.join(unknown)}; known: {', '.join(FAULTS)}"
            )
        self.options = options
        self._on_invoke = on_invoke
        self._stack = contextlib.ExitStack()
        self.clients: dict[str, Any] = {}
        self.sfn: Any = None
        self.world: EmulatedWorld
        self.called_by_states: frozenset[str] = frozenset()
        self.endpoint: LambdaEndpoint
        self.bus: EventBus
        self.state_machine_arn = ""
        self._known: set[tuple[str, str]] = set()
        self._boto: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> EmulatorSession:
        # Setting up loads a large heap that lives as long as the emulator (service
        # models, parsed ASL, moto's backends): built without the cyclic collector,
        # then kept out of its way, it is not walked again by every collection.
        with _collector_paused():
            try:
                self._open()
            except BaseException:
                self._stack.close()
                raise
        gc.freeze()
        return self

    def __exit__(self, *exc: object) -> None:
        # Tearing down frees much of that heap: a full collection in the middle of
        # it would walk all of it (a second or more). Later collections find it.
        with _collector_paused():
            try:
                self._stack.close()
            finally:
                gc.unfreeze()

    def _open(self) -> None:
        options, stack = self.options, self._stack
        workflow = load_workflow()
        arn_of = {
            logical_id: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK_NAME}-{logical_id}"
            for logical_id in workflow.functions
        }
        env: dict[str, str] = {}
        for spec in workflow.functions.values():
            env.update(_function_environment(spec.environment))
        env["VCPU_LIMIT"] = str(options.vcpu_limit)
        env["BLOCK_VCPU_LIMITS"] = options.block_vcpu_limits
        # The executor logs every absent path an IsPresent test looks at; the run's
        # own outcome says what matters.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        stack.enter_context(_isolated_environment(options.time_scale, env))
        stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        # The executor sleeps a Retry's interval for real; the rehearsal's clock is scaled.
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
        )
        from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

        stack.enter_context(
            mock.patch.object(retrier_decl, "time", _ScaledSleep(options.time_scale))
        )
        # moto reads one instance's tags by scanning every tag of the account, and a tag
        # filter compiles its pattern again for each instance: a DescribeInstances by tag
        # grows with the square of the instances (a night has over a thousand).
        stack.enter_context(emulator_patches.tags_read_directly())
        stack.enter_context(emulator_patches.definitions_parsed_once())
        stack.enter_context(emulator_patches.instance_profiles_one_at_a_time())
        stack.enter_context(emulator_patches.commands_sent_to_the_named_instances())
        stack.enter_context(emulator_patches.backends_found_directly())
        stack.enter_context(emulator_patches.instances_found_without_copies())
        stack.enter_context(emulator_patches.response_methods_listed_once())
        stack.enter_context(emulator_patches.states_copied_as_json())
        stack.enter_context(emulator_patches.response_keys_found_once())
        stack.enter_context(emulator_patches.metric_statistics_indexed())
        emulator_patches.service_models_loaded()
        stack.enter_context(
            mock.patch.object(
                retrier_decl.RetrierDecl,
                "_eval_body",
                _retrier_knowing_its_errors(retrier_decl.RetrierDecl._eval_body),
            )
        )
        # It also creates a new Lambda client for every Task; one per region will do,
        # as for the state machine on AWS (a client is thread-safe).
        stack.enter_context(
            mock.patch.object(
                lambda_eval_utils,
                "boto_client_for",
                emulator_patches.one_client_per_service(boto_client_for),
            )
        )
        # Imported here so its clients are created inside the emulator.
        from amirun_core import aws
        from amirun_core.observability import logger as step_logger
        from amirun_core.observability import metrics as step_metrics

        # Step logs go to the log file, or to stderr: stdout carries the progress (or --json).
        log_stream: Any = sys.stderr
        if options.log_file:
            log_stream = stack.enter_context(open(options.log_file, "a", encoding="utf-8"))  # noqa: SIM115
        for handler in step_logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                # Assigned, not setStream(): that flushes the previous stream, which an
                # earlier rehearsal may have left pointing at a stderr closed since.
                handler.stream = log_stream
                if options.log_file:
                    stack.callback(setattr, handler, "stream", sys.stderr)
        aws.client.cache_clear()
        self.clients = {name: aws.client(name) for name in ("ec2", "ssm", "s3", "iam")}
        self.sfn = boto3.client("stepfunctions")
        # moto asks a new boto3 Session for the regions of each service it sets up, and
        # each one loads botocore's endpoint and service models again (about a second).
        stack.enter_context(
            mock.patch.object(
                botocore.session.Session,
                "get_available_regions",
                emulator_patches.regions_from(boto3.DEFAULT_SESSION._session),
            )
        )
        self.clients["s3"].create_bucket(Bucket=OUTPUT_BUCKET)
        create_command_wait_table(aws.client("dynamodb"))
        create_ledger_table(aws.client("dynamodb"))
        command_env = {
            k: os.environ[k]
            for k in (
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN",
                "AWS_DEFAULT_REGION",
            )
        }
        self.bus = EventBus(
            region=REGION,
            account=ACCOUNT,
            delay_s=options.event_delay_s,
            faults=options.faults,
            stack_name=STACK_NAME,
            resources={"AmirunStateMachine": STATE_MACHINE_ARN},
        )
        self.world = EmulatedWorld(
            WorldSettings(
                agent_delay_s=options.agent_delay_s,
                command_duration_s=options.command_duration_s,
                faults=options.faults,
                exec_commands=options.exec_commands,
                command_env=command_env,
                throttle_share=options.throttle_share,
                quota_vcpus=options.quota_vcpus,
                utilisation=options.utilisation,
                image_parameter_grants=image_parameter_grants(load_template()),
                region=REGION,
                account=ACCOUNT,
            ),
            self.clients["s3"],
            publish=self.bus.publish,
        )
        self.world.install(self.clients["ec2"], self.clients["ssm"])
        stack.callback(self.world.close)
        stack.enter_context(task_tokens_as_on_aws())
        stack.enter_context(atomic_dynamodb_writes())
        if options.exec_commands:
            command_env["AWS_ENDPOINT_URL"] = stack.enter_context(emulator_server())
        lose = frozenset({"StarterFunction"} if "lost-response" in options.faults else ())
        self.endpoint = stack.enter_context(
            LambdaEndpoint(
                workflow.functions,
                arn_of,
                functools.partial(_invoked, step_metrics, self._reported),
                lose,
                concurrency=options.lambda_concurrency,
            )
        )
        stack.enter_context(emulator_patches.lambda_tasks_in_process(self.endpoint))
        self.bus.connect(self.endpoint.invoke)
        # Deliveries under way finish before the endpoint and the emulator go.
        stack.callback(self.bus.close)
        self.world.start_clock()
        # Loaded once by the first Resolve of a run: loaded now, with the rest of the
        # heap that lives as long as the emulator.
        instance_parameter_problems({"ImageId": "ami-00000000"})
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.endpoint.url
        self.called_by_states = frozenset(workflow.function_substitutions.values())
        self.state_machine_arn = self.sfn.create_state_machine(
            name=f"{STACK_NAME}-workflow",
            definition=workflow.definition(arn_of),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-workflow",
            type="STANDARD",
        )["stateMachineArn"]

    def _reported(self, invocation: Invocation) -> None:
        if self._on_invoke is not None:
            self._on_invoke(invocation)
        self.bus.observe(invocation)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        """The execution's whole history (every page)."""
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**params)
            events.extend(page["events"])
            if not page.get("nextToken"):
                return events
            params["nextToken"] = page["nextToken"]

    def prepare(self, request: dict[str, Any]) -> list[str]:
        """Stand in what the execution refers to (see `prepare_standins`)."""
        with self.world.emulator_calls():
            return prepare_standins(request, self.clients, self.options.strict)

    def start(self, request: dict[str, Any], name: str) -> str:
        """Start one execution of the workflow; returns its ARN at once."""
        if "capacity" in self.options.faults:
            params = request.get("instance_parameters")
            first = params.get("InstanceType", "") if isinstance(params, dict) else ""
            self.world.without_capacity(first if isinstance(first, str) else "")
        started = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(request)
        )
        arn: str = started["executionArn"]
        # Resolve uses the execution's start time: so do the stand-ins. Set long
        # before the command ends (the instance must launch and its agent register).
        self.prepare_execution(request, arn, started["startDate"], standins=False)
        return arn

    def prepare_execution(
        self, request: dict[str, Any], arn: str, started: datetime, *, standins: bool = True
    ) -> list[str]:
        """What an execution needs from the world: stand-ins for what it names (unless
        `standins` is false), its inputs, and its output once its command succeeds."""
        created = []
        resolution = planned_resolution(request, started)
        with self.world.emulator_calls():
            if standins:
                created = prepare_standins(request, self.clients, self.options.strict, self._known)
            self.world.expect_output(arn, expected_output(resolution))
            self.world.provide_inputs(
                [(i.bucket, i.key) for i in resolution.inputs] if resolution else []
            )
        return created

    def boto(self, service: str) -> Any:
        """A client of the emulated account (one per service, shared by threads)."""
        with self._lock:
            if service not in self._boto:
                self._boto[service] = boto3.client(service)
            return self._boto[service]

    def describe(self, execution_arn: str) -> dict[str, Any]:
        described: dict[str, Any] = self.sfn.describe_execution(executionArn=execution_arn)
        return described

    def instances_of(self, execution_arn: str) -> dict[str, str]:
        """{instance id: state} of every instance tagged with the execution."""
        with self.world.emulator_calls():
            return _instances_of(self.clients["ec2"], execution_arn)


def rehearse(
    request: dict[str, Any],
    options: RehearsalOptions = RehearsalOptions(),
    on_progress: Callable[[Progress], None] | None = None,
) -> RehearsalResult:
    """Run one execution JSON end to end on the emulator and return how it ended."""
    emit = on_progress or (lambda _: None)
    invocations: queue.Queue[Invocation] = queue.Queue()
    with EmulatorSession(options, invocations.put) as session:
        standins = session.prepare(request)
        if standins:
            emit(
                Progress(
                    0.0, "note", "", "stand-ins in the emulated account: " + ", ".join(standins)
                )
            )
        name = options.name or f"rehearsal-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        started = time.monotonic()
        arn = session.start(request, name)
        follower = _Follower(
            session.sfn, arn, started, emit, invocations, called_by_states=session.called_by_states
        )
        try:
            while True:
                # Wake at each Lambda invocation, or at least 4 times a second.
                follower.wait(0.25)
                follower.read_history()
                described = session.describe(arn)
                if described["status"] != "RUNNING":
                    follower.read_history()
                    follower.flush()
                    break
        except BaseException:
            # Ctrl-C or SIGTERM: stop the execution, so its thread ends too; leaving
            # the session then kills the commands run for real (world.close).
            _stop_if_running(session.sfn, arn)
            raise
        world = session.world
        result = RehearsalResult(
            status=described["status"],
            execution_arn=arn,
            output=json.loads(described["output"]) if described.get("output") else None,
            error=described.get("error"),
            cause=described.get("cause"),
            elapsed_s=follower.elapsed(),
            states=follower.states,
            standins=standins,
            sent_commands=list(world.sent_commands),
            standin_outputs=list(world.standin_outputs),
            standin_inputs=list(world.standin_inputs),
            largest_state_bytes=follower.largest_state,
            largest_state_growth=follower.largest_state - state_bytes(json.dumps(request)),
            history=session.history(arn),
            bus_events=list(session.bus.published),
        )
        result.instances = session.instances_of(arn)
        result.volumes_deleted = list(dict.fromkeys(follower.volumes_deleted))
        result.notes = _notes(options, result)
        return result


def _stop_if_running(sfn: Any, arn: str) -> None:
    if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        sfn.stop_execution(executionArn=arn, error="Interrupted", cause="the rehearsal was stopped")


@contextlib.contextmanager
def emulator_server(port: int = 0) -> Iterator[str]:
    """The emulator over HTTP on 127.0.0.1, for commands run in another process."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    with contextlib.redirect_stdout(io.StringIO()):
        server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _instances_of(ec2: Any, execution_arn: str) -> dict[str, str]:
    reservations = ec2.describe_instances(
        Filters=[{"Name": "tag:amirun:execution", "Values": [execution_arn]}]
    )["Reservations"]
    return {i["InstanceId"]: i["State"]["Name"] for r in reservations for i in r["Instances"]}


def _notes(options: RehearsalOptions, result: RehearsalResult) -> list[str]:
    notes = []
    if not options.exec_commands and result.sent_commands:
        notes.append("commands were recorded, not run (--exec-commands runs them)")
    for location in result.standin_outputs:
        notes.append(f"{location} was put in place as a stand-in for the run's output")
    for location in result.standin_inputs:
        notes.append(f"{location} was put in place as a stand-in for one of the run's inputs")
    if options.faults:
        notes.append("faults injected: " + ", ".join(sorted(options.faults)))
    if result.largest_state_bytes > STATE_LIMIT_BYTES * 0.9:
        notes.append(
            f"the largest state was {result.largest_state_bytes:,} bytes, close to Step "
            f"Functions' limit of {STATE_LIMIT_BYTES:,} (States.DataLimitExceeded)"
        )
    return notes
