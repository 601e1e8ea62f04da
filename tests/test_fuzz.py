"""The fuzz targets in the suite: every corpus input replayed, then a short atheris pass.

The corpora (``fuzz/corpus/<target>/``) hold seeds and every input a fuzzer once found to
break a target, so a fixed bug stays fixed. The atheris pass is a few seconds per target:
enough to prove that the targets run under the fuzzer and to explore a little each run;
the ``fuzz`` nox session runs them longer.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS

FUZZ = Path(__file__).parent.parent / "fuzz"

SECONDS = 3


def _corpus(target: str) -> list[Path]:
    return sorted((FUZZ / "corpus" / target).iterdir())


FUZZED = sorted(name for name in TARGETS if not name.startswith("_"))
ATHERIS = pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is not installed (no wheel for this platform): only the corpora ran",
)


@pytest.mark.parametrize("target", FUZZED)
def test_every_corpus_input_passes(target: str) -> None:
    inputs = _corpus(target)
    assert len(inputs) >= 3, f"the {target} corpus has too few seeds"
    for path in inputs:
        TARGETS[target](path.read_bytes())


def _options(crashes: Path) -> list[str]:
    return ["--seconds", str(SECONDS), "--crashes", str(crashes)]


def _run(target: str, crashes: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FUZZ / "run.py"), target, *_options(crashes)],
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )


@ATHERIS
@pytest.mark.parametrize("target", FUZZED)
def test_a_short_atheris_pass(target: str, tmp_path: Path) -> None:
    result = _run(target, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    assert f"{target}: ok" in result.stdout
    assert list(tmp_path.iterdir()) == []


@ATHERIS
def test_the_runner_reports_a_failing_target(tmp_path: Path) -> None:
    result = _run("_selftest", tmp_path)
    assert result.returncode == 1
    assert "_selftest: FAILED" in result.stdout
    (crash,) = tmp_path.iterdir()
    assert crash.name.startswith("_selftest-crash-")
    assert len(crash.read_bytes()) >= 3
