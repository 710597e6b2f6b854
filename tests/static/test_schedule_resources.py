"""The template owns what schedules need: their group, the role Scheduler assumes, a DLQ."""

from __future__ import annotations

from typing import Any

from amirun.commands.schedules import DEAD_LETTER_OUTPUT, GROUP_OUTPUT, ROLE_OUTPUT

from .test_iam import allow_statements, as_list


def test_schedule_group(resources: dict[str, Any]) -> None:
    assert resources["ScheduleGroup"]["Type"] == "AWS::Scheduler::ScheduleGroup"


def test_scheduler_role_is_assumed_only_by_this_stacks_schedules(
    resources: dict[str, Any],
) -> None:
    """Confused deputy: Scheduler presents the schedule *group's* ARN as aws:SourceArn
    (`arn:<partition>:scheduler:<region>:<account>:schedule-group/<group>`), never a
    schedule's; a condition naming schedules matches nothing and no run would start.
    https://docs.aws.amazon.com/scheduler/latest/UserGuide/cross-service-confused-deputy-prevention.html
    """
    role = resources["SchedulerRole"]
    assert role["Type"] == "AWS::IAM::Role"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert set(trust["Condition"]) == {"StringEquals"}
    condition = trust["Condition"]["StringEquals"]
    assert condition["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert condition["aws:SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}"
        ":schedule-group/${ScheduleGroup}"
    }


def test_scheduler_role_may_start_this_state_machine_and_nothing_else(
    resources: dict[str, Any],
) -> None:
    statements = list(allow_statements(resources["SchedulerRole"]["Properties"]["Policies"]))
    granted = {
        action: statement["Resource"]
        for statement in statements
        for action in as_list(statement["Action"])
    }
    assert granted == {
        "states:StartExecution": {"Ref": "AmirunStateMachine"},
        # How Scheduler hands a failed start to the dead-letter queue.
        "sqs:SendMessage": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]},
    }


def test_dead_letter_queue_and_its_alarm(resources: dict[str, Any]) -> None:
    queue = resources["ScheduleDeadLetterQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"]["SqsManagedSseEnabled"] is True
    assert queue["Properties"]["MessageRetentionPeriod"] == 1_209_600

    alarm = resources["ScheduleDeadLetterAlarm"]["Properties"]
    assert resources["ScheduleDeadLetterAlarm"]["Type"] == "AWS::CloudWatch::Alarm"
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_outputs_that_plan_and_apply_read(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert outputs[GROUP_OUTPUT]["Value"] == {"Ref": "ScheduleGroup"}
    assert outputs[ROLE_OUTPUT]["Value"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert outputs[DEAD_LETTER_OUTPUT]["Value"] == {
        "Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]
    }
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "AmirunStateMachine"}
