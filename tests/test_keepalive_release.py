"""Keepalive pings release the zlib state of idle compressed connections, over TCP."""

from __future__ import annotations

import contextlib
import functools
import random
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.handlers import recording_echo
from trio_ws import ConnectionClosed, open_websocket_url, serve_websocket
from trio_ws.sansio.extensions.permessage_deflate import PerMessageDeflate

if TYPE_CHECKING:
    from trio_ws import WebSocketConnection, WebSocketRequest

pytestmark = pytest.mark.anyio

#: Text that compresses only by reference to an earlier copy of itself.
TEXT = random.Random(20).randbytes(1500).hex()


def deflate_of(ws: WebSocketConnection) -> PerMessageDeflate:
    (extension,) = ws.extensions
    assert isinstance(extension, PerMessageDeflate)
    return extension


def holds(ws: WebSocketConnection) -> tuple[bool, bool]:
    """Whether the connection holds a (compressor, decompressor) right now."""
    extension = deflate_of(ws)
    return extension._compressor is not None, extension._decompressor is not None


async def wait_released(ws: WebSocketConnection) -> None:
    """Until both zlib objects are gone (the caller bounds the time)."""
    # Polling: a release is silent by design, there is nothing to wait on.
    while holds(ws) != (False, False):  # noqa: ASYNC110
        await anyio.sleep(0.01)


@pytest.mark.parametrize("side", ["server", "client"])
async def test_an_idle_connection_sheds_its_zlib_state_and_goes_on(side: str) -> None:
    """The server's keepalive scheduler or the client's keepalive task releases; the other
    side, without keepalive, keeps its state: both stay in step."""
    server_sides: list[WebSocketConnection] = []
    echo = recording_echo(server_sides)

    # A release needs a whole interval without messages: 0.1 s leaves the checks right
    # after each message enough time.
    server_interval = 0.1 if side == "server" else None
    client_interval = 0.1 if side == "client" else None
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await tg.start(
                functools.partial(
                    serve_websocket, echo, "127.0.0.1", 0, ping_interval=server_interval
                )
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, ping_interval=client_interval) as client:
                carried = b""
                for round_ in range(3):
                    await client.send_message(TEXT[round_:])
                    assert await client.get_message() == TEXT[round_:]
                    (server_ws,) = server_sides  # surely there after an echo
                    releasing, keeping = (server_ws, client)
                    if side == "client":
                        releasing, keeping = keeping, releasing
                    assert holds(releasing) == (True, True)  # rebuilt for the message
                    await wait_released(releasing)
                    assert holds(keeping) == (True, True)
                    carried += TEXT[round_:].encode()
                    extension = deflate_of(releasing)
                    # Released: each direction keeps exactly its last window.
                    sent, received = extension._sent_history, extension._received_history
                    assert sent == received == carried[-4096:]
                # A binary message goes through the windows kept for the text ones.
                await client.send_message(TEXT.encode())
                assert await client.get_message() == TEXT.encode()
            tg.cancel_scope.cancel()


async def test_no_keepalive_no_release() -> None:
    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send_message(message)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await tg.start(
                functools.partial(serve_websocket, echo, "127.0.0.1", 0, ping_interval=None)
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, ping_interval=None) as client:
                await client.send_message(TEXT)
                assert await client.get_message() == TEXT
                await anyio.sleep(0.2)
                assert holds(client) == (True, True)
            tg.cancel_scope.cancel()


async def test_keepalive_without_compression() -> None:
    server_sides: list[WebSocketConnection] = []
    echo = recording_echo(server_sides)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await tg.start(
                functools.partial(
                    serve_websocket, echo, "127.0.0.1", 0, ping_interval=0.05, compression=None
                )
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, ping_interval=0.05, compression=None) as client:
                await anyio.sleep(0.2)  # several pings on each side, no extension to ask
                await client.send_message(TEXT)
                assert await client.get_message() == TEXT
                assert client.extensions == server_sides[0].extensions == ()
                assert client.latency is not None
                assert server_sides[0].latency is not None
            tg.cancel_scope.cancel()
