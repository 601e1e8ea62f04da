"""The command line (``python -m trio_ws``), driven as a user drives it: a subprocess with
input in and output out, and once through a real terminal (tmux) for the interactive mode.

The servers the client talks to run in the test's own event loop, on both backends; the
CLI subprocess runs on the backend given by ``--backend``.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "trio_ws"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


async def start_server(tg: TaskGroup, handler: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0)
    )
    return server


async def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    with anyio.fail_after(30):
        return await anyio.run_process([*CLI, *args], input=stdin, check=False, env=ENV)


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def test_a_pipe_sends_each_line_and_prints_each_message(anyio_backend: str) -> None:
    async with anyio.create_task_group() as tg:
        server = await start_server(tg, echo)
        url = f"ws://127.0.0.1:{server.port}/"
        result = await run_cli(
            url, "--backend", anyio_backend, "--wait", "0.5", stdin=b"one\ntwo\n"
        )
        tg.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"one\ntwo\n"  # no markers in a pipe
    assert b"closed: code 1000" in result.stderr


async def test_count_headers_subprotocols_and_binary(anyio_backend: str) -> None:
    async def greet(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol=request.subprotocols[-1])
        await ws.send_message(f"{request.headers['X-Token']} {ws.subprotocol}")
        await ws.send_message(b"\x00\x01raw")
        await anyio.sleep_forever()  # the client closes after --count messages

    async with anyio.create_task_group() as tg:
        server = await start_server(tg, greet)
        result = await run_cli(
            f"ws://127.0.0.1:{server.port}/",
            "--backend",
            anyio_backend,
            "-H",
            "X-Token: s3cret",
            "-p",
            "chat.v2",
            "--subprotocol",
            "chat.v1",
            "--count",
            "2",
        )
        tg.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"s3cret chat.v1\n\x00\x01raw\n"


async def test_a_close_by_the_server_is_reported_with_its_code(anyio_backend: str) -> None:
    async def close_4000(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.aclose(4000, "go away")

    async with anyio.create_task_group() as tg:
        server = await start_server(tg, close_4000)
        result = await run_cli(f"ws://127.0.0.1:{server.port}/", "--backend", anyio_backend)
        tg.cancel_scope.cancel()
    assert result.returncode == 1
    assert b"code 4000" in result.stderr
    assert b"go away" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["ws://127.0.0.1:1/"], "cannot connect to ws://127.0.0.1:1/: Connection refused"),
        (["http://example.com/"], "is not a ws:// or wss:// URL"),
        (["ws://127.0.0.1:1/", "-H", "no colon"], "invalid header 'no colon'"),
    ],
)
async def test_expected_errors_are_one_line_and_status_1(args: list[str], expected: str) -> None:
    result = await run_cli(*args)
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines  # no traceback
    assert lines[0].startswith("trio-ws: error: ")
    assert expected in lines[0]


async def test_a_rejected_handshake_names_the_status(anyio_backend: str) -> None:
    async def reject(request: WebSocketRequest) -> None:
        await request.reject(403, body=b"no")

    async with anyio.create_task_group() as tg:
        server = await start_server(tg, reject)
        result = await run_cli(f"ws://127.0.0.1:{server.port}/", "--backend", anyio_backend)
        tg.cancel_scope.cancel()
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"trio-ws: error: ws://127.0.0.1:{server.port}/: "
        "the server rejected the handshake with HTTP 403"
    )


async def test_help_and_usage_errors() -> None:
    for args in (["--help"], ["serve", "--help"]):
        result = await run_cli(*args)
        assert result.returncode == 0
        assert b"usage: trio-ws" in result.stdout
    result = await run_cli()
    assert result.returncode == 2
    assert b"the following arguments are required: url" in result.stderr


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
async def test_serve_echoes_and_stops_on_sigint_with_1001(backend: str) -> None:
    process = await anyio.open_process(
        [*CLI, "serve", "--port", "0", "--backend", backend], env=ENV
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            banner = b""
            while b"\n" not in banner:
                banner += await process.stdout.receive()
            url = banner.split()[3].decode()
            assert url.startswith("ws://127.0.0.1:")
            async with open_websocket_url(url) as ws:
                await ws.send_message("ping?")
                assert await ws.get_message() == "ping?"
                process.send_signal(signal.SIGINT)
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.code == 1001
            assert await process.wait() == 0
            rest = b""
            with anyio.move_on_after(5):
                async for chunk in process.stdout:
                    rest += chunk
            assert b"stopped" in rest
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


# --- through a real terminal --------------------------------------------------------------


def _tmux(*args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", "trio-ws-test", *args], check=True, capture_output=True, text=True
    ).stdout


def _screen_until(predicate: Any, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:  # bounded: polling the terminal until the deadline
        screen = _tmux("capture-pane", "-p", "-t", "cli")
        if predicate(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"the terminal never showed what was expected:\n{screen}")


async def test_interactive_session_in_a_terminal() -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (nox installs it with apt-get where it can)")

    async def talk(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(f"you said {message!s}")
            await ws.send_message(bytes(range(40)))

    async with anyio.create_task_group() as tg:
        server = await start_server(tg, talk)
        # The pane outlives the client, so that its last lines can be read.
        command = " ".join([*CLI, f"ws://127.0.0.1:{server.port}/", "; sleep 30"])
        await anyio.to_thread.run_sync(
            functools.partial(
                _tmux, "new-session", "-d", "-s", "cli", "-x", "200", "-y", "20", command
            )
        )
        try:
            await anyio.to_thread.run_sync(_screen_until, lambda s: "connected to" in s)
            await anyio.to_thread.run_sync(_tmux, "send-keys", "-t", "cli", "hello", "Enter")
            screen = await anyio.to_thread.run_sync(
                _screen_until, lambda s: "(binary, 40 bytes)" in s
            )
            assert "< you said hello" in screen
            assert "00 01 02 03" in screen
            assert screen.rstrip().endswith("...")  # 32 bytes shown of 40
            await anyio.to_thread.run_sync(_tmux, "send-keys", "-t", "cli", "C-d")
            screen = await anyio.to_thread.run_sync(_screen_until, lambda s: "closed" in s)
            assert "* closed: code 1000" in screen
        finally:
            # Blocking, and that is fine: it must run even while the test is cancelled.
            subprocess.run(["tmux", "-L", "trio-ws-test", "kill-server"], capture_output=True)  # noqa: ASYNC221
            tg.cancel_scope.cancel()


# --- the chat -----------------------------------------------------------------------------


def _fetch(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_the_chat_page_is_package_data() -> None:
    page = resources.files("trio_ws").joinpath("chat", "index.html").read_text("utf-8")
    assert "new WebSocket(" in page
    # Nothing loaded from elsewhere: the page works with no internet. Its icon is inline,
    # so that browsers do not ask the server for /favicon.ico (a 404 in its log).
    assert "src=" not in page
    assert page.count("href=") == page.count('<link rel="icon" href="data:,">') == 1


async def test_serve_chat_serves_its_page_and_rooms(anyio_backend: str) -> None:
    # The server runs on the same backend as the test's clients.
    process = await anyio.open_process(
        [*CLI, "serve", "--chat", "--port", "0", "--backend", anyio_backend], env=ENV
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(20):
            banner = b""
            while b"\n" not in banner:
                banner += await process.stdout.receive()
            assert banner.startswith(b"chat server on http://127.0.0.1:")
            base = banner.split()[3].decode()
            status, content_type, body = await anyio.to_thread.run_sync(_fetch, base)
            assert (status, content_type) == (200, "text/html; charset=utf-8")
            assert body == resources.files("trio_ws").joinpath("chat", "index.html").read_bytes()
            assert (await anyio.to_thread.run_sync(_fetch, base + "healthz"))[2] == b"ok\n"
            ws_url = "ws" + base.removeprefix("http") + "ws"
            async with (
                open_websocket_url(ws_url + "?name=ann&room=r1") as ann,
                open_websocket_url(ws_url + "?name=bob&room=r1") as bob,
                open_websocket_url(ws_url + "?name=eve&room=r2") as eve,
            ):
                assert json.loads(await ann.get_message()) == {"type": "join", "name": "ann"}
                assert json.loads(await ann.get_message()) == {"type": "join", "name": "bob"}
                assert json.loads(await bob.get_message()) == {"type": "join", "name": "bob"}
                assert json.loads(await eve.get_message()) == {"type": "join", "name": "eve"}
                await ann.send_message("hi bob")
                expected = {"type": "message", "name": "ann", "text": "hi bob"}
                assert json.loads(await bob.get_message()) == expected
                assert json.loads(await ann.get_message()) == expected
                await eve.send_message("anyone?")  # another room: ann and bob do not see it
                assert json.loads(await eve.get_message())["text"] == "anyone?"
                await bob.aclose()
                assert json.loads(await ann.get_message()) == {"type": "leave", "name": "bob"}
                process.send_signal(signal.SIGINT)
                with pytest.raises(ConnectionClosed) as caught:
                    await ann.get_message()
                assert caught.value.code == 1001
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
