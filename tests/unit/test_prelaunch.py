"""Resolve and the input gate: before anything is launched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from unit_helpers import START_TIME, make_request, make_state, with_records

from amirun_core import limits, timing
from amirun_core.errors import InputsMissing, InvalidExecutionInput
from amirun_core.prelaunch import check_inputs, resolve_execution

BUCKET = "amirun-unit-inputs"
FORCING = f"s3://{BUCKET}/forcings/ngen.DAILY/06/forcing.nc"


def test_resolve_validates_the_whole_execution_first() -> None:
    request = make_request()
    request["instance_parameters"]["InstanceTyp"] = "t4g.small"

    with pytest.raises(InvalidExecutionInput, match=r"instance_parameters\.InstanceTyp"):
        resolve_execution(make_state(request))


def test_resolve_uses_the_scheduled_time_when_the_input_has_one() -> None:
    request = make_request() | {
        "schedule": {"name": "qkrig", "scheduled_time": "2025-06-03T01:00:00Z"}
    }

    state = make_state(request)
    resolved = resolve_execution(state)

    assert (resolved.reference, resolved.daily_date) == ("scheduled_time", "20250602")
    assert state.resolved_commands()[0] == "echo run 20250602 > /tmp/result.txt"


def test_resolve_uses_the_start_time_otherwise() -> None:
    resolved = resolve_execution(make_state(make_request()))

    assert resolved.reference_time == START_TIME
    assert (resolved.reference, resolved.daily_date) == ("start_time", "20250531")


def test_a_relaunch_keeps_the_first_resolution() -> None:
    """A state carrying `resolved` is never resolved again, whatever the clock says."""
    first = make_state(make_request())
    kept = with_records(first, resolved=resolve_execution(first).model_dump(mode="json"))
    relaunched = kept.model_copy(
        update={
            "attempt": 2,
            "execution": kept.execution.model_copy(
                update={"start_time": START_TIME + timedelta(days=3)}
            ),
        }
    )

    assert relaunched.resolution().daily_date == "20250531"
    assert relaunched.resolution() == first.resolution()


def gate_state(timeout_s: int = 3600, **fields: Any) -> Any:
    """A state whose Resolve step ran at START_TIME (DAILY = 20250531)."""
    request = make_request(inputs=[FORCING], inputs_timeout_s=timeout_s)
    resolved = resolve_execution(make_state(request)).model_dump(mode="json")
    return make_state(request, resolved=resolved, **fields)


def test_inputs_present_open_the_gate(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="forcings/ngen.20250531/06/forcing.nc", Body=b"f")

    record = check_inputs(s3, gate_state())

    assert (record.ready, record.missing) == (True, [])


def test_late_inputs_keep_the_gate_waiting_until_they_come(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    now = timing.now()
    state = gate_state(execution={"id": "arn:x", "name": "n", "start_time": now})
    wanted = "s3://amirun-unit-inputs/forcings/ngen.20250531/06/forcing.nc"

    first = check_inputs(s3, state)
    s3.put_object(Bucket=BUCKET, Key="forcings/ngen.20250531/06/forcing.nc", Body=b"f")
    second = check_inputs(s3, state)

    assert (first.ready, first.missing) == (False, [wanted])
    assert first.deadline == now + timedelta(seconds=3600)
    assert first.wait_seconds == timing.inputs_poll_interval(3600) == 60
    assert second.ready is True


def test_inputs_never_there_end_in_inputs_missing_at_the_deadline(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    started = timing.now() - timedelta(seconds=601)
    state = gate_state(600, execution={"id": "arn:x", "name": "n", "start_time": started})

    with pytest.raises(InputsMissing) as caught:
        check_inputs(s3, state)

    message = str(caught.value)
    assert "s3://amirun-unit-inputs/forcings/ngen.20250531/06/forcing.nc" in message
    assert "inputs_timeout_s" in message and "no instance was launched" in message


def test_a_missing_bucket_counts_as_a_missing_input(s3: Any) -> None:
    record = check_inputs(
        s3, gate_state(execution={"id": "arn:x", "name": "n", "start_time": timing.now()})
    )

    assert record.ready is False


def test_the_longest_input_wait_keeps_to_its_loop_budget() -> None:
    longest = 86_400
    loops = longest / timing.inputs_poll_interval(longest)

    assert loops <= timing.INPUTS_POLL_BUDGET


def test_the_execution_time_limit_leaves_room_for_the_longest_input_wait() -> None:
    assert limits.largest("inputs_timeout_s") <= limits.INPUT_GATE_MAX_S


# --- ii_check_forcing: the -F file is one more input, with its own wait -----------------------
def forcing_state(started_s_ago: float, **run_options: Any) -> Any:
    request = make_request(ii_check_forcing=True, **run_options)
    request["commands"] = [
        f"datastream -s DAILY -F s3://{BUCKET}/forcings/ngen.DAILY/forcing_short_range/06/"
        "ngen.t06z.VPU_01.nc --FORCING_SOURCE NWM_V3_SHORT_RANGE_06"
    ]
    start = timing.now() - timedelta(seconds=started_s_ago)
    # Resolved at START_TIME (06:00Z, not before cycle 06: DAILY = 20250601); the
    # gate's deadlines count from `start`.
    resolved = resolve_execution(make_state(request)).model_dump(mode="json")
    return make_state(
        request, resolved=resolved, execution={"id": "arn:x", "name": "n", "start_time": start}
    )


def test_the_forcing_file_waits_up_to_its_own_timeout(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    waiting = check_inputs(s3, forcing_state(1000, forcing_check_timeout_s=7200))
    assert waiting.ready is False
    (missing,) = waiting.missing
    assert missing.endswith("/ngen.t06z.VPU_01.nc")
    # forcing_check_wait_s 60 spread over 7,200 s within the gate's loop budget: 60 s.
    assert waiting.wait_seconds == 60

    with pytest.raises(InputsMissing, match=r"run_options\.forcing_check_timeout_s"):
        check_inputs(s3, forcing_state(7201, forcing_check_timeout_s=7200))

    s3.put_object(Bucket=BUCKET, Key=missing.split(f"{BUCKET}/", 1)[1], Body=b"f")
    assert check_inputs(s3, forcing_state(7201, forcing_check_timeout_s=7200)).ready is True


def test_the_default_forcing_wait_keeps_to_the_gates_loop_budget(s3: Any) -> None:
    """24 h of looking every 60 s would be 1,440 loops (about 13,000 history events):
    the interval grows so the gate keeps to INPUTS_POLL_BUDGET."""
    s3.create_bucket(Bucket=BUCKET)
    record = check_inputs(s3, forcing_state(0))
    assert record.wait_seconds == 86_400 // timing.INPUTS_POLL_BUDGET == 576
    assert limits.largest("forcing_check_timeout_s") <= limits.INPUT_GATE_MAX_S


def test_inputs_and_forcing_each_keep_their_own_deadline(s3: Any) -> None:
    s3.create_bucket(Bucket=BUCKET)
    state = forcing_state(700, inputs=[FORCING], inputs_timeout_s=600, forcing_check_timeout_s=3600)
    with pytest.raises(InputsMissing) as caught:
        check_inputs(s3, state)
    # Only the run_options.inputs object is past its deadline.
    assert "run_options.inputs_timeout_s" in str(caught.value)
    assert "forcing_check_timeout_s" not in str(caught.value)
