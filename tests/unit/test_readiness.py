"""CheckInstanceReady: one look at EC2 and SSM, never a wait inside the Lambda.

moto does not implement ssm.describe_instance_information: `agent_status`
answers it through a botocore `before-call` hook.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import agent_status, launch, make_request, make_state, with_records

from amirun_core import timing
from amirun_core.errors import InstanceLost, InstanceNotReady
from amirun_core.launch import check_readiness
from amirun_core.state import WorkflowState


def launched(ec2: Any) -> WorkflowState:
    state, _ = launch(ec2, make_state(make_request(ready_timeout_s=600)))
    return state


def test_a_running_instance_whose_agent_is_not_registered_is_not_ready(ec2: Any, ssm: Any) -> None:
    state = launched(ec2)
    calls = agent_status(ssm, None)

    record = check_readiness(ec2, ssm, state)

    assert state.instance is not None
    assert calls[0]["Filters"] == [{"Key": "InstanceIds", "Values": [state.instance.instance_id]}]
    assert record.state == "running"
    assert record.agent == "not registered"
    assert record.ready is False
    assert record.wait_seconds == timing.wait_seconds(timing.ready_poll_interval(600, 1))
    assert record.wait_seconds >= 1


@pytest.mark.parametrize("ping_status", ["ConnectionLost", "Inactive"])
def test_an_agent_that_is_not_online_is_not_ready(ec2: Any, ssm: Any, ping_status: str) -> None:
    state = launched(ec2)
    agent_status(ssm, ping_status)

    record = check_readiness(ec2, ssm, state)

    assert (record.agent, record.ready) == (ping_status, False)


def test_an_online_agent_on_a_running_instance_is_ready(ec2: Any, ssm: Any) -> None:
    state = launched(ec2)
    agent_status(ssm, "Online")

    record = check_readiness(ec2, ssm, state)

    assert record.ready is True
    assert (record.state, record.agent) == ("running", "Online")
    assert state.instance is not None
    assert record.instance_id == state.instance.instance_id
    assert record.client_token == state.instance.client_token


def test_not_ready_past_the_deadline_is_instance_not_ready(ec2: Any, ssm: Any) -> None:
    state = launched(ec2)
    assert state.instance is not None
    late = state.instance.model_copy(update={"ready_deadline": timing.now() - timedelta(seconds=1)})
    agent_status(ssm, None)

    with pytest.raises(InstanceNotReady) as caught:
        check_readiness(ec2, ssm, with_records(state, instance=late))

    assert state.instance.instance_id in str(caught.value)
    assert "AmazonSSMManagedInstanceCore" in str(caught.value)  # says what to check


def test_ready_at_the_last_look_is_still_ready(ec2: Any, ssm: Any) -> None:
    state = launched(ec2)
    assert state.instance is not None
    late = state.instance.model_copy(update={"ready_deadline": timing.now() - timedelta(seconds=1)})
    agent_status(ssm, "Online")

    assert check_readiness(ec2, ssm, with_records(state, instance=late)).ready is True


@pytest.mark.parametrize("gone", ["terminated", "stopped"])
def test_an_instance_that_went_away_is_lost(ec2: Any, ssm: Any, gone: str) -> None:
    state = launched(ec2)
    assert state.instance is not None
    instance_id = state.instance.instance_id
    if gone == "terminated":
        ec2.terminate_instances(InstanceIds=[instance_id])
    else:
        ec2.stop_instances(InstanceIds=[instance_id])
    calls = agent_status(ssm, "Online")

    with pytest.raises(InstanceLost) as caught:
        check_readiness(ec2, ssm, state)

    assert instance_id in str(caught.value)
    assert gone in str(caught.value)
    assert calls == []  # no need to ask SSM about a lost instance


def test_no_instance_in_the_state_is_not_ready(ec2: Any, ssm: Any) -> None:
    with pytest.raises(InstanceNotReady):
        check_readiness(ec2, ssm, make_state())
