"""`amirun doctor`: a stand-in of the deployed stack on moto's server, checked for real.

The static checks read what moto's server holds: the stack's outputs, the
functions' layer, the event rules, the schedule group and the role Scheduler
assumes, the topic's subscriptions, and the instance types' vCPUs. moto has no
Service Quotas answers for these quotas: a botocore Stubber answers them.

The canary runs on the `live` stand-in (the real ASL and handlers): moto's
Scheduler never fires, so the test does what Scheduler does at the schedule's
time, with the context attributes it documents substituted:
https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-schedule-context-attributes.html
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cli_helpers import ACCOUNT, REGION, Live, create_stack

from amirun.cli import main
from amirun.commands import doctor
from amirun.commands.doctor import (
    Canary,
    CanaryPlan,
    Finding,
    StackView,
    canary_plan,
    static_checks,
    template_rules,
)
from amirun.commands.remote import Target
from amirun.local.runner import image_parameter_grants, prepare_standins
from amirun.project import StackContext, load_template
from amirun_core import aws
from amirun_core.launch import TAG_EXECUTION

Capsys = pytest.CaptureFixture[str]
NAME = "amirun-doctor"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{NAME}-workflow"
LAYER = "AWSLambdaPowertoolsPythonV3-python313-arm64"


@pytest.fixture(scope="module")
def live_stack_name() -> str:
    """The canary's live stand-in: a stack of this module's own."""
    return "amirun-doctor-live"


def quotas_stub(on_demand: float, spot: float, concurrency: float) -> Any:
    """Service Quotas as an account with these quotas answers (Stubber: moto has none)."""
    client = boto3.client("service-quotas", region_name=REGION)
    stub = Stubber(client)
    for code, value in (("L-1216C47A", on_demand), ("L-34B43A08", spot)):
        stub.add_response(
            "get_service_quota",
            {"Quota": {"QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    stub.add_response(
        "get_service_quota",
        {"Quota": {"QuotaCode": "L-B99A9384", "Value": concurrency}},
        {"ServiceCode": "lambda", "QuotaCode": "L-B99A9384"},
    )
    stub.add_response(
        "list_service_quotas",
        {
            "Quotas": [
                {"QuotaName": "StartExecution throttle token bucket size", "Value": 1300.0},
                {"QuotaName": "StartExecution throttle token refill rate", "Value": 300.0},
            ]
        },
        {"ServiceCode": "states"},
    )
    stub.activate()
    return client


def zipped() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def deployed(aws_endpoint: str) -> dict[str, str]:
    """What `sam deploy` would have made, as far as the doctor looks at it."""
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"{NAME}-functions",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    lambda_client = boto3.client("lambda")
    layer = lambda_client.publish_layer_version(LayerName=LAYER, Content={"ZipFile": zipped()})
    lambda_client.create_function(
        FunctionName=f"{NAME}-resolver",
        Runtime="python3.13",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": zipped()},
        Layers=[layer["LayerVersionArn"]],
    )
    group = f"{NAME}-schedules"
    boto3.client("scheduler").create_schedule_group(Name=group)
    scheduler_role = iam.create_role(
        RoleName=f"{NAME}-scheduler",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "scheduler.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {
                                "aws:SourceAccount": ACCOUNT,
                                "aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}"
                                f":schedule-group/{group}",
                            }
                        },
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    topic = boto3.client("sns").create_topic(Name=f"{NAME}-notifications")["TopicArn"]
    outputs = {key: f"{NAME}-{key}" for key in load_template()["Outputs"]}
    outputs.update(
        StateMachineArn=MACHINE,
        ScheduleGroupName=group,
        SchedulerRoleArn=scheduler_role,
        NotificationTopicArn=topic,
    )
    create_stack(NAME, outputs)
    # The rules, as SAM names and fills them: the template's patterns, resolved.
    events = boto3.client("events")
    context = StackContext.of(
        load_template(),
        region=REGION,
        account=ACCOUNT,
        stack_name=NAME,
        resources={"AmirunStateMachine": MACHINE},
    )
    for logical_id, event_name, pattern in template_rules():
        function = context.resolve(
            load_template()["Resources"][logical_id]["Properties"]["FunctionName"]
        )
        rule = f"{NAME}-{logical_id}{event_name}-ABC123"
        events.put_rule(Name=rule, EventPattern=json.dumps(context.resolve(pattern)))
        events.put_targets(
            Rule=rule,
            Targets=[{"Id": "1", "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"}],
        )
    return {"topic": topic, "group": group}


def target_with_quotas(quotas: Any) -> Target:
    target = Target(
        type("Args", (), {"region": None, "state_machine": None, "stack": NAME})()  # argparse-like
    )
    target._clients["service-quotas"] = quotas
    return target


def levels(findings: list[Finding]) -> dict[str, set[str]]:
    by_check: dict[str, set[str]] = {}
    for finding in findings:
        by_check.setdefault(finding.check, set()).add(finding.level)
    return by_check


def test_a_sound_stack_passes_with_a_warning_for_nobody_listening(
    deployed: dict[str, str],
) -> None:
    findings = static_checks(
        target_with_quotas(quotas_stub(on_demand=10_000, spot=10_000, concurrency=1000)),
        Path("schedules"),
    )

    assert levels(findings) == {
        "outputs": {"ok"},
        "powertools": {"ok"},
        "rules": {"ok"},
        "schedules": {"ok"},
        "notifications": {"warn"},
        "quotas": {"ok"},
    }, "\n".join(f.line() for f in findings)
    assert len([f for f in findings if f.check == "rules"]) == len(list(template_rules()))


def test_quotas_too_small_for_the_largest_set_warn(deployed: dict[str, str]) -> None:
    boto3.client("sns").subscribe(
        TopicArn=deployed["topic"], Protocol="email", Endpoint="ops@example.com"
    )
    findings = static_checks(
        target_with_quotas(quotas_stub(on_demand=4, spot=4, concurrency=1)), Path("schedules")
    )

    quota_lines = [f.detail for f in findings if f.check == "quotas" and f.level == "warn"]
    # The NextGen example set runs on spot (ii_cheapo), the nightly report on demand.
    assert any(line.startswith("Spot Standard vCPUs 4 < ") for line in quota_lines)
    assert any(line.startswith("On-Demand Standard vCPUs 4 < ") for line in quota_lines)
    assert any(line.startswith("Lambda concurrency 1 < ") for line in quota_lines)
    assert levels(findings)["notifications"] == {"ok"}


def test_a_disabled_rule_and_a_trust_naming_schedules_fail(
    deployed: dict[str, str], capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The confused-deputy condition must name the schedule group, not its schedules:
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html
    """
    events, iam = boto3.client("events"), boto3.client("iam")
    rule = f"{NAME}-SettlerFunctionCommandEnded-ABC123"
    events.disable_rule(Name=rule)
    role = f"{NAME}-scheduler"
    document = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
    condition = document["Statement"][0]["Condition"]["StringEquals"]
    good = condition["aws:SourceArn"]
    condition["aws:SourceArn"] = good.replace(":schedule-group/", ":schedule/") + "/*"
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(document))
    quotas = quotas_stub(on_demand=5000, spot=5000, concurrency=1000)
    original = Target.client
    monkeypatch.setattr(
        Target,
        "client",
        lambda self, service: quotas if service == "service-quotas" else original(self, service),
    )
    try:
        code = main(["doctor", "--stack", NAME])
    finally:
        events.enable_rule(Name=rule)
        condition["aws:SourceArn"] = good
        iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(document))

    out = capsys.readouterr().out
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 2, out
    assert "Settler.CommandEnded: the rule" in failed[0] and "is disabled" in failed[0]
    assert "is not assumable by Scheduler" in failed[1]
    assert out.splitlines()[-1].endswith(", 2 failed")


def test_doctor_needs_a_stack_and_a_profile_for_the_canary(
    aws_endpoint: str, capsys: Capsys
) -> None:
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == "amirun: give --stack NAME (the deployed amirun stack)\n"
    assert main(["doctor", "--stack", NAME, "--canary"]) == 2
    assert capsys.readouterr().err.startswith("amirun: --canary needs --instance-profile NAME")
    assert main(["doctor", "--stack", "amirun-nowhere"]) == 2
    assert capsys.readouterr().err == f"amirun: no stack named amirun-nowhere in {REGION}" + (
        " (deployed elsewhere? --region)\n"
    )


# --- The canary on the live stand-in ---------------------------------------------------------
def fire_like_scheduler(live: Live, view: StackView, plan: CanaryPlan) -> threading.Thread:
    """At the schedule's time, start what its target says, as Scheduler would."""

    def fire() -> None:
        scheduler = boto3.client("scheduler")
        while True:
            try:
                schedule = scheduler.get_schedule(
                    Name=plan.name, GroupName=view.outputs["ScheduleGroupName"]
                )
                break
            except scheduler.exceptions.ResourceNotFoundException:
                time.sleep(0.05)
        assert schedule["ScheduleExpression"] == f"at({plan.due_text})"
        assert schedule["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
        text = (
            schedule["Target"]["Input"]
            .replace("<aws.scheduler.scheduled-time>", plan.due_text + "Z")
            .replace("<aws.scheduler.execution-id>", str(uuid.uuid4()))
        )
        params = json.loads(text)
        while time.time() < plan.due.timestamp():
            time.sleep(0.05)
        arn = boto3.client("stepfunctions").start_execution(
            stateMachineArn=params["StateMachineArn"], name=params["Name"], input=params["Input"]
        )["executionArn"]
        # The emulated instance writes the marker when its command succeeds.
        live.world.expect_output(arn, (plan.bucket, plan.marker_key))

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def canary_setup(live: Live, monkeypatch: pytest.MonkeyPatch) -> tuple[Target, StackView]:
    group = "amirun-live-schedules"
    scheduler = boto3.client("scheduler")
    if group not in [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]:
        scheduler.create_schedule_group(Name=group)
    view = StackView(
        live.stack.name,
        {
            "StateMachineArn": live.stack.state_machine_arn,
            "OutputBucketName": live.stack.bucket,
            "ScheduleGroupName": group,
            "SchedulerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/amirun-live-scheduler",
        },
        {},
        {},
        live.stack.state_machine_arn,
    )
    # EC2 resolves the public AMI parameter with the starter's rights, as the template grants.
    monkeypatch.setattr(
        live.world.settings, "image_parameter_grants", image_parameter_grants(load_template())
    )
    # A command that outlasts the wait's first look: its end arrives as an event.
    monkeypatch.setattr(live.world.settings, "command_duration_s", 2.0)
    target = Target(
        type("Args", (), {"region": None, "state_machine": None, "stack": live.stack.name})()
    )
    return target, view


def prepared_plan(view: StackView) -> CanaryPlan:
    plan = canary_plan(view, "amirun-live-canary", lead_s=2)
    clients = {name: aws.client(name) for name in ("ec2", "ssm", "s3", "iam")}
    prepare_standins(plan.execution(), clients, strict=False)
    return plan


def test_the_canary_checks_a_scheduled_run_end_to_end(
    live: Live, canary_setup: tuple[Target, StackView]
) -> None:
    target, view = canary_setup
    plan = prepared_plan(view)
    fire_like_scheduler(live, view, plan)
    said: list[str] = []

    findings = Canary(target, view, plan, poll_s=0.2, start_limit_s=60, say=said.append).run()

    # The price table has no t4g.nano: the cost record is there, without a price.
    assert [f.level for f in findings] == ["ok"] * 5 + ["warn"], [f.line() for f in findings]
    assert findings[-1].detail.startswith("cost recorded: ")
    details = " | ".join(f.detail for f in findings)
    assert f"scheduled time {plan.due_text}Z arrived in the input" in details
    assert "the command's end came as an event" in details
    assert f"output check found s3://{plan.bucket}/{plan.marker_key}" in details
    # Removed afterwards (ActionAfterCompletion would remove it on AWS too).
    scheduler = boto3.client("scheduler")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name=plan.name, GroupName=view.outputs["ScheduleGroupName"])


def test_ctrl_c_removes_the_schedule_and_the_instance(
    live: Live, canary_setup: tuple[Target, StackView]
) -> None:
    target, view = canary_setup
    plan = prepared_plan(view)
    fire_like_scheduler(live, view, plan)
    ec2 = boto3.client("ec2")

    class Interrupted(Canary):
        def _follow(self, sfn: Any, arn: str) -> dict[str, Any]:
            # Ctrl-C once the run has launched its instance.
            while not ec2.describe_instances(
                Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [arn]}]
            )["Reservations"]:
                time.sleep(0.05)
            raise KeyboardInterrupt

    canary = Interrupted(target, view, plan, poll_s=0.2, start_limit_s=60, say=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        canary.run()

    assert canary.execution_arn is not None
    instances = [
        i
        for r in ec2.describe_instances(
            Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [canary.execution_arn]}]
        )["Reservations"]
        for i in r["Instances"]
    ]
    assert [i["State"]["Name"] for i in instances] in (["shutting-down"], ["terminated"])
    scheduler = boto3.client("scheduler")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name=plan.name, GroupName=view.outputs["ScheduleGroupName"])


def test_the_canary_run_is_tiny_and_arm64(deployed: dict[str, str]) -> None:
    """The smallest Graviton type and AWS's public AL2023 arm64 AMI, via resolve:ssm."""
    view = StackView(NAME, {"OutputBucketName": "b"}, {}, {}, MACHINE)
    execution = canary_plan(view, "p").execution()
    params = execution["instance_parameters"]
    assert (params["InstanceType"], params["ImageId"]) == (doctor.CANARY_TYPE, doctor.CANARY_IMAGE)
    assert params["ImageId"].endswith("-arm64")
    assert execution["run_options"]["ii_terminate_instance"] is True
