"""What a run's instance used: CPU (and memory, where the AMI publishes it) over the command.

Read at cleanup from CloudWatch. `CPUUtilization` comes with EC2's basic
monitoring, no agent, in 5-minute periods; `mem_used_percent` only when the AMI
runs the CloudWatch agent (namespace `CWAgent`) with the instance id as its one
appended dimension (`"append_dimensions": {"InstanceId": "${aws:InstanceId}"}`;
a metric with more dimensions is a different metric). The span is the command's,
widened to whole periods, so a command shorter than a period still gets the
period it ran in. Nothing here fails a cleanup: a metric that cannot be read
is left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from amirun_core import aws

#: Basic monitoring's period (detailed monitoring has 1-minute points; 5 reads both).
PERIOD_S = 300
CPU = ("AWS/EC2", "CPUUtilization")
MEMORY = ("CWAgent", "mem_used_percent")


class Utilisation(BaseModel):
    """Peak and average CPU (percent), peak memory (percent, None without the agent)."""

    cpu_max: float | None = None
    cpu_avg: float | None = None
    mem_max: float | None = None


def _span(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    first = int((start - epoch).total_seconds()) // PERIOD_S * PERIOD_S
    last = -(-int((end - epoch).total_seconds()) // PERIOD_S) * PERIOD_S
    return epoch + timedelta(seconds=first), epoch + timedelta(seconds=max(last, first + PERIOD_S))


def _statistics(
    cloudwatch: Any,
    metric: tuple[str, str],
    dimensions: list[dict[str, str]],
    span: tuple[datetime, datetime],
) -> tuple[float | None, float | None]:
    namespace, name = metric
    try:
        points = cloudwatch.get_metric_statistics(
            Namespace=namespace,
            MetricName=name,
            Dimensions=dimensions,
            StartTime=span[0],
            EndTime=span[1],
            Period=PERIOD_S,
            Statistics=["Maximum", "Average"],
        )["Datapoints"]
    except ClientError as exc:
        aws.raise_if_throttled(exc, "GetMetricStatistics")
        return None, None
    if not points:
        return None, None
    peak = max(float(p["Maximum"]) for p in points)
    average = sum(float(p["Average"]) for p in points) / len(points)
    return round(peak, 2), round(average, 2)


def instance_utilisation(
    cloudwatch: Any, instance_id: str, start: datetime, end: datetime
) -> Utilisation:
    """CPU max and average, and memory max, of `instance_id` from `start` to `end`."""
    span = _span(start, end)
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    cpu_max, cpu_avg = _statistics(cloudwatch, CPU, dimensions, span)
    mem_max, _ = _statistics(cloudwatch, MEMORY, dimensions, span)
    return Utilisation(cpu_max=cpu_max, cpu_avg=cpu_avg, mem_max=mem_max)
