"""The workflow definition: valid ASL, wired to the template, and every run ends on purpose."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amirun_core import errors, limits

from .conftest import PLACEHOLDER, run, substitute_placeholders, venv_tool

LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    # A function that timed out or ran out of memory, and an invoke that took too long:
    # every step is idempotent, so these are retried like the others.
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
}
TERMINAL = {"Succeed", "Fail"}
AMIRUN_ERRORS = {
    name
    for name, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.AmirunError)
}


def successors(state: dict[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


def tasks(asl: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in asl["States"].items() if v["Type"] == "Task"}


def test_statelint_accepts_the_deployed_definition(asl_text: str, tmp_path: Path) -> None:
    deployed = tmp_path / "amirun.asl.json"
    deployed.write_text(substitute_placeholders(asl_text), encoding="utf-8")
    result = run([venv_tool("statelint"), deployed])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_placeholder_has_a_substitution_and_back(
    asl_text: str, resources: dict[str, Any]
) -> None:
    substitutions = resources["AmirunStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(PLACEHOLDER.findall(asl_text)) == set(substitutions)
    for placeholder, value in substitutions.items():
        if placeholder == "Partition":
            # Service integrations' ARNs name the partition the stack is deployed in.
            assert value == {"Ref": "AWS::Partition"}
            continue
        function, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", placeholder
        assert resources[function]["Type"] == "AWS::Serverless::Function", placeholder
        assert placeholder == f"{function}Arn"


def test_every_task_retries_lambda_errors_and_catches(asl: dict[str, Any]) -> None:
    for name, state in tasks(asl).items():
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_SERVICE_ERRORS, f"{name} does not retry Lambda's service errors"
        assert state.get("Catch"), f"{name} has no Catch"
        for retrier in state["Retry"]:
            rate = retrier.get("BackoffRate", 2.0)
            assert isinstance(rate, int | float) and rate >= 1, f"{name}: BackoffRate {rate!r}"


def test_the_stopper_outlasts_throttling_the_other_steps_give_up_on(asl: dict[str, Any]) -> None:
    """Giving up in EC2Stopper leaves an instance billing: it retries longest of all."""
    stopper = {r["ErrorEquals"][0]: r["MaxAttempts"] for r in asl["States"]["EC2Stopper"]["Retry"]}
    for name, state in tasks(asl).items():
        if name == "EC2Stopper":
            continue
        for retrier in state["Retry"]:
            first = retrier["ErrorEquals"][0]
            if first in stopper:
                assert stopper[first] > retrier["MaxAttempts"], (name, first)
    assert min(stopper.values()) >= 20


def test_error_names_are_amirun_errors(asl: dict[str, Any]) -> None:
    """A typo in an error name would make a Retry or Catch silently never match."""
    named = set()
    for state in asl["States"].values():
        for handler in state.get("Retry", []) + state.get("Catch", []):
            named.update(handler["ErrorEquals"])
        if "Error" in state:
            named.add(state["Error"])
    ours = {n for n in named if not n.startswith(("States.", "Lambda."))}
    assert ours <= AMIRUN_ERRORS, f"not classes in amirun_core.errors: {ours - AMIRUN_ERRORS}"


def test_every_path_ends_in_succeed_or_fail(asl: dict[str, Any]) -> None:
    states = asl["States"]
    for name, state in states.items():
        if state["Type"] in TERMINAL:
            continue
        assert not state.get("End"), f"{name} ends the run without saying Succeed or Fail"
        assert set(successors(state)) <= states.keys(), name
    # From every state some Succeed or Fail can still be reached (no closed loop).
    backwards: dict[str, set[str]] = {}
    for name, state in states.items():
        for target in successors(state):
            backwards.setdefault(target, set()).add(name)
    can_end = set().union(
        *(reachable(n, backwards) for n, s in states.items() if s["Type"] in TERMINAL)
    )
    assert can_end == states.keys(), f"cannot end: {sorted(states.keys() - can_end)}"


def test_every_state_is_reachable(asl: dict[str, Any]) -> None:
    edges = {name: set(successors(state)) for name, state in asl["States"].items()}
    unreachable = asl["States"].keys() - reachable(asl["StartAt"], edges)
    assert not unreachable, f"unreachable states: {sorted(unreachable)}"


def test_the_execution_has_a_time_limit_derived_from_the_largest_run(asl: dict[str, Any]) -> None:
    """Nothing runs forever: the overall limit is the longest run the input allows."""
    assert asl["TimeoutSeconds"] == limits.execution_timeout_s()
    # Longer than the longest command of the most attempts, within a Standard
    # execution's one year.
    attempts = limits.largest("n_retries_allowed") + 1
    assert attempts * limits.largest("timeout_s") < asl["TimeoutSeconds"] < 365 * 86_400


def test_the_time_limit_counts_the_input_gate_and_the_command_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The input gate (once) and the command wait's safety interval (per attempt) are
    in the sum, so a longer gate or wait moves the limit with it."""
    base = limits.execution_timeout_s()
    attempts = limits.largest("n_retries_allowed") + 1
    monkeypatch.setattr(limits, "INPUT_GATE_MAX_S", limits.INPUT_GATE_MAX_S + 3600)
    assert limits.execution_timeout_s() == base + 3600
    monkeypatch.setattr(limits, "COMMAND_WAIT_SAFETY_S", limits.COMMAND_WAIT_SAFETY_S + 600)
    assert limits.execution_timeout_s() == base + 3600 + attempts * 600


def test_the_command_end_is_a_task_token_wait_with_a_safety_look(asl: dict[str, Any]) -> None:
    states = asl["States"]
    wait = states["WaitForCommandEnd"]
    assert wait["Resource"] == "arn:${Partition}:states:::lambda:invoke.waitForTaskToken"
    assert wait["Parameters"]["FunctionName"] == "${WaiterFunctionArn}"
    assert wait["Parameters"]["Payload"] == {"task_token.$": "$$.Task.Token", "state.$": "$"}
    # The safety interval, never past the command's deadline (the steps compute it).
    assert wait["TimeoutSecondsPath"] == "$.command.wait_seconds"
    assert wait["ResultPath"] == "$.command"
    assert wait["Next"] == "RunChecker"
    timeout, everything = wait["Catch"]
    assert timeout == {"ErrorEquals": ["States.Timeout"], "ResultPath": None, "Next": "EC2Poller"}
    assert everything["ErrorEquals"] == ["States.ALL"]
    assert everything["Next"] == "EC2Stopper"
    # States.Timeout is the safety look, never retried in place.
    retried = {e for r in wait["Retry"] for e in r["ErrorEquals"]}
    assert "States.Timeout" not in retried and "States.ALL" not in retried
    assert states["Commander"]["Next"] == "WaitForCommandEnd"
    assert states["EC2Poller"]["Next"] == "IsCommandDone"
    assert states["IsCommandDone"]["Default"] == "WaitForCommandEnd"
    assert states["IsCommandDone"]["Choices"][0]["Next"] == "RunChecker"


def test_every_task_outlasts_a_minute_of_lambda_throttling(asl: dict[str, Any]) -> None:
    """Lambda throttles invocations past the account's concurrency for as long as a
    burst lasts; Step Functions' own retry of Lambda.TooManyRequestsException must
    outlast a minute-long burst: many attempts, backoff capped at 60 s, full jitter
    so that a fleet of executions does not retry in step.
    https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-scaling.html
    """
    for name, state in tasks(asl).items():
        (retrier,) = [
            r for r in state["Retry"] if "Lambda.TooManyRequestsException" in r["ErrorEquals"]
        ]
        assert retrier["ErrorEquals"] == ["Lambda.TooManyRequestsException"], name
        assert retrier["JitterStrategy"] == "FULL", name
        assert retrier["MaxDelaySeconds"] >= 60, name
        assert retrier["MaxAttempts"] >= 10, name
        # The longest each retry may wait (full jitter draws between 0 and this).
        caps = [
            min(
                retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n,
                retrier["MaxDelaySeconds"],
            )
            for n in range(retrier["MaxAttempts"])
        ]
        # On average half of it: several minutes, well past a minute-long burst.
        assert sum(caps) / 2 >= 150, (name, sum(caps))
        # Before the general retrier of Lambda's errors: the first match is the one used.
        assert state["Retry"].index(retrier) == 0, name
