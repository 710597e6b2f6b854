"""`make invoke FN=... EVENT=...`: which samples run, and how an answer becomes a line.

No container here (tests/invoke runs them): the choice of samples and the reading of
`sam local invoke`'s output, with bad FN and EVENT values refused in one line.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from amirun.local.invoke import (
    EVENTS,
    ROOT,
    InvokeError,
    Outcome,
    Sample,
    _answer,
    powertools_layer_arn,
    samples,
    select,
)


def test_each_function_runs_with_each_of_its_events() -> None:
    chosen = {(s.function, s.name) for s in samples()}

    assert ("StopperFunction", "stopper") in chosen
    assert ("StopperFunction", "stopper-after-failure") in chosen
    assert ("SettlerFunction", "settler-instance-gone") in chosen
    assert all(name != "execution" for _, name in chosen)


def test_one_function_with_all_its_events() -> None:
    chosen = select("StopperFunction", None)

    assert [s.name for s in chosen] == ["stopper-after-failure", "stopper"]


def test_one_event_names_its_function() -> None:
    (chosen,) = select(None, "events/starter.json")

    assert chosen == Sample("StarterFunction", EVENTS / "starter.json")


def test_an_event_of_ones_own_for_a_named_function() -> None:
    (chosen,) = select("StarterFunction", "events/execution.json")

    assert chosen == Sample("StarterFunction", ROOT / "events" / "execution.json")


@pytest.mark.parametrize(
    ("function", "event", "message"),
    [
        ("NoSuchFunction", None, "FN: no function NoSuchFunction in template.yaml"),
        (None, "events/missing.json", "EVENT: no file events/missing.json"),
        (None, "events/execution.json", "is no function's sample event; give FN too"),
    ],
)
def test_bad_choices_are_refused_naming_the_field(
    function: str | None, event: str | None, message: str
) -> None:
    with pytest.raises(InvokeError, match=message):
        select(function, event)


def completed(
    stdout: str, returncode: int = 0, stderr: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["sam"], returncode, stdout, stderr)


def test_a_result_is_the_last_line_of_standard_output() -> None:
    result, error = _answer(completed('noise\n{"ready": true}\n'))

    assert (result, error) == ({"ready": True}, None)


def test_a_function_error_is_reported_with_its_type() -> None:
    payload = {"errorType": "InstanceLost", "errorMessage": "instance i-1 is terminated"}

    result, error = _answer(completed(json.dumps(payload)))

    assert result == payload
    assert error == "InstanceLost: instance i-1 is terminated"


def test_a_failed_sam_run_reports_its_last_error_line() -> None:
    stderr = "Building image...\nError: Docker is not reachable\n"

    assert _answer(completed("", 1, stderr)) == (None, "Error: Docker is not reachable")


def test_an_outcome_is_one_line() -> None:
    sample = Sample("ResolverFunction", EVENTS / "resolver.json")

    assert Outcome(sample, result={"b": 1, "a": None}).line() == (
        'ResolverFunction events/resolver.json: {"a": null, "b": 1}'
    )
    assert Outcome(sample, error="Boom: no").line() == (
        "ResolverFunction events/resolver.json: ERROR Boom: no"
    )


def test_the_local_powertools_layer_names_the_pinned_version() -> None:
    """A local ARN (the emulator's account), never one of the published layers."""
    pins = (ROOT / "requirements" / "run.txt").read_text(encoding="utf-8")
    version = next(
        line.split("==")[1].strip()
        for line in pins.splitlines()
        if line.startswith("aws-lambda-powertools")
    )

    arn = powertools_layer_arn("x86_64")

    assert arn.startswith("arn:aws:lambda:us-east-1:123456789012:layer:")
    assert arn.endswith(f"powertools-python313-x86_64-{version.replace('.', '_')}:1")
