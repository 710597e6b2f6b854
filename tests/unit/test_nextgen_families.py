"""Each NextGen family's shape: the key `ii_check_s3: true` checks and where the record goes.

The commands are cut down to what decides both (the script a command runs, the
parser hint, the output prefix), in the shapes the upstream templates give each
family; the date is the one DAILY resolves to at 2026-02-09T07:00Z.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from unit_helpers import make_request

from amirun.rendering import render_execution

BUCKET = "nextgen-forecasts"
AT = datetime(2026, 2, 9, 7, tzinfo=UTC)
DATASTREAM = "/home/ec2-user/datastreamcli/scripts/datastream -s DAILY -n 3"
FORCING_FILE = (
    f"-F s3://{BUCKET}/forcings/v2.2_hydrofabric/ngen.DAILY/forcing_short_range/06/"
    "ngen.t06z.short_range.forcing.f001_f018.VPU_03W.nc"
)


def upload(prefix: str) -> str:
    return f"--S3_BUCKET {BUCKET} --S3_PREFIX {prefix}"


FAMILIES: dict[str, tuple[list[str], str, str]] = {
    # name: (commands, output prefix at AT, key checked under it)
    "cfe-nom": (
        [
            f"runuser -l ec2-user -c '{DATASTREAM} {FORCING_FILE} --FORCING_SOURCE "
            "NWM_V3_SHORT_RANGE_06 "
            + upload("outputs/cfe_nom/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_03W")
            + "'"
        ],
        "outputs/cfe_nom/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_03W",
        "merkdir.file",
    ),
    "lstm_0": (
        [
            f"runuser -l ec2-user -c '{DATASTREAM} {FORCING_FILE} --FORCING_SOURCE "
            "NWM_V3_SHORT_RANGE_06 "
            + upload("outputs/lstm_0/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_03W")
            + "'"
        ],
        "outputs/lstm_0/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_03W",
        "merkdir.file",
    ),
    "routing-only": (
        [
            f"su - ec2-user -c '{DATASTREAM} --FORCING_SOURCE NWM_V3_CHRTOUT_SHORT_RANGE_06 "
            + upload("outputs/routing_only/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_03W")
            + "'"
        ],
        "outputs/routing_only/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_03W",
        "merkdir.file",
    ),
    "forcing": (
        [
            "runuser -l ec2-user -c 'mkdir -p /home/ec2-user/run/datastream-metadata'",
            "runuser -l ec2-user -c 'docker run --rm awiciroh/datastream:1.0.2 python3 "
            "configure_datastream.py --start_date DAILY --forcing_source NWM_V3_SHORT_RANGE_06 "
            f"--s3_bucket {BUCKET} --s3_prefix "
            "forcings/v2.2_hydrofabric/ngen.DAILY/forcing_short_range/06'",
        ],
        "forcings/v2.2_hydrofabric/ngen.20260209/forcing_short_range/06",
        "metadata/forcings_metadata/metadata.csv",
    ),
    "restart": (
        [
            "runuser -l ec2-user -c 'docker run --rm awiciroh/datastream:1.7.0 python3 "
            "configure_datastream.py --forcing_source NWM_V3_ANALYSIS_ASSIM_RESTART_CHRT_06 "
            f"--s3_bucket {BUCKET} --s3_prefix restarts/v2.2_hydrofabric/ngen.DAILY/06'"
        ],
        "restarts/v2.2_hydrofabric/ngen.20260209/06",
        "metadata/forcings_metadata/metadata.csv",
    ),
    "qkrig": (
        [
            f"echo --s3_bucket {BUCKET} --s3_prefix outputs/qkrig/qkrig.DAILY  # parser hint",
            "runuser -l ec2-user -c 'DATE=DAILY && docker run --rm -e DATE=$DATE "
            "awiciroh/qkrig:2.2.0'",
        ],
        "outputs/qkrig/qkrig.20260208",  # no forcing source: yesterday's date
        "metadata/forcings_metadata/metadata.csv",
    ),
    "nwm-routing": (
        [
            f"echo --s3_bucket {BUCKET} --s3_prefix "
            "outputs/nwm_routing/v2.2_hydrofabric/ngen.DAILY/short_range/06/VPU_03W "
            "--forcing_source NWM_V3_CHRTOUT_SHORT_RANGE_06  # parser hint",
            "runuser -l ec2-user -c 'docker run --rm zwills/merkdir /merkdir/merkdir gen "
            "-o /mounted_dir/merkdir.file /mounted_dir'",
        ],
        "outputs/nwm_routing/v2.2_hydrofabric/ngen.20260209/short_range/06/VPU_03W",
        # The original's rule: no command runs /scripts/datastream, whatever it uploads.
        "metadata/forcings_metadata/metadata.csv",
    ),
}


def family(name: str) -> dict[str, Any]:
    commands, _, _ = FAMILIES[name]
    request = make_request(ii_check_s3=True, ii_cheapo=True, n_retries_allowed=2)
    return request | {"commands": commands}


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_checks_its_key_and_records_beside_its_outputs(name: str) -> None:
    _, prefix, key = FAMILIES[name]
    rendered = render_execution(family(name), AT)

    assert rendered["checked_key"] == f"s3://{BUCKET}/{prefix}/{key}"
    folder = "metadata" if "forcing" in prefix else "datastream-metadata"
    assert rendered["record"][0] == f"s3://{BUCKET}/{prefix}/{folder}/execution.json"
    assert [(step["wait_s"], step["market"]) for step in rendered["relaunch_plan"]] == [
        (0, "spot"),
        (3600, "spot"),
        (7200, "on-demand"),
    ]
