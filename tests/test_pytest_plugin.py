"""trio_ws's pytest plugin, as a user's project sees it: run pytest on tests/plugin_project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

if TYPE_CHECKING:
    from trio_ws import WebSocketRequest
    from trio_ws.pytest_plugin import WebSocketClientFactory

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


async def _echo_headers(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(f"{request.path} {request.headers.get('x-test', '-')}")


@pytest.mark.anyio
async def test_ws_client_in_our_own_suite(ws_client: WebSocketClientFactory) -> None:
    # The plugin is loaded here too, by its entry point.
    with anyio.fail_after(5):
        async with ws_client(_echo_headers, "/room", headers=[("X-Test", "1")]) as ws:
            assert await ws.get_message() == "/room 1"
        async with ws_client(_echo_headers, compression=None) as ws:
            assert await ws.get_message() == "/ -"


def test_ws_client_takes_headers_once(ws_client: WebSocketClientFactory) -> None:
    with pytest.raises(TypeError, match="not both"):
        ws_client(_echo_headers, headers={"A": "1"}, extra_headers={"B": "2"})
