"""An execution JSON as the workflow will run it: DAILY resolved, amirun's additions made.

`amirun render` prints it; `amirun schedules render` calls `render_execution`
for each schedule at its next times.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from amirun_core import relaunch
from amirun_core.daily import Resolution
from amirun_core.execution import ExecutionRequest, parse_execution
from amirun_core.launch import launch_parameters
from amirun_core.state import WorkflowState

#: What stands for the values a real execution fills in.
EXECUTION_ARN = "(the execution ARN)"
CLIENT_TOKEN = "(derived from the execution and the attempt)"


def resolve_at(request: ExecutionRequest, at: datetime | None) -> Resolution:
    """The resolution for reference time `at`: as if the run were due (or started) then.

    None: the file's own schedule.scheduled_time, else now.
    """
    if at is None:
        return request.resolve(datetime.now(UTC))
    if request.schedule is not None:
        due = request.schedule.model_copy(update={"scheduled_time": at})
        return request.model_copy(update={"schedule": due}).resolve(at)
    return request.resolve(at)


def render_execution(
    raw: dict[str, Any], at: datetime | None = None, *, stack_name: str = "amirun"
) -> dict[str, Any]:
    """The resolved execution as one JSON object; InvalidExecutionInput if the file is wrong."""
    request = parse_execution(raw)
    resolution = resolve_at(request, at)
    spot = request.run_options.ii_cheapo
    state = WorkflowState.model_validate(
        {
            "request": raw,
            "execution": {
                "id": EXECUTION_ARN,
                "name": "(the execution name)",
                "start_time": resolution.reference_time,
            },
            "resolved": resolution.model_dump(mode="json"),
        }
    )
    params = launch_parameters(request, state, stack_name, spot=spot)
    params["ClientToken"] = CLIENT_TOKEN
    check = resolution.output_check
    options = request.run_options
    return {
        "reference_time": resolution.reference_time.astimezone(UTC).isoformat(),
        "reference": resolution.reference,
        "daily_date": resolution.daily_date,
        "forcing_source": resolution.forcing_source,
        "cycle_hour": resolution.cycle_hour,
        "commands": request.resolved_commands(resolution),
        "output_check": {"bucket": check.bucket, "prefix": check.prefix} if check else None,
        "checked_key": check.location if check else None,
        "checked_because": check.why if check else None,
        "inputs": [item.url for item in resolution.inputs],
        "forcing_file": next(
            (item.url for item in resolution.inputs if item.source == "forcing"), None
        ),
        "record": [
            *([resolution.record.url] if resolution.record else []),
            "s3://(OutputBucketName)/runs/(the execution name)/execution.json",
        ],
        "market": "spot" if spot else "on-demand",
        "on_demand_fallback": spot,
        "relaunch_plan": relaunch.plan(options),
        "instance_parameters": params,
    }
