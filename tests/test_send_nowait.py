"""send_message_nowait, send_encoded_nowait, buffered_amount and messages_waiting, through public
behaviour."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio
import pytest
import trio.testing

from trio_ws import (
    ConnectionClosed,
    LocalProtocolError,
    WebSocketConnection,
    WebSocketRequest,
    WouldBlock,
)
from trio_ws.sansio import Frame, Opcode, serialize_frame
from trio_ws.testing import open_websocket_in_memory
from trio_ws.testing._pair import open_connection_pair

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.streams.memory import MemoryObjectSendStream

    from trio_ws import Handler, ServerOptions

pytestmark = pytest.mark.anyio

HIGH_WATER = 4096


def _server_side(
    accepted: MemoryObjectSendStream[WebSocketConnection], done: anyio.Event
) -> Handler:
    """A handler that hands its connection to the test and stays until ``done``."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await accepted.send(ws)
        await done.wait()

    return handler


async def test_send_message_nowait_queues_without_waiting() -> None:
    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    async with open_websocket_in_memory(echo) as ws:
        ws.send_message_nowait("one")
        ws.send_message_nowait(b"two")
        ws.send_message_nowait(b"three", text=True)
        assert [await ws.get_message() for _ in range(3)] == ["one", b"two", "three"]


async def test_send_message_nowait_raises_would_block_above_high_water() -> None:
    """A peer that never reads: the buffer fills, then nothing more is queued."""
    send, accepted = anyio.create_memory_object_stream[WebSocketConnection](2)
    done = anyio.Event()
    handler = _server_side(send, done)
    options: ServerOptions = {"write_high_water": HIGH_WATER, "ping_interval": None}
    with send, accepted:
        async with open_websocket_in_memory(
            handler, capacity=1024, server_options=options, compression=None
        ) as client:
            server = await accepted.receive()
            sent = 0
            for _ in range(1000):  # bounded: far more than the buffer and the pipe hold
                try:
                    server.send_message_nowait(b"x" * 1000)
                except WouldBlock:
                    break
                sent += 1
            else:
                pytest.fail("the write buffer never filled up")
            assert HIGH_WATER < server.buffered_amount <= HIGH_WATER + 1000 + 14
            before = server.buffered_amount
            with pytest.raises(WouldBlock):
                server.send_message_nowait(b"y")
            assert server.buffered_amount == before  # nothing was queued
            # Once the client reads, the buffer drains and every message arrives, in order.
            for _ in range(sent):
                assert await client.get_message() == b"x" * 1000
            assert server.buffered_amount == 0
            server.send_message_nowait(b"room again")
            assert await client.get_message() == b"room again"
            done.set()


async def test_send_encoded_nowait_sends_one_frame_to_many() -> None:
    send, accepted = anyio.create_memory_object_stream[WebSocketConnection](2)
    done = anyio.Event()
    handler = _server_side(send, done)
    frame = serialize_frame(Frame(Opcode.TEXT, b"to all", fin=True))
    with send, accepted:
        async with (
            open_websocket_in_memory(handler) as first,
            open_websocket_in_memory(handler) as second,
        ):
            connections = [await accepted.receive(), await accepted.receive()]
            # With permessage-deflate negotiated (the default), a plain frame is allowed.
            assert connections[0].extensions
            for ws in connections:
                ws.send_encoded_nowait(frame)
            assert await first.get_message() == "to all"
            assert await second.get_message() == "to all"
            with pytest.raises(LocalProtocolError):
                first.send_encoded_nowait(frame)  # a client masks every frame
            done.set()


async def test_nowait_on_a_closed_connection_raises_connection_closed() -> None:
    async def close_at_once(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.aclose(4000, "bye")

    async with open_websocket_in_memory(close_at_once) as ws:
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        with pytest.raises(ConnectionClosed) as info:
            ws.send_message_nowait("late")
        assert info.value.code == 4000
        assert ws.buffered_amount == 0


async def test_nowait_during_a_fragmented_message_raises_would_block() -> None:
    release = anyio.Event()
    waiting = anyio.Event()

    async def parts() -> AsyncIterator[str]:
        yield "first "
        waiting.set()  # the first fragment is pending: the message has started
        await release.wait()
        yield "last"

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    async with open_websocket_in_memory(echo) as ws, anyio.create_task_group() as tg:
        tg.start_soon(ws.send_message_parts, parts())
        await waiting.wait()
        with pytest.raises(WouldBlock):
            ws.send_message_nowait("between")
        release.set()
        assert await ws.get_message() == "first last"
        ws.send_message_nowait("after")
        assert await ws.get_message() == "after"


async def test_messages_waiting_counts_what_get_message_nowait_can_take(
    anyio_backend_name: str,
) -> None:
    async with open_connection_pair() as (client, server):
        assert server.messages_waiting == 0
        for word in ("one", "two", "three"):
            client.send_message_nowait(word)
        with anyio.fail_after(5):
            # Polling: the count has no event of its own to wait for; bounded by the timeout.
            while server.messages_waiting < 3:  # noqa: ASYNC110
                await anyio.sleep(0.001)
        # On trio, also check that draining never yields (asyncio has no such check).
        no_yield = (
            trio.testing.assert_no_checkpoints()
            if anyio_backend_name == "trio"
            else contextlib.nullcontext()
        )
        taken = []
        with no_yield:
            while server.messages_waiting:
                taken.append(server.get_message_nowait())
        assert taken == ["one", "two", "three"]
        with pytest.raises(WouldBlock):
            server.get_message_nowait()
