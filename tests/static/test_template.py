"""The template declares what the runtime, the CLI and the rehearsal runner rely on."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from .conftest import FUNCTIONS, ROOT

OUTPUT_BUCKET = {
    "Fn::If": ["CreateOutputBucket", {"Ref": "OutputBucket"}, {"Ref": "OutputBucketName"}]
}


def test_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["PowertoolsLayerArn"]["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert params["ReconcileSchedule"]["Default"] == "rate(30 minutes)"
    assert params["OutputBucketName"]["Default"] == ""
    assert params["CheckedBucketPattern"]["Default"] == "*"
    assert params["LogRetentionDays"]["Type"] == "Number"
    assert params["LogRetentionDays"]["Default"] == 30
    assert params["LogLevel"]["Default"] == "INFO"
    assert "InstanceRoleNamePattern" in params
    assert template["Conditions"]["CreateOutputBucket"] == {
        "Fn::Equals": [{"Ref": "OutputBucketName"}, ""]
    }


def test_globals(template: dict[str, Any]) -> None:
    function = template["Globals"]["Function"]
    assert function["Runtime"] == "python3.13"
    # arm64 on AWS; local builds and `sam local invoke` give the machine's.
    assert function["Architectures"] == [{"Ref": "Architecture"}]
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert function["Timeout"] == 30
    assert function["MemorySize"] == 256
    assert function["Tracing"] == "Active"
    assert function["LoggingConfig"]["LogFormat"] == "JSON"
    core, powertools = function["Layers"]
    assert core == {"Ref": "CoreLayer"}
    assert powertools == {"Ref": "PowertoolsLayerArn"}
    env = function["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == env["POWERTOOLS_METRICS_NAMESPACE"] == "amirun"
    assert env["POWERTOOLS_LOG_LEVEL"] == env["LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_the_endpoint_variable_is_declared_for_local_invokes_only(template: dict[str, Any]) -> None:
    """`sam local invoke --env-vars` sets only variables the template declares, so
    AWS_ENDPOINT_URL is declared; on AWS the account is never 123456789012 (the one
    the SAM CLI and the emulator report), and AWS::NoValue removes the variable:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/pseudo-parameter-reference.html
    """
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["AWS_ENDPOINT_URL"] == {"Fn::If": ["OnLocalEmulator", "", {"Ref": "AWS::NoValue"}]}
    assert template["Conditions"]["OnLocalEmulator"] == {
        "Fn::Equals": [{"Ref": "AWS::AccountId"}, "123456789012"]
    }


def test_core_layer(resources: dict[str, Any]) -> None:
    layer = resources["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer["Properties"]["ContentUri"] == "layers/core/"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Metadata"] == {
        "BuildMethod": "python3.13",
        "BuildArchitecture": {"Ref": "Architecture"},
    }
    assert (ROOT / "layers" / "core" / "amirun_core" / "__init__.py").is_file()


def test_powertools_layer_is_the_public_parameter_of_the_pinned_version(
    template: dict[str, Any],
) -> None:
    """The layer's ARN comes from the SSM parameter Powertools publishes for the very
    version the code is tested with (requirements/run.txt)."""
    pins = (ROOT / "requirements" / "run.txt").read_text(encoding="utf-8")
    pinned = re.search(r"^aws-lambda-powertools(?:\[[^\]]*\])?==(\S+)", pins, re.M)
    assert pinned, "aws-lambda-powertools is not pinned in requirements/run.txt"
    default = template["Parameters"]["PowertoolsLayerArn"]["Default"]
    assert default == f"/aws/service/powertools/python/arm64/python3.13/{pinned[1]}"


def test_the_reconciler_runs_on_its_schedule(resources: dict[str, Any]) -> None:
    props = resources["ReconcilerFunction"]["Properties"]
    (event,) = props["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Ref": "ReconcileSchedule"}
    assert props["Environment"]["Variables"] == {
        "STACK_NAME": {"Ref": "AWS::StackName"},
        "RUN_LEDGER_TABLE": {"Ref": "RunLedgerTable"},
        "VCPU_LIMIT": {"Ref": "VcpuLimit"},
        "BLOCK_VCPU_LIMITS": {"Ref": "BlockVcpuLimits"},
    }


def test_exactly_these_functions(resources: dict[str, Any]) -> None:
    functions = {k for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    assert functions == set(FUNCTIONS)


@pytest.mark.parametrize(("logical_id", "step"), FUNCTIONS.items())
def test_function_code_and_log_group(resources: dict[str, Any], logical_id: str, step: str) -> None:
    props = resources[logical_id]["Properties"]
    assert props["CodeUri"] == f"functions/{step}/"
    assert props["Handler"] == "app.lambda_handler"
    assert (ROOT / "functions" / step / "app.py").is_file()
    # Its own log group, named after the function, kept LogRetentionDays.
    assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{step}"}
    group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    group = resources[group_id]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["LogGroupName"] == {
        "Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{step}"
    }
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_function_environment(resources: dict[str, Any]) -> None:
    def env(logical_id: str) -> dict[str, Any]:
        return dict(resources[logical_id]["Properties"]["Environment"]["Variables"])

    assert env("StarterFunction") == {
        "STACK_NAME": {"Ref": "AWS::StackName"},
        # Named in the refusal when IAM will not pass the instance's role.
        "INSTANCE_ROLE_NAME_PATTERN": {"Ref": "InstanceRoleNamePattern"},
        "RUN_LEDGER_TABLE": {"Ref": "RunLedgerTable"},
    }
    assert env("StopperFunction") == {
        "RUN_LEDGER_TABLE": {"Ref": "RunLedgerTable"},
        # Which counters the released vCPUs go back to.
        "VCPU_LIMIT": {"Ref": "VcpuLimit"},
        "BLOCK_VCPU_LIMITS": {"Ref": "BlockVcpuLimits"},
    }
    assert env("RecorderFunction") == {"RUN_LEDGER_TABLE": {"Ref": "RunLedgerTable"}}
    assert env("CommanderFunction") == {"OUTPUT_BUCKET": OUTPUT_BUCKET}


def test_output_bucket_is_private_encrypted_and_expires(resources: dict[str, Any]) -> None:
    bucket = resources["OutputBucket"]
    assert bucket["Condition"] == "CreateOutputBucket"
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    assert any(rule["Status"] == "Enabled" for rule in props["LifecycleConfiguration"]["Rules"])


def test_sweeper_hears_every_abnormal_end(resources: dict[str, Any]) -> None:
    (event,) = resources["SweeperFunction"]["Properties"]["Events"].values()
    assert event["Type"] == "EventBridgeRule"
    assert event["Properties"]["Pattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {
            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
            "stateMachineArn": [{"Ref": "AmirunStateMachine"}],
        },
    }


ENDED = {
    "source": ["aws.states"],
    "detail-type": ["Step Functions Execution Status Change"],
}


def test_notifier_hears_abnormal_ends_and_successes_if_asked(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    notifier = resources["NotifierFunction"]["Properties"]
    (event,) = notifier["Events"].values()
    pattern = event["Properties"]["Pattern"]
    assert event["Type"] == "EventBridgeRule"
    assert {k: v for k, v in pattern.items() if k != "detail"} == ENDED
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": "AmirunStateMachine"}]
    condition, with_success, without = pattern["detail"]["status"]["Fn::If"]
    assert set(with_success) == {"FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED"}
    assert set(without) == {"FAILED", "TIMED_OUT", "ABORTED"}
    assert template["Conditions"][condition] == {"Fn::Equals": [{"Ref": "NotifyOnSuccess"}, "true"]}
    assert template["Parameters"]["NotifyOnSuccess"]["Default"] == "false"
    assert notifier["Environment"]["Variables"] == {"TOPIC_ARN": {"Ref": "NotificationTopic"}}
    # Messages that could not be published are kept, as the sweeper's failures are.
    on_failure = notifier["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["SweeperFailureQueue", "Arn"]}


def test_notification_topic_is_encrypted_and_email_is_optional(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    topic = resources["NotificationTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "NotificationKey"}
    subscription = resources["NotificationEmailSubscription"]
    assert subscription["Condition"] == "SubscribeEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "NotificationEmail"}
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    assert template["Outputs"]["NotificationTopicArn"]["Value"] == {"Ref": "NotificationTopic"}


@pytest.mark.parametrize(
    ("alarm", "metric"),
    [
        ("FailedExecutionsAlarm", "ExecutionsFailed"),
        ("TimedOutExecutionsAlarm", "ExecutionsTimedOut"),
    ],
)
def test_alarms_on_failed_and_timed_out_executions(
    resources: dict[str, Any], alarm: str, metric: str
) -> None:
    props = resources[alarm]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/States", metric)
    assert props["Dimensions"] == [
        {"Name": "StateMachineArn", "Value": {"Ref": "AmirunStateMachine"}}
    ]
    assert props["Statistic"] == "Sum"
    assert props["Threshold"] == {"Ref": "FailureAlarmThreshold"}
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # No executions is good news, not missing data.
    assert props["TreatMissingData"] == "notBreaching"
    assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_state_machine(template: dict[str, Any], resources: dict[str, Any]) -> None:
    template_parameters = template["Parameters"]
    template_conditions = template["Conditions"]
    machine = resources["AmirunStateMachine"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    props = machine["Properties"]
    assert props["Type"] == "STANDARD"
    assert (ROOT / props["DefinitionUri"]).is_file()
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    # Execution data carries the commands, which may hold secrets: off unless asked for.
    assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
    assert template_parameters["StateMachineLogLevel"]["Default"] == "ERROR"
    assert logging["IncludeExecutionData"] == {"Fn::If": ["LogExecutionData", True, False]}
    assert template_parameters["StateMachineLogExecutionData"]["Default"] == "false"
    assert template_conditions["LogExecutionData"] == {
        "Fn::Equals": [{"Ref": "StateMachineLogExecutionData"}, "true"]
    }
    (destination,) = logging["Destinations"]
    group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert resources[group_id]["Type"] == "AWS::Logs::LogGroup"
    # Step Functions sets up the log delivery with the execution role.
    actions = {
        action
        for policy in props["Policies"]
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        for action in statement["Action"]
    }
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= actions


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    # The CLI reads these two keys.
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "AmirunStateMachine"}
    assert outputs["OutputBucketName"]["Value"] == OUTPUT_BUCKET
    assert outputs["StateMachineName"]["Value"] == {"Fn::GetAtt": ["AmirunStateMachine", "Name"]}
    assert "${AmirunStateMachine}" in outputs["StateMachineConsoleUrl"]["Value"]["Fn::Sub"]
    assert {"StateMachineLogGroupName", "FunctionLogGroupNames"} <= outputs.keys()


def test_samconfig_environments(template: dict[str, Any]) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    assert config["default"]["build"]["parameters"] == {"cached": True, "parallel": True}
    assert config["default"]["validate"]["parameters"] == {"lint": True}
    stacks = set()
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert deploy["confirm_changeset"] is True
        stacks.add(deploy["stack_name"])
        # Every override names a template parameter (a typo would be ignored silently).
        names = {item.split("=", 1)[0] for item in deploy["parameter_overrides"].split()}
        assert names <= template["Parameters"].keys()
    assert len(stacks) == 3


# --- The command's end as an event ------------------------------------------------
def test_the_token_table_is_on_demand_keyed_by_instance_with_ttl(
    resources: dict[str, Any],
) -> None:
    table = resources["CommandWaitTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    assert table["DeletionPolicy"] == "Delete"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    # Both end events name the instance: it is the key the handler looks up.
    assert props["KeySchema"] == [{"AttributeName": "instance_id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "instance_id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    for function in ("WaiterFunction", "SettlerFunction"):
        env = resources[function]["Properties"]["Environment"]["Variables"]
        assert env["COMMAND_WAIT_TABLE"] == {"Ref": "CommandWaitTable"}


def test_the_item_the_code_writes_fits_the_table(resources: dict[str, Any]) -> None:
    """The attribute names the code uses are the table's key and TTL."""
    source = (ROOT / "layers/core/amirun_core/completion.py").read_text(encoding="utf-8")
    props = resources["CommandWaitTable"]["Properties"]
    assert f'"{props["KeySchema"][0]["AttributeName"]}": {{"S":' in source
    assert f'"{props["TimeToLiveSpecification"]["AttributeName"]}": {{"N":' in source


def test_the_settler_hears_command_ends_and_lost_instances(resources: dict[str, Any]) -> None:
    """Every invocation status but the in-flight ones, from this account only.

    AWS documents terminal statuses beyond the API's enum (Delivery Timed Out,
    Execution Timed Out, Undeliverable, Terminated, Invalid Platform, Access
    Denied) and does not pin the strings the event carries, so the rule excludes
    the in-flight ones with `anything-but` instead of listing ends:
    https://docs.aws.amazon.com/systems-manager/latest/userguide/monitor-commands.html
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
    The `account` field is in every event:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html
    """
    from amirun_core.command import DOCUMENT
    from amirun_core.completion import (
        EC2_DETAIL_TYPE,
        GONE_STATES,
        IN_FLIGHT_STATUSES,
        SSM_DETAIL_TYPE,
    )

    settler = resources["SettlerFunction"]["Properties"]
    patterns = {
        name: event["Properties"]["Pattern"]
        for name, event in settler["Events"].items()
        if event["Type"] == "EventBridgeRule"
    }
    assert set(patterns) == {"CommandEnded", "InstanceGone"}
    ssm = patterns["CommandEnded"]
    assert ssm["source"] == ["aws.ssm"]
    assert ssm["detail-type"] == [SSM_DETAIL_TYPE]
    assert ssm["detail"]["status"] == [{"anything-but": list(IN_FLIGHT_STATUSES)}]
    assert ssm["account"] == [{"Ref": "AWS::AccountId"}]
    assert ssm["detail"]["document-name"] == [DOCUMENT]
    ec2 = patterns["InstanceGone"]
    assert ec2["source"] == ["aws.ec2"]
    assert ec2["detail-type"] == [EC2_DETAIL_TYPE]
    assert ec2["detail"]["state"] == list(GONE_STATES)
    assert ec2["account"] == [{"Ref": "AWS::AccountId"}]
    # A lost event costs only time (the safety look), so no queue keeps failures.
    assert settler["EventInvokeConfig"]["MaximumRetryAttempts"] == 2


# --- The slot ledger ------------------------------------------------------------------
def test_the_ledger_is_kept_keyed_by_slot_with_a_day_index(resources: dict[str, Any]) -> None:
    """A night is one Query on `by_day`; the ledger outlives a stack replacement.

    Global secondary index keys must be attributes of the table's definitions:
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-dynamodb-table.html
    """
    from amirun_core.ledger import DAY_INDEX

    table = resources["RunLedgerTable"]
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == DAY_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "day", "KeyType": "HASH"},
        {"AttributeName": "pk", "KeyType": "RANGE"},
    ]
    defined = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert defined == {"pk": "S", "day": "S"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    source = (ROOT / "layers/core/amirun_core/ledger.py").read_text(encoding="utf-8")
    assert '"expires_at":' in source
    assert '"day":' in source
