"""Peak memory and wall time of `amirun schedules expand` on the worst schedule files.

Each case is written to a temporary folder and run as `amirun schedules expand
FILE` in a fresh interpreter; the table gives its exit code, wall time and the
child's peak resident memory (ru_maxrss), against the budget a schedule file
has before it is refused: about 200 MB and 5 s. "wall s" counts the whole
process, "work s" what follows `import amirun.cli` (the command itself, with the
imports it makes on the way). The baseline row is the interpreter with amirun
imported and nothing read.

    .venv/bin/python bench/hostile.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from amirun.schedules import MAX_SCHEDULE_FILE_BYTES, MAX_SCHEDULES, MAX_TEMPLATE_BYTES

TEMPLATE = {
    "commands": ["echo ${n} DAILY"],
    "run_options": {"timeout_s": 600},
    "instance_parameters": {"ImageId": "ami-0a1b2c3d4e5f67890", "InstanceType": "t4g.micro"},
}
HEAD = "template: run.json\n"


def _rows(count: int, template: str = "run.json") -> str:
    return (
        f"template: {template}\nschedules:\n"
        f"  - {{name: 'job-${{n}}', expression: 'rate(1 day)', matrix: {{n: 0..{count - 1}}}}}\n"
    )


def _doubling(folder: Path) -> str:
    lines = "".join(f"  v{i}: '${{v{i - 1}}}${{v{i - 1}}}'\n" for i in range(1, 60))
    return (
        HEAD + "values:\n  v0: '" + "x" * 1000 + "'\n" + lines
        + "schedules:\n  - {name: job, expression: 'rate(1 day)', description: '${v59}'}\n"
    )  # fmt: skip


def _alias_bomb(folder: Path) -> str:
    levels = "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10)
    )
    return "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n" + levels + _rows(1)


def _big_template(folder: Path) -> str:
    padding = "x" * (MAX_TEMPLATE_BYTES - 200)
    text = json.dumps({**TEMPLATE, "commands": ["echo ${n} " + padding]})
    (folder / "big.json").write_text(text)
    return _rows(MAX_SCHEDULES, "big.json")


#: name -> what the schedule file holds (written next to the template run.json).
CASES: dict[str, Callable[[Path], str]] = {
    "baseline (no file read)": lambda folder: "",
    f"{MAX_SCHEDULES:,} valid schedules (the most accepted)": lambda folder: _rows(MAX_SCHEDULES),
    f"{MAX_SCHEDULES + 1:,} schedules": lambda folder: _rows(MAX_SCHEDULES + 1),
    "range 0..99999999999": lambda folder: _rows(1).replace("0..0", "0..99999999999"),
    "matrix 1000 x 1000 x 1000": lambda folder: (
        HEAD + "schedules:\n  - {name: 'j${a}${b}${c}', expression: 'rate(1 day)',"
        " matrix: {a: 000..999, b: 000..999, c: 000..999}}\n"
    ),
    "values doubling 59 times": _doubling,
    "YAML alias bomb (10^9 leaves)": _alias_bomb,
    "nested [ to the size bound": lambda folder: (
        "a: " + "[" * (MAX_SCHEDULE_FILE_BYTES - 10) + "\n"
    ),
    "${-----...1} of 60,000 minuses": lambda folder: (
        HEAD + "schedules:\n  - {name: 'job-${" + "-" * 60_000 + "1}', expression: 'rate(1 day)'}\n"
    ),
    "a file past the size bound": lambda folder: "# " + "x" * MAX_SCHEDULE_FILE_BYTES + "\n",
    "a value of 5,000 digits in ${big + 1}": lambda folder: (
        HEAD + "values: {big: '" + "7" * 5000 + "'}\n"
        "schedules:\n  - {name: 'job-${big + 1}', expression: 'rate(1 day)'}\n"
    ),
    f"{MAX_TEMPLATE_BYTES:,}-byte template x {MAX_SCHEDULES:,} rows": _big_template,
    "block mapping of 3,500 values (59 KB)": lambda folder: (
        "values:\n" + "".join(f"  v{i:05d}: [{i}]\n" for i in range(3_500)) + _rows(1)
    ),
    "flow list of 21,000 scalars (63 KB)": lambda folder: (
        "big: [" + ", ".join(["x"] * 21_000) + "]\n"
    ),
}


_CHILD = """
import resource, sys, time
from amirun.cli import main
code = 0
started = time.perf_counter()
if sys.argv[1:]:
    try:
        code = main(["schedules", "expand", sys.argv[1]])
    except SystemExit as exc:
        code = exc.code
work = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("MEASURED", peak, work, file=sys.stderr)
sys.exit(code)
"""


def _run(folder: Path, text: str) -> tuple[int, float, float, float]:
    """(exit code, wall seconds, seconds after the imports, peak MB) of `schedules expand`
    on `text`, in a fresh process."""
    (folder / "run.json").write_text(json.dumps(TEMPLATE))
    path = folder / "set.yaml"
    path.write_text(text)
    command = [sys.executable, "-c", _CHILD] + ([str(path)] if text else [])
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if "Traceback" in done.stderr:
        raise SystemExit(f"a traceback:\n{done.stderr[-2000:]}")
    peak_kb, work = done.stderr.rsplit("MEASURED", 1)[1].split()[:2]
    return done.returncode, elapsed, float(work), int(peak_kb) / 1024


def main() -> None:
    print(f"{'case':<52} {'exit':>4} {'wall s':>7} {'work s':>7} {'peak MB':>8}")
    for name, make in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            code, elapsed, work, peak = _run(Path(tmp), make(Path(tmp)))
        print(f"{name:<52} {code:>4} {elapsed:>7.2f} {work:>7.2f} {peak:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
