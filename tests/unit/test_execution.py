"""The execution JSON: the original files run unchanged, bad input names its field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from unit_helpers import EVENTS, load_json, load_original, make_request

from amirun_core import execution
from amirun_core.errors import AmirunError, InvalidExecutionInput
from amirun_core.execution import S3Check, parse_execution, read_execution


def rejected(raw: Any) -> str:
    """The message of the InvalidExecutionInput that `raw` must raise."""
    with pytest.raises(InvalidExecutionInput) as caught:
        parse_execution(raw)
    assert isinstance(caught.value, AmirunError)
    return str(caught.value)


def test_original_gp_example_is_accepted_with_its_values_and_the_defaults() -> None:
    raw = load_original("execution_gp_example.json")
    request = parse_execution(raw)

    assert request.commands == ["runuser -l ec2-user -c 'ls -la'"]
    options = request.run_options
    assert options.ii_terminate_instance is True
    assert options.ii_delete_volume is False
    assert options.ii_check_s3 is False and options.output_check is None
    assert options.timeout_s == 3600
    # Not in the file: the original's defaults.
    assert options.ii_cheapo is False
    assert options.n_retries_allowed == 0
    # instance_parameters go to RunInstances as given.
    assert request.instance_parameters == raw["instance_parameters"]


def test_original_nrds_example_is_accepted_with_its_output_check() -> None:
    raw = load_original("execution_nrds.json")
    request = parse_execution(raw)

    options = request.run_options
    assert options.output_check == S3Check(
        bucket="ciroh-community-ngen-datastream",
        prefix="test/cicd/nrds/orca_test/ngen-run.tar.gz",
    )
    assert options.output_check.newer_than_start is True
    assert (options.ii_cheapo, options.n_retries_allowed) == (True, 2)
    assert (options.ii_terminate_instance, options.ii_delete_volume) == (True, True)
    assert "DAILY" in request.commands[0]  # replaced at run time, not here
    assert request.instance_parameters == raw["instance_parameters"]


def test_sample_execution_in_events_is_accepted() -> None:
    request = parse_execution(load_json(EVENTS / "execution.json"))

    assert request.run_options.output_check is not None
    assert "DAILY" in request.run_options.output_check.prefix
    assert any("DAILY" in c for c in request.commands or [])
    assert request.run_options.ii_terminate_instance is True


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda raw: raw["run_options"].update(check_s3=False),
            "run_options.check_s3: unknown field (did you mean ii_check_s3?)",
        ),
        (
            lambda raw: raw.update(command=["ls"]),
            "command: unknown field (did you mean commands?)",
        ),
        (
            lambda raw: raw["run_options"].update(ii_check_s3={"bucket": "b-1", "prefx": "k"}),
            "run_options.ii_check_s3.prefx: unknown field (did you mean prefix?)",
        ),
        (
            lambda raw: raw["instance_parameters"].update(InstanceTyp="t4g.small"),
            "instance_parameters.InstanceTyp: unknown field (did you mean InstanceType?)",
        ),
    ],
    ids=["run_options", "top-level", "ii_check_s3-object", "instance_parameters"],
)
def test_unknown_keys_are_refused_with_their_path_and_a_suggestion(
    mutate: Any, expected: str
) -> None:
    raw = make_request()
    mutate(raw)

    assert expected in rejected(raw)


def test_wrong_types_in_instance_parameters_are_caught_by_ec2s_own_shape() -> None:
    raw = load_original("execution_gp_example.json")
    raw["instance_parameters"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] = "16"

    message = rejected(raw)

    assert "instance_parameters.BlockDeviceMappings[0].Ebs.VolumeSize: invalid type" in message


def test_every_problem_is_reported_at_once() -> None:
    raw = make_request(timeout_s=10)
    raw["instance_parameters"]["KeyName"] = 5

    message = rejected(raw)

    assert "run_options.timeout_s" in message
    assert "instance_parameters.KeyName: invalid type" in message


@pytest.mark.parametrize("owned", ["MinCount", "MaxCount", "ClientToken"])
def test_parameters_amirun_sets_are_refused(owned: str) -> None:
    raw = make_request()
    raw["instance_parameters"][owned] = "abc" if owned == "ClientToken" else 2

    assert f"instance_parameters.{owned}: set by amirun" in rejected(raw)


def test_an_image_is_required() -> None:
    raw = make_request()
    del raw["instance_parameters"]["ImageId"]

    assert "instance_parameters.ImageId: required" in rejected(raw)


def test_a_launch_template_can_stand_in_for_the_image() -> None:
    raw = make_request()
    del raw["instance_parameters"]["ImageId"]
    raw["instance_parameters"]["LaunchTemplate"] = {"LaunchTemplateName": "amirun-jobs"}

    assert parse_execution(raw).instance_parameters["LaunchTemplate"]


def test_check_s3_true_without_a_location_is_refused() -> None:
    message = rejected(make_request(ii_check_s3=True))

    assert "run_options.ii_check_s3" in message
    assert "bucket" in message and "prefix" in message


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"run_options": {}, "instance_parameters": {"ImageId": "ami-1"}}, "commands"),
        (make_request() | {"commands": []}, "commands"),
        (make_request() | {"commands": ["ls", "  "]}, "commands[1]"),
        (make_request() | {"commands": ["ls", 7]}, "commands[1]"),
        (make_request(timeout_s=172_801), "run_options.timeout_s"),
        (make_request(n_retries_allowed=-1), "run_options.n_retries_allowed"),
        (make_request(poll_interval_s=1), "run_options.poll_interval_s"),
        (make_request(ii_check_s3={"bucket": "b"}), "run_options.ii_check_s3.prefix"),
        (make_request(ii_check_s3="s3://bucket/key"), "run_options.ii_check_s3"),
        ({"commands": ["ls"]}, "instance_parameters"),
        (make_request() | {"instance_parameters": ["ami-1"]}, "instance_parameters"),
    ],
    ids=[
        "no-commands",
        "empty-commands",
        "blank-command",
        "non-string-command",
        "timeout-over-48h",
        "negative-retries",
        "poll-too-fast",
        "check-without-prefix",
        "check-as-url",
        "no-instance-parameters",
        "instance-parameters-not-an-object",
    ],
)
def test_every_error_names_its_field(raw: dict[str, Any], field: str) -> None:
    message = rejected(copy.deepcopy(raw))

    assert message.startswith(field) or f"; {field}" in message, message
    assert f"{field}:" in message or f"{field}." in message


@pytest.mark.parametrize("raw", [None, [], "commands", 3])
def test_input_that_is_not_an_object_is_refused(raw: Any) -> None:
    assert "JSON object" in rejected(raw)


def test_parsing_does_not_change_the_input() -> None:
    raw = load_original("execution_nrds.json")
    before = copy.deepcopy(raw)

    parse_execution(raw)

    assert raw == before


def test_steps_after_launch_read_the_request_without_loading_ec2s_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The starter checked instance_parameters before launching; the later steps only
    read run_options, and loading EC2's model would cost each of them a cold start."""

    def no_model() -> None:
        raise AssertionError("EC2's service model was loaded")

    monkeypatch.setattr(execution, "_botocore_ec2_model", no_model)
    raw = load_original("execution_nrds.json")

    assert read_execution(raw).run_options.n_retries_allowed == 2
    with pytest.raises(AssertionError, match="service model"):
        parse_execution(raw)


def test_the_full_check_can_use_a_clients_ec2_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The starter hands in its EC2 client's model instead of loading a second copy."""
    import boto3

    model = boto3.client("ec2", region_name="us-east-1").meta.service_model
    monkeypatch.setattr(execution, "_botocore_ec2_model", lambda: None)
    raw = load_original("execution_gp_example.json")
    raw["instance_parameters"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] = "16"

    with pytest.raises(InvalidExecutionInput, match=r"BlockDeviceMappings\[0\]\.Ebs\.VolumeSize"):
        parse_execution(raw, model)
