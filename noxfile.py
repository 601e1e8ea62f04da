"""Developer and CI tasks for trio_ws. ``python3 -m nox`` runs the default sessions (as CI does)."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = [
    "lint",
    "docs",
    "tests",
    "tests_min",
    "tests_generic",
    "tests_pure",
    "fuzz",
    "autobahn",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

SANSIO_COVERAGE = "trio_ws/sansio/*"


#: The programs the suite drives for real, and the Debian package of each.
SYSTEM_PROGRAMS = {
    "tmux": "tmux",
    "redis-server": "redis-server",
    "chromium": "chromium",
    "node": "nodejs",
    "npm": "npm",
}


def _system_packages(session: nox.Session, programs: dict[str, str]) -> None:
    """Install with apt-get the Debian packages of the programs that are missing.

    Only where that is possible (root and apt-get, as in CI); elsewhere each missing program
    is named, and the tests that need it are skipped with the reason printed.
    """
    missing = sorted(
        {package for program, package in programs.items() if not shutil.which(program)}
    )
    if not missing:
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        session.run("apt-get", "update", "-qq", external=True, env=env)
        session.run("apt-get", "install", "-y", "-qq", *missing, external=True, env=env)
    else:
        session.warn(f"not installed, and cannot install them here: {' '.join(missing)}")


@nox.session
def tests(session: nox.Session) -> None:
    """The unit and integration suite on trio and asyncio, with branch coverage.

    The sans-IO core must stay at 100% branch coverage.
    """
    _system_packages(session, SYSTEM_PROGRAMS)
    session.install("-e", ".[tests,redis]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", f"--include={SANSIO_COVERAGE}", "--fail-under=100")
    session.run("coverage", "report", "--fail-under=90")


def _lowest_pins(*extras: str, skip: tuple[str, ...] = ()) -> list[str]:
    """``name==version`` for each ``name>=version`` that pyproject.toml declares.

    Read from the file, so that the minimums are written once; requirements whose marker
    does not apply to this interpreter are left out.
    """
    from packaging.requirements import Requirement

    project = nox.project.load_toml("pyproject.toml")["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    pins = []
    for line in declared:
        requirement = Requirement(line)
        if requirement.name in skip or (requirement.marker and not requirement.marker.evaluate()):
            continue
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if lowest:
            pins.append(f"{requirement.name}=={lowest[0]}")
    return pins


@nox.session
def tests_min(session: nox.Session) -> None:
    """The suite at the minimum versions pyproject.toml declares (trio, anyio, h11, the tests').

    Those minimums are claims: this session checks them. Coverage is not measured here.
    """
    _system_packages(session, SYSTEM_PROGRAMS)
    session.install("-e", ".[tests,redis]")
    session.install(*_lowest_pins("tests", "redis", skip=("coverage",)))
    session.run("python", "-m", "pip", "list")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def tests_generic(session: nox.Session) -> None:
    """The suite with every fast path off (``TRIO_WS_FAST_PATHS=0``): the generic I/O path
    over any anyio byte stream, which any change in anyio's private internals falls back to."""
    session.install("-e", ".[tests]")
    session.run("pytest", "-q", *session.posargs, env={"TRIO_WS_FAST_PATHS": "0"})


@nox.session
def tests_pure(session: nox.Session) -> None:
    """The sans-IO and frame tests with the compiled masking accelerator off
    (``TRIO_WS_NO_SPEEDUPS=1``): the pure-Python masking path every install can fall back to."""
    session.install("-e", ".[tests]")
    args = session.posargs or ["tests/sansio", "tests/property"]
    session.run("pytest", "-q", *args, env={"TRIO_WS_NO_SPEEDUPS": "1"})


@nox.session
def fuzz(session: nox.Session) -> None:
    """Coverage-guided fuzzing (atheris) of the frame parser, both handshake parsers and
    permessage-deflate, 45 s per target by default; ``-- --seconds 600 frames`` for a longer
    run of one. A failure saves its input in ``fuzz/crashes/``. See ``fuzz/run.py``."""
    session.install("-e", ".[fuzz]")
    args = session.posargs or ["--seconds", "45"]
    session.run("python", "fuzz/run.py", *args, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy --strict over the package and the tests."""
    session.install("-e", ".[lint,tests,redis]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "trio_ws")
    # The tests are typed too: they are the first users of the public types.
    session.run("mypy", "--strict", "--explicit-package-bases", "tests", "fuzz")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demo: a chat server and two clients talking through it, then a clean shutdown."""
    session.install("-e", ".")
    session.run("python", "examples/demo.py", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-E", "-W", "-n", "-b", "html", "docs", "docs/_build/html")


@nox.session
def autobahn(session: nox.Session) -> None:
    """The Autobahn Testsuite: our server and our client, on trio and on asyncio.

    The suite gets a virtual environment of its own, ``.autobahn-venv/``, made on first use
    by ``compliance/install.py`` (pinned versions from PyPI, converted to Python 3). By
    default, as in CI,
    sections 1-10 and a subset of the slow compression sections 12 and 13 run (about five
    minutes); with ``-- full`` every case runs (20 to 30 minutes) and
    ``docs/conformance.md`` is rewritten. Other arguments go to ``compliance/run.py``
    (``-- --help`` lists them).
    """
    session.install("-e", ".")
    args = list(session.posargs)
    if "full" in args:
        args = [arg for arg in args if arg != "full"]
        args.append("--full")
    elif not {"--full", "--ci", "--cases"} & set(args):
        # The subset keeps `python3 -m nox` (the README's test command) as fast as CI.
        args.append("--ci")
    session.run("python", "compliance/run.py", *args, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks beside the peers: protocol core, end to end, memory per connection.

    The peers are installed here, not by trio_ws's own dependencies. ``-- --quick`` is a
    smoke run of under two minutes; the full run takes six to ten on 2 cores. Other arguments go to
    ``benchmarks/run.py`` (``-- --help`` lists them).
    """
    session.install("-e", ".")
    session.install("websockets", "wsproto", "trio-websocket", "py-spy", "trustme")
    try:
        session.install("picows")
    except nox.command.CommandFailed:
        session.warn("picows (Cython) could not be installed: it is skipped")
    quick = ["--quick"] if "--quick" in session.posargs else []
    env = {"PYTHONUNBUFFERED": "1"}
    session.run("python", "benchmarks/bench_core.py", *quick, env=env)
    session.run("python", "benchmarks/bench_compression.py", *quick, env=env)
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)
    session.run("python", "benchmarks/memory.py", *quick, env=env)
    session.run("python", "benchmarks/hostile.py", *quick, env=env)
    session.run("python", "benchmarks/fanout.py", *quick, env=env)
    session.run("python", "benchmarks/fanout.py", "--hub", "redis", *quick, env=env)
