"""The emulated world: what moto leaves out, filled in so a rehearsal behaves like AWS.

moto runs instances at once, reports every command as Success and lacks
`DescribeInstanceInformation` and `CancelCommand`. Botocore event hooks on the
clients the handlers use add what matters to amirun: an instance that is
pending before it runs, an SSM agent that comes online after a delay,
commands that are Pending and InProgress before they end (optionally run for
real in a local shell), RunInstances idempotency by ClientToken, and the
faults a user wants to rehearse. Commands move on by themselves (a clock
thread), and their ends and the instances' stops are published as the
EventBridge events AWS would send.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError

from amirun_core import aws, timing
from amirun_core.command import PLUGIN_OUTPUT
from amirun_core.launch import TAG_EXECUTION

#: The faults a rehearsal can inject, and what each stands for on AWS.
FAULTS: dict[str, str] = {
    "capacity": "the file's first instance type has no capacity (spot and on-demand): "
    "RunInstances fails with InsufficientInstanceCapacity; alternatives launch",
    "throttle": "the first RunInstances and GetCommandInvocation calls are throttled",
    "ssm-never-online": "the instance runs but its SSM agent never comes online",
    "command-fails": "the command ends Failed with exit code 1",
    "command-hangs": "the command never ends (until it is cancelled)",
    "output-missing": "the command succeeds but writes no output object",
    "crash": "a step's Lambda crashes with an unexpected error",
    "spot-interruption": "the instance is terminated under the running command",
    "lost-response": "the starter's first response is lost after it launched the instance",
    "inputs-late": "the objects run_options.inputs names appear after the input gate's second look",
    "inputs-missing": "the objects run_options.inputs names never appear",
    "stop-refused": "EC2 refuses to stop or terminate the instance (a missing permission)",
    "event-lost": "no end event arrives (EventBridge delivers SSM events best effort): "
    "the safety look finds the end",
    "event-duplicate": "every end event arrives twice",
    "event-late": "end events arrive only after the safety look has moved on",
}

#: How often the world's clock moves commands on (wall seconds).
TICK_S = 0.05
#: Looks at a missing input before it appears, with the `inputs-late` fault.
LATE_INPUT_LOOKS = 2

#: Longest emulated agent delay or command duration a rehearsal takes, in seconds.
MAX_DELAY_S = 3600
STDOUT_LIMIT = 24_000
STDERR_LIMIT = 8_000
#: Attempts per call of an SDK client in standard retry mode, unless configured.
SDK_ATTEMPTS = 3
#: What EC2 and SSM answer a caller over its request rate.
THROTTLING_ERRORS = {
    "ec2": ("RequestLimitExceeded", "Request limit exceeded."),
    "ssm": ("ThrottlingException", "Rate exceeded"),
}


class _Http:
    """The part of an HTTP response botocore reads from a short-circuited call."""

    def __init__(self, status_code: int = 200) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class WorldSettings:
    pending_s: float = 0.5
    agent_delay_s: float = 1.5
    command_pending_s: float = 0.5
    command_duration_s: float = 1.5
    faults: frozenset[str] = frozenset()
    exec_commands: bool = False
    #: (bucket, key) the run checks; put in place when a recorded command succeeds.
    expected_output: tuple[str, str] | None = None
    #: Environment for commands run for real (AWS endpoint of the emulator, ...).
    command_env: dict[str, str] = field(default_factory=dict)
    #: Share (0 to 1) of the steps' EC2 and SSM calls refused as throttled.
    throttle_share: float = 0.0
    #: The spot price the world quotes, as a share of the on-demand list price.
    spot_discount: float = 0.35
    #: The account's vCPU quota (0: none): launches past it fail with VcpuLimitExceeded.
    quota_vcpus: int = 0
    #: What an instance's command uses, published as CloudWatch would (CPUUtilization,
    #: and mem_used_percent as the agent would): (peak CPU %, peak memory %) by the
    #: execution's ARN; None: drawn from the execution's name, the same every time.
    utilisation: Callable[[str], tuple[float, float]] | None = None
    #: ssm:GetParameters resources the starter's role is granted (IAM wildcards), for
    #: an ImageId `resolve:ssm:<name>`, which EC2 resolves with the caller's rights.
    image_parameter_grants: tuple[str, ...] = ()
    region: str = "us-east-1"
    account: str = "123456789012"


#: An ImageId naming an SSM parameter: `resolve:ssm:<name>[:<version or label>]`.
IMAGE_ALIAS = "resolve:ssm:"


def image_parameter_name(image_id: str) -> str:
    """The parameter an ImageId `resolve:ssm:<name>[:<version or label>]` names."""
    return image_id.removeprefix(IMAGE_ALIAS).split(":", 1)[0]


def parameter_arn(name: str, region: str, account: str, partition: str = "aws") -> str:
    """A parameter's ARN; AWS's public parameters (/aws/service/...) name no account."""
    path = name.lstrip("/")
    owner = "" if path.startswith("aws/service/") else account
    return f"arn:{partition}:ssm:{region}:{owner}:parameter/{path}"


@dataclass
class _Command:
    command_id: str
    instance_id: str
    commands: list[str]
    timeout_s: float
    output_bucket: str | None
    output_prefix: str | None
    #: ARN of the execution that launched the instance (None if not tagged).
    execution: str | None = None
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = "Pending"
    details: str = "Pending"
    exit_code: int = -1
    stdout: str = ""
    stderr: str = ""
    ended_at: datetime | None = None
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None

    @property
    def finished(self) -> bool:
        return self.ended_at is not None


#: Where the world's events go: (source, detail-type, detail naming an instance-id).
Publish = Callable[[str, str, dict[str, Any]], None]


def _no_bus(source: str, detail_type: str, detail: dict[str, Any]) -> None:
    """Events nobody listens to."""


class EmulatedWorld:
    """Hooks installed on boto3 clients; thread-safe, one per emulator session."""

    def __init__(self, settings: WorldSettings, s3: Any, publish: Publish = _no_bus) -> None:
        self.settings = settings
        self._s3 = s3
        self._publish = publish
        self._ticking = threading.Event()
        self._clock: threading.Thread | None = None
        self._ec2: Any = None
        self._ssm: Any = None
        self._lock = threading.RLock()
        self._tokens: dict[str, str] = {}
        self._launched: dict[str, float] = {}
        self._stopping: dict[str, float] = {}
        self._commands: dict[str, _Command] = {}
        self._under_way: dict[str, _Command] = {}
        self._throttled: set[str] = set()
        self._execution_of: dict[str, str] = {}
        self._expected: dict[str, tuple[str, str] | None] = {}
        self._draws = random.Random()  # noqa: S311 - not for secrets
        self._own = threading.local()
        self._attempts: dict[str, int] = {}
        #: Attempts refused as throttled, and calls still throttled after the SDK's retries.
        self.throttled_attempts = 0
        self.throttled_calls = 0
        self.sent_commands: list[list[str]] = []
        self.standin_outputs: list[str] = []
        self.standin_inputs: list[str] = []
        self._late_inputs: dict[tuple[str, str], int] = {}
        #: Instance types without capacity (the `capacity` fault); "" for a launch naming none.
        self._no_capacity: set[str] = set()
        #: vCPUs of the instances not yet stopped, by ClientToken, for the emulated quota.
        self._quota_use: dict[str, int] = {}
        self._token_of: dict[str, str] = {}
        self.peak_vcpus = 0
        self.quota_refusals = 0
        #: Faults of one execution only, on top of the settings' (a night's drawn faults).
        self._faults_of: dict[str, frozenset[str]] = {}
        self._type_of: dict[str, str] = {}

    def instance_lives(self) -> list[tuple[str, str, float | None]]:
        """(instance id, type, wall seconds from launch to stop; None if not stopped)."""
        with self._lock:
            return [
                (
                    instance,
                    self._type_of.get(instance, ""),
                    self._stopping[instance] - launched if instance in self._stopping else None,
                )
                for instance, launched in self._launched.items()
            ]

    def add_faults(self, execution_arn: str, faults: frozenset[str]) -> None:
        """Rehearse `faults` in this execution only."""
        with self._lock:
            self._faults_of[execution_arn] = faults

    def faults_for(self, execution_arn: str | None) -> frozenset[str]:
        with self._lock:
            return self.settings.faults | self._faults_of.get(execution_arn or "", frozenset())

    def expect_output(self, execution_arn: str, target: tuple[str, str] | None) -> None:
        """The (bucket, key) an execution checks: put in place when its command succeeds."""
        with self._lock:
            self._expected[execution_arn] = target

    def without_capacity(self, instance_type: str) -> None:
        """Leave `instance_type` without capacity, spot and on-demand alike."""
        with self._lock:
            self._no_capacity.add(instance_type)

    # --- installation -----------------------------------------------------------
    def install(self, ec2: Any, ssm: Any) -> None:
        self._ec2 = ec2
        hooks = {
            ec2: {
                "before-call.ec2.RunInstances": self._run_instances,
                "after-call.ec2.RunInstances": self._after_run_instances,
                "after-call.ec2.DescribeInstances": self._after_describe_instances,
                "before-call.ec2.StopInstances": self._refuse_stop,
                "before-call.ec2.TerminateInstances": self._refuse_stop,
                "after-call.ec2.StopInstances": self._after_stop,
                "after-call.ec2.TerminateInstances": self._after_stop,
                "before-call.ec2.DescribeSpotPriceHistory": self._spot_price_history,
            },
            ssm: {
                "before-call.ssm.DescribeInstanceInformation": self._instance_information,
                "before-call.ssm.SendCommand": self._before_send_command,
                "after-call.ssm.SendCommand": self._after_send_command,
                "before-call.ssm.GetCommandInvocation": self._command_invocation,
                "before-call.ssm.CancelCommand": self._cancel_command,
            },
        }
        hooks[self._s3] = {"before-call.s3.HeadObject": self._head_object}
        self._ssm = ssm
        # Before the parameters are kept: EC2 launches from the AMI the alias resolves to.
        ec2.meta.events.register(
            "before-parameter-build.ec2.RunInstances", self._resolve_image_alias
        )
        for client, events in hooks.items():
            service = client.meta.service_model.service_id.hyphenize()
            for operation in {event.rsplit(".", 1)[1] for event in events}:
                client.meta.events.register(
                    f"before-parameter-build.{service}.{operation}",
                    _keep_params,
                    unique_id=f"amirun-params-{service}-{operation}",
                )
            for event, handler in events.items():
                client.meta.events.register(event, handler)
            # Only the services --throttle is about (EC2, SSM): S3 is hooked for the inputs.
            if self.settings.throttle_share and service in THROTTLING_ERRORS:
                retries = client.meta.config.retries or {}
                self._attempts[service] = retries.get("total_max_attempts", SDK_ATTEMPTS)
                # Before every other hook: a refused call goes no further.
                client.meta.events.register(
                    f"before-parameter-build.{service}", self._throttle_share
                )

    def start_clock(self) -> None:
        """Move commands on by themselves, so their ends are events, not only answers."""
        self._ticking.set()
        self._clock = threading.Thread(target=self._tick, name="amirun-world-clock", daemon=True)
        self._clock.start()

    def _tick(self) -> None:
        while self._ticking.is_set():
            with self._lock, self.emulator_calls():
                # Only the commands still under way: a night ends over a thousand.
                for command_id, command in list(self._under_way.items()):
                    self._advance(command)
                    if command.finished:
                        del self._under_way[command_id]
            time.sleep(TICK_S)

    # --- S3: the run's inputs -------------------------------------------------------
    def provide_inputs(self, objects: list[tuple[str, str]]) -> None:
        """Put stand-ins for the run's inputs in place now, later, or never (faults)."""
        if "inputs-missing" in self.settings.faults:
            return
        with self._lock:
            for target in objects:
                if "inputs-late" in self.settings.faults:
                    self._late_inputs[target] = 0
                else:
                    self._put_standin_input(target)

    def _put_standin_input(self, target: tuple[str, str]) -> None:
        bucket, key = target
        with self.emulator_calls():
            self._s3.put_object(Bucket=bucket, Key=key, Body=b"rehearsal: stand-in input object")
        self.standin_inputs.append(f"s3://{bucket}/{key}")

    def _head_object(self, context: dict[str, Any], **_: Any) -> None:
        params = context.get("amirun_params", {})
        target = (params.get("Bucket", ""), params.get("Key", ""))
        with self._lock:
            if target not in self._late_inputs:
                return
            self._late_inputs[target] += 1
            if self._late_inputs[target] > LATE_INPUT_LOOKS:
                del self._late_inputs[target]
                self._put_standin_input(target)

    def close(self) -> None:
        self._ticking.clear()
        if self._clock is not None:
            self._clock.join()
        with self._lock:
            for command in self._commands.values():
                if command.process and command.process.poll() is None:
                    _kill(command.process)
                if command.workdir:
                    shutil.rmtree(command.workdir, ignore_errors=True)

    @contextlib.contextmanager
    def emulator_calls(self) -> Iterator[None]:
        """Calls made by the emulator itself (to answer a step, to look around): never throttled."""
        outer = getattr(self._own, "active", False)
        self._own.active = True
        try:
            yield
        finally:
            self._own.active = outer

    def _throttle_share(self, event_name: str, **_: Any) -> None:
        """Refuse each attempt of a step's call with the configured share, as AWS would.

        The SDK retries a throttled attempt (as many attempts as the client is
        configured for, with a backoff that the rehearsal's time scale shrinks like
        every other wait); the step sees the error only when every attempt was
        refused.
        """
        if getattr(self._own, "active", False):
            return
        service, operation = event_name.split(".")[1:3]
        attempts = self._attempts.get(service, SDK_ATTEMPTS)
        for attempt in range(attempts):
            with self._lock:
                refused = self._draws.random() < self.settings.throttle_share
                backoff = self._draws.random() * 2**attempt
                self.throttled_attempts += refused
            if not refused:
                return
            if attempt + 1 < attempts:
                time.sleep(backoff * timing.time_scale())
        with self._lock:
            self.throttled_calls += 1
        code, message = THROTTLING_ERRORS[service]
        raise _client_error(code, message, operation)

    # --- EC2 ----------------------------------------------------------------------
    def _throttle_once(self, operation: str) -> None:
        if "throttle" in self.settings.faults and operation not in self._throttled:
            self._throttled.add(operation)
            raise _client_error("RequestLimitExceeded", "Request limit exceeded.", operation)

    def _resolve_image_alias(self, params: dict[str, Any], **_: Any) -> None:
        """EC2's `resolve:ssm:` ImageId: it reads the parameter with the caller's rights
        (ssm:GetParameters), then launches the AMI it names (moto knows no aliases)."""
        image = params.get("ImageId")
        if not isinstance(image, str) or not image.startswith(IMAGE_ALIAS):
            return
        name = image_parameter_name(image)
        settings = self.settings
        arn = parameter_arn(name, settings.region, settings.account)
        if not any(fnmatch.fnmatchcase(arn, grant) for grant in settings.image_parameter_grants):
            raise _client_error(
                "UnauthorizedOperation",
                f"You are not authorized to perform: ssm:GetParameters on resource: {arn} "
                "(rehearsal: as template.yaml grants the starter)",
                "RunInstances",
            )
        with self.emulator_calls():
            found = self._ssm.get_parameters(Names=[name])["Parameters"]
        if not found:
            raise _client_error(
                "InvalidParameterValue",
                f"Invalid value '{image}' for ImageId: parameter {name} not found",
                "RunInstances",
            )
        params["ImageId"] = found[0]["Value"]

    def _run_instances(self, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("amirun_params", {})
        self._throttle_once("RunInstances")
        execution = _execution_tag(params)
        with self._lock:
            short = params.get("InstanceType", "") in self._no_capacity
        if short or "capacity" in self.faults_for(execution) - self.settings.faults:
            raise _client_error(
                "InsufficientInstanceCapacity",
                f"We currently do not have sufficient {params.get('InstanceType', '')} "
                "capacity in the Availability Zone you requested (rehearsal fault).",
                "RunInstances",
            )
        token = params.get("ClientToken")
        with self._lock:
            instance_id = self._tokens.get(token) if token else None
        if instance_id is None:
            self._take_quota(token or "", params.get("InstanceType", "m1.small"))
            return None  # moto launches it
        # EC2 returns the instance the token already launched (moto would launch another).
        with self.emulator_calls():
            found = self._ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
        return _Http(), {
            "ReservationId": found["ReservationId"],
            "OwnerId": found.get("OwnerId", ""),
            "Instances": found["Instances"],
        }

    def _take_quota(self, token: str, instance_type: str) -> None:
        """The account's vCPU quota: VcpuLimitExceeded past it, as EC2 answers."""
        if not self.settings.quota_vcpus:
            return
        from amirun_core.capacity import describe_types

        with self.emulator_calls():
            vcpus = describe_types(self._ec2, [instance_type])[instance_type].vcpus
        with self._lock:
            used = sum(self._quota_use.values())
            if used + vcpus > self.settings.quota_vcpus:
                self.quota_refusals += 1
                raise _client_error(
                    "VcpuLimitExceeded",
                    f"You have requested more vCPU capacity than your current vCPU limit of "
                    f"{self.settings.quota_vcpus} allows (rehearsal quota).",
                    "RunInstances",
                )
            self._quota_use[token] = vcpus
            self.peak_vcpus = max(self.peak_vcpus, used + vcpus)

    def _spot_price_history(self, context: dict[str, Any], **_: Any) -> Any:
        """One price per type and zone, a share of the list price (moto quotes 0.00001)."""
        from amirun_core.cost import price_table

        params = context.get("amirun_params", {})
        table = price_table()
        zone = params.get("AvailabilityZone") or f"{self._ec2.meta.region_name}a"
        history = [
            {
                "InstanceType": name,
                "AvailabilityZone": zone,
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": f"{table.on_demand_per_hour[name] * self.settings.spot_discount:.6f}",
                "Timestamp": params.get("StartTime") or datetime.now(UTC),
            }
            for name in params.get("InstanceTypes", [])
            if name in table.on_demand_per_hour
        ]
        return _Http(), {"SpotPriceHistory": history}

    def _after_run_instances(
        self, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        params = context.get("amirun_params", {})
        token = params.get("ClientToken")
        execution = _execution_tag(params)
        with self._lock:
            for instance in parsed.get("Instances", []):
                self._launched.setdefault(instance["InstanceId"], time.monotonic())
                self._type_of[instance["InstanceId"]] = instance.get("InstanceType", "")
                if token:
                    self._tokens[token] = instance["InstanceId"]
                    self._token_of[instance["InstanceId"]] = token
                if execution:
                    self._execution_of[instance["InstanceId"]] = execution

    def _refuse_stop(self, model: Any, **_: Any) -> None:
        if "stop-refused" in self.settings.faults:
            raise _client_error(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation (rehearsal fault).",
                model.name,
            )

    def _after_stop(self, parsed: dict[str, Any], **_: Any) -> None:
        with self._lock:
            for change in parsed.get("StoppingInstances", []) + parsed.get(
                "TerminatingInstances", []
            ):
                instance_id = change["InstanceId"]
                if instance_id in self._stopping:
                    continue
                self._stopping[instance_id] = time.monotonic()
                self._quota_use.pop(self._token_of.get(instance_id, ""), None)
                # The state EC2 shows first (moto skips it: stopped/terminated at once).
                state = {"stopped": "stopping", "terminated": "shutting-down"}.get(
                    change["CurrentState"]["Name"], change["CurrentState"]["Name"]
                )
                self._publish(
                    "aws.ec2",
                    "EC2 Instance State-change Notification",
                    {"instance-id": instance_id, "state": state},
                )

    def _after_describe_instances(self, parsed: dict[str, Any], **_: Any) -> None:
        now = time.monotonic()
        with self._lock:
            for reservation in parsed.get("Reservations", []):
                for instance in reservation["Instances"]:
                    state = instance["State"]
                    launched = self._launched.get(instance["InstanceId"])
                    stopping = self._stopping.get(instance["InstanceId"])
                    if (
                        state["Name"] == "running"
                        and launched
                        and now - launched < self.settings.pending_s
                    ):
                        state.update(Name="pending", Code=0)
                    elif stopping and now - stopping < self.settings.pending_s:
                        if state["Name"] == "stopped":
                            state.update(Name="stopping", Code=64)
                        elif state["Name"] == "terminated":
                            state.update(Name="shutting-down", Code=32)

    def agent_online(self, instance_id: str) -> bool:
        launched = self._launched.get(instance_id)
        if launched is None or "ssm-never-online" in self.settings.faults:
            return False
        if time.monotonic() - launched < self.settings.pending_s + self.settings.agent_delay_s:
            return False
        # Read from the emulator's own table: the look is the world's, not a step's, and a
        # night makes it for every instance every few seconds.
        from moto.ec2.models import ec2_backends

        backend = ec2_backends[self.settings.account][self.settings.region]
        instance = backend.get_instance_by_id(instance_id)
        return instance is not None and instance.state == "running"

    # --- SSM ------------------------------------------------------------------------
    def _instance_information(self, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("amirun_params", {})
        wanted = [
            value
            for f in params.get("Filters", []) + params.get("InstanceInformationFilterList", [])
            if f.get("Key") in ("InstanceIds", "instanceIds")
            for value in f.get("Values", f.get("valueSet", []))
        ]
        with self._lock:
            candidates = wanted or list(self._launched)
        online = [
            {
                "InstanceId": instance_id,
                "PingStatus": "Online",
                "LastPingDateTime": datetime.now(UTC),
                "AgentVersion": "3.3.0.0",
                "PlatformType": "Linux",
                "ResourceType": "EC2Instance",
            }
            for instance_id in candidates
            if self.agent_online(instance_id)
        ]
        return _Http(), {"InstanceInformationList": online}

    def _before_send_command(self, context: dict[str, Any], **_: Any) -> None:
        for instance_id in context.get("amirun_params", {}).get("InstanceIds", []):
            if not self.agent_online(instance_id):
                raise _client_error(
                    "InvalidInstanceId",
                    "Instances not in a valid state for account (SSM agent not online).",
                    "SendCommand",
                )

    def _after_send_command(
        self, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        params = context.get("amirun_params", {})
        document_params = params.get("Parameters", {})
        commands = list(document_params.get("commands", []))
        timeout = float((document_params.get("executionTimeout") or ["3600"])[0])
        command_id = parsed["Command"]["CommandId"]
        with self._lock:
            self.sent_commands.append(commands)
            for instance_id in params.get("InstanceIds", []):
                command = _Command(
                    command_id=command_id,
                    instance_id=instance_id,
                    commands=commands,
                    timeout_s=timing.scaled(timeout).total_seconds(),
                    output_bucket=params.get("OutputS3BucketName"),
                    output_prefix=params.get("OutputS3KeyPrefix"),
                    execution=self._execution_of.get(instance_id),
                )
                if self.settings.exec_commands and not self._scripted_fault(command.execution):
                    self._start_process(command)
                self._commands[command_id] = command
                self._under_way[command_id] = command

    def _scripted_fault(self, execution: str | None = None) -> bool:
        scripted = {"command-fails", "command-hangs", "spot-interruption"}
        return bool(scripted & self.faults_for(execution))

    def _start_process(self, command: _Command) -> None:
        command.workdir = Path(tempfile.mkdtemp(prefix="amirun-command-"))
        script = command.workdir / "_script.sh"
        script.write_text("\n".join(command.commands) + "\n", encoding="utf-8")
        env = {**os.environ, **self.settings.command_env}
        env.pop("AWS_ENDPOINT_URL_LAMBDA", None)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        with (
            (command.workdir / "stdout").open("wb") as out,
            (command.workdir / "stderr").open("wb") as err,
        ):
            command.process = subprocess.Popen(
                ["/bin/bash", str(script)],
                cwd=command.workdir,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def _command_invocation(self, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("amirun_params", {})
        self._throttle_once("GetCommandInvocation")
        if "crash" in self.settings.faults:
            raise RuntimeError("rehearsal fault: the look at the command crashed")
        with self._lock:
            command = self._commands.get(params.get("CommandId", ""))
            if command is None:
                return None  # moto answers
            self._advance(command)
            return _Http(), self._invocation(command)

    def _advance(self, command: _Command) -> None:
        if command.finished:
            return
        elapsed = time.monotonic() - command.started
        if elapsed < self.settings.command_pending_s:
            return
        command.status = command.details = "InProgress"
        faults = self.faults_for(command.execution)
        if "spot-interruption" in faults:
            # EC2 takes the instance back; SSM still says InProgress for a while.
            if command.instance_id not in self._stopping:
                with self.emulator_calls():
                    self._ec2.terminate_instances(InstanceIds=[command.instance_id])
            return
        if "command-hangs" in faults:
            return
        if command.process is not None:
            if command.process.poll() is None:
                if elapsed > command.timeout_s:
                    _kill(command.process)
                    self._end(command, "TimedOut", "Execution Timed Out", -1)
                return
            self._collect(command)
            code = command.process.returncode
            self._end(command, "Success" if code == 0 else "Failed", "", code)
            return
        if elapsed < self.settings.command_pending_s + self.settings.command_duration_s:
            return
        if "command-fails" in faults:
            command.stderr = "rehearsal fault: the command failed\n"
            self._end(command, "Failed", "Failed", 1)
            return
        listing = "".join(f"  {line}\n" for line in command.commands)
        command.stdout = f"(rehearsal: commands recorded, not run)\n{listing}"
        # In place before the end is known (by an event or a look).
        self._put_standin_output(command)
        self._end(command, "Success", "Success", 0)

    def _collect(self, command: _Command) -> None:
        assert command.workdir is not None
        command.stdout = (command.workdir / "stdout").read_text(errors="replace")
        command.stderr = (command.workdir / "stderr").read_text(errors="replace")

    def _end(self, command: _Command, status: str, details: str, code: int) -> None:
        command.status, command.details = status, details or status
        command.exit_code = code
        command.ended_at = datetime.now(UTC)
        for stream in ("stdout", "stderr"):
            body, key = getattr(command, stream), self._output_key(command, stream)
            if body and key:
                self._s3.put_object(Bucket=command.output_bucket, Key=key, Body=body.encode())
        self._publish_utilisation(command)
        self._publish(
            "aws.ssm",
            "EC2 Command Invocation Status-change Notification",
            {
                "command-id": command.command_id,
                "document-name": "AWS-RunShellScript",
                "instance-id": command.instance_id,
                "requested-date-time": command.started_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "status": status,
            },
        )

    def _publish_utilisation(self, command: _Command) -> None:
        """The instance's CPU (and memory) over the command, as CloudWatch would hold it."""
        execution = command.execution or command.instance_id
        cpu, memory = (self.settings.utilisation or emulated_utilisation)(execution)
        moments = [command.started_at, command.ended_at or datetime.now(UTC)]
        dimensions = [{"Name": "InstanceId", "Value": command.instance_id}]
        cloudwatch = aws.client("cloudwatch")
        for namespace, name, peak in (
            ("AWS/EC2", "CPUUtilization", cpu),
            ("CWAgent", "mem_used_percent", memory),
        ):
            cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Timestamp": moment,
                        "Value": value,
                        "Unit": "Percent",
                    }
                    for moment, value in zip(moments, (peak * 0.5, peak), strict=True)
                ],
            )

    def _put_standin_output(self, command: _Command) -> None:
        target = self._expected.get(command.execution or "", self.settings.expected_output)
        if target is None or "output-missing" in self.faults_for(command.execution):
            return
        bucket, key = target
        body = json.dumps(
            {"rehearsal": "stand-in output object", "written_at": datetime.now(UTC).isoformat()}
        )
        self._s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        self.standin_outputs.append(f"s3://{bucket}/{key}")

    def _invocation(self, command: _Command) -> dict[str, Any]:
        invocation: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": command.instance_id,
            "DocumentName": "AWS-RunShellScript",
            "PluginName": "aws:runShellScript",
            "Status": command.status,
            "StatusDetails": command.details,
            "ResponseCode": command.exit_code,
            "ExecutionStartDateTime": command.started_at.isoformat(),
            "StandardOutputContent": command.stdout[:STDOUT_LIMIT],
            "StandardErrorContent": command.stderr[:STDERR_LIMIT],
        }
        if command.ended_at:
            invocation["ExecutionEndDateTime"] = command.ended_at.isoformat()
        # Where SSM writes the whole streams, as it gives them (empty without a bucket).
        for stream, field_name in (("stdout", "StandardOutputUrl"), ("stderr", "StandardErrorUrl")):
            key = self._output_key(command, stream)
            invocation[field_name] = (
                f"https://s3.{self._s3.meta.region_name}.amazonaws.com/{command.output_bucket}/{key}"
                if key
                else ""
            )
        return invocation

    @staticmethod
    def _output_key(command: _Command, stream: str) -> str | None:
        """Where SSM itself writes a stream of AWS-RunShellScript's output."""
        if not command.output_bucket:
            return None
        base = f"{command.output_prefix}/" if command.output_prefix else ""
        return f"{base}{command.command_id}/{command.instance_id}/{PLUGIN_OUTPUT}/{stream}"

    def _cancel_command(self, context: dict[str, Any], **_: Any) -> Any:
        params = context.get("amirun_params", {})
        with self._lock:
            command = self._commands.get(params.get("CommandId", ""))
            if command is None:
                raise _client_error("InvalidCommandId", "no such command", "CancelCommand")
            if not command.finished:
                if command.process and command.process.poll() is None:
                    _kill(command.process)
                    self._collect(command)
                self._end(command, "Cancelled", "Cancelled", -1)
        return _Http(), {}

    def command_statuses(self) -> dict[str, str]:
        with self._lock:
            return {cid: c.status for cid, c in self._commands.items()}

    def commands_per_instance(self) -> dict[str, int]:
        """How many commands were sent to each instance."""
        with self._lock:
            counts: dict[str, int] = {}
            for command in self._commands.values():
                counts[command.instance_id] = counts.get(command.instance_id, 0) + 1
            return counts


@contextlib.contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """DynamoDB's conditional writes are atomic; moto's, run in concurrent threads, are not.

    moto checks a write's condition and then applies it without a lock, so two
    Lambdas claiming the last vCPUs at once could both pass. One lock over its
    write operations makes each check-and-write one step, as on AWS.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()

    def atomic(original: Callable[..., Any]) -> Callable[..., Any]:
        def write(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(*args, **kwargs)

        return write

    with contextlib.ExitStack() as stack:
        for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
            original = getattr(DynamoDBBackend, name)
            stack.enter_context(mock.patch.object(DynamoDBBackend, name, atomic(original)))
        yield


@contextlib.contextmanager
def task_tokens_as_on_aws() -> Iterator[None]:
    """SendTaskSuccess/SendTaskFailure answered as Step Functions answers them.

    moto 5.2 drops SendTaskFailure's cause (the run's reason: exit code, stderr,
    where the output is), and takes an outcome for a task already closed
    (settled, or timed out) without a word; AWS answers TaskTimedOut, which is
    how a late or duplicate end event learns it came too late.
    """
    from moto.core.exceptions import AWSError
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

    def refuse_if_closed(backend: Any, token: str) -> None:
        """TaskTimedOut unless the task that handed out `token` is still waiting.

        moto's history has the token in the TaskScheduled event's parameters
        (a retried attempt keeps it, in moto); anything after the last such
        event but the task starting means the task is closed.
        """
        executions = [e for e in backend._get_executions() if e.exec_worker is not None]
        # The execution whose callbacks hold the token, when one does: its history only
        # (reading every execution's would grow with the square of a night's runs).
        holders = [e for e in executions if _holds_callback(e, token)]
        for execution in holders or executions:
            events = execution.to_history_output()["events"]
            for index in reversed(range(len(events))):
                scheduled = events[index].get("taskScheduledEventDetails") or {}
                if token in (scheduled.get("parameters") or ""):
                    later = {e["type"] for e in events[index + 1 :]}
                    if later - {"TaskStarted", "TaskSubmitted"}:
                        raise TaskTimedOut("the task has already been closed")
                    return

    def send_task_success(self: StepFunctionResponse) -> EmptyResult:
        backend: Any = self.stepfunction_backend
        refuse_if_closed(backend, self._get_param("taskToken"))
        backend.send_task_success(self._get_param("taskToken"), self._get_param("output"))
        return EmptyResult()

    def send_task_failure(self: StepFunctionResponse) -> EmptyResult:
        # The executing backend (moto.stepfunctions.parser) takes a cause; its base does not.
        backend: Any = self.stepfunction_backend
        refuse_if_closed(backend, self._get_param("taskToken"))
        backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    with (
        mock.patch.object(StepFunctionResponse, "send_task_success", send_task_success),
        mock.patch.object(StepFunctionResponse, "send_task_failure", send_task_failure),
    ):
        yield


def _holds_callback(execution: Any, token: str) -> bool:
    env = getattr(execution.exec_worker, "env", None)
    pool = getattr(env, "callback_pool_manager", None)
    return pool is not None and pool.get(token) is not None


def _execution_tag(params: dict[str, Any]) -> str | None:
    """The execution a RunInstances call tags its instance with."""
    return next(
        (
            tag["Value"]
            for spec in params.get("TagSpecifications", [])
            if spec.get("ResourceType") == "instance"
            for tag in spec.get("Tags", [])
            if tag.get("Key") == TAG_EXECUTION
        ),
        None,
    )


def emulated_utilisation(execution: str) -> tuple[float, float]:
    """(peak CPU %, peak memory %) of a run, drawn from its execution's name (stable)."""
    name = execution.rsplit(":", 1)[-1]
    digest = hashlib.sha256(name.encode()).digest()
    return 5.0 + digest[0] % 90, 10.0 + digest[1] % 80


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """Keep the API parameters where the before-call and after-call hooks can read them."""
    context["amirun_params"] = dict(params)


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
