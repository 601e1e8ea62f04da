"""The sans-IO core must not import any I/O library (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import trio_ws

PACKAGE_DIR = Path(trio_ws.__file__).parent

# ``import trio_ws.sansio`` would first run trio_ws/__init__.py, which loads the I/O layer.
# So the probe registers an empty ``trio_ws`` package pointing at the real directory and
# imports only the core below it.
PROBE = """
import sys, types
parent = types.ModuleType("trio_ws")
parent.__path__ = [{package_dir!r}]
sys.modules["trio_ws"] = parent
import trio_ws.sansio
import trio_ws.sansio.extensions.permessage_deflate
io_modules = {{"trio", "anyio", "asyncio", "sniffio", "socket", "ssl", "selectors"}}
bad = sorted(
    name for name in sys.modules
    if name.split(".")[0] in io_modules
    or (name.startswith("trio_ws.") and not name.startswith("trio_ws.sansio"))
)
print(",".join(bad))
"""


def test_sansio_core_imports_no_io_library() -> None:
    probe = PROBE.format(package_dir=str(PACKAGE_DIR))
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_probe_detects_an_io_import() -> None:
    """The probe itself must be able to fail: importing the I/O layer is reported."""
    probe = PROBE.format(package_dir=str(PACKAGE_DIR)).replace(
        "import trio_ws.sansio\n", "import trio_ws.sansio\nimport anyio\n", 1
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "anyio" in result.stdout
