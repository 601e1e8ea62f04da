"""WebSocketConnection: one open WebSocket connection, client or server side.

A connection is built by the client (:func:`trio_ws.open_websocket`) or the server, never
by users. Its background tasks run in a task group it is given: the reader
(:mod:`trio_ws._reader`); the writer (:mod:`trio_ws._writer`), which on a plain socket runs
only while bytes wait that the sending task could not write itself, and on other streams
for the whole connection; and, on a client, the keepalive task (:mod:`trio_ws._keepalive`;
a server runs one keepalive scheduler for all its connections). They never raise into that
task group, and they all end by themselves once the connection is closed, so its owner
never has to cancel them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias, Union

import anyio
from anyio.abc import SocketAttribute
from anyio.lowlevel import checkpoint

from ._groups import open_task_group, spawner
from ._keepalive import PingTracker, run_keepalive
from ._lifecycle import IOEvent, IOState, next_io_state
from ._messages import MessageQueue
from ._reader import (
    TRANSPORT_ERRORS,
    CallbackReader,
    SocketReading,
    read_as_getter,
    read_until_closed,
    run_reader,
    run_socket_reader,
)
from ._transport import (
    loop_cancel_shielded_checkpoint,
    loop_checkpoint,
    loop_checkpoint_if_cancelled,
    socket_io,
)
from ._writer import Writer
from .sansio import (
    BytesMessage,
    CloseConnection,
    ConnectionFailed,
    ConnectionState,
    Headers,
    Ping,
    Pong,
    Role,
    TextMessage,
)
from .sansio._errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    LocalProtocolError,
    WouldBlock,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

    from anyio.abc import ByteStream, TaskGroup

    from ._config import ConnectionConfig
    from ._keepalive import KeepaliveEntry, KeepaliveScheduler, PendingPing
    from .sansio import Connection, Event, Extension

__all__ = [
    "Address",
    "ConnectionInfo",
    "ConnectionLink",
    "ConnectionTaskGroup",
    "WebSocketConnection",
    "open_connection",
]

logger = logging.getLogger("trio_ws")

#: A socket address, as the socket reports it: ``(host, port)`` for IPv4,
#: ``(host, port, flowinfo, scope_id)`` for IPv6, a path (``str``) for a Unix socket.
Address: TypeAlias = Union[tuple[Any, ...], str]  # noqa: UP007 (a runtime alias on Python 3.10)

_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED
_IO_NEW = IOState.NEW
_IO_OPEN = IOState.OPEN
_IO_CLOSING = IOState.CLOSING
_IO_CLOSED = IOState.CLOSED
_NORMAL_CODES = frozenset({1000, 1001, 1005})
_PREFIX = 24  # payload bytes shown in debug logs


def _preview(data: str | bytes) -> str:
    return repr(data[:_PREFIX]) + ("..." if len(data) > _PREFIX else "")


def _log_event(connection_id: str, event: Event) -> None:
    if isinstance(event, Ping):
        logger.debug("[%s] < PING %s", connection_id, _preview(event.payload))
    elif isinstance(event, CloseConnection):
        logger.debug("[%s] < CLOSE code %d reason %r", connection_id, event.code, event.reason)
    elif isinstance(event, ConnectionFailed):
        logger.debug(
            "[%s] peer broke the protocol: failing with code %d (%s)",
            connection_id,
            event.code,
            event.reason,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """What the opening handshake learned, handed to the connection by client or server.

    Attributes:
        path: The path of the request target, percent-encoded (``/chat``).
        query: The query of the request target without ``?``, percent-encoded; ``""``
            when there is none.
        request_headers: The headers of the client's upgrade request.
        response_headers: The headers of the server's 101 response.
        subprotocol: The negotiated subprotocol, if any.
        extensions: The negotiated extensions, in order.
        local_address: This end's address; ``None`` to read it from the stream.
        remote_address: The peer's address; ``None`` to read it from the stream.
    """

    path: str = "/"
    query: str = ""
    request_headers: Headers = field(default_factory=Headers)
    response_headers: Headers = field(default_factory=Headers)
    subprotocol: str | None = None
    extensions: Sequence[Extension] = ()
    local_address: Address | None = None
    remote_address: Address | None = None


class _Flag:
    """A one-shot event whose ``anyio.Event`` is only made if someone waits (a flag is
    checked far more often than waited for, and every connection has two)."""

    __slots__ = ("_event", "_value")

    def __init__(self) -> None:
        self._value = False
        self._event: anyio.Event | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        if self._event is not None:
            self._event.set()

    async def wait(self) -> None:
        if self._value:
            await checkpoint()
            return
        if self._event is None:
            self._event = anyio.Event()
        await self._event.wait()


class WebSocketConnection:
    """An open WebSocket connection (either side): send and receive messages, ping, close.

    Receive with ``await ws.get_message()`` or ``async for message in ws``; send with
    ``await ws.send_message(...)``. When the connection closes, every call raises
    :exc:`ConnectionClosed` (:exc:`ConnectionClosedOK` for a normal closure,
    :exc:`ConnectionClosedError` otherwise) carrying the close code and reason; the
    iteration simply ends on a normal closure.

    Not constructed by users: :func:`trio_ws.open_websocket_url` and the server build it.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_shielded_checkpoint",
        "_checkpoint",
        "_checkpoint_if_cancelled",
        "_close_cause",
        "_closed_flag",
        "_config",
        "_fragmenting",
        "_helper_scopes",
        "_high_water",
        "_id",
        "_info",
        "_initial_data",
        "_internal_error",
        "_io",
        "_keepalive",
        "_link",
        "_messages",
        "_pings",
        "_protocol",
        "_reader_done",
        "_reading",
        "_reading_paused",
        "_state",
        "_stream",
        "_task_group",
        "_task_scopes",
        "_writer",
    )

    def __init__(
        self,
        stream: ByteStream,
        protocol: Connection,
        *,
        config: ConnectionConfig,
        info: ConnectionInfo,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._config = config
        self._info = info
        self._id = secrets.token_hex(3)
        self._messages = MessageQueue(config.max_queue)
        self._pings = PingTracker()
        self._io = socket_io(stream)
        # Every awaited public call is a checkpoint. The hot ones (get_message with a
        # message waiting, send_message) yield first and then act without awaiting; the
        # others take a cancellation point before acting and a shielded schedule point
        # after, as trio's channels do.
        self._checkpoint = loop_checkpoint()
        self._checkpoint_if_cancelled = loop_checkpoint_if_cancelled()
        self._cancel_shielded_checkpoint = loop_cancel_shielded_checkpoint()
        self._writer = Writer(
            stream,
            protocol,
            config.write_high_water,
            self._pings,
            self._transport_failed,
            self._io,
        )
        self._high_water = config.write_high_water
        self._initial_data = b""
        self._reading_paused = False
        self._reading: SocketReading | None = None  # on trio's direct socket path
        self._internal_error: Exception | None = None
        self._close_cause: BaseException | None = None
        # The I/O lifecycle (see _lifecycle), moved only by _move().
        self._state = _IO_NEW
        self._task_group: TaskGroup | None = None  # the owner's, once started
        self._reader_done = _Flag()
        self._closed_flag = _Flag()  # set on entering IOState.CLOSED
        self._task_scopes: list[anyio.CancelScope] | None = None  # made on first use
        self._helper_scopes: set[anyio.CancelScope] | None = None  # made on first use
        self._fragmenting: anyio.Event | None = None
        self._keepalive: KeepaliveEntry | None = None
        self._link = ConnectionLink(self)

    # ---------------------------------------------------------------- lifecycle

    def _move(self, event: IOEvent) -> IOState:
        """Apply ``event`` to the I/O state (the one place that changes it); the old state."""
        old = self._state
        self._state = next_io_state(old, event)
        if self._state is _IO_CLOSED and old is not _IO_CLOSED:
            self._closed_flag.set()
        return old

    @property
    def _dropping(self) -> bool:
        # aclose() was called (or the transport is closed): incoming messages are dropped.
        state = self._state
        return state is _IO_CLOSING or state is _IO_CLOSED

    def _start(
        self,
        task_group: TaskGroup,
        initial_data: bytes = b"",
        keepalive: KeepaliveScheduler | None = None,
        *,
        held_open: bool = False,
    ) -> None:
        """Start the background tasks in ``task_group`` (the connection's owner's).

        ``initial_data`` are the bytes that followed the handshake; they are processed
        before anything read later. With ``keepalive`` (a server's, made with this
        connection's ``ping_interval`` and ``ping_timeout``), the keepalive pings are
        scheduled there instead of in a task of the connection's own. ``held_open``: the
        owner keeps ``task_group`` open until the connection is closed (a server's session,
        an ``async with`` block), so the connection needs no task of its own to hold it.
        """
        if self._state is not _IO_NEW:
            raise RuntimeError("the connection was already started")
        self._move(IOEvent.START)
        self._initial_data = initial_data
        self._task_group = task_group
        start_soon = spawner(task_group)
        io = self._io
        callbacks: CallbackReader | None = None
        if io is not None and io.waits:
            self._reading = self._link.reading = SocketReading(io.raw_socket)
            # Closing the socket ends this one: it needs no scope (see run_socket_reader).
            start_soon(run_socket_reader, self._link, io, name=f"trio_ws[{self._id}] reader")
        elif io is not None and io.protocol is not None and held_open:
            # On asyncio, no reader task while the connection is open (see
            # CallbackReader); attached once everything else is set up, since it may feed
            # data at once. Only where the owner holds the task group open: otherwise the
            # reader task is what holds the caller's task group open (as on trio), as for
            # a client made with connect_websocket(nursery, ...).
            callbacks = CallbackReader(self._link, io, self._start_reader)
            self._link.callbacks = callbacks
        else:
            self._start_reader(None)
        # On a socket, the writer task starts when bytes wait that nobody writes, and ends
        # when they are written; on other streams it runs from the start (see _writer).
        self._writer.set_spawner(self._spawn_writer)
        if self._io is None or self._writer.pending:
            self._writer.wake()
        interval = self._config.ping_interval
        if interval is not None and keepalive is not None:
            self._keepalive = keepalive.add(self._link)
        elif interval is not None:
            timeout = self._config.ping_timeout
            start_soon(
                self._run_task,
                run_keepalive,
                self._link,
                interval,
                timeout,
                name=f"trio_ws[{self._id}] keepalive",
            )
        logger.debug(
            "[%s] open (%s) resource %r, subprotocol %r",
            self._id,
            "client" if self.is_client else "server",
            self.resource,
            self._info.subprotocol,
        )
        if callbacks is not None:
            callbacks.attach()

    def _start_reader(self, error: Exception | None) -> None:
        """Start the reader task (or, given an error of the read path, one that reports it)."""
        if self._state is _IO_CLOSED:
            self._reader_done.set()
            return
        start_soon = spawner(self._task_group)
        name = f"trio_ws[{self._id}] reader"
        try:
            if error is None:
                start_soon(self._run_task, run_reader, self._link, name=name)
            else:
                start_soon(self._run_task, self._report_read_error, error, name=name)
        except RuntimeError:
            # The owner's task group is gone with the connection still open (an owner
            # bug): nothing can run its close any more, so the transport is dropped.
            logger.debug("[%s] task group closed under an open connection: aborted", self._id)
            self._reader_done.set()
            if self._io is not None and self._io.protocol is not None:
                self._io.transport.abort()

    async def _report_read_error(self, error: Exception) -> None:
        try:
            if isinstance(error, TRANSPORT_ERRORS):  # e.g. a bad TLS record (see _reader)
                await self._link.on_transport_error(error)
            else:
                await self._link.on_internal_error(error)
        finally:
            self._reader_done.set()

    def _spawn_writer(self) -> None:
        # The writer's spawner: a bound method costs less than a partial holding two.
        start_soon = spawner(self._task_group)
        start_soon(self._run_task, self._writer.run, name=f"trio_ws[{self._id}] writer")

    async def _run_task(self, task: Callable[..., Awaitable[None]], *args: object) -> None:
        # Each background task (but the socket reader, see _start) runs under a scope of
        # its own, so that _abort() can stop it without touching the owner's task group.
        with anyio.CancelScope() as scope:
            if self._state is _IO_CLOSED:
                scope.cancel()
            scopes = self._task_scopes
            if scopes is None:
                scopes = self._task_scopes = []
            scopes.append(scope)
            try:
                await task(*args)
            finally:
                scopes.remove(scope)

    def _on_data(self, data: bytes | memoryview) -> bool:
        """Feed received bytes to the core and dispatch the events they complete.

        ``data`` may be a view of a buffer that is reused once this returns (the core
        copies what it keeps).

        Returns whether the reader may read on: ``False`` once the core is no longer open,
        the message queue is full or too many answers are owed (see ``_reader``).
        """
        protocol = self._protocol
        tracker = self._pings
        if tracker.pending:
            tracker.last_received = anyio.current_time()
        events = protocol.receive_data(data)
        queue = self._messages
        writer = self._writer
        # Whether the core queued answers of its own (a pong, a close reply, the close of a
        # failure): only events other than messages do.
        answered = False
        if events:
            pinged = 0
            state = self._state
            dropping = state is _IO_CLOSING or state is _IO_CLOSED
            debug = logger.isEnabledFor(logging.DEBUG)
            for event in events:
                kind = type(event)
                if kind is TextMessage or kind is BytesMessage:
                    message = event.data  # type: ignore[union-attr]
                    if not dropping:
                        queue.put(message)
                    if debug:
                        opcode = "TEXT" if kind is TextMessage else "BINARY"
                        logger.debug(
                            "[%s] < %s %d bytes %s",
                            self._id,
                            opcode,
                            len(message),
                            _preview(message),
                        )
                elif kind is Pong:
                    if debug:
                        logger.debug("[%s] < PONG %s", self._id, _preview(event.payload))  # type: ignore[union-attr]
                    tracker.acknowledge(event.payload)  # type: ignore[union-attr]
                else:
                    answered = True
                    if kind is Ping:
                        # What the pong costs (its header: 6 bytes masked by a client, 2
                        # otherwise), counted even when the core coalesced it with one
                        # already queued (RFC 6455 5.5.3).
                        header = 6 if protocol.role is Role.CLIENT else 2
                        pinged += header + len(event.payload)  # type: ignore[union-attr]
                    if debug:
                        _log_event(self._id, event)
            if answered:
                # Counted, so that a peer that sends pings and never reads stops being read
                # (see _reader): the core's buffer alone stops growing once pongs coalesce.
                writer.unanswered += pinged
                if protocol.bytes_to_send:
                    writer.wake()
        # The peer answered: the next message may be written by its sender (see _writer).
        writer.may_write_through = self._io is not None
        core_state = protocol.state
        if core_state is not _OPEN:
            if core_state is _CLOSED:
                self._receiving_ended()
            return False
        # Answers owed grow only here (a write completing clears them): no need to ask
        # the writer unless this chunk queued some.
        return not queue.full and not (answered and writer.replies_over_limit)

    def _transport_failed(self, exc: BaseException) -> None:
        """The transport broke (or reached EOF): no more bytes in or out."""
        if self._protocol.state is not _CLOSED:
            self._close_cause = exc
            logger.debug("[%s] transport closed without a close frame: %r", self._id, exc)
        self._protocol.receive_eof()
        self._receiving_ended()

    def _receiving_ended(self) -> None:
        """The core is closed: wake everyone waiting for a message or a pong."""
        self._messages.close()
        self._pings.close()

    async def _fail(self, code: int, reason: str) -> None:
        """Fail the connection from this side: send a close frame if we can, then abort."""
        if self._protocol.state is not _CLOSED:
            logger.debug("[%s] failing the connection: code %d (%s)", self._id, code, reason)
            self._protocol.fail(code, reason)
        self._receiving_ended()
        self._writer.wake()
        with anyio.move_on_after(self._config.close_timeout):
            await self._writer.flush()
        await self._abort()

    async def _abort(self) -> None:
        """Close the transport at once and stop every background and helper task."""
        if self._state is _IO_CLOSED:
            return
        if self._protocol.state is not _CLOSED:
            self._protocol.receive_eof()
        self._receiving_ended()
        if self._reading is not None:
            self._reading.take_back()
        self._writer.stopped = True
        self._writer.wake()
        if self._keepalive is not None:
            self._keepalive.ws = None  # releases this connection before its next deadline
            self._keepalive = None
        for scope in self._task_scopes or ():
            scope.cancel()
        for scope in self._helper_scopes or ():
            scope.cancel()
        self._move(IOEvent.ABORT)
        logger.debug(
            "[%s] closed: code %s, reason %r",
            self._id,
            self._protocol.close_code,
            self._protocol.close_reason,
        )
        await anyio.aclose_forcefully(self._stream)

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection: run the close handshake, then close the transport.

        Sends a close frame with ``code`` and ``reason`` (unless the connection is already
        closing), drops messages not yet received, waits for the peer's close frame (and,
        on a client, for the server to close TCP), then closes the stream. Idempotent: a
        second call, or a call after the peer closed, only waits for the end. Never raises
        :exc:`ConnectionClosed`. Another task waiting in :meth:`get_message` raises
        :exc:`ConnectionClosed`: at once, or on trio, if that task was reading the socket
        itself, when the close handshake ends.

        Args:
            code: The close code: 1000 (normal), 1001 (going away), 3000-4999 for
                applications, ...
            reason: A short explanation, at most 123 bytes of UTF-8.

        Raises:
            LocalProtocolError: ``code`` or ``reason`` is invalid.

        Cancellation:
            Shielded: the close handshake completes (bounded by ``close_timeout``, after
            which the transport is closed anyway) even if the caller is cancelled; the
            cancellation is delivered at the caller's next checkpoint.
        """
        protocol = self._protocol
        with anyio.CancelScope(shield=True):
            if self._state is _IO_CLOSED:
                await checkpoint()
                return
            if protocol.state is _OPEN:
                protocol.send_close(code, reason)
                logger.debug("[%s] > CLOSE code %d reason %r", self._id, code, reason)
            self._messages.discard()
            self._pings.close()
            self._writer.wake()
            if self._reading is not None:
                self._reading.take_back()
            previous = self._move(IOEvent.CLOSE)
            if previous is _IO_CLOSING:
                with anyio.move_on_after(self._config.close_timeout):
                    await self._closed_flag.wait()
                return
            try:
                with anyio.move_on_after(self._config.close_timeout):
                    # Written by the writer task, or from here if it is gone (cancelled
                    # along with its task group).
                    await self._writer.flush()
                    if previous is _IO_OPEN:
                        await self._reader_done.wait()
                    if self._state is not _IO_CLOSED:
                        # No reader task (never started, or cancelled): finish from here.
                        await read_until_closed(self._link)
            finally:
                await self._abort()

    def close_nowait(self, code: int = 1000, reason: str = "") -> None:
        """Start closing the connection without waiting: the no-wait variant of :meth:`aclose`.

        Queues the close frame (behind what is already queued) and returns; a task in the
        connection's task group then finishes the close handshake exactly as
        :meth:`aclose` does (bounded by ``close_timeout``). From now on sending raises
        :exc:`ConnectionClosed` and :attr:`closed` is true. Used by
        :func:`trio_ws.broadcast` to close a slow consumer with 1013. Not a checkpoint; a
        no-op if the connection is already closing.

        Raises:
            LocalProtocolError: ``code`` or ``reason`` is invalid.
        """
        if self._protocol.state is not _OPEN or self._dropping:
            return
        self._protocol.send_close(code, reason)
        logger.debug("[%s] > CLOSE code %d reason %r (no wait)", self._id, code, reason)
        self._writer.wake()
        task_group = self._task_group
        if task_group is not None and self._state is _IO_OPEN:
            # aclose() finds the close frame queued and waits for the rest as usual.
            spawner(task_group)(self.aclose, code, reason, name=f"trio_ws[{self._id}] close")

    # ---------------------------------------------------------------- receiving

    async def get_message(self) -> str | bytes:
        """Receive the next message: ``str`` for text, ``bytes`` for binary.

        Returns at once when a message is already waiting. Text comes as ``bytes`` when
        the connection was opened with ``decode_text=False``.

        Raises:
            ConnectionClosed: The connection is closed and no message is left
                (``ConnectionClosedOK`` for 1000, 1001 or no status code,
                ``ConnectionClosedError`` otherwise, with the transport error as
                ``__cause__`` for an abnormal closure).

        Cancellation:
            Safe: a cancelled call takes no message, the next call gets it.
        """
        queue = self._messages
        # ``count > 0`` rather than a bare truth test, which mypy narrows to 0 for good.
        if queue.count > 0:
            # A message is waiting: still a checkpoint, taken before the message so that a
            # cancellation there leaves it queued. Nothing awaits after it is taken.
            await self._checkpoint()
            if queue.count > 0:
                return queue.get_nowait()
        while True:
            if queue.closed:
                await checkpoint()
                raise self._closed_error()
            reading = self._reading
            if reading is not None and reading.lent and not reading.getter_reading:
                # The reader task lent us the socket: read it here, one task step less.
                await read_as_getter(self._link, reading)
                if queue.count > 0:
                    return queue.get_nowait()
                continue
            # On trio, this frame awaits trio's own wait: one frame less while idle.
            parked = queue.park_trio_getter()
            await (queue.wait_for_message() if parked is None else parked)
            if queue.count > 0:
                # The wait was the schedule point; the message is taken at once.
                await self._checkpoint_if_cancelled()
                return queue.get_nowait()

    def get_message_nowait(self) -> str | bytes:
        """Take the next message if one is already waiting, without yielding.

        The no-wait variant of :meth:`get_message`: not a checkpoint.

        Raises:
            WouldBlock: No message is waiting yet.
            ConnectionClosed: The connection is closed and no message is left.
        """
        queue = self._messages
        if queue.count > 0:
            return queue.get_nowait()
        if queue.closed:
            raise self._closed_error()
        raise WouldBlock("no message is waiting")

    @property
    def messages_waiting(self) -> int:
        """How many received messages wait to be taken.

        While this is above 0, :meth:`get_message_nowait` returns a message instead of
        raising :exc:`WouldBlock`: a loop that drains a batch can test this rather than
        catch the exception, which costs more. Messages that arrived after
        :meth:`aclose` began are dropped and not counted.
        """
        return self._messages.count

    def __aiter__(self) -> WebSocketConnection:
        return self

    async def __anext__(self) -> str | bytes:
        """The next message; the iteration ends quietly on a normal closure.

        Raises:
            ConnectionClosedError: The connection closed abnormally.
        """
        # get_message() inlined rather than awaited: one coroutine less per message, and
        # one frame less on the stack of a handler waiting in ``async for``.
        queue = self._messages
        if queue.count > 0:
            await self._checkpoint()
            if queue.count > 0:
                return queue.get_nowait()
        while True:
            if queue.closed:
                await checkpoint()
                error = self._closed_error()
                if isinstance(error, ConnectionClosedOK):
                    raise StopAsyncIteration
                raise error
            reading = self._reading
            if reading is not None and reading.lent and not reading.getter_reading:
                await read_as_getter(self._link, reading)
                if queue.count > 0:
                    return queue.get_nowait()
                continue
            parked = queue.park_trio_getter()
            await (queue.wait_for_message() if parked is None else parked)
            if queue.count > 0:
                await self._checkpoint_if_cancelled()
                return queue.get_nowait()

    # ------------------------------------------------------------------ sending

    def _closed_error(self) -> ConnectionClosed:
        """The exception that describes why the connection is (being) closed."""
        if self._internal_error is not None:
            error: ConnectionClosed = ConnectionClosedError(1011, "internal error")
            error.__cause__ = self._internal_error
            return error
        protocol = self._protocol
        code = protocol.close_code
        reason = protocol.close_reason or ""
        if code is None:  # closing from our side, before the core knows
            code = 1006
        cls = ConnectionClosedOK if code in _NORMAL_CODES else ConnectionClosedError
        error = cls(code, reason)
        error.__cause__ = self._close_cause
        return error

    async def _wait_to_send(self) -> None:
        """Wait for room in the write buffer and for a fragmented message to end.

        A checkpoint either way (a schedule point, then a cancellation point), so that the
        caller queues its message with no await after it. Raises
        :exc:`ConnectionClosed` when sending is over.
        """
        if self._protocol.bytes_to_send > self._high_water:
            await self._writer.wait_for_space()
        else:
            await self._checkpoint()
        while self._fragmenting is not None:
            await self._fragmenting.wait()
        if self._protocol.state is not _OPEN or self._writer.stopped:
            raise self._closed_error()

    async def send_message(
        self,
        message: str | bytes | bytearray | memoryview,
        *,
        text: bool | None = None,
        compress: bool | None = None,
    ) -> None:
        """Send one message.

        Many small messages sent in a row go out together in one write. Like every
        awaited call, this is a checkpoint; it waits while the write buffer is above
        ``write_high_water``. :meth:`send_message_nowait` never yields.

        Args:
            message: The message: a ``str`` is sent as text, bytes-like as binary.
            text: Override the kind: ``True`` sends bytes as a text message (taken as
                valid UTF-8, for relays), ``False`` sends a ``str`` as binary (UTF-8).
            compress: When permessage-deflate was negotiated: ``False`` sends this
                message uncompressed (data that is already compressed, or a secret next
                to attacker-controlled data), ``True`` compresses it whatever its size,
                ``None`` compresses it if it is at least ``min_size`` bytes (see
                :class:`~trio_ws.Compression`). Ignored without compression.

        Raises:
            ConnectionClosed: The connection is closed or closing.
            LocalProtocolError: A ``str`` that cannot be encoded as UTF-8.

        Cancellation:
            Safe: if cancelled, the message was not sent (this call only waits before
            queueing it).
        """
        protocol = self._protocol
        writer = self._writer
        if protocol.bytes_to_send > self._high_water:
            await self._wait_to_send()
        else:
            # _wait_to_send() in short, for the common case: the checkpoint, then the
            # checks; any wait or error is left to it.
            await self._checkpoint()
            if self._fragmenting is not None or protocol.state is not _OPEN or writer.stopped:
                await self._wait_to_send()
        if text is None:
            text = isinstance(message, str)
        if text:
            data = message if isinstance(message, str) else bytes(message)
            protocol.send_text(data, compress=compress)
        else:
            protocol.send_binary(message, compress=compress)
        writer.write_or_wake()
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "[%s] > %s %d %s",
                self._id,
                "TEXT" if text else "BINARY",
                len(message),
                "chars" if isinstance(message, str) else "bytes",
            )

    def send_message_nowait(
        self,
        message: str | bytes | bytearray | memoryview,
        *,
        text: bool | None = None,
        compress: bool | None = None,
    ) -> None:
        """Queue one message without yielding to other tasks, or raise.

        The no-wait variant of :meth:`send_message`, for loops over many connections
        (:func:`trio_ws.broadcast`) that must not wait for the slowest: arguments as there.
        It is not a checkpoint.

        Raises:
            WouldBlock: :attr:`buffered_amount` is above ``write_high_water`` or a
                fragmented message is being sent: nothing was queued.
            ConnectionClosed: The connection is closed or closing.
            LocalProtocolError: A ``str`` that cannot be encoded as UTF-8.
        """
        protocol = self._protocol
        writer = self._writer
        if (
            protocol.state is not _OPEN
            or writer.stopped
            or self._fragmenting is not None
            or writer.buffered > self._high_water
        ):
            self._check_send_nowait()  # raises what applies
        if text is None:
            text = isinstance(message, str)
        if text:
            protocol.send_text(
                message if isinstance(message, str) else bytes(message), compress=compress
            )
        else:
            protocol.send_binary(message, compress=compress)
        writer.write_or_wake()

    def send_encoded_nowait(self, frame: bytes) -> None:
        """Queue the bytes of one whole, unmasked frame encoded once for many connections.

        Make ``frame`` with :func:`trio_ws.sansio.serialize_frame`. Only a server may
        send such frames (a client masks every frame with a fresh key), and only when
        every negotiated extension allows plain frames (permessage-deflate does: the
        message is just not compressed). Not a checkpoint.

        Raises:
            WouldBlock: As for :meth:`send_message_nowait`: nothing was queued.
            ConnectionClosed: The connection is closed or closing.
            LocalProtocolError: This is a client, or an extension forbids plain frames.
        """
        self._check_send_nowait()
        self._protocol.send_encoded(frame)
        self._writer.write_or_wake()

    def _check_send_nowait(self) -> None:
        if self._protocol.state is not _OPEN or self._writer.stopped:
            raise self._closed_error()
        if self._fragmenting is not None:
            raise WouldBlock("a fragmented message is being sent")
        if self._writer.buffered > self._high_water:
            raise WouldBlock("the write buffer is above its high-water mark")

    @property
    def is_sending_fragments(self) -> bool:
        """Whether a fragmented message (:meth:`send_message_parts`) is being sent.

        Meanwhile no other message can be sent: :meth:`send_message` waits and the no-wait
        calls raise :exc:`WouldBlock`.
        """
        return self._fragmenting is not None

    @property
    def buffered_amount(self) -> int:
        """How many bytes of queued frames are not written to the transport yet.

        :meth:`send_message` waits while this is above ``write_high_water``, and
        :meth:`send_message_nowait` raises :exc:`WouldBlock`.
        """
        return self._writer.buffered

    async def send_message_parts(
        self,
        parts: Iterable[str | bytes] | AsyncIterable[str | bytes],
        *,
        text: bool | None = None,
        compress: bool | None = None,
    ) -> None:
        """Send one message in fragments, one frame per part (a stream of unknown size).

        Other messages sent meanwhile wait until this one is complete; pings and pongs
        may go between its fragments.

        Args:
            parts: The message's parts, from an iterable or an async iterable; they may
                be ``str`` or bytes.
            text: Whether the message is text; ``None`` decides from the first part's type
                (an empty ``parts`` then sends an empty binary message).
            compress: As for :meth:`send_message`, for the whole message; with ``None``
                the size of the first part decides.

        Raises:
            ConnectionClosed: The connection is closed or closing.

        Cancellation:
            If cancelled (or if ``parts`` raises) before the first fragment was queued,
            nothing was sent. After that, the message cannot be completed, so the
            connection fails with 1011 and the exception propagates.
        """
        await self._wait_to_send()
        done = self._fragmenting = anyio.Event()
        kind = text
        started = False
        pending: str | bytes | None = None

        async def send_fragment(data: str | bytes, *, fin: bool) -> None:
            nonlocal started
            if self._protocol.bytes_to_send > self._high_water:
                await self._writer.wait_for_space()
            if self._protocol.state is not _OPEN or self._writer.stopped:
                raise self._closed_error()
            self._protocol.send_fragment(
                data, text=bool(kind), fin=fin, compress=None if started else compress
            )
            started = True
            self._writer.wake()

        try:
            if isinstance(parts, AsyncIterable):
                async for part in parts:
                    if pending is not None:
                        await send_fragment(pending, fin=False)
                    elif kind is None:
                        kind = isinstance(part, str)
                    pending = part
            else:
                for part in parts:
                    if pending is not None:
                        await send_fragment(pending, fin=False)
                    elif kind is None:
                        kind = isinstance(part, str)
                    pending = part
            await send_fragment(b"" if pending is None else pending, fin=True)
        except BaseException:
            if started and self._protocol.state is _OPEN:
                with anyio.CancelScope(shield=True):
                    await self._fail(1011, "a fragmented message was interrupted")
            raise
        finally:
            self._fragmenting = None
            done.set()
        await self._cancel_shielded_checkpoint()

    def _send_ping_now(self, payload: bytes | None) -> PendingPing | None:
        """Queue a ping and track it; ``None`` if the connection is closing."""
        if self._protocol.state is not _OPEN or self._dropping:
            return None
        tracker = self._pings
        if payload is None:
            payload = tracker.new_payload()
        elif len(payload) > 125:
            raise LocalProtocolError("a ping payload is at most 125 bytes")
        ping = tracker.add(bytes(payload))
        self._protocol.send_ping(payload)
        self._writer.wake()
        return ping

    async def ping(self, payload: bytes | None = None) -> float:
        """Send a ping and wait for its pong; return the round trip time in seconds.

        The time is measured from when the ping was written to the transport. A pong
        also answers every earlier ping (RFC 6455 section 5.5.3), so concurrent pings
        are fine as long as their payloads differ.

        Args:
            payload: Up to 125 bytes; ``None`` for a random one.

        Returns:
            The latency, also kept in :attr:`latency`.

        Raises:
            ConnectionClosed: The connection closed before the pong arrived.
            LocalProtocolError: ``payload`` is over 125 bytes, or a ping with the same
                payload is already waiting for its pong.

        Cancellation:
            Safe: the ping may have been sent, its pong is then ignored.
        """
        await self._checkpoint_if_cancelled()
        try:
            ping = self._send_ping_now(payload)
        except BaseException:
            await self._cancel_shielded_checkpoint()
            raise
        if ping is None:
            await self._cancel_shielded_checkpoint()
            raise self._closed_error()
        try:
            await ping.acknowledged.wait()
        except BaseException:
            self._pings.discard(ping)
            raise
        if ping.latency is None:
            raise self._closed_error()
        return ping.latency

    async def pong(self, payload: bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat). Pings are answered for you.

        Raises:
            ConnectionClosed: The connection is closed or closing.
            LocalProtocolError: ``payload`` is over 125 bytes.

        Cancellation:
            Safe: if cancelled, nothing was sent.
        """
        await self._checkpoint_if_cancelled()
        try:
            if self._protocol.state is not _OPEN or self._writer.stopped:
                raise self._closed_error()
            self._protocol.send_pong(payload)
            self._writer.wake()
        finally:
            await self._cancel_shielded_checkpoint()

    # ------------------------------------------------------------ helper tasks

    @asynccontextmanager
    async def task_group(self) -> AsyncIterator[ConnectionTaskGroup]:
        """A task group for helper tasks that must not outlive the connection.

        Tasks started with ``start_soon`` are cancelled when the connection closes; the
        ``async with`` body itself is not (its next call on the connection raises
        :exc:`ConnectionClosed`). Leaving the block waits for the tasks. An exception
        raised by the body or a task comes out as itself, never as an ExceptionGroup.

        Example::

            async with ws.task_group() as tg:
                tg.start_soon(send_heartbeats, ws)
                async for message in ws:
                    ...
        """
        async with open_task_group() as task_group:
            yield ConnectionTaskGroup(self, task_group)

    # -------------------------------------------------------------- properties

    @property
    def id(self) -> str:
        """A short identifier for logs (random, 6 hex digits)."""
        return self._id

    @property
    def is_client(self) -> bool:
        """Whether this is the client end."""
        return self._protocol.role is Role.CLIENT

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed (no more messages can be sent)."""
        return self._protocol.state is not _OPEN or self._dropping

    @property
    def close_code(self) -> int | None:
        """The close code: the peer's if it sent one, else ours, else 1006; None if open."""
        if self._internal_error is not None:
            return 1011
        if self._protocol.state is _OPEN:
            return None
        return self._protocol.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason that goes with :attr:`close_code`; None while open."""
        if self._protocol.state is _OPEN:
            return None
        return self._protocol.close_reason

    @property
    def latency(self) -> float | None:
        """The last measured ping round trip in seconds (``None`` before the first)."""
        return self._pings.latency

    @property
    def path(self) -> str:
        """The path of the request, percent-encoded, without the query (``/chat``)."""
        return self._info.path

    @property
    def query(self) -> str:
        """The query string of the request without ``?``, percent-encoded; ``""`` if none."""
        return self._info.query

    @property
    def resource(self) -> str:
        """The resource name: :attr:`path` plus ``?`` and :attr:`query` if there is one."""
        info = self._info
        return f"{info.path}?{info.query}" if info.query else info.path

    @property
    def request_headers(self) -> Headers:
        """The headers of the opening handshake's request."""
        return self._info.request_headers

    @property
    def response_headers(self) -> Headers:
        """The headers of the opening handshake's response."""
        return self._info.response_headers

    @property
    def subprotocol(self) -> str | None:
        """The negotiated subprotocol, if any."""
        return self._info.subprotocol

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The negotiated extensions (e.g. permessage-deflate)."""
        return self._protocol.extensions

    @property
    def local_address(self) -> Address | None:
        """This end's socket address (``None`` if the stream has none)."""
        if self._info.local_address is not None:
            return self._info.local_address
        return self._stream.extra(SocketAttribute.local_address, None)

    @property
    def remote_address(self) -> Address | None:
        """The peer's socket address (``None`` if the stream has none)."""
        if self._info.remote_address is not None:
            return self._info.remote_address
        return self._stream.extra(SocketAttribute.remote_address, None)

    def __repr__(self) -> str:
        side = "client" if self.is_client else "server"
        return f"<WebSocketConnection {self._id} {side} {self._protocol.state.name}>"


class ConnectionLink:
    """The connection's internal interface, for its background tasks and its owner.

    The reader (:class:`trio_ws._reader.ReaderHost`), the keepalive
    (:class:`trio_ws._keepalive.KeepaliveHost`) and the client or server session that
    built the connection hold this object, never the connection's private attributes. The
    parts it hands out (core, queue, pings, writer, stream, transport) are fixed for the
    connection's life; every change of state goes through a method of the connection.
    """

    __slots__ = (
        "_ws",
        "callbacks",
        "close_timeout",
        "id",
        "io",
        "is_client",
        "messages",
        "on_data",
        "pings",
        "protocol",
        "reading",
        "stream",
        "writer",
    )

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws
        self.id = ws._id
        self.protocol = ws._protocol
        self.messages = ws._messages
        self.pings = ws._pings
        self.writer = ws._writer
        self.stream = ws._stream
        self.io = ws._io
        self.close_timeout = ws._config.close_timeout
        self.is_client = ws.is_client
        #: Feed received bytes to the core and dispatch the events they complete; whether
        #: the reader may read on (the connection's own method: no call in between).
        self.on_data: Callable[[bytes | memoryview], bool] = ws._on_data
        #: The asyncio callback reader, if any, set once when the connection starts: the
        #: reader task hands reading back to it once it may (see _reader).
        self.callbacks: CallbackReader | None = None
        #: On trio's direct socket path, who reads: the reader task or a getter (set once
        #: when the connection starts).
        self.reading: SocketReading | None = None

    # --- the owner (client, server session)

    def start(
        self,
        task_group: TaskGroup,
        initial_data: bytes = b"",
        keepalive: KeepaliveScheduler | None = None,
        *,
        held_open: bool = False,
    ) -> None:
        """Start the connection's background tasks (see ``WebSocketConnection._start``)."""
        self._ws._start(task_group, initial_data, keepalive, held_open=held_open)

    def write_first(self, data: bytes) -> None:
        """Write ``data`` before any frame: the server's 101 response."""
        self.writer.write_first(data)

    async def flush(self) -> None:
        """Wait until everything queued is written (or writing stopped)."""
        await self.writer.flush()

    @property
    def close_cause(self) -> BaseException | None:
        """The transport error that closed the connection, if one did."""
        return self._ws._close_cause

    @property
    def state(self) -> IOState:
        """The I/O state (read-only: only the connection moves it)."""
        return self._ws._state

    async def abort(self) -> None:
        """Close the transport at once and stop every task of the connection."""
        await self._ws._abort()

    # --- the reader

    def take_initial_data(self) -> bytes:
        """The bytes that followed the handshake (once: later calls get ``b""``)."""
        ws = self._ws
        data, ws._initial_data = ws._initial_data, b""
        return data

    async def on_transport_error(self, exc: BaseException) -> None:
        """The transport broke or reached EOF: close the connection (1006 if no close)."""
        ws = self._ws
        ws._transport_failed(exc)
        await ws._abort()

    async def on_internal_error(self, exc: Exception) -> None:
        """A bug in trio_ws or an extension: report it to receivers, fail with 1011."""
        ws = self._ws
        logger.error("[%s] unexpected error in the reader", ws._id, exc_info=exc)
        ws._internal_error = exc
        await ws._fail(1011, "internal error")

    async def run_scoped(self, func: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run ``func(*args)`` under a cancel scope that closing the connection cancels."""
        await self._ws._run_task(func, *args)

    def reader_done(self) -> None:
        """The reader task ended (``aclose()`` waits for it)."""
        self._ws._reader_done.set()

    @property
    def reading_paused(self) -> bool:
        """Whether the reader waits for room (queue or write buffer) instead of reading."""
        return self._ws._reading_paused

    @reading_paused.setter
    def reading_paused(self, paused: bool) -> None:
        self._ws._reading_paused = paused

    # --- the keepalive

    def send_keepalive_ping(self) -> PendingPing | None:
        """Queue a keepalive ping; ``None`` if the connection is closing."""
        return self._ws._send_ping_now(None)

    async def fail(self, code: int, reason: str) -> None:
        """Fail the connection from this side (a close frame if possible, then abort)."""
        await self._ws._fail(code, reason)

    def release_idle_memory(self) -> None:
        """Let the extensions free what they can rebuild (see ``Extension``)."""
        for extension in self.protocol.extensions:
            extension.release_idle_memory()


def open_connection(
    stream: ByteStream, protocol: Connection, *, config: ConnectionConfig, info: ConnectionInfo
) -> tuple[WebSocketConnection, ConnectionLink]:
    """Build a connection for the client or the server: the connection and its link.

    The owner starts it with ``link.start(...)`` and closes it with ``ws.aclose()`` or
    ``link.abort()``.
    """
    ws = WebSocketConnection(stream, protocol, config=config, info=info)
    return ws, ws._link


class ConnectionTaskGroup:
    """Starts helper tasks that are cancelled when their connection closes.

    Obtained from :meth:`WebSocketConnection.task_group`.
    """

    def __init__(self, ws: WebSocketConnection, task_group: TaskGroup) -> None:
        self._ws = ws
        self._task_group = task_group

    def start_soon(
        self, func: Callable[..., Awaitable[object]], *args: object, name: object = None
    ) -> None:
        """Start ``func(*args)``; it is cancelled when the connection closes."""
        self._task_group.start_soon(self._run, func, args, name=name)

    async def _run(self, func: Callable[..., Awaitable[object]], args: tuple[object, ...]) -> None:
        ws = self._ws
        with anyio.CancelScope() as scope:
            if ws._state is _IO_CLOSED:
                scope.cancel()
            if ws._helper_scopes is None:
                ws._helper_scopes = set()
            helper_scopes = ws._helper_scopes
            helper_scopes.add(scope)
            try:
                await func(*args)
            finally:
                helper_scopes.discard(scope)

    def cancel(self) -> None:
        """Cancel every task of this group (and the ``async with`` body)."""
        self._task_group.cancel_scope.cancel()
