"""Integration fixtures: whole executions on the embedded emulator.

Each test runs the real ASL with the real handlers through `rehearse()` (or the
`amirun` CLI), at a time scale that turns the workflow's waits into about a
second each. A rehearsal takes a few seconds, so each one is run once per module
(module-scoped fixtures) and several tests look at its outcome.

Besides `RehearsalResult`, a `Rehearsal` keeps what the run showed while it ran
(the progress events, the emulated SSM commands' last statuses) and a look at the
emulated account taken as the execution entered its final state (EBS volumes and
S3 objects): the emulator is closed once `rehearse()` returns.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from amirun.local.runner import Progress, RehearsalOptions, RehearsalResult, rehearse
from amirun.local.world import EmulatedWorld
from amirun.project import load_workflow

EXECUTIONS = Path(__file__).resolve().parents[1] / "executions"
#: Agent and command delays shorter than the shortest Wait (1 s at any time
#: scale): the instance is ready, and the command done, at the first look.
FAST = RehearsalOptions(time_scale=0.01, agent_delay_s=0.2, command_duration_s=0.3)
#: The same, as `amirun run` flags.
FAST_FLAGS = ["--time-scale", "0.01", "--agent-delay", "0.2", "--command-duration", "0.3"]
#: How the runner describes a launch: "instance i-0123... pending (spot), SSM agent ...".
LAUNCH = re.compile(r"\binstance (?P<id>i-[0-9a-f]{8,17}) \S+ \((?P<market>spot|on-demand)\)")


def _state_types() -> dict[str, str]:
    asl = json.loads(load_workflow().definition_file.read_text(encoding="utf-8"))
    return {name: state["Type"] for name, state in asl["States"].items()}


STATE_TYPES = _state_types()
FINAL_STATES = frozenset(n for n, t in STATE_TYPES.items() if t in ("Succeed", "Fail"))


@dataclasses.dataclass
class Rehearsal:
    """One execution rehearsed: its request, its result and what it showed."""

    request: dict[str, Any]
    result: RehearsalResult
    progress: list[Progress]
    #: The emulated SSM commands' statuses when the rehearsal closed.
    command_statuses: dict[str, str]
    #: EBS volumes in the emulated account when the execution ended: {id: state}.
    volumes: dict[str, str]
    #: S3 objects in the emulated account when the execution ended: {s3 url: body}.
    objects: dict[str, bytes]
    #: Each instance's tags when the execution ended: {instance id: {key: value}}.
    instance_tags: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    #: Each EBS volume's size in GiB when the execution ended: {volume id: size}.
    volume_sizes: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def terminate(self) -> bool:
        return bool(self.request.get("run_options", {}).get("ii_terminate_instance"))

    @property
    def markets(self) -> dict[str, str]:
        """{instance id: spot or on-demand} of each instance EC2StarterFromAMI launched.

        In launch order, each once (a retried starter reports its instance again).
        """
        found = (LAUNCH.search(detail) for detail in self.results("StarterFunction"))
        return {match["id"]: match["market"] for match in found if match}

    @property
    def launched(self) -> list[str]:
        """The instances EC2StarterFromAMI launched, in order."""
        return list(self.markets)

    @property
    def milestones(self) -> list[str]:
        """The states visited, without Wait and Choice states and loop repeats.

        The number of polls depends on timing; the path through the workflow
        does not: e.g. Prepare, EC2StarterFromAMI, CheckInstanceReady, ...
        """
        path: list[str] = []
        for name in self.result.states:
            if STATE_TYPES[name] in ("Wait", "Choice"):
                continue
            if not path or path[-1] != name:
                path.append(name)
        return path

    @property
    def run_date(self) -> str:
        """What `DAILY` became (YYYYMMDD), as the Resolve step reported it."""
        (line,) = self.results("ResolverFunction")
        found = re.match(r"DAILY = (\d{8}) ", line)
        assert found, line
        return found.group(1)

    def errors(self, function: str) -> list[str]:
        """'ErrorName: message' of each failed invocation of a function (logical id)."""
        return [e.detail for e in self.progress if e.kind == "error" and e.state == function]

    def results(self, function: str) -> list[str]:
        """What each successful invocation said, the plumbing's notices included."""
        return [
            e.detail
            for e in self.progress
            if e.kind in ("result", "detail") and e.state == function
        ]


def _snapshot(
    volumes: dict[str, str],
    objects: dict[str, bytes],
    instance_tags: dict[str, dict[str, str]],
    volume_sizes: dict[str, int],
) -> None:
    """Volumes, instances and objects of the emulated account (called inside the emulator)."""
    from amirun_core import aws

    ec2, s3 = aws.client("ec2"), aws.client("s3")
    found = ec2.describe_volumes()["Volumes"]
    volumes.update({v["VolumeId"]: v["State"] for v in found})
    volume_sizes.update({v["VolumeId"]: v["Size"] for v in found})
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            instance_tags[instance["InstanceId"]] = tags
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        for item in s3.list_objects_v2(Bucket=name).get("Contents", []):
            body = s3.get_object(Bucket=name, Key=item["Key"])["Body"].read()
            objects[f"s3://{name}/{item['Key']}"] = body


def run_rehearsal(
    request: dict[str, Any],
    *,
    faults: Iterable[str] = (),
    exec_commands: bool = False,
) -> Rehearsal:
    """Rehearse one execution with the fast options; never raises on FAILED."""
    progress: list[Progress] = []
    statuses: dict[str, str] = {}
    volumes: dict[str, str] = {}
    objects: dict[str, bytes] = {}
    instance_tags: dict[str, dict[str, str]] = {}
    volume_sizes: dict[str, int] = {}

    def on_progress(event: Progress) -> None:
        progress.append(event)
        if event.kind == "state" and event.state in FINAL_STATES:
            _snapshot(volumes, objects, instance_tags, volume_sizes)

    close = EmulatedWorld.close

    def close_and_record(world: EmulatedWorld) -> None:
        statuses.update(world.command_statuses())
        close(world)

    options = dataclasses.replace(FAST, exec_commands=exec_commands, faults=frozenset(faults))
    with mock.patch.object(EmulatedWorld, "close", close_and_record):
        result = rehearse(copy.deepcopy(request), options, on_progress)
    return Rehearsal(
        request, result, progress, statuses, volumes, objects, instance_tags, volume_sizes
    )


def load_execution(name: str) -> dict[str, Any]:
    """An execution JSON from tests/executions/."""
    return dict(json.loads((EXECUTIONS / name).read_text(encoding="utf-8")))


def basic_request(*, commands: list[str] | None = None, **run_options: Any) -> dict[str, Any]:
    """executions/basic.json with some run options (and the commands) replaced."""
    request = load_execution("basic.json")
    request["run_options"].update(run_options)
    if commands is not None:
        request["commands"] = commands
    return request


def assert_every_instance_at_rest(rehearsal: Rehearsal) -> None:
    """Every instance the execution launched is stopped, or terminated if asked.

    A spot instance is always terminated: EC2 cannot stop a one-time spot instance.
    """
    instances = rehearsal.result.instances
    assert instances, "the execution launched no instance"
    assert sorted(instances) == sorted(rehearsal.launched), (
        "the instances tagged with the execution are the ones the starter launched"
    )
    wanted = {
        instance_id: "terminated" if rehearsal.terminate or market == "spot" else "stopped"
        for instance_id, market in rehearsal.markets.items()
    }
    assert instances == wanted


# --- fixtures: the helpers above, for test modules (no imports from conftest) ----------
@pytest.fixture(scope="module", autouse=True)
def _emulator_environment() -> Iterator[None]:
    """No real AWS configuration leaks in; moto's catalogue of public AMIs is skipped.

    Loading that catalogue costs about 1.5 s per rehearsal, and a rehearsal
    creates the execution's AMI as a stand-in anyway. Module-scoped (and autouse,
    so set before the modules' rehearsals): nothing outlives this directory's tests.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
            patch.delenv(name, raising=False)
        for service in ("EC2", "SSM", "S3", "IAM", "LAMBDA", "SFN", "STEPFUNCTIONS"):
            patch.delenv(f"AWS_ENDPOINT_URL_{service}", raising=False)
        yield


@pytest.fixture(scope="session")
def rehearsed() -> Callable[..., Rehearsal]:
    """`rehearsed(request, faults=..., exec_commands=...)`: run one execution."""
    return run_rehearsal


@pytest.fixture(scope="session")
def execution() -> Callable[[str], dict[str, Any]]:
    """`execution(name)`: an execution JSON from executions/."""
    return load_execution


@pytest.fixture(scope="session")
def execution_path() -> Callable[[str], str]:
    """`execution_path(name)`: the path of a file in executions/, for the CLI."""

    def path(name: str) -> str:
        found = EXECUTIONS / name
        assert found.is_file(), found
        return str(found)

    return path


@pytest.fixture(scope="session")
def basic() -> Callable[..., dict[str, Any]]:
    """`basic(commands=..., **run_options)`: executions/basic.json, adjusted."""
    return basic_request


@pytest.fixture(scope="session")
def at_rest() -> Callable[[Rehearsal], None]:
    """`at_rest(rehearsal)`: assert every launched instance is stopped/terminated."""
    return assert_every_instance_at_rest


@pytest.fixture(scope="session")
def fast_flags() -> list[str]:
    return list(FAST_FLAGS)


@pytest.fixture(scope="session")
def success_path() -> list[str]:
    """The states of a run that succeeds, without waits, choices and repeated polls."""
    return [
        "Prepare",
        "ClaimSlot",
        "Resolve",
        "ClaimRoom",
        "EC2StarterFromAMI",
        "CheckInstanceReady",
        "Commander",
        "WaitForCommandEnd",
        "RunChecker",
        "EC2Stopper",
        "Summarize",
        "Succeeded",
    ]


# --- Several executions on one emulator ----------------------------------------------------
def wait_until_ended(session: Any, arns: Iterable[str], limit_s: float = 120) -> list[Any]:
    """Each execution's last description, once none is RUNNING (at most `limit_s`)."""
    import time

    deadline = time.monotonic() + limit_s
    arns = list(arns)
    while True:
        described = [session.describe(arn) for arn in arns]
        if all(d["status"] != "RUNNING" for d in described):
            return described
        assert time.monotonic() < deadline, "the executions did not end in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def emulator_session() -> Iterator[Any]:
    """One emulated account for the module's executions (EmulatorSession, FAST)."""
    from amirun.local.runner import EmulatorSession

    with EmulatorSession(FAST) as session:
        yield session


@pytest.fixture(scope="session")
def until_ended() -> Callable[..., list[Any]]:
    """`until_ended(session, arns)`: their descriptions once all ended."""
    return wait_until_ended
