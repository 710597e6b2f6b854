"""schedules/examples/ is ngen-datastream's whole daily set, one file per family.

The expected set is rebuilt here by hand from the upstream's Terraform (each family's
schedules.tf, config/*.json and templates/*.tpl, prod settings), not from the files
under test: every schedule's name, cron, time zone, state, instance type, timeout and
AMI, and for one row of each family the commands in full, as the original fills its
templates and, once DAILY is resolved, as its streamcommander sends them.
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amirun.cli import main
from amirun.project import ROOT
from amirun.rendering import render_execution
from amirun.schedule_sync import target_input
from amirun.schedules import Schedule, expand, find

EXAMPLES = ROOT / "schedules" / "examples"
BUCKET = "ciroh-community-ngen-datastream"
STATE_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:amirun"

VPUS = [
    *("01", "02", "03N", "03S", "03W", "04", "05", "06", "07", "08"),
    *("09", "10L", "10U", "11", "12", "13", "14", "15", "16", "18"),
]
CORES = {"m8g.large": 2, "m8g.xlarge": 4, "m8g.2xlarge": 8, "m8g.4xlarge": 16}
# prod.tfvars: one AMI per family (nwm-routing has none upstream yet: routing-only's).
AMIS = {
    "cfe_nom": "ami-038132f534157b5c3",
    "lstm_0": "ami-0cd2a4414eceffdd8",
    "forcing": "ami-062245e1c9604128d",
    "routing_only": "ami-02cb92f166b83470e",
    "restart": "ami-0e28d2f2d8491620b",
    "qkrig": "ami-0dd297f1f6c52facb",
    "nwm_routing": "ami-02cb92f166b83470e",
}
FILES = {
    "cfe_nom": "nextgen-cfe-nom.yaml",
    "lstm_0": "nextgen-lstm-0.yaml",
    "forcing": "nextgen-forcing.yaml",
    "routing_only": "nextgen-routing-only.yaml",
    "restart": "nextgen-restart.yaml",
    "qkrig": "nextgen-qkrig.yaml",
    "nwm_routing": "nextgen-nwm-routing.yaml",
}
DAILY_SET = {
    "cfe_nom": 580,
    "lstm_0": 580,
    "forcing": 29,
    "routing_only": 24,
    "restart": 24,
    "qkrig": 1,
}


@dataclass(frozen=True)
class Expected:
    family: str
    cron: str
    instance_type: str
    timeout_s: int
    enabled: bool = True


def _cron(minute: int, hour: int) -> str:
    return f"cron({minute} {hour % 24} * * ? *)"


def _model_instance_types(family: str, run: str, vpu: str) -> str:
    """The VPU's instance type in the family's config/*.json for that run type."""
    if family == "lstm_0":
        return "m8g.4xlarge" if vpu in ("05", "07", "10L", "10U") else "m8g.2xlarge"
    if run == "medium_range":
        return "m8g.4xlarge" if vpu in ("10L", "10U") else "m8g.2xlarge"
    return "m8g.2xlarge" if vpu in ("05", "07", "10L", "10U", "11") else "m8g.xlarge"


def upstream_set() -> dict[str, Expected]:
    """Schedule name -> what the upstream's Terraform declares for it (environment prod)."""
    found: dict[str, Expected] = {}
    for family, timeouts in (("cfe_nom", (3600, 7200, 3600)), ("lstm_0", (1200, 3600, 3600))):
        short, medium, ana = timeouts
        for init in range(24):
            for vpu in VPUS:
                found[f"short_range_fcst{init:02d}_vpu{vpu}_schedule_{family}_prod"] = Expected(
                    family,
                    _cron(0, init + 1),
                    _model_instance_types(family, "short_range", vpu),
                    short,
                )
        for init in (0, 6, 12, 18):
            for member in (1,):
                for vpu in VPUS:
                    name = (
                        f"medium_range_fcst{init:02d}_mem{member}_vpu{vpu}_schedule_{family}_prod"
                    )
                    found[name] = Expected(
                        family,
                        _cron(math.floor((member - 1) * (1 / 7) * 60 % 60), init + 3),
                        _model_instance_types(family, "medium_range", vpu),
                        medium,
                    )
        for vpu in VPUS:
            found[f"analysis_assim_extend_fcst16_vpu{vpu}_schedule_{family}_prod"] = Expected(
                family, _cron(0, 16), _model_instance_types(family, "ana", vpu), ana
            )
    for init in range(24):
        found[f"short_range_fcst{init:02d}_forcing_schedule_prod"] = Expected(
            "forcing", _cron(0, init), "m8g.2xlarge", 3600
        )
    for init in (0, 6, 12, 18):
        found[f"medium_range_fcst{init:02d}_forcing_schedule_prod"] = Expected(
            "forcing", _cron(0, init + 2), "m8g.4xlarge", 7200
        )
    found["analysis_assim_extend_fcst16_forcing_schedule_prod"] = Expected(
        "forcing", _cron(0, 16 + 23), "m8g.2xlarge", 3600
    )
    for init in range(24):
        found[f"short_range_fcst{init:02d}_vpu03W_schedule_routing_only_prod"] = Expected(
            "routing_only", _cron(0, init + 1), "m8g.large", 3600
        )
        found[f"restart_init{init:02d}_schedule_prod"] = Expected(
            "restart", _cron(30, init), "m8g.2xlarge", 1800
        )
        found[f"short_range_fcst{init:02d}_vpu03W_schedule_nwm_routing_prod"] = Expected(
            "nwm_routing", _cron(0, init + 1), "m8g.xlarge", 2700, enabled=False
        )
    found["qkrig_init00_schedule_prod"] = Expected("qkrig", _cron(30, 0), "m8g.4xlarge", 9000)
    return found


@functools.cache
def everything() -> tuple[Schedule, ...]:
    return tuple(expand([EXAMPLES]))


def by_name(name: str) -> Schedule:
    return find(everything(), name)


def family_of(schedule: Schedule) -> str:
    stem = Path(schedule.source).name
    return next(family for family, file in FILES.items() if file == stem)


# --- The whole set ------------------------------------------------------------------------------
def test_each_family_file_declares_the_upstreams_count() -> None:
    counts: dict[str, int] = {}
    disabled: dict[str, int] = {}
    for schedule in everything():
        family = family_of(schedule)
        counts[family] = counts.get(family, 0) + 1
        disabled[family] = disabled.get(family, 0) + (not schedule.enabled)

    assert counts == {**DAILY_SET, "nwm_routing": 24}
    assert disabled == {**dict.fromkeys(DAILY_SET, 0), "nwm_routing": 24}
    assert sum(DAILY_SET.values()) == 1238
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(FILES.values())


def test_names_crons_zones_instance_types_timeouts_and_amis_are_the_upstreams() -> None:
    expected = upstream_set()
    schedules = everything()

    assert len(expected) == len(schedules) == 1262
    found = {
        s.name: Expected(
            family_of(s),
            s.expression,
            s.execution["instance_parameters"]["InstanceType"],
            s.execution["run_options"]["timeout_s"],
            s.enabled,
        )
        for s in schedules
    }
    assert found == expected
    # Upstream: schedule_timezone America/New_York, flexible_time_window OFF, for all.
    assert {(s.time_zone, s.flexible_window) for s in schedules} == {("America/New_York", None)}
    for schedule in schedules:
        params = schedule.execution["instance_parameters"]
        assert params["ImageId"] == AMIS[family_of(schedule)], schedule.name
        assert params["IamInstanceProfile"] == {"Name": "nrds_prod_ec2_profile"}, schedule.name


def test_model_runs_get_one_process_per_core_but_one() -> None:
    for schedule in everything():
        if family_of(schedule) in ("cfe_nom", "lstm_0"):
            cores = CORES[schedule.execution["instance_parameters"]["InstanceType"]]
            assert f" -n {cores - 1} " in schedule.execution["commands"][0], schedule.name


def test_every_execution_name_fits_step_functions() -> None:
    """`<name>_<execution id>`: at most 80 letters, digits, `-` and `_` once Scheduler
    puts in its 36-character id."""
    valid = re.compile(r"^[0-9A-Za-z_-]{1,80}$")
    for schedule in everything():
        name = json.loads(target_input(schedule, STATE_MACHINE))["Name"]
        assert valid.match(name.replace("<aws.scheduler.execution-id>", "0" * 36)), name


def test_amirun_schedules_expand_reports_the_daily_set_all_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["schedules", "expand", str(EXAMPLES)]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1262 schedules (1238 enabled, 24 disabled), every execution input valid"
    rows = [line.split() for line in lines[1:-1]]
    assert len(rows) == 1262
    assert {row[0] for row in rows if row[-1] == "disabled"} == {
        f"short_range_fcst{init:02d}_vpu03W_schedule_nwm_routing_prod" for init in range(24)
    }


# --- One row of each family, as the upstream fills its template --------------------------------
def tags(schedule: Schedule) -> list[dict[str, str]]:
    specs = schedule.execution["instance_parameters"]["TagSpecifications"]
    return [
        {"ResourceType": spec["ResourceType"], **{t["Key"]: t["Value"] for t in spec["Tags"]}}
        for spec in specs
    ]


def test_lstm_0_medium_range_row() -> None:
    schedule = by_name("medium_range_fcst12_mem1_vpu10L_schedule_lstm_0_prod")

    assert schedule.execution["commands"] == [
        "runuser -l ec2-user -c 'export SKIP_VALIDATION=True DS_TAG=1.7.1 NGIAB_TAG=v1.8.0"
        " && /home/ec2-user/datastreamcli/scripts/datastream -s DAILY -n 15"
        f" -F s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.DAILY/forcing_medium_range/12/"
        "ngen.t12z.medium_range.forcing.f001_f240.VPU_10L.nc"
        " --FORCING_SOURCE NWM_V3_MEDIUM_RANGE_12_1 -d /home/ec2-user/outputs"
        f" -N s3://{BUCKET}/resources/v2.2_hydrofabric/bmi_configs/lstm_0/VPU_10L/"
        "ngen-bmi-configs.tar.gz"
        f" -g s3://{BUCKET}/resources/v2.2_hydrofabric/geopackages/VPU_10L/nextgen_VPU_10L.gpkg"
        f" -R https://{BUCKET}.s3.amazonaws.com/realizations/lstm/realization_rust_lstm_troute.json"
        f" --S3_BUCKET {BUCKET}"
        " --S3_PREFIX outputs/lstm_0/v2.2_hydrofabric/ngen.DAILY/medium_range/12/1/VPU_10L'"
    ]
    assert schedule.execution["run_options"] == {
        "ii_terminate_instance": True,
        "ii_delete_volume": True,
        "ii_check_s3": True,
        "ii_cheapo": True,
        "timeout_s": 3600,
        "n_retries_allowed": 2,
    }
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_LSTM_0_medium_range_VPU10L_init12_1",
            "Project": "datastream_LSTM_0_medium_range_10L",
        },
        {"ResourceType": "volume", "Name": "prod_LSTM_0_medium_range_VPU10L_init12_1_vol"},
    ]
    assert schedule.execution["instance_parameters"]["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 64, "VolumeType": "gp3"}}
    ]


FORCING_COMMANDS = [
    "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/datastream-metadata'",
    "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/ngen-run/config'",
    "runuser -l ec2-user -c 'cp /home/ec2-user/ngen-datastream/configs/ngen/"
    "realization_sloth_nom_cfe_pet.json /home/ec2-user/run'",
    "runuser -l ec2-user -c 'docker run --rm -v /home/ec2-user/run:/mounted_dir"
    " -u $(id -u):$(id -g) -w /mounted_dir/datastream-metadata awiciroh/datastream:1.0.2"
    " python3 /ngen-datastream/python_tools/src/python_tools/configure_datastream.py"
    " --docker_mount /mounted_dir --start_date DAILY --data_dir /home/ec2-user/run"
    " --forcing_source NWM_V3_MEDIUM_RANGE_06_0"
    " --forcing_split_vpu 01,02,03N,03S,03W,04,05,06,07,08,09,10L,10U,11,12,13,14,15,16,18"
    " --hydrofabric_version v2.2 --realization /mounted_dir/realization_sloth_nom_cfe_pet.json"
    " --realization_provided /home/ec2-user/run/realization_sloth_nom_cfe_pet.json"
    f" --s3_bucket {BUCKET} --s3_prefix PREFIX'",
    "runuser -l ec2-user -c 'docker run --rm -v /home/ec2-user/run:/mounted_dir"
    " -u $(id -u):$(id -g) -w /mounted_dir/datastream-metadata awiciroh/forcingprocessor:1.0.3"
    " python3 /ngen-datastream/forcingprocessor/src/forcingprocessor/nwm_filenames_generator.py"
    " /mounted_dir/datastream-metadata/conf_nwmurl.json'",
    "runuser -l ec2-user -c 'cp /home/ec2-user/hydrofabric/v2.2/nextgen_*_weights.json"
    " /home/ec2-user/run'",
    "runuser -l ec2-user -c 'docker run --rm -e AWS_ACCESS_KEY_ID=$(echo $AWS_ACCESS_KEY_ID)"
    " -e AWS_SECRET_ACCESS_KEY=$(echo $AWS_SECRET_ACCESS_KEY) -v /home/ec2-user/run:/mounted_dir"
    " -u $(id -u):$(id -g) -w /mounted_dir/datastream-metadata awiciroh/forcingprocessor:1.0.3"
    " python3 /ngen-datastream/forcingprocessor/src/forcingprocessor/processor.py"
    " /mounted_dir/datastream-metadata/conf_fp.json'",
    "runuser -l ec2-user -c 'aws s3 cp /home/ec2-user/run/datastream-metadata/conf_nwmurl.json"
    " $(cat /home/ec2-user/run/datastream-metadata/conf_fp.json | jq -r '.storage.output_path')"
    "/metadata/forcings_metadata/conf_nwmurl.json --no-progress'",
]


def forcing_commands(prefix: str) -> list[str]:
    return [
        command.replace("--s3_prefix PREFIX", f"--s3_prefix {prefix}")
        for command in FORCING_COMMANDS
    ]


def test_forcing_medium_range_row() -> None:
    schedule = by_name("medium_range_fcst06_forcing_schedule_prod")

    assert schedule.execution["commands"] == forcing_commands(
        "forcings/v2.2_hydrofabric/ngen.DAILY/forcing_medium_range/06"
    )
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_forcing_medium_range_init06_0",
            "Project": "forcing_FULLCONUS_v1.2_medium_range",
        },
        {"ResourceType": "volume", "Name": "prod_forcing_medium_range_init06_0_vol"},
    ]


ROUTING_ONLY_05 = (
    "su - ec2-user -c 'rm -rf /home/ec2-user/outputs && export SKIP_VALIDATION=True"
    " DS_TAG=1.7.0 NGIAB_TAG=v1.7.0 && /home/ec2-user/datastreamcli/scripts/datastream"
    " -s DAILY -n 4 --FORCING_SOURCE NWM_V3_CHRTOUT_SHORT_RANGE_05 -d /home/ec2-user/outputs"
    f" -g s3://{BUCKET}/resources/v2.2_hydrofabric/geopackages/VPU_03W/nextgen_VPU_03W.gpkg"
    f" -R https://{BUCKET}.s3.amazonaws.com/realizations/routing_only/realization_sloth_troute.json"
    f" -t s3://{BUCKET}/restarts/v2.2_hydrofabric/ngen.DAILY/05/channel_restart_DAILY_050000.nc"
    f" -w s3://{BUCKET}/resources/v2.2_hydrofabric/troute_restart/crosswalk.nc"
    f" --S3_BUCKET {BUCKET} --S3_PREFIX outputs/routing_only/v2.2_hydrofabric/DAY/short_range/05/"
    "VPU_03W'"
)


def test_routing_only_row() -> None:
    schedule = by_name("short_range_fcst05_vpu03W_schedule_routing_only_prod")

    assert schedule.execution["commands"] == [ROUTING_ONLY_05.replace("DAY", "ngen.DAILY")]
    assert schedule.expression == "cron(0 6 * * ? *)"
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_routing_only_short_range_VPU03W_init05",
            "Project": "routing_only_short_range_VPU_03W",
        },
        {"ResourceType": "volume", "Name": "prod_routing_only_short_range_VPU03W_init05_vol"},
    ]


def restart_commands(prefix: str) -> list[str]:
    return [
        "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/datastream-metadata'",
        "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/ngen-run/config'",
        "runuser -l ec2-user -c 'cp /home/ec2-user/datastreamcli/configs/ngen/"
        "realization_sloth_nom_cfe_pet.json /home/ec2-user/run'",
        "DATE=$(date -u +%Y%m%d) && INIT=07 && if [ $INIT -gt $(date -u +%H) ];"
        " then DATE=$(date -u -d yesterday +%Y%m%d); fi"
        " && echo $DATE > /home/ec2-user/run/run_date.txt",
        "runuser -l ec2-user -c 'DATE=$(cat /home/ec2-user/run/run_date.txt) && docker run --rm"
        " -v /home/ec2-user/run:/mounted_dir -u $(id -u):$(id -g)"
        " -w /mounted_dir/datastream-metadata awiciroh/datastream:1.7.0"
        " python3 /datastreamcli/src/datastreamcli/configure_datastream.py"
        " --docker_mount /mounted_dir --start_date ${DATE}0700 --end_date ${DATE}0700"
        " --data_dir /home/ec2-user/run --forcing_source NWM_V3_ANALYSIS_ASSIM_RESTART_CHRT_07"
        " --hydrofabric_version v2.2 --realization /mounted_dir/realization_sloth_nom_cfe_pet.json"
        " --realization_provided /home/ec2-user/run/realization_sloth_nom_cfe_pet.json"
        f" --s3_bucket {BUCKET} --s3_prefix {prefix}'",
        "runuser -l ec2-user -c 'docker run --rm -v /home/ec2-user/run:/mounted_dir"
        " -u $(id -u):$(id -g) -w /mounted_dir/datastream-metadata awiciroh/forcingprocessor:2.2.1"
        " python3 /forcingprocessor/src/forcingprocessor/nwm_filenames_generator.py"
        " /mounted_dir/datastream-metadata/conf_nwmurl.json'",
        "runuser -l ec2-user -c 'mv /home/ec2-user/run/filenamelist.txt"
        " /home/ec2-user/run/datastream-metadata/ 2>/dev/null || true'",
        "runuser -l ec2-user -c 'docker run --rm -e AWS_ACCESS_KEY_ID=$(echo $AWS_ACCESS_KEY_ID)"
        " -e AWS_SECRET_ACCESS_KEY=$(echo $AWS_SECRET_ACCESS_KEY)"
        " -v /home/ec2-user/run:/mounted_dir -u $(id -u):$(id -g)"
        " -w /mounted_dir/datastream-metadata awiciroh/forcingprocessor:2.2.1"
        " python3 /forcingprocessor/src/forcingprocessor/processor.py"
        " /mounted_dir/datastream-metadata/conf_fp.json'",
    ]


def test_restart_row() -> None:
    schedule = by_name("restart_init07_schedule_prod")

    assert schedule.execution["commands"] == restart_commands(
        "restarts/v2.2_hydrofabric/ngen.DAILY/07"
    )
    assert schedule.expression == "cron(30 7 * * ? *)"
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_restart_init07",
            "Project": "restart_generation",
        },
        {"ResourceType": "volume", "Name": "prod_restart_init07_vol"},
    ]


def qkrig_commands(day: str) -> list[str]:
    """`day` where the template says DAILY."""
    out = f"s3://{BUCKET}/outputs/qkrig/qkrig.{day}"
    reformat = f"DATE={day} && DATE=${{DATE:0:4}}-${{DATE:4:2}}-${{DATE:6:2}}"
    return [
        f"echo --s3_bucket {BUCKET} --s3_prefix outputs/qkrig/qkrig.{day}  # parser hint;"
        f" streamcommander substitutes {day} token to yesterday's UTC date (YYYYMMDD)",
        "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/datastream-metadata /home/ec2-user/kv"
        " /home/ec2-user/exports /home/ec2-user/hydrofabric'",
        "runuser -l ec2-user -c 'rm -rf /home/ec2-user/hydrofabric/conus_nextgen.gpkg;"
        f" {{ aws s3 cp s3://{BUCKET}/resources/v2.2_hydrofabric/conus_nextgen.gpkg"
        ' /home/ec2-user/hydrofabric/conus_nextgen.gpkg --no-progress; echo "AWS_S3_CP_EXIT=$?";'
        " ls -la /home/ec2-user/hydrofabric/; file /home/ec2-user/hydrofabric/conus_nextgen.gpkg"
        " 2>&1 || true; } 2>&1 | tee /home/ec2-user/run/setup.log;"
        f" aws s3 cp /home/ec2-user/run/setup.log {out}/logs/setup.log --no-progress || true;"
        " test -s /home/ec2-user/hydrofabric/conus_nextgen.gpkg ||"
        ' { echo "FATAL: gpkg missing/empty"; exit 1; }\'',
        f"runuser -l ec2-user -c '{reformat} && docker run --rm -e DATE=${{DATE}} -e MAX_PROCS=4"
        " -v /home/ec2-user/kv:/qkrig/usgs_hourly_retrieval_logs"
        " -v /home/ec2-user/exports:/qkrig/exports"
        " -v /home/ec2-user/hydrofabric/conus_nextgen.gpkg:/qkrig/hydrofabric/conus_nextgen.gpkg:ro"
        " -u $(id -u):$(id -g) awiciroh/qkrig:2.2.0 2>&1 | tee /home/ec2-user/run/docker.log'",
        f"runuser -l ec2-user -c '{reformat} && aws s3 cp /home/ec2-user/kv"
        f' s3://{BUCKET}/outputs/qkrig/cache/kv/ --recursive --exclude "*"'
        ' --include "${DATE}_*.kv.txt" --no-progress\'',
        f"runuser -l ec2-user -c '{reformat} && rm -rf /tmp/staging && mkdir -p /tmp/staging"
        " && for h in 00 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19 20 21 22 23;"
        " do if [ -e /home/ec2-user/exports/interp_${DATE}_${h}.nc ]; then"
        " mkdir -p /tmp/staging/${h} && cp /home/ec2-user/exports/interp_${DATE}_${h}.nc"
        " /home/ec2-user/exports/variogram_${DATE}_${h}.csv /tmp/staging/${h}/; fi; done"
        f" && aws s3 sync /tmp/staging {out}/ --no-progress'",
        "runuser -l ec2-user -c 'PARQUET=/home/ec2-user/exports/catchment_csv/"
        f'qkrig_output_{day}.parquet && [ -s "$PARQUET" ] && aws s3 cp "$PARQUET"'
        f" {out}/qkrig_output_{day}.parquet --no-progress || true'",
        "runuser -l ec2-user -c '[ -s /home/ec2-user/run/docker.log ] && aws s3 cp"
        f" /home/ec2-user/run/docker.log {out}/logs/docker.log --no-progress || true'",
        "runuser -l ec2-user -c 'if [ -d /home/ec2-user/exports/plots ]; then aws s3 sync"
        f" /home/ec2-user/exports/plots {out}/plots/ --no-progress; fi'",
        'runuser -l ec2-user -c \'echo "DATASTREAM_END: $(date -u +%Y%m%d%H%M%S)"'
        " > /home/ec2-user/run/datastream-metadata/profile.txt'",
        "runuser -l ec2-user -c 'aws s3 cp /home/ec2-user/run/datastream-metadata/profile.txt"
        f" {out}/datastream-metadata/profile.txt --no-progress'",
    ]


def test_qkrig_row() -> None:
    (schedule,) = [s for s in everything() if family_of(s) == "qkrig"]

    assert schedule.name == "qkrig_init00_schedule_prod"
    assert schedule.execution["commands"] == qkrig_commands("DAILY")
    assert schedule.execution["run_options"] == {
        "ii_terminate_instance": True,
        "ii_delete_volume": True,
        "ii_check_s3": False,
        "ii_cheapo": False,
        "timeout_s": 9000,
        "n_retries_allowed": 0,
    }
    assert schedule.execution["instance_parameters"]["BlockDeviceMappings"] == [
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 100, "VolumeType": "gp3"}}
    ]
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_qkrig_daily",
            "Project": "qkrig_daily_FULLCONUS",
        },
        {"ResourceType": "volume", "Name": "prod_qkrig_daily_vol"},
    ]


def nwm_routing_commands(prefix: str) -> list[str]:
    return [
        f"echo --s3_bucket {BUCKET} --s3_prefix {prefix}"
        " --forcing_source NWM_V3_CHRTOUT_SHORT_RANGE_12  # parser hint: streamcommander reads"
        " bucket/prefix/forcing_source from here; forcing_source sets the init-hour date cutoff,"
        " and every occurrence of the full prefix string in these commands gets its date token"
        " replaced with the run date",
        "runuser -l ec2-user -c 'rm -rf /home/ec2-user/t-route /home/ec2-user/upload"
        " /home/ec2-user/run && mkdir -p /home/ec2-user/t-route /home/ec2-user/run'",
        f"runuser -l ec2-user -c 'set -o pipefail && PREFIX={prefix}"
        ' && DATE=$(echo $PREFIX | grep -oE "[0-9]{8}" | head -1) && docker run --rm'
        " -v /home/ec2-user/t-route:/routing-comparison-nwm-nextgen-troute/t-route"
        " -e START_TIME=${DATE}1200 -e FORECAST_TYPE=1 -e VPU=03W -e N_CPUS=4"
        " awiciroh/routing-only-preprocess:0.1.0 2>&1 | tee /home/ec2-user/run/preprocess.log'",
        "runuser -l ec2-user -c '[ -e /home/ec2-user/t-route/troute.yaml ]"
        " && [ -e /home/ec2-user/t-route/restart/troute_restart.nc ]"
        " || { echo FATAL: preprocess did not produce troute.yaml or restart; exit 1; }'",
        "runuser -l ec2-user -c 'set -o pipefail && docker run --rm"
        " -v /home/ec2-user/t-route:/ngen/ngen/data:rw -w /ngen/ngen/data --entrypoint python"
        " awiciroh/t-route:1.3.0 -m nwm_routing -f ./troute.yaml 2>&1"
        " | tee /home/ec2-user/run/troute.log'",
        "runuser -l ec2-user -c 'set -o pipefail && docker run --rm"
        " -v /home/ec2-user/t-route:/routing-comparison-nwm-nextgen-troute/t-route"
        " awiciroh/routing-only-postprocess:0.1.0 2>&1 | tee /home/ec2-user/run/postprocess.log'",
        "runuser -l ec2-user -c 'P=$(ls /home/ec2-user/t-route/outputs/troute/converted_*.parquet"
        ' 2>/dev/null | head -1); [ -n "$P" ] && [ $(stat -c%s "$P") -gt 100000 ]'
        " || { echo FATAL: converted parquet missing or too small; exit 1; }'",
        "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/upload/ngen-run/outputs/troute"
        " /home/ec2-user/upload/datastream-metadata"
        " && cp /home/ec2-user/t-route/outputs/troute/converted_*.parquet"
        " /home/ec2-user/upload/ngen-run/outputs/troute/"
        " && cp /home/ec2-user/t-route/outputs/troute/troute_output_*.nc"
        " /home/ec2-user/upload/ngen-run/outputs/troute/"
        " && cp /home/ec2-user/run/*.log /home/ec2-user/upload/datastream-metadata/"
        ' && echo "DATASTREAM_END: $(date -u +%Y%m%d%H%M%S)"'
        " > /home/ec2-user/upload/datastream-metadata/profile.txt'",
        "runuser -l ec2-user -c 'docker run --rm -v /home/ec2-user/upload:/mounted_dir"
        " -u $(id -u):$(id -g) zwills/merkdir /merkdir/merkdir gen -o /mounted_dir/merkdir.file"
        " /mounted_dir'",
        f"runuser -l ec2-user -c 'PREFIX={prefix}"
        f" && aws s3 sync /home/ec2-user/upload s3://{BUCKET}/$PREFIX/ --no-progress'",
    ]


def test_nwm_routing_row_is_declared_but_disabled() -> None:
    schedule = by_name("short_range_fcst12_vpu03W_schedule_nwm_routing_prod")

    assert not schedule.enabled
    assert schedule.expression == "cron(0 13 * * ? *)"
    assert schedule.execution["commands"] == nwm_routing_commands(
        "outputs/nwm_routing/v2.2_hydrofabric/ngen.DAILY/short_range/12/VPU_03W"
    )
    assert tags(schedule) == [
        {
            "ResourceType": "instance",
            "Name": "prod_nwm_routing_short_range_VPU03W_init12",
            "Project": "nwm_routing_short_range_VPU_03W",
        },
        {"ResourceType": "volume", "Name": "prod_nwm_routing_short_range_VPU03W_init12_vol"},
    ]


# --- The commands as the original's streamcommander sends them ---------------------------------
def sent(name: str, at: str) -> list[str]:
    """The commands once DAILY is resolved for a run scheduled at `at`."""
    moment = datetime.fromisoformat(at).replace(tzinfo=UTC)
    commands: list[str] = render_execution(by_name(name).input_at(at), moment)["commands"]
    return commands


def test_sent_model_command_moves_only_the_forcing_file_and_the_prefix() -> None:
    """lstm_0 short_range 06 fired at 03:00Z: cycle 6 > hour 3, so the day before;
    `-s DAILY` is the datastream CLI's own keyword and stays."""
    (command,) = sent("short_range_fcst06_vpu03W_schedule_lstm_0_prod", "2026-02-09T03:00:00Z")

    assert command == (
        "runuser -l ec2-user -c 'export SKIP_VALIDATION=True DS_TAG=1.7.1 NGIAB_TAG=v1.8.0"
        " && /home/ec2-user/datastreamcli/scripts/datastream -s DAILY -n 7"
        f" -F s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.20260208/forcing_short_range/06/"
        "ngen.t06z.short_range.forcing.f001_f018.VPU_03W.nc"
        " --FORCING_SOURCE NWM_V3_SHORT_RANGE_06 -d /home/ec2-user/outputs"
        f" -N s3://{BUCKET}/resources/v2.2_hydrofabric/bmi_configs/lstm_0/VPU_03W/"
        "ngen-bmi-configs.tar.gz"
        f" -g s3://{BUCKET}/resources/v2.2_hydrofabric/geopackages/VPU_03W/nextgen_VPU_03W.gpkg"
        f" -R https://{BUCKET}.s3.amazonaws.com/realizations/lstm/realization_rust_lstm_troute.json"
        f" --S3_BUCKET {BUCKET}"
        " --S3_PREFIX outputs/lstm_0/v2.2_hydrofabric/ngen.20260208/short_range/06/VPU_03W'"
    )


def test_sent_forcing_and_restart_commands_resolve_the_prefix_only() -> None:
    assert sent("medium_range_fcst06_forcing_schedule_prod", "2026-02-09T08:00:00Z") == (
        forcing_commands("forcings/v2.2_hydrofabric/ngen.20260209/forcing_medium_range/06")
    )
    # Restart cycle 07 fired at 07:30Z: the same day; `${DATE}` is the shell's.
    assert sent("restart_init07_schedule_prod", "2026-02-09T07:30:00Z") == restart_commands(
        "restarts/v2.2_hydrofabric/ngen.20260209/07"
    )


def test_sent_routing_only_command_keeps_the_restart_files_daily() -> None:
    """Only the prefix changes: the `-t` restart path is the datastream CLI's to resolve."""
    assert sent("short_range_fcst05_vpu03W_schedule_routing_only_prod", "2026-02-09T06:00:00Z") == [
        ROUTING_ONLY_05.replace("DAY", "ngen.20260209")
    ]


def test_sent_qkrig_commands_have_every_daily_word_as_yesterday() -> None:
    """No forcing source: every DAILY that is not part of a longer word is the day before."""
    assert sent("qkrig_init00_schedule_prod", "2026-02-09T05:30:00Z") == qkrig_commands("20260208")


def test_sent_nwm_routing_commands_resolve_every_copy_of_the_prefix() -> None:
    """The hint's forcing source gives cycle 12: at 17:00Z the same day, in all three
    commands that carry the prefix."""
    assert sent(
        "short_range_fcst12_vpu03W_schedule_nwm_routing_prod", "2026-02-09T17:00:00Z"
    ) == nwm_routing_commands(
        "outputs/nwm_routing/v2.2_hydrofabric/ngen.20260209/short_range/12/VPU_03W"
    )
