"""Plain HTTP requests on the WebSocket port: ``serve_websocket(..., allow_plain_http=True)``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import (
    LocalProtocolError,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from trio_ws import WebSocketServer


def plain(method: str, target: str) -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: probe\r\n\r\n".encode()


async def start_server(tg: TaskGroup, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


async def exchange(server: WebSocketServer, request: bytes) -> bytes:
    """Send ``request`` on a fresh TCP connection; return everything until EOF."""
    data = b""
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request)
        while True:
            try:
                data += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return data


def split(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def health(request: WebSocketRequest) -> None:
    if not request.is_websocket:
        if request.path == "/healthz":
            await request.reject(200, headers={"Content-Type": "text/plain"}, body="OK\n")
        return  # anything else: trio_ws answers 426
    ws = await request.accept()
    await ws.send_message(f"websocket {request.resource}")


@pytest.mark.anyio
async def test_plain_get_reaches_the_handler_and_gets_its_200() -> None:
    seen: list[tuple[str, bool, str, str, str | None]] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append(
            (
                request.method,
                request.is_websocket,
                request.path,
                request.query,
                request.headers.get("User-Agent"),
            )
        )
        assert request.subprotocols == ()
        await health(request)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, allow_plain_http=True)
            status, headers, body = split(await exchange(server, plain("GET", "/healthz?deep=1")))
            assert status == "HTTP/1.1 200 OK"
            assert headers["content-type"] == "text/plain"
            assert headers["content-length"] == "3"
            assert body == b"OK\n"
            # WebSocket clients are served on the same port as usual.
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/chat?x=1") as ws:
                assert await ws.get_message() == "websocket /chat?x=1"
            tg.cancel_scope.cancel()
    assert seen[0] == ("GET", False, "/healthz", "deep=1", "probe")
    assert seen[1][:2] == ("GET", True)


@pytest.mark.anyio
async def test_head_gets_the_headers_without_the_body() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, health, allow_plain_http=True)
            status, headers, body = split(await exchange(server, plain("HEAD", "/healthz")))
            assert status == "HTTP/1.1 200 OK"
            assert headers["content-length"] == "3"
            assert body == b""
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_unanswered_plain_request_gets_426_with_upgrade() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, health, allow_plain_http=True)
            status, headers, body = split(await exchange(server, plain("GET", "/elsewhere")))
            assert status == "HTTP/1.1 426 Upgrade Required"
            assert headers["upgrade"] == "websocket"
            assert "upgrade" in headers["connection"].lower()
            assert b"WebSocket" in body
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_accepting_a_plain_request_is_a_local_protocol_error() -> None:
    errors: list[Exception] = []

    async def handler(request: WebSocketRequest) -> None:
        try:
            await request.accept()
        except LocalProtocolError as exc:
            errors.append(exc)
            assert not request.answered  # nothing was sent: the request can still be answered
            await request.reject(404, body=b"no\n")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, allow_plain_http=True)
            status, _, body = split(await exchange(server, plain("GET", "/")))
            assert status == "HTTP/1.1 404 Not Found"
            assert body == b"no\n"
            tg.cancel_scope.cancel()
    assert len(errors) == 1
    assert "reject()" in str(errors[0])


@pytest.mark.anyio
async def test_off_by_default_the_handler_never_sees_plain_requests() -> None:
    calls: list[WebSocketRequest] = []

    async def handler(request: WebSocketRequest) -> None:
        calls.append(request)  # pragma: no cover

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            status, headers, _ = split(await exchange(server, plain("GET", "/healthz")))
            assert status == "HTTP/1.1 426 Upgrade Required"
            assert headers["upgrade"] == "websocket"
            status, _, _ = split(await exchange(server, plain("HEAD", "/healthz")))
            assert status == "HTTP/1.1 405 Method Not Allowed"
            tg.cancel_scope.cancel()
    assert calls == []


@pytest.mark.anyio
async def test_plain_request_handler_crash_gets_500() -> None:
    async def handler(request: WebSocketRequest) -> None:
        raise RuntimeError("boom")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, allow_plain_http=True)
            status, _, _ = split(await exchange(server, plain("GET", "/")))
            assert status == "HTTP/1.1 500 Internal Server Error"
            tg.cancel_scope.cancel()
