"""The read path: bytes from the stream, through the core, into the message queue.

One task reads large chunks, feeds each to the core once and dispatches every event the
chunk completed in a loop, with no task switch per message. It never raises into the task
group: transport errors become the connection's closed state (1006, the error chained as
the cause), and unexpected errors are logged and stored for ``get_message()`` to report.
"""

from __future__ import annotations

import logging
import ssl
from typing import TYPE_CHECKING

import anyio

from .sansio import (
    BytesMessage,
    CloseConnection,
    ConnectionFailed,
    ConnectionState,
    Ping,
    Pong,
    TextMessage,
)

if TYPE_CHECKING:
    from collections import deque

    from ._connection import WebSocketConnection
    from ._transport import SocketIO
    from .sansio import Connection

__all__ = [
    "LARGE_RECEIVE_SIZE",
    "RECEIVE_SIZE",
    "TRANSPORT_ERRORS",
    "close_phase",
    "read_until_closed",
    "receive_size",
    "run_reader",
    "run_socket_reader",
]

logger = logging.getLogger("trio_ws")

#: How much the reader asks the stream for at a time.
RECEIVE_SIZE = 2**16

#: How much it asks for at most while a large frame is arriving (see :func:`receive_size`).
LARGE_RECEIVE_SIZE = 2**20

# Reads up to this size do not ask the core for the next read's size (see run_socket_reader).
_SMALL_READ = 2**12

#: What a transport raises when the peer or the network goes away.
TRANSPORT_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,  # includes ssl.SSLError
    ssl.SSLError,
)

_CLOSED = ConnectionState.CLOSED
_PREFIX = 24  # payload bytes shown in debug logs


def _preview(data: str | bytes) -> str:
    return repr(data[:_PREFIX]) + ("..." if len(data) > _PREFIX else "")


def receive_size(protocol: Connection) -> int:
    """How much to ask the stream for next: more than usual while a large frame arrives.

    Fewer, larger reads of a large frame cost fewer system calls and scheduler passes; the
    size stays bounded, and small messages keep the usual reads.
    """
    wanted = protocol.bytes_wanted
    if wanted <= RECEIVE_SIZE:
        return RECEIVE_SIZE
    return min(wanted, LARGE_RECEIVE_SIZE)


def feed(ws: WebSocketConnection, data: bytes) -> None:
    """Feed received bytes to the core and dispatch the events they complete."""
    protocol = ws._protocol
    tracker = ws._pings
    if tracker.pending:
        tracker.last_received = anyio.current_time()
    events = protocol.receive_data(data)
    if events:
        queue = ws._messages
        debug = logger.isEnabledFor(logging.DEBUG)
        for event in events:
            kind = type(event)
            if kind is TextMessage or kind is BytesMessage:
                message = event.data  # type: ignore[union-attr]
                if not ws._closing:
                    queue.put(message)
                if debug:
                    opcode = "TEXT" if kind is TextMessage else "BINARY"
                    logger.debug(
                        "[%s] < %s %d bytes %s", ws.id, opcode, len(message), _preview(message)
                    )
            elif isinstance(event, Ping):
                if debug:
                    logger.debug("[%s] < PING %s", ws.id, _preview(event.payload))
            elif isinstance(event, Pong):
                if debug:
                    logger.debug("[%s] < PONG %s", ws.id, _preview(event.payload))
                tracker.acknowledge(event.payload)
            elif isinstance(event, CloseConnection):
                logger.debug("[%s] < CLOSE code %d reason %r", ws.id, event.code, event.reason)
            elif isinstance(event, ConnectionFailed):
                logger.debug(
                    "[%s] peer broke the protocol: failing with code %d (%s)",
                    ws.id,
                    event.code,
                    event.reason,
                )
    writer = ws._writer
    # The peer answered: the next message may be written by its sender (see _writer).
    writer.may_write_through = ws._io is not None
    if protocol.bytes_to_send:
        writer.wake()  # pongs, close replies
    if protocol.state is _CLOSED:
        ws._receiving_ended()


def _feed_initial_data(ws: WebSocketConnection) -> None:
    # Taken from the connection, not kept in a frame: the reader task lives as long as it.
    data, ws._initial_data = ws._initial_data, b""
    if data:
        feed(ws, data)


async def _wait_for_space(ws: WebSocketConnection) -> None:
    """Wait until the message queue has room again (the reader is paused meanwhile)."""
    ws._reading_paused = True
    try:
        await ws._messages.wait_for_space()
    finally:
        ws._reading_paused = False


async def read_until_closed(ws: WebSocketConnection) -> None:
    """Read and dispatch until the core is closed, then close the transport.

    Run by the reader task, or by ``aclose()`` when the reader task is gone. Never raises
    transport errors: they close the connection (1006, cause chained).
    """
    io = ws._io
    if io is not None and io.waits:
        await run_socket_reader(ws, io)
        return
    protocol = ws._protocol
    stream = ws._stream
    queue = ws._messages
    try:
        _feed_initial_data(ws)
        if io is not None and io.protocol is not None:
            await _read_transport(ws, io)
        size = RECEIVE_SIZE
        while protocol.state is not _CLOSED:
            if queue.full:
                await _wait_for_space(ws)
                continue
            data = await stream.receive(size)
            feed(ws, data)
            if len(data) > _SMALL_READ or size != RECEIVE_SIZE:  # as in run_socket_reader
                size = receive_size(protocol)
            del data  # not kept while the next read waits
    except TRANSPORT_ERRORS as exc:
        ws._transport_failed(exc)
        await ws._abort()
        return
    await close_phase(ws)


async def run_socket_reader(ws: WebSocketConnection, io: SocketIO) -> None:
    """The reader task on a socket that trio_ws reads directly, on trio (see ``_transport``).

    An idle connection's reader spends its life parked here, so the whole task is this one
    frame over trio's wait, without a cancel scope: closing the socket (``_abort()`` does)
    wakes a task waiting for it to be readable, with ``ClosedResourceError``. The one wait
    that closing the socket does not end, for room in the message queue, runs under a
    scope of the connection's (``_run_task``), which ``_abort()`` cancels. Never raises
    (except cancellation by the task group it runs in).

    A read that came back short has most likely emptied the socket, so the next one waits
    for readability first instead of trying a ``recv`` that would find nothing; after a full
    read, the next ``recv`` is tried at once (behind a checkpoint, for fairness). Either way
    the task yields once per read.
    """
    protocol = ws._protocol
    queue = ws._messages
    sock = io.raw_socket
    wait_readable = io.wait_readable
    checkpoint = io.checkpoint
    ready = False
    size = RECEIVE_SIZE
    try:
        try:
            _feed_initial_data(ws)
            while protocol.state is not _CLOSED:
                if queue.full:
                    await ws._run_task(_wait_for_space, ws)
                    continue
                if ready:
                    await checkpoint()
                else:
                    await wait_readable(sock)
                data = io.try_receive(size)
                if data is None:
                    ready = False
                    continue
                received = len(data)
                if not received:
                    raise anyio.EndOfStream
                ready = received == size
                feed(ws, data)
                del data  # not kept while the next read waits
                # Small reads (request/response traffic) keep the usual size without asking
                # the core; after a large read, the core says whether a large frame arrives.
                if received > _SMALL_READ or size != RECEIVE_SIZE:
                    size = receive_size(protocol)
        except TRANSPORT_ERRORS as exc:
            ws._transport_failed(exc)
            await ws._abort()
            return
        except io.closed_error as exc:
            # trio's error for a socket closed during the wait: reported as anyio's
            # stream reports it.
            error = anyio.ClosedResourceError()
            error.__cause__ = exc
            ws._transport_failed(error)
            await ws._abort()
            return
        await close_phase(ws)
    except Exception as exc:
        await _internal_failure(ws, exc)
    finally:
        ws._reader_done.set()


async def _read_transport(ws: WebSocketConnection, io: SocketIO) -> None:
    """The receive loop on anyio's asyncio socket stream, reading its protocol's queue.

    ``SocketStream.receive`` resumes the transport's reading before each wait and pauses it
    after (two ``epoll_ctl`` calls per read) and takes one chunk per call. Here reading
    stays on while the connection reads, everything the protocol has queued is fed at
    once, and reading is paused only while the message queue is full (backpressure), then
    at the end, so that ``stream.receive`` finds the transport as it left it. When the queue
    is empty and the protocol's event is set (end of stream, error, closed stream), the
    loop returns: ``stream.receive`` then raises the matching error.
    """
    protocol = ws._protocol
    queue = ws._messages
    stream_protocol = io.protocol
    transport = io.transport
    chunks: deque[bytes] = stream_protocol.read_queue
    checkpoint = anyio.lowlevel.checkpoint
    transport.resume_reading()
    try:
        while protocol.state is not _CLOSED:
            if queue.full:
                transport.pause_reading()
                await _wait_for_space(ws)
                transport.resume_reading()
                continue
            if chunks:
                await checkpoint()  # data was there already: yield once, for fairness
            else:
                if stream_protocol.is_at_eof or transport.is_closing():
                    return  # let stream.receive() raise what it is
                stream_protocol.read_event.clear()
                await stream_protocol.read_event.wait()
                if not chunks:
                    return
            if len(chunks) == 1:
                feed(ws, chunks.popleft())
            elif protocol.bytes_wanted > RECEIVE_SIZE:
                # A large frame is arriving: its pieces need no join (the core keeps them).
                while chunks:
                    feed(ws, chunks.popleft())
            else:
                data = b"".join(chunks)
                chunks.clear()
                feed(ws, data)
                del data  # not kept while the next read waits
    finally:
        transport.pause_reading()


async def close_phase(ws: WebSocketConnection) -> None:
    """After the close handshake (or a failure): flush, then close the transport.

    The server closes TCP at once; the client first waits for the server to close it
    (RFC 6455 section 7.1.1). Both waits are bounded by ``close_timeout``.
    """
    with anyio.move_on_after(ws._config.close_timeout):
        await ws._writer.flush()
        if ws.is_client and not ws._writer.stopped:
            try:
                while True:
                    await ws._stream.receive(RECEIVE_SIZE)
            except TRANSPORT_ERRORS:
                pass
    await ws._abort()


async def _internal_failure(ws: WebSocketConnection, exc: Exception) -> None:
    # A bug in trio_ws or in an extension: keep it for get_message() to report, and tell
    # the peer we failed rather than leaving it hanging.
    logger.exception("[%s] unexpected error in the reader task", ws.id)
    ws._internal_error = exc
    await ws._fail(1011, "internal error")


async def run_reader(ws: WebSocketConnection) -> None:
    """The reader task on any other stream (under a cancel scope of the connection's).

    Never raises (except cancellation).
    """
    try:
        await read_until_closed(ws)
    except Exception as exc:
        await _internal_failure(ws, exc)
    finally:
        ws._reader_done.set()
