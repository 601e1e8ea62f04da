"""The trio_ws client against the ``websockets`` package's asyncio server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import anyio
import pytest

from trio_ws import ConnectionClosedError, ConnectionClosedOK, open_websocket_url

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

websockets_server = pytest.importorskip("websockets.asyncio.server")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # websockets' server runs on asyncio only


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _close_4001(ws: ServerConnection) -> None:
    await ws.send("bye")
    await ws.close(4001, "app says bye")


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_echo_with_websockets_server(compression: Literal["deflate"] | None) -> None:
    with anyio.fail_after(10):
        async with websockets_server.serve(_echo, "127.0.0.1", 0, compression=compression) as srv:
            port = srv.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}/path"
            async with open_websocket_url(url, compression=compression) as ws:
                assert bool(ws.extensions) == (compression is not None)
                for size in (0, 10, 125, 126, 65535, 65536, 500_000):
                    await ws.send_message("t" * size)
                    assert await ws.get_message() == "t" * size
                    await ws.send_message(b"\xff" * size)
                    assert await ws.get_message() == b"\xff" * size
                await ws.send_message_parts([b"frag", b"mented"])
                assert await ws.get_message() == b"fragmented"
                assert await ws.ping(b"ping!") >= 0
                for index in range(100):  # many small messages coalesce into few writes
                    await ws.send_message(str(index))
                assert [await ws.get_message() for _ in range(100)] == [str(i) for i in range(100)]
            assert ws.close_code == 1000


async def test_server_initiated_close() -> None:
    with anyio.fail_after(10):
        async with websockets_server.serve(_close_4001, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]
            async with open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                assert await ws.get_message() == "bye"
                with pytest.raises(ConnectionClosedError) as info:
                    await ws.get_message()
                assert (info.value.code, info.value.reason) == (4001, "app says bye")


async def test_normal_server_close_ends_iteration() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("only")

    with anyio.fail_after(10):
        async with websockets_server.serve(handler, "127.0.0.1", 0) as srv:
            port = srv.sockets[0].getsockname()[1]
            async with open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                assert [message async for message in ws] == ["only"]
                with pytest.raises(ConnectionClosedOK):
                    await ws.send_message("late")
