"""The writer takes large payloads from the core piece by piece (``WRITE_PIECE``).

On a socket, whatever the socket takes at a time, the wire must carry exactly the frames
the core would have returned at once; what a socket refuses (a view of a payload) waits in
front of later bytes, through cancellation too; and the reader asks for more while a large
frame arrives.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
from types import SimpleNamespace
from typing import TYPE_CHECKING

import anyio
import pytest

from trio_ws._config import ConnectionConfig
from trio_ws._connection import ConnectionInfo, open_connection
from trio_ws._keepalive import PingTracker
from trio_ws._reader import LARGE_RECEIVE_SIZE, RECEIVE_SIZE, _read_transport, receive_size
from trio_ws._writer import WRITE_PIECE, Writer
from trio_ws.sansio import Connection, Role
from trio_ws.testing import memory_stream_pair

if TYPE_CHECKING:
    from collections.abc import Callable

LARGE = os.urandom(3 * WRITE_PIECE + 12_345)
KEYS = [b"\x01\x02\x03\x04", b"\xa0\xb1\xc2\xd3"]


def _connection(role: Role) -> Connection:
    keys = itertools.cycle(KEYS)
    return Connection(role, max_message_size=None, mask_key_source=lambda: next(keys))


def _expected(role: Role, send: Callable[[Connection], None]) -> bytes:
    connection = _connection(role)
    send(connection)
    return connection.data_to_send()


def _send_mixed(connection: Connection) -> None:
    connection.send_binary(b"before")
    connection.send_binary(LARGE)
    connection.send_ping(b"p")
    connection.send_binary(LARGE[:200_000])


class _Socket:
    """A stand-in for SocketIO (trio flavour): takes ``room`` bytes per call, records the
    size of every buffer it was given, and waits (or blocks) when it has no room."""

    waits = True
    closing = False
    unsent = 0

    def __init__(self, room: int) -> None:
        self.room = room
        self.wire = bytearray()
        self.offered: list[int] = []
        self.blocked = False
        self.budget = 10**12  # bytes taken in all, after which the socket takes none

    def try_send(self, data: bytes | memoryview) -> int:
        self.offered.append(len(data))
        taken = bytes(data[: min(self.room, self.budget)])
        self.budget -= len(taken)
        self.wire += taken
        return len(taken)

    async def wait_writable(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self.blocked:
            await anyio.sleep_forever()


class _Transport:
    """A stand-in for SocketIO (asyncio flavour): the transport takes a buffer whole while
    its own buffer is empty, and the kernel takes ``room`` bytes of it at once."""

    waits = False
    closing = False
    unsent = 0

    def __init__(self, room: int) -> None:
        self.room = room
        self.wire = bytearray()
        self.buffered = b""
        self.offered: list[int] = []

    def try_send(self, data: bytes | memoryview) -> int:
        if self.buffered:
            return 0
        self.offered.append(len(data))
        self.wire += data[: self.room]
        self.buffered = bytes(data[self.room :])
        return len(data)

    async def wait_drained(self) -> None:
        """Wait until the transport's buffer is written."""
        await anyio.lowlevel.checkpoint()
        self.wire += self.buffered
        self.buffered = b""


def _writer(protocol: Connection, io: _Socket | _Transport) -> Writer:
    return Writer(None, protocol, 2**16, PingTracker(), print, io)  # type: ignore[arg-type]


@pytest.mark.anyio
@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
@pytest.mark.parametrize("room", [7, 50_000, 10**9])
async def test_a_socket_gets_large_payloads_in_pieces(role: Role, room: int) -> None:
    protocol = _connection(role)
    io = _Socket(room)
    writer = _writer(protocol, io)
    _send_mixed(protocol)
    writer.write_or_wake()  # as send_message does: the sender writes what it can
    with anyio.fail_after(10):
        await writer.flush()
    assert bytes(io.wire) == _expected(role, _send_mixed)
    assert not writer.pending
    if role is Role.CLIENT:
        # A piece at a time (plus what the socket left of the one before): a payload is
        # never masked whole.
        assert max(io.offered) <= 2 * WRITE_PIECE
    elif room == 10**9:
        # Nothing to mask: each payload is offered whole, after the frames before it.
        assert io.offered == [8 + 10, len(LARGE), 3 + 10, 200_000]


@pytest.mark.anyio
@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
@pytest.mark.parametrize("room", [7, 50_000, 10**9])
async def test_an_asyncio_transport_gets_large_payloads_in_pieces(role: Role, room: int) -> None:
    protocol = _connection(role)
    io = _Transport(room)
    writer = _writer(protocol, io)
    _send_mixed(protocol)
    writer.write_or_wake()
    with anyio.fail_after(10):
        await writer.flush()
    assert bytes(io.wire) == _expected(role, _send_mixed)
    assert not io.buffered
    if role is Role.CLIENT:
        assert max(io.offered) <= 2 * WRITE_PIECE
    else:
        assert len(LARGE) in io.offered  # a payload whole, a view of the caller's bytes


@pytest.mark.anyio
async def test_the_writer_task_writes_pieces_after_the_rest_of_an_earlier_write() -> None:
    # A partial write-through leaves part of a piece (a view of the payload); the next
    # write sends it first, joined with the next piece.
    protocol = _connection(Role.SERVER)
    io = _Socket(room=10**9)
    io.budget = WRITE_PIECE + 100  # the header, a piece, and part of the next piece
    writer = _writer(protocol, io)
    protocol.send_binary(LARGE)
    writer.write_or_wake()
    assert writer.pending
    assert isinstance(writer._preamble, memoryview)  # a view of the payload: no copy
    io.budget = 10**12
    protocol.send_binary(b"after")
    with anyio.fail_after(10):
        await writer.flush()

    def send(connection: Connection) -> None:
        connection.send_binary(LARGE)
        connection.send_binary(b"after")

    assert bytes(io.wire) == _expected(Role.SERVER, send)


@pytest.mark.anyio
@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
async def test_a_cancelled_large_write_keeps_the_rest_in_order(role: Role) -> None:
    protocol = _connection(role)
    io = _Socket(room=WRITE_PIECE // 2 + 3)
    writer = _writer(protocol, io)
    writer._high_water = 10
    writer.may_write_through = False
    _send_mixed(protocol)
    io.blocked = True
    with anyio.fail_after(10):
        with anyio.move_on_after(0.05) as scope:
            await writer.wait_for_space()  # writes from here: no writer task runs
        assert scope.cancelled_caught
        assert not writer.stopped
        assert writer.pending
        protocol.send_binary(b"later")
        io.blocked = False
        io.room = 10**9
        await writer.flush()

    def send(connection: Connection) -> None:
        _send_mixed(connection)
        connection.send_binary(b"later")

    assert bytes(io.wire) == _expected(role, send)


@pytest.mark.anyio
async def test_an_asyncio_transport_cancelled_between_pieces_loses_nothing() -> None:
    protocol = _connection(Role.CLIENT)
    release = anyio.Event()

    class SlowDrain(_Transport):
        async def wait_drained(self) -> None:
            await release.wait()
            await super().wait_drained()

    io = SlowDrain(room=1000)
    writer = Writer(None, protocol, 10, PingTracker(), print, io)  # type: ignore[arg-type]
    writer.may_write_through = False
    _send_mixed(protocol)
    with anyio.fail_after(10):
        with anyio.move_on_after(0.05) as scope:
            await writer.wait_for_space()
        assert scope.cancelled_caught
        assert writer.pending
        release.set()
        await writer.flush()
    assert bytes(io.wire) == _expected(Role.CLIENT, _send_mixed)


def test_write_first_goes_before_a_kept_view() -> None:
    protocol = _connection(Role.SERVER)
    writer = _writer(protocol, _Socket(room=0))
    writer._keep_unsent(memoryview(b"rest of a piece"))
    writer._keep_unsent(b"earlier ")
    assert bytes(writer._preamble) == b"earlier rest of a piece"
    writer.write_first(b"!")
    assert bytes(writer._preamble) == b"earlier rest of a piece!"


def test_the_reader_asks_for_more_while_a_large_frame_arrives() -> None:
    client = _connection(Role.CLIENT)
    client.send_binary(LARGE)
    large = client.data_to_send()
    client.send_binary(bytes(8 * LARGE_RECEIVE_SIZE))
    huge = client.data_to_send()

    server = Connection(Role.SERVER, max_message_size=None)
    assert receive_size(server) == RECEIVE_SIZE  # between frames
    server.receive_data(large[:1000])
    assert receive_size(server) == len(large) - 1000  # the rest of the frame
    server.receive_data(large[1000:])
    assert receive_size(server) == RECEIVE_SIZE
    server.receive_data(huge[:10_000])
    assert receive_size(server) == LARGE_RECEIVE_SIZE  # bounded
    server.receive_data(huge[10_000:-100])
    assert receive_size(server) == RECEIVE_SIZE  # never less than usual


# --- the asyncio reader: chunks of a large frame are fed without a join ---------------------


class _StreamProtocol:
    """The shape of anyio's asyncio stream protocol that the reader uses."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.read_queue = collections.deque(chunks)
        self.read_event = asyncio.Event()
        self.is_at_eof = True  # once the queue is empty, the reader returns


class _ReadTransport:
    def __init__(self) -> None:
        self.reading = False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
@pytest.mark.parametrize("large", [True, False])
async def test_the_asyncio_reader_feeds_queued_chunks(large: bool) -> None:
    client = _connection(Role.CLIENT)
    messages = [LARGE, b"after"] if large else [b"one", b"two", b"three"]
    for message in messages:
        client.send_binary(message)
    wire = client.data_to_send()
    first, second = (1000, 100_000) if large else (3, 10)
    chunks = [wire[:first], wire[first:second], wire[second:]]
    assert all(chunks)
    stream, _ = memory_stream_pair()
    ws, link = open_connection(
        stream,
        Connection(Role.SERVER, max_message_size=None),
        config=ConnectionConfig(max_message_size=None),
        info=ConnectionInfo(),
    )
    # The first chunk is fed alone; then the rest is queued at once.
    io = SimpleNamespace(
        protocol=_StreamProtocol(chunks[:1]),
        transport=_ReadTransport(),
        decrypt=None,  # plain TCP: the chunks are the plaintext
        deferred_error=None,
    )
    with anyio.fail_after(5):
        await _read_transport(link, io)  # type: ignore[arg-type]
        io.protocol = _StreamProtocol(chunks[1:])
        await _read_transport(link, io)  # type: ignore[arg-type]
        assert not io.protocol.read_queue
        assert not io.transport.reading  # left paused, as stream.receive() expects
        assert [await ws.get_message() for _ in messages] == messages
        await link.abort()
