"""Print the JSON Schema of the execution JSON: `python -m amirun.schema`.

`make schema` writes it to `schema/execution.schema.json` for editors; a unit
test keeps that file equal to what the model says.
"""

from __future__ import annotations

import json
import sys

from amirun_core.execution import json_schema


def render() -> str:
    """The schema as it is committed: indented JSON ending with a newline."""
    return json.dumps(json_schema(), indent=2) + "\n"


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
