"""``max_fragments`` over real sockets: each side refuses a message in too many frames."""

from __future__ import annotations

import functools

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)

pytestmark = pytest.mark.anyio


async def test_the_server_closes_with_1009_past_its_max_fragments() -> None:
    closes: list[int | None] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        assert await ws.get_message() == b"x" * 8
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            closes.append(exc.code)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                functools.partial(serve_websocket, handler, "127.0.0.1", 0, max_fragments=8)
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, compression=None) as ws:
                await ws.send_message_parts([b"x"] * 8)  # at the limit: accepted
                await ws.send_message_parts([b"x"] * 9)
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
            assert caught.value.code == 1009
            tg.cancel_scope.cancel()
    assert closes == [1009]


async def test_the_client_closes_with_1009_past_its_max_fragments() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message_parts([b""] * 5)  # empty fragments count too
        await ws.send_message_parts([b""] * 6)
        with pytest.raises(ConnectionClosed):
            await ws.get_message()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                functools.partial(serve_websocket, handler, "127.0.0.1", 0)
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, max_fragments=5) as ws:
                assert await ws.get_message() == b""
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
            assert caught.value.code == 1009
            assert "max_fragments" in (caught.value.reason or "")
            tg.cancel_scope.cancel()
