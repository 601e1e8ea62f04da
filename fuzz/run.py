"""Run the fuzz targets of ``fuzz/targets.py`` with atheris, each for a bounded time.

Usage::

    python fuzz/run.py                       # every target, 60 s each
    python fuzz/run.py --seconds 10 frames   # one target, 10 s
    python fuzz/run.py --save-corpus         # also keep new interesting inputs in fuzz/corpus

Each target runs in a process of its own (atheris instruments the core as it is imported,
and libFuzzer owns the process). It starts from the committed seeds in
``fuzz/corpus/<target>/``; the inputs it finds go to a temporary directory unless
``--save-corpus`` is given. A crash, an unexpected exception or a broken invariant stops
the target, saves the input as ``fuzz/crashes/<target>-crash-<hash>`` and makes this
script exit with status 1; the input then belongs in the corpus once fixed, so that the
suite replays it for ever.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
CRASHES = HERE / "crashes"
TARGET_NAMES = ("frames", "handshake_request", "handshake_response", "deflate")


def _worker(target: str, seconds: float, corpora: list[str], max_len: int, crashes: Path) -> None:
    """Run inside the child process: instrument the core, then hand over to libFuzzer."""
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    sys.path.insert(0, str(HERE.parent))
    with atheris.instrument_imports(include=["trio_ws.sansio", "h11"]):
        sys.path.insert(0, str(HERE))
        from targets import TARGETS  # type: ignore[import-untyped,import-not-found,unused-ignore]

    function = TARGETS[target]
    crashes.mkdir(parents=True, exist_ok=True)
    arguments = [
        sys.argv[0],
        f"-max_total_time={max(1, round(seconds))}",
        f"-max_len={max_len}",
        f"-artifact_prefix={crashes}/{target}-",
        "-print_final_stats=1",
        *corpora,
    ]
    atheris.Setup(arguments, function)
    atheris.Fuzz()


def run(target: str, seconds: float, *, save_corpus: bool, max_len: int, crashes: Path) -> int:
    """Fuzz ``target`` for ``seconds`` in a child process; its exit status."""
    seeds = CORPUS / target
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        if not seeds.is_dir():  # a target without seeds (the self-test) starts empty
            seeds = Path(scratch)
        # libFuzzer writes what it finds into the first directory it is given.
        corpora = [str(seeds), scratch] if save_corpus else [scratch, str(seeds)]
        command = [
            sys.executable,
            __file__,
            "--worker",
            target,
            "--seconds",
            str(seconds),
            "--max-len",
            str(max_len),
            "--crashes",
            str(crashes),
            *corpora,
        ]
        started = time.monotonic()
        process = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        elapsed = time.monotonic() - started
        found = len(os.listdir(scratch))
    runs = next(
        (
            line.split()[-1]
            for line in process.stderr.splitlines()
            if "number_of_executed_units" in line
        ),
        "?",
    )
    status = "ok" if process.returncode == 0 else f"FAILED (exit {process.returncode})"
    print(f"{target}: {status}, {runs} inputs in {elapsed:.0f} s, {found} new in the corpus")
    if process.returncode != 0:
        print(process.stderr[-6000:], file=sys.stderr)
    return process.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGET_NAMES))
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument("--max-len", type=int, default=4096, help="longest input in bytes")
    parser.add_argument("--save-corpus", action="store_true", help="keep new inputs in fuzz/corpus")
    parser.add_argument("--crashes", type=Path, default=CRASHES, help="where failing inputs go")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    options, rest = parser.parse_known_args(argv)
    if options.worker:
        corpora = [*options.targets, *rest]
        _worker(options.worker, options.seconds, corpora, options.max_len, options.crashes)
        return 0  # pragma: no cover - atheris.Fuzz() exits the process itself
    try:
        import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        print("atheris is not installed: pip install 'trio-ws[fuzz]'", file=sys.stderr)
        return 2
    unknown = set(options.targets) - {*TARGET_NAMES, "_selftest"}
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    failures = 0
    for target in options.targets or TARGET_NAMES:
        status = run(
            target,
            options.seconds,
            save_corpus=options.save_corpus,
            max_len=options.max_len,
            crashes=options.crashes,
        )
        failures += status != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
