"""Hatch build hook: compile the optional masking accelerator, ``trio_ws/sansio/_speedups.c``.

The extension is built when it can be (CPython, a working C compiler and Python's headers)
and skipped with a warning when it cannot: the install never fails for it, and trio_ws then
masks in pure Python (``trio_ws.sansio.SPEEDUPS`` says which is in use). Setting
``TRIO_WS_NO_SPEEDUPS=1`` at install time skips the build on purpose.

A regular wheel gets the compiled module beside the sources and a platform tag. An editable
install (``pip install -e .``, as nox and CI use) imports the source tree itself, so the
module is built in place there, in ``trio_ws/sansio/`` (git ignores it); rebuilding after an
edit of the C file is ``pip install -e .`` again.

setuptools does the compiling (a build-time dependency only, see pyproject.toml): it knows
every platform's compiler and flags, which a hand-written compiler call would not.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "trio_ws/sansio/_speedups.c"
MODULE = "trio_ws.sansio._speedups"


def _skip_reason() -> str | None:
    """Why the extension is not even tried here, or ``None``."""
    value = os.environ.get("TRIO_WS_NO_SPEEDUPS", "").strip().lower()
    if value not in {"", "0", "false", "no"}:
        return "TRIO_WS_NO_SPEEDUPS is set"
    if sys.implementation.name != "cpython":
        return f"{sys.implementation.name} is not CPython"
    compiler = sysconfig.get_config_var("CC")
    if os.name == "posix" and compiler:
        program = os.environ.get("CC", compiler).split()[0]
        if shutil.which(program) is None:
            return f"no C compiler ({program} not found)"
    return None


class SpeedupsBuildHook(BuildHookInterface):
    """Builds ``trio_ws.sansio._speedups`` into wheels and editable installs when it can."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Compile the extension, or warn and leave the package pure Python."""
        if self.target_name != "wheel":
            return
        reason = _skip_reason()
        if reason is not None:
            self._warn(reason)
            return
        self._tmp = tempfile.mkdtemp(prefix="trio_ws-build-")
        try:
            built = self._compile(Path(self._tmp))
        except Exception as exc:  # a compiler or header problem must not fail the install
            self._warn(f"{type(exc).__name__}: {exc}")
            return
        target = f"trio_ws/sansio/{built.name}"
        if version == "editable":
            shutil.copyfile(built, Path(self.root) / target)
        else:
            build_data["force_include"][str(built)] = target
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        self.app.display_info(f"trio_ws: built the masking accelerator ({target})")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the temporary build directory."""
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    def clean(self, versions: list[str]) -> None:
        """``hatch clean``: remove the modules built in place."""
        for path in (Path(self.root) / "trio_ws" / "sansio").glob("_speedups.*"):
            if path.suffix in {".so", ".pyd"}:
                path.unlink()

    def _compile(self, out: Path) -> Path:
        from setuptools import Distribution, Extension

        extension = Extension(MODULE, [SOURCE])
        distribution = Distribution({"name": "trio-ws", "ext_modules": [extension]})
        command: Any = distribution.get_command_obj("build_ext")
        command.build_lib = str(out / "lib")
        command.build_temp = str(out / "obj")
        previous = os.getcwd()
        # setuptools wants source paths relative to the working directory.
        os.chdir(self.root)
        try:
            command.ensure_finalized()
            command.run()
        finally:
            os.chdir(previous)
        (output,) = command.get_outputs()
        return Path(output)

    def _warn(self, reason: str) -> None:
        self.app.display_warning(
            f"trio_ws: the optional masking accelerator is not built ({reason}); "
            "masking stays in pure Python, which works everywhere but is slower on large "
            "messages."
        )
