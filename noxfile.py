"""Developer and CI tasks for trio_ws. ``python3 -m nox`` runs the default sessions (as CI does)."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

SANSIO_COVERAGE = "trio_ws/sansio/*"


@nox.session
def tests(session: nox.Session) -> None:
    """The unit and integration suite on trio and asyncio, with branch coverage.

    The sans-IO core must stay at 100% branch coverage.
    """
    session.install("-e", ".[tests]")
    session.run("coverage", "erase")
    session.run("coverage", "run", "-m", "pytest", *session.posargs)
    session.run("coverage", "combine", success_codes=[0, 1])
    session.run("coverage", "report", f"--include={SANSIO_COVERAGE}", "--fail-under=100")
    session.run("coverage", "report", "--fail-under=90")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy --strict over the package."""
    session.install("-e", ".[lint,tests]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "--strict", "trio_ws")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the demo: an echo server and a client talking to it, on the embedded default."""
    session.install("-e", ".")
    session.run("python", "examples/demo.py", *session.posargs, env={"PYTHONUNBUFFERED": "1"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with warnings as errors."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "-n", "-b", "html", "docs", "docs/_build/html")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
