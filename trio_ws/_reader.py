"""The read path: bytes from the stream, through the core, into the message queue.

One task reads large chunks, feeds each to the core once and dispatches every event the
chunk completed in a loop, with no task switch per message. It never raises into the task
group: transport errors become the connection's closed state (1006, the error chained as
the cause), and unexpected errors are logged and stored for ``get_message()`` to report.

On trio's direct socket path, the reader task lends the socket to the task waiting in
``get_message()`` (:class:`SocketReading`), which then reads for itself: an echoed message
costs that task's step alone, not the reader's step and then the getter's.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from .sansio import ConnectionState

if TYPE_CHECKING:
    import socket
    from collections import deque
    from collections.abc import Awaitable, Callable

    from anyio.abc import ByteStream

    from ._messages import MessageQueue
    from ._transport import SocketIO
    from ._writer import Writer
    from .sansio import Connection

__all__ = [
    "LARGE_RECEIVE_SIZE",
    "RECEIVE_SIZE",
    "TRANSPORT_ERRORS",
    "CallbackReader",
    "ReaderHost",
    "SocketReading",
    "close_phase",
    "read_as_getter",
    "read_until_closed",
    "receive_size",
    "run_reader",
    "run_socket_reader",
]

logger = logging.getLogger("trio_ws")

_sniffio: Any
try:
    import sniffio as _sniffio
except ImportError:  # anyio then finds asyncio by its running loop, callbacks included
    _sniffio = None

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
_OPEN = ConnectionState.OPEN

#: How long the reader task stays parked, once nobody reads the socket it lent to the
#: getters (see :class:`SocketReading`), before it reads again itself.
GETTER_GRACE = 0.25

# trio, imported by the first SocketReading (the direct socket path is trio's only).
_trio: Any = None

# The receive buffer of the CallbackReaders of each thread (see _receive_buffer), as large
# as asyncio's own reads, so that a large message takes as few callbacks as before.
_CALLBACK_READ = 2**18
_buffers = threading.local()


def _receive_buffer() -> memoryview:
    """The buffer asyncio reads into for every CallbackReader of this thread's loop.

    One per thread, not per connection: a callback consumes what was read before it
    returns, and only one callback of a loop runs at a time. asyncio's own reads
    (``recv(256 KiB)`` into a new bytes object, then shrunk) cost a ``mmap``, ``mremap``
    and ``munmap`` per message whenever glibc serves that size from ``mmap``.
    """
    buffer: memoryview | None = getattr(_buffers, "buffer", None)
    if buffer is None:
        buffer = _buffers.buffer = memoryview(bytearray(_CALLBACK_READ))
    return buffer


class ReaderHost(Protocol):
    """What the reader needs from its connection (``trio_ws._connection.ConnectionLink``).

    The parts are fixed for the connection's life; the reader changes the connection's
    state only through the methods.
    """

    protocol: Connection
    messages: MessageQueue
    writer: Writer
    stream: ByteStream
    io: SocketIO | None
    callbacks: CallbackReader | None
    reading: SocketReading | None
    close_timeout: float
    is_client: bool
    reading_paused: bool

    #: Feeds received bytes to the connection; whether the reader may read on (the core
    #: is open, the queue has room, the answers owed are under the limit).
    on_data: Callable[[bytes | memoryview], bool]

    def take_initial_data(self) -> bytes: ...
    async def on_transport_error(self, exc: BaseException) -> None: ...
    async def on_internal_error(self, exc: Exception) -> None: ...
    async def abort(self) -> None: ...
    async def run_scoped(self, func: Callable[..., Awaitable[None]], *args: object) -> None: ...
    def reader_done(self) -> None: ...


def receive_size(protocol: Connection) -> int:
    """How much to ask the stream for next: more than usual while a large frame arrives.

    Fewer, larger reads of a large frame cost fewer system calls and scheduler passes; the
    size stays bounded, and small messages keep the usual reads.
    """
    wanted = protocol.bytes_wanted
    if wanted <= RECEIVE_SIZE:
        return RECEIVE_SIZE
    return min(wanted, LARGE_RECEIVE_SIZE)


def _feed_initial_data(host: ReaderHost) -> None:
    data = host.take_initial_data()
    if data:
        host.on_data(data)


async def _wait_for_space(host: ReaderHost) -> None:
    """Wait until the message queue has room and the answers owed to the peer are
    written (the reader is paused meanwhile).

    The second wait bounds what a peer that never reads can make us buffer: every ping it
    sends queues a pong, and the pongs wait behind what it does not read. Only those
    automatic answers count (``Writer.replies_over_limit``), not the application's own
    messages, so two peers that both send a lot never wait for each other's reading.
    While only answers wait, ``reading_paused`` stays false: the keepalive timeout keeps
    running, since a peer that reads nothing is not alive for us either.
    """
    messages = host.messages
    if messages.full:
        host.reading_paused = True
        try:
            await messages.wait_for_space()
        finally:
            host.reading_paused = False
    writer = host.writer
    if writer.replies_over_limit:
        await writer.wait_for_replies()


class SocketReading:
    """Who reads a socket on trio: the reader task, or the task waiting in ``get_message()``.

    When the reader task has handed a message to a parked getter, it lends the socket to
    the getters (:meth:`lend`) and parks instead of waiting for the socket: the getter's
    next ``get_message()`` that finds no message reads the socket itself
    (:func:`read_as_getter`), and an echo costs one task step instead of two (the
    reader's, then the getter's). trio lets one task at a time wait for a socket, so the
    socket is always in one pair of hands: while :attr:`lent`, only a getter reads it;
    otherwise only the reader task.

    The reader task reads again:

    - when a getter gives the socket back (:meth:`give_back`): at the end of the stream,
      on an error (raised in the reader task, which handles it as its own), once the
      close handshake has begun, when the queue is full or too many answers are owed;
    - when nobody has read through a whole grace period of :data:`GETTER_GRACE`
      seconds (the handler stopped reading: between one and two grace periods after its
      last read), so that pings and closes are still answered. While messages flow, the
      reader wakes once per grace period, not per message; while a getter has waited
      for the socket through a whole grace period, the parked reader has no timer: an
      idle connection costs no wake-ups;
    - when the connection closes (:meth:`take_back`): at once, or, if a getter is reading,
      as soon as that getter is done (it reads the peer's close frame, or the socket is
      closed under it).

    Only the reader, the getters and the connection's close call these methods.
    """

    __slots__ = (
        "_error",
        "_parked",
        "_timed",
        "exits",
        "getter_reading",
        "lendable",
        "lent",
        "ready",
        "sock",
    )

    def __init__(self, sock: socket.socket) -> None:
        global _trio
        if _trio is None:
            import trio

            _trio = trio
        #: The socket lent.
        self.sock = sock
        self._parked: Any = None  # the reader task, while it waits in lend()
        self._timed = False  # whether it waits with a deadline (the grace period)
        self._error: Exception | None = None  # what the last getter met, for the reader
        #: Whether the getters read the socket (the reader task is in :meth:`lend`).
        self.lent = False
        #: Whether a getter is reading the socket or waiting for it now.
        self.getter_reading = False
        #: How many times a getter stopped reading: the reader's grace period is renewed
        #: while this moves.
        self.exits = 0
        #: False once the connection closes: the reader task keeps the socket from then on.
        self.lendable = True
        #: Whether the last read filled its buffer: the next one then tries the socket
        #: before waiting (TLS may hold records the socket no longer signals).
        self.ready = False

    async def lend(self, ready: bool) -> None:
        """Park the reader task while the getters read; return when it should read again.

        Raises what a getter met while reading (a transport error, the end of the stream,
        an unexpected error), for the reader task to handle as if it had met it itself.
        """
        self.lent = True
        self.ready = ready
        # Whether a getter came and went since the last wait: then the next wait is a
        # grace period, even if another getter is already reading again (a busy
        # connection wakes the reader once per grace period, not once per message).
        moved = True
        while True:
            if self.getter_reading and not moved:
                # A getter has read through a whole grace period: it wakes us when it
                # leaves (getter_left), and the grace period starts again. Parked here
                # without a frame of _park's: an idle connection's state.
                self._parked = _trio.lowlevel.current_task()
                self._timed = False
                await _trio.lowlevel.wait_task_rescheduled(self._unparked)
                expired = False
                moved = True
            else:
                exits = self.exits
                expired = await self._park(_trio.current_time() + GETTER_GRACE)
                moved = self.exits != exits
            if not self.lent:  # given back, or taken back by the close
                error, self._error = self._error, None
                if error is not None:
                    raise error
                return
            if expired and not self.getter_reading and not moved:
                self.lent = False  # nobody read during the grace period
                return

    async def _park(self, deadline: float) -> bool:
        """Wait until woken (``False``) or until ``deadline`` (``True``)."""
        lowlevel = _trio.lowlevel
        self._parked = lowlevel.current_task()
        self._timed = True
        with _trio.CancelScope(deadline=deadline) as scope:
            await lowlevel.wait_task_rescheduled(self._unparked)
        expired: bool = scope.cancelled_caught
        return expired

    def _unparked(self, _raise_cancel: object) -> Any:
        self._parked = None
        return _trio.lowlevel.Abort.SUCCEEDED

    def _wake(self) -> None:
        task, self._parked = self._parked, None
        if task is not None:
            _trio.lowlevel.reschedule(task)

    def give_back(self, error: Exception | None = None) -> None:
        """A getter hands reading back to the reader task, with the error it met if any."""
        self.lent = False
        self._error = error
        self._wake()

    def getter_left(self) -> None:
        """A getter stopped reading (with a message, handing back, or cancelled)."""
        self.getter_reading = False
        self.exits += 1
        if not self.lent:
            return
        if not self.lendable:
            self.lent = False  # the connection closed while the getter read
            self._wake()
        elif self._parked is not None and not self._timed:
            self._wake()  # the reader starts its grace period

    def take_back(self) -> None:
        """The connection is closing: the reader task reads from now on (at once, or
        when the getter reading now is done)."""
        self.lendable = False
        if self.lent and not self.getter_reading:
            self.lent = False
            self._wake()


async def read_as_getter(ws: ReaderHost, reading: SocketReading) -> None:
    """Read the lent socket from ``get_message()``, until a message is queued or reading
    goes back to the reader task (see :class:`SocketReading`).

    The reads are the reader task's (same sizes, the same readiness rule); what it would
    handle itself (the end, errors, the close, backpressure) goes back to it.

    Cancellation: safe: bytes are fed to the core as soon as they are received.
    """
    io = ws.io
    assert io is not None
    protocol = ws.protocol
    queue = ws.messages
    on_data = ws.on_data
    sock = reading.sock
    ready = reading.ready
    # After a short read (most often), a large frame is not arriving: no need to ask.
    size = receive_size(protocol) if ready else RECEIVE_SIZE
    reading.getter_reading = True
    try:
        while True:
            if ready:
                await io.checkpoint()
            else:
                await io.wait_readable(sock)
            data = io.try_receive(size)
            if data is None:
                ready = False
                continue
            received = len(data)
            if not received:
                raise anyio.EndOfStream
            ready = received == size
            may_read_on = on_data(data)
            del data
            if io.deferred_error is not None:  # TLS ended right after this data
                io.raise_deferred()
            if not may_read_on:
                reading.give_back()
                return
            if queue.count:
                reading.ready = ready
                return
            if received > _SMALL_READ or size != RECEIVE_SIZE:
                size = receive_size(protocol)
    except Exception as exc:  # the reader task reports it, as when it meets it itself
        reading.give_back(exc)
    finally:
        reading.getter_left()


async def read_until_closed(ws: ReaderHost) -> bool:
    """Read and dispatch until the core is closed, then close the transport.

    Run by the reader task, or by ``aclose()`` when the reader task is gone. Never raises
    transport errors: they close the connection (1006, cause chained). Returns ``True``
    when it stopped early instead, having handed reading back to the connection's
    :class:`CallbackReader` (the connection is open and all is read).
    """
    io = ws.io
    if io is not None and io.waits:
        await run_socket_reader(ws, io)
        return False
    protocol = ws.protocol
    stream = ws.stream
    queue = ws.messages
    writer = ws.writer
    on_data = ws.on_data
    try:
        _feed_initial_data(ws)
        if io is not None and io.protocol is not None and await _read_transport(ws, io):
            return True
        size = RECEIVE_SIZE
        while protocol.state is not _CLOSED:
            if queue.full or writer.replies_over_limit:
                await _wait_for_space(ws)
                continue
            data = await stream.receive(size)
            on_data(data)
            if len(data) > _SMALL_READ or size != RECEIVE_SIZE:  # as in run_socket_reader
                size = receive_size(protocol)
            del data  # not kept while the next read waits
    except TRANSPORT_ERRORS as exc:
        await ws.on_transport_error(exc)
        return False
    await close_phase(ws)
    return False


async def run_socket_reader(ws: ReaderHost, io: SocketIO) -> None:
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
    protocol = ws.protocol
    queue = ws.messages
    writer = ws.writer
    on_data = ws.on_data
    sock = io.raw_socket
    wait_readable = io.wait_readable
    checkpoint = io.checkpoint
    reading = ws.reading
    # The first read does not wait: TLS may hold records that came with the handshake.
    ready = True
    size = RECEIVE_SIZE
    try:
        try:
            _feed_initial_data(ws)
            while protocol.state is not _CLOSED:
                if queue.full or writer.replies_over_limit:
                    await ws.run_scoped(_wait_for_space, ws)
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
                had_getter = queue.getter_parked
                may_read_on = on_data(data)
                del data  # not kept while the next read waits
                if io.deferred_error is not None:  # TLS ended right after this data
                    io.raise_deferred()
                if (
                    may_read_on
                    and had_getter
                    and not queue.getter_parked  # it was handed a message
                    and reading is not None
                    and reading.lendable
                ):
                    await reading.lend(ready)
                    ready = True
                # Small reads (request/response traffic) keep the usual size without asking
                # the core; after a large read, the core says whether a large frame arrives.
                if received > _SMALL_READ or size != RECEIVE_SIZE:
                    size = receive_size(protocol)
        except TRANSPORT_ERRORS as exc:
            await ws.on_transport_error(exc)
            return
        except io.closed_error as exc:
            # trio's error for a socket closed during the wait: reported as anyio's
            # stream reports it.
            error = anyio.ClosedResourceError()
            error.__cause__ = exc
            await ws.on_transport_error(error)
            return
        await close_phase(ws)
    except Exception as exc:
        await ws.on_internal_error(exc)
    finally:
        ws.reader_done()


async def _read_transport(ws: ReaderHost, io: SocketIO) -> bool:
    """The receive loop on anyio's asyncio socket stream, reading its protocol's queue.

    ``SocketStream.receive`` resumes the transport's reading before each wait and pauses it
    after (two ``epoll_ctl`` calls per read) and takes one chunk per call. Here reading
    stays on while the connection reads, everything the protocol has queued is fed at
    once, and reading is paused only while the message queue is full (backpressure), then
    at the end, so that ``stream.receive`` finds the transport as it left it. When the queue
    is empty and the protocol's event is set (end of stream, error, closed stream), the
    loop returns: ``stream.receive`` then raises the matching error.

    Under TLS (``io.decrypt``) the chunks are records, turned into plaintext here with the
    TLS stream's own ``SSLObject``; at close_notify the loop returns as at end of stream.

    With a :class:`CallbackReader` (see ``WebSocketConnection._start``), once everything
    received is handled and nothing holds reading back, reading goes back to the callbacks
    and this returns ``True``: the task ends, and the connection is idle without it again.
    """
    protocol = ws.protocol
    queue = ws.messages
    writer = ws.writer
    on_data: Callable[[bytes], object] = ws.on_data
    stream_protocol = io.protocol
    transport = io.transport
    chunks: deque[bytes] = stream_protocol.read_queue
    checkpoint = anyio.lowlevel.checkpoint
    callbacks = ws.callbacks
    if io.decrypt is not None:
        on_data = _decrypting(on_data, io)
        on_data(b"")  # records that came with the handshake, still in the BIO
    transport.resume_reading()
    reattached = False
    try:
        while protocol.state is not _CLOSED:
            if queue.full or writer.replies_over_limit:
                transport.pause_reading()
                await _wait_for_space(ws)
                transport.resume_reading()
                continue
            if chunks:
                await checkpoint()  # data was there already: yield once, for fairness
            else:
                if stream_protocol.is_at_eof or transport.is_closing():
                    return False  # let stream.receive() raise what it is
                if callbacks is not None and callbacks.reattach():
                    reattached = True
                    return True
                stream_protocol.read_event.clear()
                await stream_protocol.read_event.wait()
                if not chunks:
                    return False
            if len(chunks) == 1:
                on_data(chunks.popleft())
            elif protocol.bytes_wanted > RECEIVE_SIZE:
                # A large frame is arriving: its pieces need no join (the core keeps them).
                while chunks:
                    on_data(chunks.popleft())
            else:
                data = b"".join(chunks)
                chunks.clear()
                on_data(data)
                del data  # not kept while the next read waits
    finally:
        if not reattached:
            transport.pause_reading()
    return False


def _decrypting(
    on_data: Callable[[bytes], object], io: SocketIO
) -> Callable[[bytes | memoryview], None]:
    """``on_data`` for chunks of TLS records: fed with the plaintext they complete; then
    the end or error met right after that plaintext is raised (a transport error)."""
    decrypt = io.decrypt
    assert decrypt is not None

    def on_records(records: bytes | memoryview) -> None:
        data = decrypt(records)
        if data:
            on_data(data)
            if io.deferred_error is not None:
                io.raise_deferred()

    return on_records


class CallbackReader(asyncio.BufferedProtocol):
    """The read path on anyio's asyncio socket stream while the connection is open: no task.

    An idle connection on asyncio would otherwise keep a reader task parked on the stream
    protocol's event (the task, its frames, anyio's task handle and a cancel scope: about
    4 KiB of a server's memory per connection), and each received chunk would cost that
    task a step before the getter's. Installed in place of anyio's protocol with the
    transport's public ``set_protocol()``, this one feeds the connection from the event
    loop's callbacks, as a buffered protocol: the transport reads into a buffer shared by
    the thread's readers (``get_buffer``) and reports how much came (``buffer_updated``).
    The writing side (``pause_writing``, ``resume_writing``, ``connection_lost``) is passed
    on to anyio's protocol, whose ``SocketStream.send`` keeps working.

    Anything but plain data hands over to the reader task (``start_task``), with anyio's
    protocol back in place so that the stream is exactly as anyio left it: the core closed
    (the close phase), end of stream or a lost connection, a full message queue or unread
    answers (backpressure), an unexpected error. The task then goes on with
    :func:`read_until_closed`, as on any stream, and hands reading back
    (:meth:`reattach`) once all is read and the connection is still open.
    """

    __slots__ = (
        "_attached",
        "_buffer",
        "_feed",
        "_host",
        "_inner",
        "_io",
        "_start_task",
        "_transport",
    )

    def __init__(
        self, host: ReaderHost, io: SocketIO, start_task: Callable[[Exception | None], None]
    ) -> None:
        self._host = host
        self._io = io
        self._transport = io.transport
        self._inner = io.protocol
        decrypt = io.decrypt
        # What a received chunk goes to: the connection, or first TLS (records to plaintext).
        self._feed = host.on_data if decrypt is None else _decrypting(host.on_data, io)
        # Starts the reader task; given an error, a task that reports it instead.
        self._start_task = start_task
        self._attached = False
        self._buffer = _receive_buffer()

    def attach(self) -> None:
        """Take over reading: first what anyio's protocol queued, then the callbacks."""
        host = self._host
        inner = self._inner
        chunks: deque[bytes] = inner.read_queue
        data = host.take_initial_data()
        feed = self._feed
        try:
            if data:
                host.on_data(data)
            if self._io.decrypt is not None:
                feed(b"")  # records that came with the handshake, still in the BIO
            while chunks and host.protocol.state is not _CLOSED:
                feed(chunks.popleft())
        except Exception as exc:
            self._start_task(exc)
            return
        del data
        if chunks or inner.is_at_eof or self._transport.is_closing() or not self._can_read():
            self._start_task(None)
            return
        inner.read_event.clear()
        self._transport.set_protocol(self)
        self._attached = True
        self._transport.resume_reading()

    def reattach(self) -> bool:
        """Take reading back from the reader task, if nothing holds it back; whether it did.

        Called by the task when anyio's protocol has nothing queued; only while the
        connection is open (not closing) and reading need not pause.
        """
        inner = self._inner
        if (
            self._attached
            or inner.read_queue
            or inner.is_at_eof
            or self._transport.is_closing()
            or self._host.protocol.state is not _OPEN
            or self._host.messages.closed
            or not self._can_read()
        ):
            return False
        inner.read_event.clear()
        self._transport.set_protocol(self)
        self._attached = True
        self._transport.resume_reading()
        return True

    def _can_read(self) -> bool:
        host = self._host
        return (
            host.protocol.state is not _CLOSED
            and not host.messages.full
            and not host.writer.replies_over_limit
        )

    def _hand_over(self, error: Exception | None = None) -> None:
        """Give reading back to anyio's protocol and to the reader task."""
        if self._attached:
            self._attached = False
            self._transport.set_protocol(self._inner)
            self._start_task(error)

    # In a loop callback no task is current, so sniffio (which anyio asks when it is
    # installed, as it is with trio) cannot tell that asyncio runs, and anyio calls that
    # need the backend (current_time, a new Event, starting a task) would fail: each
    # callback says so for its own duration.

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        # A view, not a copy: the core (or the TLS BIO) copies what it keeps.
        data = self._buffer[:nbytes]
        if not self._attached:  # a chunk already on its way when reading was handed over
            self._inner.data_received(data.tobytes())  # anyio's protocol keeps it
            return
        token = None if _sniffio is None else _sniffio.current_async_library_cvar.set("asyncio")
        try:
            try:
                self._feed(data)
            except Exception as exc:
                # A TLS error (reported as the transport's), or a bug of trio_ws or an
                # extension: a task reports it as the reader task would.
                self._transport.pause_reading()
                self._hand_over(exc)
                return
            if not self._can_read():
                self._transport.pause_reading()
                self._hand_over()
        finally:
            if token is not None:
                _sniffio.current_async_library_cvar.reset(token)

    def eof_received(self) -> bool | None:
        if self._attached:
            self._transport.pause_reading()
        result: bool | None = self._inner.eof_received()
        self._hand_over_in_callback()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)
        self._hand_over_in_callback()

    def _hand_over_in_callback(self) -> None:
        token = None if _sniffio is None else _sniffio.current_async_library_cvar.set("asyncio")
        try:
            self._hand_over()
        finally:
            if token is not None:
                _sniffio.current_async_library_cvar.reset(token)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def close_phase(ws: ReaderHost) -> None:
    """After the close handshake (or a failure): flush, then close the transport.

    The server closes TCP at once; the client first waits for the server to close it
    (RFC 6455 section 7.1.1). Both waits are bounded by ``close_timeout``.
    """
    with anyio.move_on_after(ws.close_timeout):
        await ws.writer.flush()
        if ws.is_client and not ws.writer.stopped:
            try:
                while True:
                    await ws.stream.receive(RECEIVE_SIZE)
            except TRANSPORT_ERRORS:
                pass
    await ws.abort()


async def run_reader(ws: ReaderHost) -> None:
    """The reader task on any other stream (under a cancel scope of the connection's).

    Never raises (except cancellation).
    """
    handed_back = False
    try:
        handed_back = await read_until_closed(ws)
    except Exception as exc:
        await ws.on_internal_error(exc)
    finally:
        if not handed_back:
            ws.reader_done()
