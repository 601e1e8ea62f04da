"""reuse_port=: several servers (processes) on one TCP port, through SO_REUSEPORT."""

from __future__ import annotations

import errno
import functools
import socket
from typing import TYPE_CHECKING

import anyio
import pytest

import trio_ws
from trio_ws import WebSocketRequest, WebSocketServer, serve_websocket
from trio_ws.testing import memory_stream_pair

if TYPE_CHECKING:
    from pathlib import Path

needs_reuse_port = pytest.mark.skipif(
    not hasattr(socket, "SO_REUSEPORT"), reason="this system has no SO_REUSEPORT"
)


def _named(name: str) -> trio_ws.Handler:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(name)

    return handler


@needs_reuse_port
@pytest.mark.anyio
async def test_two_servers_share_a_port() -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            first: WebSocketServer = await tg.start(
                functools.partial(serve_websocket, _named("first"), "127.0.0.1", 0, reuse_port=True)
            )
            second: WebSocketServer = await tg.start(
                functools.partial(
                    serve_websocket, _named("second"), "127.0.0.1", first.port, reuse_port=True
                )
            )
            assert second.port == first.port
            for sock in (*first.sockets, *second.sockets):
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            # The kernel spreads connections by their addresses: both get some.
            seen: set[str] = set()
            for _ in range(64):
                async with trio_ws.open_websocket_url(f"ws://127.0.0.1:{first.port}/") as ws:
                    message = await ws.get_message()
                    assert isinstance(message, str)
                    seen.add(message)
                if seen == {"first", "second"}:
                    break
            assert seen == {"first", "second"}
            tg.cancel_scope.cancel()


@needs_reuse_port
@pytest.mark.anyio
async def test_without_reuse_port_the_port_is_taken() -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            first: WebSocketServer = await tg.start(
                functools.partial(serve_websocket, _named("first"), "127.0.0.1", 0, reuse_port=True)
            )
            with pytest.raises(OSError) as info:  # noqa: PT011 (its errno is checked)
                await tg.start(
                    functools.partial(serve_websocket, _named("second"), "127.0.0.1", first.port)
                )
            assert info.value.errno == errno.EADDRINUSE
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_clear_error_where_the_system_has_no_so_reuseport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT", raising=False)
    with anyio.fail_after(10), pytest.raises(OSError, match="needs SO_REUSEPORT") as info:
        await serve_websocket(_named("x"), "127.0.0.1", 0, reuse_port=True)
    assert info.value.errno == errno.ENOPROTOOPT


@pytest.mark.anyio
async def test_functions_that_bind_nothing_refuse_reuse_port(tmp_path: Path) -> None:
    server_end, client_end = memory_stream_pair()
    with anyio.fail_after(10):
        with pytest.raises(ValueError, match="not to serve_websocket_stream"):
            await trio_ws.serve_websocket_stream(_named("x"), server_end, reuse_port=True)
        await client_end.aclose()
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        with pytest.raises(ValueError, match="not to serve_websocket_listeners"):
            await trio_ws.serve_websocket_listeners(_named("x"), [listener], reuse_port=True)
        with pytest.raises(ValueError, match="not to serve_websocket_unix"):
            await trio_ws.serve_websocket_unix(_named("x"), str(tmp_path / "sock"), reuse_port=True)
