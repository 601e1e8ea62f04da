"""The direct socket paths (``trio_ws._transport``): write-through and non-blocking reads.

Unit tests drive the writer with a fake socket that takes only part of what it is given;
the TCP tests check the same paths end to end on both backends: order across partial
writes, a peer that stops reading, cancellation, and that TLS never takes the raw path.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.streams.tls import TLSStream

from trio_ws import (
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)
from trio_ws._keepalive import PingTracker
from trio_ws._transport import socket_io
from trio_ws._writer import Writer
from trio_ws.sansio import Connection, Role
from trio_ws.testing import memory_stream_pair

if TYPE_CHECKING:
    import ssl

# --- the writer, with a socket that takes a few bytes at a time ---------------------------


class _Wire:
    """What was written, in order, whichever path wrote it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.stream_writes = 0


class _PartialSocket:
    """A stand-in for SocketIO (asyncio flavour: no waits) that takes ``room`` bytes."""

    waits = False

    def __init__(self, wire: _Wire, room: int) -> None:
        self.wire = wire
        self.room = room
        self.calls = 0

    def try_send(self, data: bytes | memoryview) -> int:
        self.calls += 1
        taken = bytes(data[: self.room])
        self.wire.data += taken
        self.room -= len(taken)
        return len(taken)


class _WireStream:
    """The stream's own ``send``, used by the writer task for the rest."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire

    async def send(self, item: bytes) -> None:
        self.wire.stream_writes += 1
        self.wire.data += item


def _writer(room: int) -> tuple[Writer, Connection, _Wire, _PartialSocket]:
    wire = _Wire()
    io = _PartialSocket(wire, room)
    protocol = Connection(Role.SERVER)
    errors: list[BaseException] = []
    writer = Writer(_WireStream(wire), protocol, 2**16, PingTracker(), errors.append, io)  # type: ignore[arg-type]
    return writer, protocol, wire, io


def _frames(*messages: bytes) -> bytes:
    protocol = Connection(Role.SERVER)
    for message in messages:
        protocol.send_binary(message)
    return protocol.data_to_send()


@pytest.mark.anyio
async def test_a_partial_write_through_leaves_the_rest_in_front_of_later_messages() -> None:
    writer, protocol, wire, io = _writer(room=5)
    protocol.send_binary(b"first message")
    writer.write_or_wake()
    assert io.calls == 1
    assert bytes(wire.data) == _frames(b"first message")[:5]
    assert writer.pending  # the rest waits for the writer
    protocol.send_binary(b"second")
    writer.write_or_wake()  # a burst: no second write-through
    assert io.calls == 1
    with anyio.fail_after(5):
        await writer.flush()
    assert bytes(wire.data) == _frames(b"first message", b"second")
    assert not writer.pending


@pytest.mark.anyio
async def test_a_whole_write_through_needs_no_writer() -> None:
    writer, protocol, wire, io = _writer(room=10_000)
    protocol.send_binary(b"hello")
    writer.write_or_wake()
    assert bytes(wire.data) == _frames(b"hello")
    assert not writer.pending
    assert wire.stream_writes == 0
    # The next message is part of the same burst: it goes to the writer...
    protocol.send_binary(b"again")
    writer.write_or_wake()
    assert io.calls == 1
    assert protocol.bytes_to_send
    # ... until the connection receives something, which ends the burst.
    with anyio.fail_after(5):
        await writer.flush()
    writer.may_write_through = True
    protocol.send_binary(b"third")
    writer.write_or_wake()
    assert io.calls == 2
    assert bytes(wire.data) == _frames(b"hello", b"again", b"third")


@pytest.mark.anyio
async def test_no_write_through_while_a_write_is_in_flight_or_after_the_preamble() -> None:
    writer, protocol, wire, io = _writer(room=10_000)
    writer.writing = True
    protocol.send_binary(b"queued")
    writer.write_or_wake()
    assert io.calls == 0
    assert protocol.bytes_to_send
    writer.writing = False
    protocol.data_to_send()
    writer.write_first(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    protocol.send_binary(b"after the 101")
    writer.write_or_wake()
    assert io.calls == 0
    with anyio.fail_after(5):
        await writer.flush()
    assert bytes(wire.data).startswith(b"HTTP/1.1 101")
    assert bytes(wire.data).endswith(_frames(b"after the 101"))


@pytest.mark.anyio
async def test_a_transport_error_in_write_through_is_reported_by_the_writer() -> None:
    errors: list[BaseException] = []

    class Broken:
        waits = False

        def try_send(self, data: bytes | memoryview) -> int:
            raise ConnectionResetError

    class BrokenStream:
        async def send(self, item: bytes) -> None:
            raise anyio.BrokenResourceError

    protocol = Connection(Role.SERVER)
    writer = Writer(BrokenStream(), protocol, 2**16, PingTracker(), errors.append, Broken())  # type: ignore[arg-type]
    protocol.send_binary(b"lost")
    writer.write_or_wake()  # does not raise into the sender
    assert writer.pending
    assert not errors
    with anyio.fail_after(5):
        await writer.flush()
    assert writer.stopped
    assert len(errors) == 1
    assert isinstance(errors[0], anyio.BrokenResourceError)


# --- which streams get the direct path ------------------------------------------------------


@pytest.mark.anyio
async def test_only_plain_anyio_socket_streams_get_direct_access(
    anyio_backend: str,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    memory, _ = memory_stream_pair()
    assert socket_io(memory) is None
    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as tg:

                async def accept_tls() -> None:
                    async def serve(stream: anyio.abc.SocketStream) -> None:
                        tls = await TLSStream.wrap(
                            stream, server_side=True, ssl_context=server_ssl_context
                        )
                        await tls.aclose()
                        tg.cancel_scope.cancel()

                    await listener.serve(serve)

                tg.start_soon(accept_tls)
                stream = await anyio.connect_tcp("127.0.0.1", port)
                io = socket_io(stream)
                assert io is not None
                # trio: trio_ws waits for readiness itself; asyncio: write-through only.
                assert io.waits == (anyio_backend == "trio")
                tls = await TLSStream.wrap(
                    stream, hostname="127.0.0.1", ssl_context=client_ssl_context
                )
                assert socket_io(tls) is None
                await tls.aclose()


# --- end to end over TCP, both backends ---------------------------------------------------


async def _start_server(tg: Any, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_large_and_small_messages_keep_their_order_across_partial_writes() -> None:
    # 4 MiB is more than a loopback socket takes at once: the write-through is partial and
    # the small messages sent right after it must wait behind its rest.
    large = bytes(range(256)) * (4 * 2**20 // 256)
    expected: list[bytes] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, _echo, compression=None, max_message_size=None)
            async with open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", compression=None, max_message_size=None
            ) as ws:
                for round_number in range(3):
                    for message in (large, b"small %d" % round_number, b"x" * 100_000):
                        await ws.send_message(message)
                        expected.append(message)
                for message in expected:
                    assert await ws.get_message() == message
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_peer_that_stops_reading_blocks_senders_and_loses_nothing() -> None:
    release = anyio.Event()
    received: list[str | bytes] = []

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        received.extend([message async for message in ws])

    high_water = 2**14
    message = b"m" * 1000
    sent = 0
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, slow, compression=None, max_queue=1)
            async with open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", compression=None, write_high_water=high_water
            ) as ws:
                # Send until send_message() blocks: the socket buffers are full and the
                # write buffer is above its high-water mark.
                blocked = False
                for _ in range(100_000):
                    with anyio.move_on_after(0.5) as scope:
                        await ws.send_message(message + b"%08d" % sent)
                    if scope.cancelled_caught:
                        blocked = True
                        break
                    sent += 1
                assert blocked
                assert ws._protocol.bytes_to_send <= high_water + len(message) + 16
                release.set()
                await ws.send_message(b"last")
                await ws.aclose()
            for _ in range(1000):
                if received and received[-1] == b"last":
                    break
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    # Every message whose send_message() returned arrived, once, in order; the cancelled
    # one did not.
    assert received == [message + b"%08d" % i for i in range(sent)] + [b"last"]
