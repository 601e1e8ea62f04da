"""broadcast(): one message to many connections, through public behaviour (both backends)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    WouldBlock,
    broadcast,
)
from trio_ws.testing import open_websocket_in_memory

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.streams.memory import MemoryObjectSendStream

    from trio_ws import ClientOptions, Handler, ServerOptions

pytestmark = pytest.mark.anyio

HIGH_WATER = 4096


def _hand_over(accepted: MemoryObjectSendStream[WebSocketConnection], done: anyio.Event) -> Handler:
    """A handler that hands its connection to the test and stays until ``done``."""

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await accepted.send(ws)
        await done.wait()

    return handler


async def _open_many(
    stack: AsyncExitStack,
    count: int,
    *,
    server_options: ServerOptions | None = None,
    capacity: int = 65536,
    **client_options: object,
) -> tuple[list[WebSocketConnection], list[WebSocketConnection]]:
    """``count`` (client, server) pairs; the handlers stay until the stack closes."""
    send, accepted = anyio.create_memory_object_stream[WebSocketConnection](count)
    stack.enter_context(send)
    stack.enter_context(accepted)
    done = anyio.Event()
    handler = _hand_over(send, done)
    options: ClientOptions = {"ping_interval": None, **client_options}  # type: ignore[typeddict-item]
    clients = [
        await stack.enter_async_context(
            open_websocket_in_memory(
                handler, server_options=server_options, capacity=capacity, **options
            )
        )
        for _ in range(count)
    ]
    servers = [await accepted.receive() for _ in range(count)]
    stack.callback(done.set)  # first thing on exit: the handlers return, then clients close
    return clients, servers


def _fill(ws: WebSocketConnection) -> int:
    """Queue messages on ``ws`` until its buffer is above the high-water mark."""
    for count in range(1, 1000):  # bounded: far more than the buffer and the pipe hold
        try:
            ws.send_message_nowait(b"x" * 1000)
        except WouldBlock:
            return count - 1
    pytest.fail("the write buffer never filled up")


async def test_every_connection_gets_the_message_in_order() -> None:
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 20)
            for index in range(3):
                result = broadcast(servers, f"message {index}")
                assert (result.sent, result.skipped, result.closed) == (20, 0, 0)
            result = broadcast(servers, b"\x00binary")
            assert result.sent == 20
            for client in clients:
                received = [await client.get_message() for _ in range(4)]
                assert received == ["message 0", "message 1", "message 2", b"\x00binary"]


async def test_text_override_and_client_connections() -> None:
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 3)
            # Client connections mask each frame: broadcast encodes for each of them.
            assert broadcast(clients, "from the clients").sent == 3
            for server in servers:
                assert await server.get_message() == "from the clients"
            assert broadcast(servers, "as binary", text=False).sent == 3
            assert broadcast(servers, b"as text", text=True).sent == 3
            for client in clients:
                assert await client.get_message() == b"as binary"
                assert await client.get_message() == "as text"


async def test_with_compression_the_frame_is_plain_and_compression_still_works() -> None:
    """permessage-deflate (negotiated by default): shared frames go out uncompressed.

    The peer decodes them, and compressed messages before and after still decode: the
    compression context (with context takeover) is untouched by the plain frames.
    """
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 4)
            assert all(server.extensions for server in servers)
            big = "compressible " * 200
            for round_ in range(3):
                for server in servers:
                    await server.send_message(f"{round_} {big}", compress=True)
                assert broadcast(servers, f"plain {round_} {big}").sent == 4
            for server in servers:
                await server.send_message(f"last {big}", compress=True)
            for client in clients:
                for round_ in range(3):
                    assert await client.get_message() == f"{round_} {big}"
                    assert await client.get_message() == f"plain {round_} {big}"
                assert await client.get_message() == f"last {big}"


async def test_closed_connections_are_skipped() -> None:
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 3)
            await servers[1].aclose(4000, "gone")
            result = broadcast(servers, "still here?")
            assert (result.sent, result.skipped, result.closed) == (2, 1, 0)
            assert result.slow == ()
            assert await clients[0].get_message() == "still here?"
            assert await clients[2].get_message() == "still here?"
            with pytest.raises(ConnectionClosed) as info:
                await clients[1].get_message()
            assert info.value.code == 4000


async def test_a_connection_sending_fragments_is_skipped() -> None:
    release = anyio.Event()
    started = anyio.Event()

    async def parts() -> AsyncIterator[str]:
        yield "first "
        started.set()  # the first fragment is pending: the message has started
        await release.wait()
        yield "last"

    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 2)
            async with anyio.create_task_group() as tg:
                tg.start_soon(servers[0].send_message_parts, parts())
                await started.wait()
                assert servers[0].is_sending_fragments
                assert not servers[1].is_sending_fragments
                result = broadcast(servers, "between")
                assert (result.sent, result.skipped) == (1, 1)
                release.set()
            assert not servers[0].is_sending_fragments
            assert await clients[1].get_message() == "between"
            assert await clients[0].get_message() == "first last"
            broadcast(servers, "after")
            assert await clients[0].get_message() == "after"  # not "between"
            assert await clients[1].get_message() == "after"


async def test_a_slow_connection_is_skipped() -> None:
    options: ServerOptions = {"write_high_water": HIGH_WATER, "ping_interval": None}
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(
                stack, 2, server_options=options, capacity=1024, compression=None
            )
            queued = _fill(servers[0])
            result = broadcast(servers, "fast news", on_slow="skip")
            assert (result.sent, result.skipped, result.closed) == (1, 1, 0)
            assert result.slow == (servers[0],)
            assert not servers[0].closed
            assert await clients[1].get_message() == "fast news"
            # The slow one missed that message only; it gets what was queued, then more.
            for _ in range(queued):
                assert await clients[0].get_message() == b"x" * 1000
            assert broadcast(servers, "again").sent == 2
            assert await clients[0].get_message() == "again"
            assert await clients[1].get_message() == "again"


async def test_a_slow_connection_is_closed_with_1013() -> None:
    options: ServerOptions = {"write_high_water": HIGH_WATER, "ping_interval": None}
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(
                stack, 2, server_options=options, capacity=1024, compression=None
            )
            queued = _fill(servers[0])
            result = broadcast(servers, "fast news", on_slow="close")
            assert (result.sent, result.skipped, result.closed) == (1, 0, 1)
            assert result.slow == (servers[0],)
            assert servers[0].closed  # at once: nothing more is sent to it
            with pytest.raises(ConnectionClosed):
                servers[0].send_message_nowait("late")
            assert await clients[1].get_message() == "fast news"
            # What was queued before still arrives, then the close frame.
            for _ in range(queued):
                assert await clients[0].get_message() == b"x" * 1000
            with pytest.raises(ConnectionClosed) as info:
                await clients[0].get_message()
            assert info.value.code == 1013
            # The connection's own tasks finish the close handshake; aclose() waits for it.
            await servers[0].aclose()
            assert servers[0].close_code == 1013
            assert broadcast(servers, "later").skipped == 1


async def test_close_nowait_runs_the_close_handshake() -> None:
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            clients, servers = await _open_many(stack, 1)
            servers[0].send_message_nowait("before")
            servers[0].close_nowait(4001, "by request")
            servers[0].close_nowait(4002, "ignored: already closing")
            assert servers[0].closed
            assert await clients[0].get_message() == "before"
            with pytest.raises(ConnectionClosed) as info:
                await clients[0].get_message()
            assert (info.value.code, info.value.reason) == (4001, "by request")
            await servers[0].aclose()  # idempotent: waits for the end
            assert servers[0].close_code == 4001


async def test_an_unknown_policy_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="on_slow"):
        broadcast([], "x", on_slow="wait")  # type: ignore[arg-type]
    assert broadcast([], "nobody").sent == 0
