"""The emulator is an extra: `pip install 'amirun[rehearse]'` for `amirun run` only.

Its absence is made real by hiding its modules from the import system
(`sys.modules[name] = None` makes any import of them fail, as if not installed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from amirun.cli import main
from amirun.commands.run import REHEARSE_MODULES

EXECUTION = Path(__file__).resolve().parents[2] / "events" / "execution.json"


@pytest.mark.parametrize(
    "flags", [[], ["--agent-delay", "1", "--command-duration", "1", "--time-scale", "0.5"]]
)
def test_run_without_the_extra_says_so_in_one_line(
    flags: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)

    code = main(["run", str(EXECUTION), *flags])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "amirun: run needs the embedded AWS emulator (moto not installed):"
        " pip install 'amirun[rehearse]'"
    ]


def test_the_cli_for_real_stacks_needs_nothing_of_the_extra() -> None:
    """In a fresh interpreter where the extra's modules cannot be imported."""
    hide = "; ".join(f"sys.modules[{name!r}] = None" for name in REHEARSE_MODULES)
    probe = (
        f"import sys; {hide}\n"
        "import amirun.commands.remote\n"
        "from amirun.cli import main\n"
        f"sys.exit(main(['validate', {str(EXECUTION)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout
