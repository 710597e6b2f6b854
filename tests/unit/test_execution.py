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


# --- strict and complete ------------------------------------------------------------------
def test_a_blank_template_names_every_empty_field_at_once() -> None:
    """A model-level problem (no commands) does not hide instance_parameters' ones."""
    problems = problems_of({"commands": [], "instance_parameters": {"ImageId": ""}})

    assert problems[0].startswith("commands: needs at least 1")
    assert problems[1].startswith("instance_parameters.ImageId: '' is not an AMI id")


def test_every_kind_of_problem_is_reported_in_one_go() -> None:
    raw = make_request(timeout_s="3600", ii_cheapo="yes", ii_check_s3=True)
    raw["commands"] = ["ls", 7, " ", "a\x00b"]
    raw["instance_parameters"] |= {"MinCount": 1, "KeyNam": "k", "ImageId": "ami-1"}

    fields = [p.split(":", 1)[0] for p in problems_of(raw)]

    assert sorted(fields) == sorted(
        [
            "commands[1]",
            "commands[2]",
            "commands[3]",
            "run_options.timeout_s",
            "run_options.ii_cheapo",
            "run_options.ii_check_s3",
            "instance_parameters.MinCount",
            "instance_parameters.KeyNam",
            "instance_parameters.ImageId",
        ]
    )


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(InvalidExecutionInput) as caught:
        parse_execution(raw)
    return caught.value.problems


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("timeout_s", "3600", "expected an integer, got string"),
        ("timeout_s", True, "expected an integer, got boolean"),
        ("timeout_s", 3600.5, "expected an integer, got number"),
        ("n_retries_allowed", "1", "expected an integer, got string"),
        ("ii_cheapo", "yes", "expected true or false, got string"),
        ("ii_terminate_instance", 1, "expected true or false, got number"),
        ("ii_delete_volume", "no", "expected true or false, got string"),
        ("working_directory", 5, "expected a string, got number"),
    ],
)
def test_types_are_the_json_schemas_not_pythons_coercions(
    field: str, value: Any, expected: str
) -> None:
    assert problems_of(make_request(**{field: value})) == [
        f"run_options.{field}: invalid type, {expected}"
    ]


def test_an_integral_float_is_an_integer_as_json_schema_says() -> None:
    assert parse_execution(make_request(timeout_s=3600.0)).run_options.timeout_s == 3600


@pytest.mark.parametrize(
    "image",
    ["ami-12345678", "ami-0a1b2c3d4e5f67890", "resolve:ssm:/aws/service/ami/al2023-arm64"],
)
def test_an_image_is_an_ami_id_or_an_ssm_parameter(image: str) -> None:
    raw = make_request()
    raw["instance_parameters"]["ImageId"] = image

    assert parse_execution(raw).instance_parameters["ImageId"] == image


@pytest.mark.parametrize(
    "image", ["", "ami-1", "ami-0A1B2C3D", "0a1b2c3d4e5f67890", "ubuntu-22.04", "resolve:ssm:"]
)
def test_an_image_that_is_neither_is_refused(image: str) -> None:
    raw = make_request()
    raw["instance_parameters"]["ImageId"] = image

    assert problems_of(raw)[0].startswith("instance_parameters.ImageId: ")


@pytest.mark.parametrize(
    ("bucket", "reason"),
    [
        ("s3://results/forecasts/x.nc", 'without s3:// (bucket "results", and "forecasts/x.nc"'),
        ("ab", "3 to 63 characters"),
        ("a" * 64, "3 to 63 characters"),
        ("My_Bucket", "only lowercase letters"),
        ("-results", "begins and ends"),
        ("results..old", "two adjacent dots"),
        ("192.168.5.4", "IP address"),
        ("xn--results", "starting with xn--"),
        ("sthree-results", "starting with sthree-"),
        ("amzn-s3-demo-results", "starting with amzn-s3-demo-"),
        ("results-s3alias", "ending with -s3alias"),
        ("results--ol-s3", "ending with --ol-s3"),
        ("results.mrap", "ending with .mrap"),
        ("results--x-s3", "ending with --x-s3"),
        ("results--table-s3", "ending with --table-s3"),
    ],
)
def test_bucket_names_follow_s3s_naming_rules(bucket: str, reason: str) -> None:
    [problem] = problems_of(make_request(ii_check_s3={"bucket": bucket, "prefix": "k"}))

    assert problem.startswith("run_options.ii_check_s3.bucket: ")
    assert reason in problem


def test_a_bucket_may_hold_daily_like_the_prefix() -> None:
    raw = make_request(ii_check_s3={"bucket": "results-DAILY", "prefix": "k"})

    assert parse_execution(raw).run_options.output_check is not None


def test_a_nul_byte_in_a_command_is_refused() -> None:
    assert problems_of(make_request() | {"commands": ["echo a\x00b"]}) == [
        "commands[0]: contains a NUL byte, which no shell command can carry"
    ]


def test_the_schema_key_editors_use_is_accepted() -> None:
    raw = make_request() | {"$schema": "../schema/execution.schema.json"}

    assert parse_execution(raw).schema_url == "../schema/execution.schema.json"


@pytest.mark.parametrize(
    ("owned", "value", "reason"),
    [
        ("DisableApiStop", True, "stopping"),
        ("DisableApiTermination", True, "terminating"),
        ("DryRun", True, "for real"),
        ("DisableApiStop", False, "stopping"),
    ],
)
def test_parameters_that_would_block_launch_or_cleanup_are_refused(
    owned: str, value: bool, reason: str
) -> None:
    raw = make_request()
    raw["instance_parameters"][owned] = value

    [problem] = problems_of(raw)
    assert problem.startswith(f"instance_parameters.{owned}: ")
    assert reason in problem


def test_ec2_parameters_are_typed_as_json_schema_types_them() -> None:
    """botocore takes `true` for an integer; EC2's schema (and so amirun) does not."""
    raw = make_request()
    raw["instance_parameters"]["BlockDeviceMappings"] = [{"Ebs": {"VolumeSize": True}}]
    raw["instance_parameters"]["MaintenanceOptions"] = {"AutoRecovery": 1}

    assert problems_of(raw) == [
        "instance_parameters.BlockDeviceMappings[0].Ebs.VolumeSize: invalid type, "
        "expected an integer, got boolean",
        "instance_parameters.MaintenanceOptions.AutoRecovery: invalid type, "
        "expected a string, got number",
    ]


# --- the size Step Functions can carry -------------------------------------------------------
def padded_to(size: int) -> dict[str, Any]:
    """A valid request whose input is exactly `size` bytes, most of it a command."""
    raw = make_request()
    raw["commands"].append("echo ")
    raw["commands"][-1] += "x" * (size - execution.input_size(raw))
    assert execution.input_size(raw) == size
    return raw


def test_the_largest_input_the_workflow_carries_is_accepted() -> None:
    assert parse_execution(padded_to(execution.MAX_INPUT_BYTES))


def test_one_byte_more_is_refused_naming_the_field_that_holds_it() -> None:
    [problem] = problems_of(padded_to(execution.MAX_INPUT_BYTES + 1))

    assert problem.startswith(
        f"commands: makes the execution input {execution.MAX_INPUT_BYTES + 1:,}"
    )
    assert "256 KiB" in problem


def test_the_size_counts_escapes_as_sent() -> None:
    """Non-ASCII text is sent as \\u escapes: six bytes per character."""
    assert execution.input_size({"a": "é"}) == len('{"a": "\\u00e9"}')


def test_a_huge_input_still_gives_a_short_cause() -> None:
    """The message is the failure's cause in the state: it must stay small."""
    raw = make_request()
    raw["run_options"] = {f"unknown_{i}_" + "k" * 500: 1 for i in range(200)}

    with pytest.raises(InvalidExecutionInput) as caught:
        parse_execution(raw)

    assert len(caught.value.problems) == 200
    assert len(str(caught.value)) < 10_000
    assert str(caught.value).endswith("; and 180 more")


# --- reading the file ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"commands": ["ls"], "commands": ["pwd"]}', "commands: duplicate key"),
        (b'{"run_options": {"timeout_s": 60, "timeout_s": 90}}', "run_options.timeout_s: dup"),
        (b'{"commands": ["ls", "\\ud800"]}', "commands[1]: holds a lone surrogate"),
        (b'{"timeout_s": NaN}', "not valid JSON: NaN is not a JSON number"),
        (b'{"timeout_s": ' + b"9" * 5000 + b"}", "timeout_s: the number 99999999999999999999..."),
        (b'{"timeout_s": 1e400}', "timeout_s: the number 1e400 is beyond"),
        (b'{"a": {"b": [1, -1E999]}}', "a.b[1]: the number -1E999 is beyond"),
        (b"[" * 40 + b"]" * 40, "JSON nested 40 levels deep; at most 32"),
        (b"[" * 100_000, "JSON nested 100000 levels deep"),
        (b'{"commands": ["caf\xe9"]}', "not valid UTF-8 (byte 18"),
        (b'{"commands": ', "not valid JSON: Expecting value"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "the execution JSON must be an object, this is array"),
        (b"null", "the execution JSON must be an object, this is null"),
    ],
)
def test_decoding_refuses_what_json_readers_disagree_on(data: bytes, expected: str) -> None:
    with pytest.raises(InvalidExecutionInput) as caught:
        execution.decode_execution(data)

    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_decoding_keeps_brackets_inside_strings_out_of_the_depth() -> None:
    raw = execution.decode_execution(
        b'\xef\xbb\xbf{"commands": ["echo \\"[[[[{{{{\\" ' + b"[" * 50 + b'"]}'
    )

    assert raw["commands"][0].endswith("[" * 50)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "[[[\\"{{"}', 1),  # an escaped quote does not end the string
        ('["\\\\", [[]]]', 3),  # an escaped backslash does not escape the quote after it
        ('"[[ never closed', 0),  # a string running to the end hides what is in it
        ('[[ "x', 2),
        ('{"a": "b\\', 1),  # cut just after a backslash
        ("] ] [", 0),  # closing first never counts below zero
    ],
)
def test_nesting_depth_counts_brackets_outside_strings_only(text: str, depth: int) -> None:
    """The depth is found before parsing, so it must read strings as a JSON reader does."""
    assert execution._nesting_depth(text) == depth


def test_past_a_few_unknown_fields_no_hints_are_looked_for() -> None:
    """Hundreds of unknown keys are no typo; close matches for each would take seconds."""
    raw = make_request()
    raw["run_options"] = {f"ii_check_{i}": 1 for i in range(execution.MAX_HINTS + 1)}
    raw["instance_parameters"] |= {f"InstanceTyp{i}": 1 for i in range(execution.MAX_HINTS + 1)}

    problems = problems_of(raw)

    assert len(problems) == 2 * (execution.MAX_HINTS + 1)
    assert all(p.message == "unknown field" for p in problems)
    raw["run_options"] = {"ii_check_s": 1}
    [problem, *_] = problems_of(raw)
    assert problem == "run_options.ii_check_s: unknown field (did you mean ii_check_s3?)"
