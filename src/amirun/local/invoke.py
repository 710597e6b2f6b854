"""`sam local invoke` for every function with its sample events, in containers.

`make invoke` (or `python -m amirun.local.invoke`) builds the functions for this
machine's architecture, then runs each function of `template.yaml` with each of
its sample events in `events/` (`<folder>.json` and `<folder>-*.json`) the way a
user runs `sam local invoke`: in a container, on a Lambda-like base image built
here (tools/lambda-image.sh), with the Powertools layer of the version the project
pins, against moto's server (its endpoint through `--env-vars`). The SAM CLI
leaves its containers on Docker's default bridge (`--docker-network host` does not
give them the host's network), so the server listens on the bridge's gateway
address, which this machine and its containers reach and nothing else does.
Before each invocation the resources the event names are made in the emulator,
and the ids the emulator chose are written into the event.
It prints one line per invocation: the function's result or its error.

Docker is started when it is not running (and installed first on a Debian
machine where it is missing, when run as root) and stopped again at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amirun.local.emulator_server import emulator_server
from amirun.local.runner import create_command_wait_table
from amirun.project import ROOT, TEMPLATE, load_workflow
from amirun_core.command import send_commands
from amirun_core.launch import launch_instance
from amirun_core.state import WorkflowState

EVENTS = ROOT / "events"
#: Everything built for local invokes (under .aws-sam/, which git ignores).
WORK = ROOT / ".aws-sam" / "invoke"
IMAGE_SCRIPT = ROOT / "tools" / "lambda-image.sh"
RUN_REQUIREMENTS = ROOT / "requirements" / "run.txt"
REGION = "us-east-1"
#: The account the emulator and `sam local` report.
ACCOUNT = "123456789012"
#: What the template's references resolve to in the emulator.
STACK_NAME = "amirun"
OUTPUT_BUCKET = "amirun-local-output"
COMMAND_WAIT_TABLE = "amirun-local-command-wait"
TOPIC_NAME = "amirun-notifications"
#: The emulator takes any credentials; these are the ones the tests use too.
EMULATOR_KEY = "testing"
#: What the Powertools layer holds: the project's pins of these (requirements/run.txt).
POWERTOOLS_PACKAGES = ("aws-lambda-powertools", "pydantic")
#: In the Lambda runtime already; the published layer does not ship them either.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six")
#: A first invocation builds the emulation image over the base image: give it time.
INVOKE_TIMEOUT_S = 600
DOCKER_START_TIMEOUT_S = 60


class InvokeError(RuntimeError):
    """Local invokes cannot run on this machine; the message says why, in one line."""


# --- Docker -----------------------------------------------------------------------
def _docker_answers() -> str | None:
    """None when the Docker daemon answers, else what `docker info` said."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    result = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode == 0:
        return None
    return (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]


def _install_packages() -> None:
    """docker.io and debootstrap from Debian's archive, as a fresh CI machine needs."""
    missing = [tool for tool in ("dockerd", "debootstrap") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise InvokeError(
            f"{' and '.join(missing)} not installed and this is not root on a Debian-like "
            "machine: install docker.io and debootstrap (apt-get install -y docker.io debootstrap)"
        )
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "docker.io", "debootstrap"],
    ):
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:]
            raise InvokeError(f"`{' '.join(command)}` failed: {' '.join(tail)}")


@contextlib.contextmanager
def docker_daemon() -> Iterator[None]:
    """A Docker daemon that answers; started here (and stopped after) if none runs."""
    _install_packages()
    if _docker_answers() is None:
        yield
        return
    if os.geteuid() != 0:
        raise InvokeError(
            f"Docker is not running ({_docker_answers()}) and only root can start dockerd "
            "here: start it (sudo dockerd &) or run as root"
        )
    WORK.mkdir(parents=True, exist_ok=True)
    log_path = WORK / "dockerd.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            ["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + DOCKER_START_TIMEOUT_S
        while (why := _docker_answers()) is not None:
            if daemon.poll() is not None or time.monotonic() > deadline:
                lines = log_path.read_text(errors="replace").strip().splitlines()
                raise InvokeError(
                    f"dockerd did not start ({why}); its log ends: {lines[-1] if lines else ''}"
                )
            time.sleep(0.5)
        yield
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def bridge_gateway() -> str:
    """The address of this machine on Docker's default bridge, as its containers see it."""
    result = subprocess.run(
        ["docker", "network", "inspect", "bridge"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        raise InvokeError(f"docker network inspect bridge failed: {result.stderr.strip()}")
    for config in json.loads(result.stdout)[0]["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return str(config["Gateway"])
        if config.get("Subnet") and ipaddress.ip_network(config["Subnet"]).version == 4:
            # Docker gives the bridge the subnet's first address when it names none.
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise InvokeError("Docker's default bridge has no IPv4 address")


# --- What the containers run on ------------------------------------------------------
def architecture() -> str:
    """This machine's architecture as Lambda names it."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        return "x86_64"
    if machine in ("aarch64", "arm64"):
        return "arm64"
    raise InvokeError(f"no Lambda architecture runs on this machine ({machine})")


def _wheel_platform(arch: str) -> str:
    return "manylinux2014_x86_64" if arch == "x86_64" else "manylinux2014_aarch64"


def lambda_image() -> str:
    """The Lambda-like base image, built (once per recipe) by tools/lambda-image.sh."""
    pip = Path(sys.executable).parent / "pip"
    result = subprocess.run(
        [str(IMAGE_SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, PIP=str(pip)),
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise InvokeError(f"the Lambda base image did not build: {lines[-1] if lines else ''}")
    return result.stdout.strip().splitlines()[-1]


def _pins(names: tuple[str, ...]) -> list[str]:
    """The requirement lines of `names` in requirements/run.txt (the deployed versions)."""
    pins = []
    for line in RUN_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        name = requirement.split("[", 1)[0].split("=", 1)[0].strip().lower()
        if name in names:
            pins.append(requirement)
    if len(pins) != len(names):
        raise InvokeError(f"{RUN_REQUIREMENTS} does not pin all of {', '.join(names)}")
    return pins


def powertools_layer_arn(arch: str) -> str:
    """The ARN local invokes give PowertoolsLayerArn: this account, the pinned version.

    It names no layer on AWS; the SAM CLI finds it in its layer cache (see
    `powertools_layer`) and never downloads it.
    """
    version = next(p for p in _pins(POWERTOOLS_PACKAGES) if p.startswith("aws-lambda-powertools"))
    number = version.rsplit("==", 1)[-1].replace(".", "_")
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:powertools-python313-{arch}-{number}:1"


def powertools_layer(cache_dir: Path, arch: str) -> str:
    """Put the Powertools layer where the SAM CLI's layer cache looks for `arn`.

    The SAM CLI keeps a downloaded layer in `<cache>/<name>-<version>-<sha256(arn)[:10]>`
    and uses it without asking AWS when it is there. The layer holds what the
    published Powertools layer does (Powertools with its tracer, pydantic) at the
    versions requirements/run.txt pins, for the image's Python and architecture.
    Returns the ARN.
    """
    arn = powertools_layer_arn(arch)
    _, name, version = arn.rsplit(":", 2)
    folder = cache_dir / f"{name}-{version}-{hashlib.sha256(arn.encode()).hexdigest()[:10]}"
    pins = _pins(POWERTOOLS_PACKAGES)
    recipe = hashlib.sha256(json.dumps([pins, arch]).encode()).hexdigest()
    stamp = folder / ".amirun-recipe"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == recipe:
        return arn
    shutil.rmtree(folder, ignore_errors=True)
    target = folder / "python"
    pip = Path(sys.executable).parent / "pip"
    command = [str(pip), "install", "--quiet", "--no-compile", "--only-binary=:all:"]
    command += ["--python-version", "3.13", "--implementation", "cp"]
    command += ["--platform", _wheel_platform(arch), "--target", str(target), *pins]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise InvokeError(f"the Powertools layer did not build: {lines[-1] if lines else ''}")
    for path in target.iterdir():
        if path.name.split("-", 1)[0].split(".", 1)[0].lower() in RUNTIME_PACKAGES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    byte_compile(target)
    stamp.write_text(recipe, encoding="utf-8")
    return arn


def python313_dir() -> Path:
    """A directory holding a working python3.13, which `sam build` needs on PATH."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [shutil.which("python3.13")]
    candidates += [str(p) for p in sorted(pyenv_root.glob("versions/3.13*/bin/python3.13"))]
    for candidate in filter(None, candidates):
        found = subprocess.run([candidate, "--version"], capture_output=True, check=False)
        if found.returncode == 0:
            return Path(candidate).parent
    raise InvokeError("sam build needs python3.13 (the functions' runtime) on PATH")


def byte_compile(*folders: Path) -> None:
    """Byte-compile for the runtime's Python, as Lambda's own runtime and layers come.

    Without it every cold start compiles Powertools, pydantic and amirun_core again.
    Hash-checked, so the files (and the images SAM builds over them) stay the same
    from one build to the next.
    """
    python = python313_dir() / "python3.13"
    command = [str(python), "-m", "compileall", "-q", "-j", "0"]
    command += ["--invalidation-mode", "unchecked-hash", *map(str, folders)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise InvokeError(f"byte-compiling {folders[0]} failed: {result.stdout.strip()[-200:]}")


def sam_cli() -> Path:
    sam = Path(os.environ.get("SAM_CLI") or ROOT / ".venv-sam" / "bin" / "sam")
    if not sam.exists():
        raise InvokeError(f"the SAM CLI is not at {sam}: run `make invoke` (it installs it)")
    return sam


def sam_env(endpoint: str | None = None) -> dict[str, str]:
    """The SAM CLI's environment: no telemetry, the emulator's fake credentials.

    With `endpoint`, the SAM CLI's own AWS calls go to the emulator too: `sam local
    invoke` asks STS for the account (which would wait on AWS with fake credentials).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAM_CLI_"))}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_ACCESS_KEY_ID=EMULATOR_KEY,
        AWS_SECRET_ACCESS_KEY=EMULATOR_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


def sam_build(arch: str) -> Path:
    """`sam build` for this machine's architecture; returns the built template."""
    build_dir = WORK / "build"
    env = sam_env()
    env["PATH"] = os.pathsep.join([str(python313_dir()), env.get("PATH", "")])
    command = [str(sam_cli()), "build", "--template-file", str(TEMPLATE)]
    command += ["--build-dir", str(build_dir), "--cache-dir", str(WORK / "cache"), "--cached"]
    command += ["--parameter-overrides", f"Architecture={arch}"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise InvokeError(f"sam build failed: {lines[-1] if lines else ''}")
    byte_compile(*(p for p in build_dir.iterdir() if p.is_dir()))
    return build_dir / "template.yaml"


# --- The samples and what they need in the emulator ----------------------------------
@dataclass(frozen=True)
class Sample:
    function: str
    event_file: Path

    @property
    def name(self) -> str:
        return self.event_file.stem

    def label(self) -> str:
        return f"{self.function} {self.event_file.relative_to(ROOT)}"


def samples() -> list[Sample]:
    """Every function of the template with each of its events, in template order."""
    found = []
    for spec in load_workflow().functions.values():
        folder = spec.code_dir.name
        for path in sorted(EVENTS.glob("*.json")):
            if path.stem == folder or path.stem.startswith(f"{folder}-"):
                found.append(Sample(spec.logical_id, path))
    return found


class Emulator:
    """Clients of the emulator's server, and the names the functions are given."""

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.endpoint = endpoint
        self._session = boto3.Session(
            aws_access_key_id=EMULATOR_KEY,
            aws_secret_access_key=EMULATOR_KEY,
            region_name=REGION,
        )
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self.endpoint)
        return self._clients[service]

    def reset(self) -> None:
        """Empty every service, as a fresh emulator."""
        import urllib.request

        # The emulator's own HTTP endpoint (http:// only, built here).
        url = f"{self.endpoint}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30):  # noqa: S310
            pass

    def environment(self) -> dict[str, str]:
        """What `--env-vars` gives every function (names the template declares)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "STACK_NAME": STACK_NAME,
            "OUTPUT_BUCKET": OUTPUT_BUCKET,
            "COMMAND_WAIT_TABLE": COMMAND_WAIT_TABLE,
        }


@dataclass
class Arranged:
    """An event ready to send, with what else the function is given."""

    event: dict[str, Any]
    environment: dict[str, str] = field(default_factory=dict)
    #: What the emulator holds for the check (ids it chose).
    facts: dict[str, Any] = field(default_factory=dict)


def _referenced_resources(emulator: Emulator, request: dict[str, Any]) -> None:
    """The security group and instance profile the sample execution names (moto refuses
    a launch that names unknown ones); the request is pointed at the group's new id."""
    params = request["instance_parameters"]
    ec2, iam = emulator.client("ec2"), emulator.client("iam")
    group = ec2.create_security_group(GroupName="amirun-example", Description="sample")
    params["SecurityGroupIds"] = [group["GroupId"]]
    iam.create_instance_profile(InstanceProfileName=params["IamInstanceProfile"]["Name"])


def _launch_for(emulator: Emulator, state: dict[str, Any]) -> str:
    """Launch the state's instance with the starter's logic; its id goes into the state."""
    _referenced_resources(emulator, state["request"])
    ec2 = emulator.client("ec2")
    record = launch_instance(ec2, WorkflowState.model_validate(state), STACK_NAME)
    for name in ("instance", "command"):
        if name in state:
            state[name]["instance_id"] = record.instance_id
    return record.instance_id


def _send_for(emulator: Emulator, state: dict[str, Any]) -> str:
    sent = send_commands(emulator.client("ssm"), WorkflowState.model_validate(state), OUTPUT_BUCKET)
    state["command"]["command_id"] = sent.command_id
    return sent.command_id


def _put(emulator: Emulator, bucket: str, key: str, body: bytes) -> None:
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _arrange_inputs(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    _put(emulator, "amirun-example-inputs", "forcings/20250531/forcing.nc", b"f")
    return Arranged(event)


def _arrange_starter(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    _referenced_resources(emulator, event["request"])
    return Arranged(event)


def _arrange_launched(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    return Arranged(event, facts={"instance_id": _launch_for(emulator, event)})


def _arrange_commander(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    instance_id = _launch_for(emulator, event)
    emulator.client("s3").create_bucket(Bucket=OUTPUT_BUCKET)
    return Arranged(event, facts={"instance_id": instance_id})


def _arrange_poller(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    instance_id = _launch_for(emulator, event)
    command_id = _send_for(emulator, event)
    return Arranged(event, facts={"instance_id": instance_id, "command_id": command_id})


def _arrange_checker(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    _put(emulator, "amirun-example-results", "daily/20250531/result.txt", b"ok\n")
    return Arranged(event)


def _arrange_sweeper(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    """The execution's instance left running, and an instance that is not amirun's."""
    detail = event["detail"]
    request = json.loads(detail["input"])
    _referenced_resources(emulator, request)
    execution = {
        "id": detail["executionArn"],
        "name": detail["name"],
        "start_time": "2025-06-01T06:00:00Z",
    }
    state = WorkflowState.model_validate({"request": request, "execution": execution})
    ec2 = emulator.client("ec2")
    left = launch_instance(ec2, state, STACK_NAME).instance_id
    image = request["instance_parameters"]["ImageId"]
    unrelated = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]
    return Arranged(event, facts={"left": left, "unrelated": unrelated["InstanceId"]})


def _arrange_waiter(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    instance_id = _launch_for(emulator, event["state"])
    command_id = _send_for(emulator, event["state"])
    create_command_wait_table(emulator.client("dynamodb"), COMMAND_WAIT_TABLE)
    return Arranged(event, facts={"instance_id": instance_id, "command_id": command_id})


def _arrange_settler(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    create_command_wait_table(emulator.client("dynamodb"), COMMAND_WAIT_TABLE)
    return Arranged(event)


def _arrange_reconciler(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    """An execution of the stack's state machine that was stopped, its instance left running."""
    sfn = emulator.client("stepfunctions")
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    role = f"arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-states"
    machine = sfn.create_state_machine(name=STACK_NAME, definition=definition, roleArn=role)
    request = json.loads((EVENTS / "execution.json").read_text(encoding="utf-8"))
    _referenced_resources(emulator, request)
    name = "example-aborted"
    started = sfn.start_execution(
        stateMachineArn=machine["stateMachineArn"], name=name, input=json.dumps(request)
    )
    sfn.stop_execution(executionArn=started["executionArn"])
    execution = {"id": started["executionArn"], "name": name, "start_time": started["startDate"]}
    state = WorkflowState.model_validate({"request": request, "execution": execution})
    left = launch_instance(emulator.client("ec2"), state, STACK_NAME).instance_id
    return Arranged(event, facts={"left": left})


def _arrange_notifier(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    topic = emulator.client("sns").create_topic(Name=TOPIC_NAME)["TopicArn"]
    return Arranged(event, environment={"TOPIC_ARN": topic}, facts={"topic": topic})


def _as_is(emulator: Emulator, event: dict[str, Any]) -> Arranged:
    return Arranged(event)


#: event name -> what its function needs in the emulator first.
ARRANGE: dict[str, Callable[[Emulator, dict[str, Any]], Arranged]] = {
    "resolver": _as_is,
    "inputs": _arrange_inputs,
    "starter": _arrange_starter,
    "readiness": _arrange_launched,
    "commander": _arrange_commander,
    "poller": _arrange_poller,
    "checker": _arrange_checker,
    "stopper": _arrange_launched,
    "stopper-after-failure": _arrange_launched,
    "sweeper": _arrange_sweeper,
    "waiter": _arrange_waiter,
    "settler": _arrange_settler,
    "settler-instance-gone": _arrange_settler,
    "reconciler": _arrange_reconciler,
    "notifier": _arrange_notifier,
}


# --- Invoking ----------------------------------------------------------------------
@dataclass
class Outcome:
    sample: Sample
    arranged: Arranged | None = None
    result: Any = None
    error: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        if self.error is not None:
            return f"{self.sample.label()}: ERROR {self.error}"
        return f"{self.sample.label()}: {json.dumps(self.result, sort_keys=True)}"


@dataclass
class Invoker:
    """Runs `sam local invoke` for samples; made by `local_invokes()`."""

    emulator: Emulator
    template: Path
    image: str
    arch: str
    layer_arn: str
    layer_cache: Path

    def command(self, sample: Sample, env_file: Path) -> list[str]:
        overrides = f"Architecture={self.arch} PowertoolsLayerArn={self.layer_arn}"
        return [
            str(sam_cli()),
            "local",
            "invoke",
            sample.function,
            "--template",
            str(self.template),
            "--event",
            "-",
            "--env-vars",
            str(env_file),
            "--parameter-overrides",
            overrides,
            "--invoke-image",
            self.image,
            "--skip-pull-image",
            "--layer-cache-basedir",
            str(self.layer_cache),
            "--region",
            REGION,
        ]

    def invoke(self, sample: Sample) -> Outcome:
        """Arrange the sample's resources in a fresh emulator, then invoke its function."""
        self.emulator.reset()
        event = json.loads(sample.event_file.read_text(encoding="utf-8"))
        try:
            arranged = ARRANGE.get(sample.name, _as_is)(self.emulator, event)
        except Exception as exc:  # noqa: BLE001 - reported on the sample's line
            error = f"arranging the emulator failed: {type(exc).__name__}: {exc}"
            return Outcome(sample, error=error)
        return self.send(sample, arranged)

    def send(self, sample: Sample, arranged: Arranged) -> Outcome:
        """`sam local invoke` the sample's function with the arranged event, as it is."""
        outcome = Outcome(sample, arranged)
        started = time.monotonic()
        variables = {
            "Parameters": self.emulator.environment(),
            sample.function: arranged.environment,
        }
        with tempfile.TemporaryDirectory(prefix="amirun-invoke-") as scratch:
            env_file = Path(scratch) / "env.json"
            env_file.write_text(json.dumps(variables), encoding="utf-8")
            try:
                result = subprocess.run(
                    self.command(sample, env_file),
                    input=json.dumps(arranged.event),
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                    env=sam_env(self.emulator.endpoint),
                    timeout=INVOKE_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                outcome.error = f"sam local invoke did not end within {INVOKE_TIMEOUT_S} s"
                return outcome
        outcome.seconds = time.monotonic() - started
        outcome.result, outcome.error = _answer(result)
        return outcome


def _answer(result: subprocess.CompletedProcess[str]) -> tuple[Any, str | None]:
    """The function's result from `sam local invoke`'s output, or its error."""
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()
        errors = [line for line in said if "Error" in line or "error" in line]
        return None, (errors or said or ["no output"])[-1]
    try:
        answer = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None, f"not a JSON result: {lines[-1][:200]}"
    if isinstance(answer, dict) and "errorType" in answer:
        return answer, f"{answer['errorType']}: {answer.get('errorMessage', '')}"
    return answer, None


@contextlib.contextmanager
def local_invokes() -> Iterator[Invoker]:
    """Docker, the base image, the build, the layer and the emulator, for the block."""
    arch = architecture()
    with docker_daemon():
        image = lambda_image()
        template = sam_build(arch)
        layer_cache = WORK / "layers"
        layer_arn = powertools_layer(layer_cache, arch)
        with emulator_server(host=bridge_gateway()) as endpoint:
            yield Invoker(Emulator(endpoint), template, image, arch, layer_arn, layer_cache)


def select(function: str | None, event: str | None) -> list[Sample]:
    """The samples `make invoke FN=... EVENT=...` asks for (all by default)."""
    chosen = samples()
    if function:
        known = sorted({s.function for s in chosen})
        if function not in known:
            raise InvokeError(f"FN: no function {function} in template.yaml ({', '.join(known)})")
        chosen = [s for s in chosen if s.function == function]
    if event:
        path = (ROOT / event).resolve() if not Path(event).is_absolute() else Path(event)
        if not path.is_file():
            raise InvokeError(f"EVENT: no file {event}")
        function = function or next((s.function for s in chosen if s.event_file == path), None)
        if function is None:
            raise InvokeError(f"EVENT: {event} is no function's sample event; give FN too")
        chosen = [Sample(function, path)]
    return chosen


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").strip().splitlines()[0]
    parser = argparse.ArgumentParser(prog="make invoke", description=summary)
    parser.add_argument("--function", help="logical id of one function (all by default)")
    parser.add_argument("--event", help="event file (the function's samples by default)")
    args = parser.parse_args(argv)
    failed = 0
    try:
        chosen = select(args.function, args.event)
        with local_invokes() as invoker:
            for sample in chosen:
                outcome = invoker.invoke(sample)
                failed += outcome.error is not None
                print(outcome.line(), flush=True)
    except InvokeError as exc:
        print(f"make invoke: {exc}", file=sys.stderr)
        return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
