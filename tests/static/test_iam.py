"""Least privilege: each function gets the calls its code makes, scoped to this stack."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from fnmatch import fnmatchcase
from importlib import resources as package_files
from typing import Any

import pytest

MUTATING_EC2 = (
    "ec2:RunInstances",
    "ec2:StopInstances",
    "ec2:TerminateInstances",
    "ec2:DetachVolume",
    "ec2:DeleteVolume",
    "ec2:CreateTags",
)
WORKFLOW_FUNCTIONS = {
    "ClaimFunction",
    "ResolverFunction",
    "InputsFunction",
    "RoomFunction",
    "StarterFunction",
    "ReadinessFunction",
    "CommanderFunction",
    "PollerFunction",
    "WaiterFunction",
    "CheckerFunction",
    "StopperFunction",
}
STACK_TAG = {"Ref": "AWS::StackName"}


def walk(node: Any) -> Iterator[Any]:
    """The node and everything inside it, depth first."""
    yield node
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        for child in node:
            yield from walk(child)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allow_statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every Allow statement, inline in SAM Policies or in an IAM resource.

    Not a KMS key's own policy: there Resource "*" means that key, and its
    principals are checked by test_notification_key_policy. Not a trust policy
    either: a statement with a Principal says who may assume a role, it grants nothing.
    """
    if isinstance(node, dict) and node.get("Type") == "AWS::KMS::Key":
        return
    if (
        isinstance(node, dict)
        and "Action" in node
        and node.get("Effect") == "Allow"
        and "Principal" not in node
    ):
        yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from allow_statements(child)


def grants(statement: dict[str, Any], action: str) -> bool:
    return any(fnmatchcase(action.lower(), a.lower()) for a in as_list(statement["Action"]))


@functools.cache
def iam_reference() -> dict[str, Any]:
    """IAM's actions and their resource types, as cfn-lint ships them for its own checks."""
    spec = package_files.files("cfnlint.data.AdditionalSpecs").joinpath("Policies.json")
    return dict(json.loads(spec.read_text(encoding="utf-8")))


def scoped_resources(action: str) -> set[str]:
    """Resource types IAM knows for `service:Action` (empty: only Resource "*" works)."""
    service, name = action.lower().split(":", 1)
    return set(iam_reference()[service]["Actions"][name].get("Resources", []))


def test_no_full_access_managed_policy(template: dict[str, Any]) -> None:
    full = [v for v in walk(template) if isinstance(v, str) and "FullAccess" in v]
    assert not full, f"managed FullAccess policies: {full}"


def test_no_mutating_ec2_action_on_resource_star(template: dict[str, Any]) -> None:
    for statement in allow_statements(template["Resources"]):
        if "*" in as_list(statement["Resource"]):
            mutating = [a for a in MUTATING_EC2 if grants(statement, a)]
            assert not mutating, f"{mutating} on Resource '*': {statement.get('Sid')}"


def test_resource_star_only_where_iam_has_no_resource_types(template: dict[str, Any]) -> None:
    for statement in allow_statements(template["Resources"]):
        if "*" not in as_list(statement["Resource"]):
            continue
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action} on Resource '*'"
            assert not scoped_resources(action), f"{action} can be scoped, not '*'"


def test_state_machine_invokes_only_the_workflow_functions(resources: dict[str, Any]) -> None:
    policies = resources["AmirunStateMachine"]["Properties"]["Policies"]
    invoked = [
        p["LambdaInvokePolicy"]["FunctionName"]["Ref"]
        for p in policies
        if "LambdaInvokePolicy" in p
    ]
    assert sorted(invoked) == sorted(WORKFLOW_FUNCTIONS)
    # Nothing else in its policies names a resource of this stack.
    referenced = {
        item["Ref"] if "Ref" in item else item["Fn::GetAtt"][0]
        for item in walk(policies)
        if isinstance(item, dict) and ("Ref" in item or "Fn::GetAtt" in item)
    }
    assert referenced == WORKFLOW_FUNCTIONS
    assert not any(grants(s, "lambda:InvokeFunction") for s in allow_statements(policies))


def _policies(resources: dict[str, Any], function: str) -> list[dict[str, Any]]:
    return list(allow_statements(resources[function]["Properties"]["Policies"]))


# (action, resource type it touches, condition that scopes it, value).
SCOPED = [
    ("ec2:RunInstances", ":instance/", "aws:RequestTag/amirun:stack", STACK_TAG),
    ("ec2:RunInstances", ":volume/", "aws:RequestTag/amirun:stack", STACK_TAG),
    ("ec2:CreateTags", "", "ec2:CreateAction", "RunInstances"),
    ("iam:PassRole", "", "iam:PassedToService", "ec2.amazonaws.com"),
    ("ssm:SendCommand", ":instance/", "ssm:resourceTag/amirun:stack", STACK_TAG),
    ("ec2:StopInstances", "", "aws:ResourceTag/amirun:stack", STACK_TAG),
    ("ec2:TerminateInstances", "", "aws:ResourceTag/amirun:stack", STACK_TAG),
    ("ec2:DetachVolume", "", "aws:ResourceTag/amirun:stack", STACK_TAG),
    ("ec2:DeleteVolume", "", "aws:ResourceTag/amirun:stack", STACK_TAG),
]


@pytest.mark.parametrize(("action", "resource_type", "key", "value"), SCOPED)
def test_actions_on_our_resources_are_scoped(
    resources: dict[str, Any], action: str, resource_type: str, key: str, value: Any
) -> None:
    checked = 0
    for function in (k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"):
        for statement in _policies(resources, function):
            if not grants(statement, action):
                continue
            arns = json.dumps(statement["Resource"])
            if resource_type not in arns:
                continue
            checked += 1
            scope = statement.get("Condition", {}).get("StringEquals", {}).get(key)
            assert scope == value, f"{function} {statement.get('Sid')}: {action} without {key}"
    assert checked, f"no statement grants {action} on {resource_type or 'anything'}"


# What each handler calls (see layers/core/amirun_core): nothing more, nothing less.
CALLS = {
    "ClaimFunction": {"dynamodb:PutItem", "dynamodb:GetItem"},
    "ResolverFunction": set(),
    "InputsFunction": {"s3:GetObject", "s3:ListBucket"},
    "RoomFunction": {"ec2:DescribeInstanceTypes", "dynamodb:GetItem", "dynamodb:UpdateItem"},
    "StarterFunction": {
        "dynamodb:UpdateItem",
        "ec2:RunInstances",
        "ec2:CreateTags",
        "ec2:DescribeInstances",
        "ec2:DescribeInstanceTypes",
        "ec2:DescribeImages",
        "ec2:DescribeSpotPriceHistory",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        # EC2 resolves an ImageId resolve:ssm:<name> with the caller's rights.
        "ssm:GetParameters",
    },
    "ReadinessFunction": {"ec2:DescribeInstances", "ssm:DescribeInstanceInformation"},
    "CommanderFunction": {"ssm:SendCommand", "ssm:ListCommands", "s3:PutObject"},
    "PollerFunction": {
        "ssm:GetCommandInvocation",
        "ssm:CancelCommand",
        "ec2:DescribeInstances",
        "s3:GetObject",
    },
    # The poller's look, the token's item, and the end of the wait.
    "WaiterFunction": {
        "ssm:GetCommandInvocation",
        "ssm:CancelCommand",
        "ec2:DescribeInstances",
        "s3:GetObject",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    },
    "SettlerFunction": {
        "ssm:GetCommandInvocation",
        "ssm:CancelCommand",
        "ec2:DescribeInstances",
        "s3:GetObject",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    },
    "CheckerFunction": {"s3:GetObject", "s3:ListBucket"},
    "StopperFunction": {
        "ec2:DescribeInstances",
        "ec2:DescribeVolumes",
        "ec2:StopInstances",
        "ec2:TerminateInstances",
        "ec2:DetachVolume",
        "ec2:DeleteVolume",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "cloudwatch:GetMetricStatistics",
    },
    "SweeperFunction": {"ec2:DescribeInstances", "ec2:StopInstances", "ec2:TerminateInstances"},
    "ReconcilerFunction": {
        "ec2:DescribeInstances",
        "states:DescribeExecution",
        "ec2:StopInstances",
        "ec2:TerminateInstances",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    },
    "NotifierFunction": {
        "ec2:DescribeInstances",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
    # Reads the slot's attempts to total a failed run, writes its end.
    "RecorderFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "ReporterFunction": {
        "scheduler:ListSchedules",
        "scheduler:GetSchedule",
        "dynamodb:Query",
        "s3:PutObject",
        "sns:Publish",
        "kms:GenerateDataKey",
        "kms:Decrypt",
    },
}


@pytest.mark.parametrize(("function", "calls"), CALLS.items())
def test_each_function_gets_its_calls(
    resources: dict[str, Any], function: str, calls: set[str]
) -> None:
    granted = {a for s in _policies(resources, function) for a in as_list(s["Action"])}
    assert granted == calls
    # SAM policy templates and managed policies would grant more than we can see here.
    assert all(set(p) == {"Statement"} for p in resources[function]["Properties"]["Policies"])


@pytest.mark.parametrize("function", ["WaiterFunction", "SettlerFunction"])
def test_the_token_table_is_the_only_table_reached(
    resources: dict[str, Any], function: str
) -> None:
    for statement in _policies(resources, function):
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
            assert all(a.startswith("dynamodb:") for a in as_list(statement["Action"]))
            assert statement["Resource"] == {"Fn::GetAtt": ["CommandWaitTable", "Arn"]}


def _reaching(resources: dict[str, Any], table: str) -> dict[str, set[str]]:
    """{function: its DynamoDB actions on `table`}; any other resource fails the test."""
    reaching: dict[str, set[str]] = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for statement in _policies(resources, name):
            actions = [a for a in as_list(statement["Action"]) if a.startswith("dynamodb:")]
            if not actions:
                continue
            assert len(actions) == len(as_list(statement["Action"])), name
            reached = statement["Resource"]
            if reached == {"Fn::Sub": f"${{{table}.Arn}}/index/by_day"}:
                assert actions == ["dynamodb:Query"], name  # the index: reading a night
            elif reached != {"Fn::GetAtt": [table, "Arn"]}:
                # Another table, or another table's index: never anything wider.
                assert "Fn::GetAtt" in reached or "/index/" in reached["Fn::Sub"], name
                continue
            reaching.setdefault(name, set()).update(actions)
    return reaching


def test_only_the_waiter_and_the_settler_reach_the_token_table(
    resources: dict[str, Any],
) -> None:
    assert set(_reaching(resources, "CommandWaitTable")) == {"WaiterFunction", "SettlerFunction"}


def test_the_ledger_is_written_by_the_steps_that_know_the_facts(
    resources: dict[str, Any],
) -> None:
    """The slot facts, and the vCPU counters (claimed, released, freed by the reconciler)."""
    assert _reaching(resources, "RunLedgerTable") == {
        "ClaimFunction": {"dynamodb:GetItem", "dynamodb:PutItem"},
        "RoomFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "StarterFunction": {"dynamodb:UpdateItem"},
        "StopperFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ReconcilerFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "RecorderFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
        "ReporterFunction": {"dynamodb:Query"},
    }


def test_the_claim_reaches_only_the_ledger_and_only_to_claim(resources: dict[str, Any]) -> None:
    """A conditional PutItem claims the slot; GetItem reads who holds it. Nothing else:
    no update, no delete, no scan.
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/WorkingWithItems.html#WorkingWithItems.ConditionalUpdate
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
    """
    (statement,) = _policies(resources, "ClaimFunction")
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert statement["Resource"] == {"Fn::GetAtt": ["RunLedgerTable", "Arn"]}
    env = resources["ClaimFunction"]["Properties"]["Environment"]["Variables"]
    assert env == {"RUN_LEDGER_TABLE": {"Ref": "RunLedgerTable"}}


OUTPUT_BUCKET_ARN = {
    "Fn::Sub": [
        "arn:${AWS::Partition}:s3:::${Bucket}",
        {
            "Bucket": {
                "Fn::If": [
                    "CreateOutputBucket",
                    {"Ref": "OutputBucket"},
                    {"Ref": "OutputBucketName"},
                ]
            }
        },
    ]
}
RUN_OUTPUT_ARN = {
    "Fn::Sub": [
        "arn:${AWS::Partition}:s3:::${Bucket}/runs/*",
        OUTPUT_BUCKET_ARN["Fn::Sub"][1],
    ]
}


def _granting(statements: list[dict[str, Any]], action: str) -> list[Any]:
    return [s["Resource"] for s in statements if grants(s, action)]


def test_send_command_with_an_output_bucket_may_name_the_bucket(resources: dict[str, Any]) -> None:
    """SendCommand with OutputS3BucketName is authorized against the bucket as well."""
    assert OUTPUT_BUCKET_ARN in _granting(
        _policies(resources, "CommanderFunction"), "ssm:SendCommand"
    )


@pytest.mark.parametrize("function", ["PollerFunction", "WaiterFunction", "SettlerFunction"])
def test_the_lookers_read_exactly_the_run_output(resources: dict[str, Any], function: str) -> None:
    """The ranged GET of a long output's end: s3:GetObject on runs/* of the output bucket."""
    assert _granting(_policies(resources, function), "s3:GetObject") == [RUN_OUTPUT_ARN]


def test_the_instance_may_read_the_output_buckets_encryption(resources: dict[str, Any]) -> None:
    statements = list(allow_statements(resources["InstanceOutputPolicy"]["Properties"]))
    assert _granting(statements, "s3:GetEncryptionConfiguration") == [OUTPUT_BUCKET_ARN]
    assert _granting(statements, "s3:PutObject") == [RUN_OUTPUT_ARN]


def test_the_reconciler_reads_only_this_state_machines_executions(
    resources: dict[str, Any],
) -> None:
    (arn,) = _granting(_policies(resources, "ReconcilerFunction"), "states:DescribeExecution")
    assert arn["Fn::Sub"].endswith(":execution:${AmirunStateMachine.Name}:*")


def test_the_notifier_publishes_only_to_the_stacks_topic(resources: dict[str, Any]) -> None:
    statements = _policies(resources, "NotifierFunction")
    (publish,) = [s for s in statements if grants(s, "sns:Publish")]
    assert publish["Resource"] == {"Ref": "NotificationTopic"}
    (encrypt,) = [s for s in statements if grants(s, "kms:GenerateDataKey")]
    assert encrypt["Resource"] == {"Fn::GetAtt": ["NotificationKey", "Arn"]}


def test_notification_key_policy(resources: dict[str, Any]) -> None:
    """The account administers the key; CloudWatch (alarms) may only encrypt, for it."""
    key = resources["NotificationKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    principals = [s["Principal"] for s in statements]
    assert principals == [
        {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}},
        {"Service": "cloudwatch.amazonaws.com"},
    ]
    alarms = statements[1]
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_starter_may_resolve_public_and_the_stacks_image_parameters(
    resources: dict[str, Any], template: dict[str, Any]
) -> None:
    """RunInstances with `ImageId: resolve:ssm:<name>` needs ssm:GetParameters for the
    caller: AWS's public parameters (no account in their ARN) and the user's own.
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-ec2-aliases.html
    https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-public-parameters.html
    """
    (statement,) = [
        s for s in _policies(resources, "StarterFunction") if grants(s, "ssm:GetParameters")
    ]
    public, own = statement["Resource"]
    assert public == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::parameter/aws/service/*"
    }
    condition, granted, otherwise = own["Fn::If"]
    assert granted == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
        ":parameter/${ImageParameterPattern}"
    }
    assert otherwise == {"Ref": "AWS::NoValue"}
    # None of the user's parameters by default.
    assert template["Parameters"]["ImageParameterPattern"]["Default"] == ""
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "ImageParameterPattern"}, ""]}]
    }


@pytest.mark.parametrize(
    ("path", "role", "passes"),
    [
        ("/", "arn:aws:iam::123456789012:role/amirun-x", True),
        ("/", "arn:aws:iam::123456789012:role/ops/amirun-x", False),
        ("/ops/", "arn:aws:iam::123456789012:role/ops/amirun-x", True),
        ("/*/", "arn:aws:iam::123456789012:role/ops/team/amirun-x", True),
    ],
)
def test_pass_role_matches_the_roles_path(
    resources: dict[str, Any], template: dict[str, Any], path: str, role: str, passes: bool
) -> None:
    """A role's ARN carries its path (`role/ops/amirun-x`), and iam:PassRole matches
    the ARN: the path is a stack parameter (default /, any path with /*/).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns
    """
    import fnmatch
    import re

    from amirun.project import StackContext

    spec = template["Parameters"]["InstanceRolePath"]
    assert spec["Default"] == "/"
    assert re.fullmatch(spec["AllowedPattern"], path)
    (statement,) = [s for s in _policies(resources, "StarterFunction") if grants(s, "iam:PassRole")]
    context = StackContext.of(
        template,
        region="us-east-1",
        account="123456789012",
        stack_name="amirun",
        parameters={"InstanceRolePath": path},
    )
    assert fnmatch.fnmatchcase(role, context.resolve(statement["Resource"])) is passes


def test_the_commander_writes_exactly_the_run_output_and_the_record_beside_outputs(
    resources: dict[str, Any],
) -> None:
    """Two writes and no more: the command's record under runs/* of the output bucket, and
    the execution JSON the original wrote under the output prefix, in the buckets of
    CheckedBucketPattern, at those two key shapes only (IAM's `*` spans `/`, so
    `*/datastream-metadata/execution.json` is any prefix, never any other key)."""
    writes = _granting(_policies(resources, "CommanderFunction"), "s3:PutObject")
    flat = [arn for resource in writes for arn in as_list(resource)]
    buckets = "arn:${AWS::Partition}:s3:::${CheckedBucketPattern}"
    assert flat == [
        RUN_OUTPUT_ARN,
        {"Fn::Sub": f"{buckets}/*/datastream-metadata/execution.json"},
        {"Fn::Sub": f"{buckets}/*/metadata/execution.json"},
    ]
    samples = {
        "nextgen/outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_10L"
        "/datastream-metadata/execution.json": True,
        "nextgen/forcings/v2.2_hydrofabric/ngen.20260209/forcing_short_range/06"
        "/metadata/execution.json": True,
        "nextgen/outputs/cfe_nom/ngen.20260209/merkdir.file": False,
        "nextgen/execution.json": False,
        "nextgen/metadata/execution.json": False,
    }
    patterns = [f["Fn::Sub"].replace(buckets, "*") for f in flat[1:]]
    for key, allowed in samples.items():
        assert any(fnmatchcase(key, p) for p in patterns) is allowed, key
