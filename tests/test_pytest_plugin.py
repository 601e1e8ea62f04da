"""trio_ws's pytest plugin, as a user's project sees it: run pytest on tests/plugin_project."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PROJECT = Path(__file__).parent / "plugin_project"


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(
        app=(PROJECT / "app.py").read_text(encoding="utf-8"),
        conftest=(PROJECT / "project_conftest.py").read_text(encoding="utf-8"),
        test_app=(PROJECT / "app_tests.py").read_text(encoding="utf-8"),
    )
    return pytester


def test_ws_client_fixture_on_trio_and_asyncio(project: pytest.Pytester) -> None:
    # In a subprocess: the plugin loads through its entry point, as for a user.
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=6, failed=2)
    for backend in ("trio", "asyncio"):
        result.stdout.fnmatch_lines([f"*test_chat?{backend}? PASSED*"])
        result.stdout.fnmatch_lines([f"*test_expected_to_fail?{backend}? FAILED*"])
    result.stdout.fnmatch_lines(["*assert 'welcome, stranger' == 'welcome, nobody'*"])


def test_plugin_can_be_disabled(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:trio_ws")
    result.stdout.fnmatch_lines(["*fixture 'ws_client' not found*"])
