"""The Autobahn installer's conversion logic (no network), and no path outside the repository."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType

REPO = Path(__file__).resolve().parent.parent


def load_install() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install", REPO / "compliance" / "install.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


install = load_install()

# A Python 2 file as the suite's case/ modules are written: a plain literal holds bytes.
FIXTURE = (
    "# coding=utf-8\n"
    "a = 'ascii only'\n"
    "b = '\\xce\\xba\\xff'\n"
    "c = 'κ'\n"
    "d = u'κ'\n"
    "e = r'\\xff'\n"
    "f = '''multi\n\\x80'''\n"
)


def test_non_ascii_byte_literals_become_latin1_str_of_the_same_bytes() -> None:
    converted, count = install.convert_literals(FIXTURE)
    assert count == 3
    names: dict[str, object] = {}
    exec(converted, names)
    assert names["a"] == "ascii only"
    assert names["b"] == b"\xce\xba\xff".decode("latin-1")
    assert names["c"] == "κ".encode().decode("latin-1")
    assert names["d"] == "κ"  # unicode literals are text already
    assert names["e"] == "\\xff"
    assert names["f"] == "multi\n\x80"


def test_an_edit_applies_exactly_the_expected_number_of_times() -> None:
    assert install.apply_edit("x = a / b\n", "f.py", "a / b", "a // b", 1) == "x = a // b\n"
    with pytest.raises(install.InstallError, match=r"upstream changed: f\.py.*found 0"):
        install.apply_edit("x = a // b\n", "f.py", "a / b", "a // b", 1)
    with pytest.raises(install.InstallError, match="found 2"):
        install.apply_edit("a / b; a / b\n", "f.py", "a / b", "a // b", 1)


def test_hex_pattern_handles_str_and_bytes() -> None:
    (_, pattern, replacement, _) = next(p for p in install.CASE_PATTERNS if "b2a_hex" in p[1])
    import re

    code = re.sub(pattern, replacement, "h = binascii.b2a_hex(self.payload[:4])\n")
    for payload in ("\xff\x00ab", b"\xff\x00ab"):
        obj = type("O", (), {"payload": payload})()
        scope: dict[str, object] = {"self": obj}
        exec(code, scope)
        assert scope["h"] == "ff006162"


def test_the_marker_says_when_a_venv_is_current(tmp_path: Path) -> None:
    assert not install.is_installed(tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "wstest").write_text("")
    (tmp_path / install.MARKER).write_text('{"recipe": "another"}')
    assert not install.is_installed(tmp_path)
    import json

    (tmp_path / install.MARKER).write_text(json.dumps(install.recipe()))
    assert install.is_installed(tmp_path)


def test_a_directory_that_is_not_a_venv_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep")
    with pytest.raises(install.InstallError, match="not a virtual environment"):
        install.ensure(tmp_path)
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_nothing_in_the_repository_reaches_outside_it() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    this = Path(__file__).relative_to(REPO).as_posix()
    needles = ("../shared", "shared/conformance", "TRIO_WS_CONFORMANCE_DIR", "setup-autobahn.sh")
    hits = []
    for name in files:
        path = REPO / name
        if name == this or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{name}: {needle}" for needle in needles if needle in text]
    assert hits == [], sys.version
