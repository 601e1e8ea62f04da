"""The write path: one writer task drains the core's outgoing buffer.

Senders append frames to the core's buffer (which never waits) and wake the writer, which
sends everything buffered in one ``stream.send`` per wake-up. While a write is in flight,
further messages pile up in the buffer and go out together in the next write: many small
messages cost one system call. Senders wait only while the buffer is above
``write_high_water``, so memory stays bounded when the peer reads slowly.

Write-through: on a plain socket stream (:mod:`trio_ws._transport`), the first message of a
burst is written by the sending task itself, with a non-blocking system call, when nothing
else is being written. That saves waking the writer task, one scheduler pass per message
for request/response traffic. Whatever the socket does not take at once is left to the
writer task, ahead of anything buffered later. The next write-through waits until the
connection has received something or the writer task has drained the buffer, so that a
burst of sends still coalesces into few writes.

On a socket, the writer task is started on demand, when bytes are buffered that nobody is
writing, and it ends once the buffer is empty: an idle connection (or one whose writes all
go through) holds no writer task, which saves several KiB per connection. On other streams
(TLS, in memory) it is started with the connection and waits to be woken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import checkpoint

from .sansio import Role

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

    from ._keepalive import PingTracker
    from ._transport import SocketIO
    from .sansio import Connection

__all__ = ["WRITE_PIECE", "Writer"]

#: On a socket, the most bytes of a large payload taken from the core at a time. A client
#: masks one piece and writes it, then masks the next: the peer unmasks the first pieces
#: while the next ones are masked, and a payload is never masked (or copied) whole.
WRITE_PIECE = 2**17

# A server's payload (nothing to mask) goes to the socket whole: a view of it, of which the
# kernel takes what it can, in as few system calls as possible. In pieces, an asyncio
# transport would need one wait for its buffer to drain per piece, which costs more than
# the copy of what the kernel does not take at once.
_WHOLE_PAYLOAD = 2**62

# The most bytes joined to what an earlier write left, rather than written after it.
_JOIN_SMALL = 2**16


class Writer:
    """Owns the sending half of the stream for one connection.

    Args:
        stream: The transport.
        protocol: The core, whose outgoing buffer this writer drains.
        high_water: Buffered bytes above which senders wait.
        pings: Pending pings; those written by a write get their send time stamped.
        on_error: Called once with the transport error that ended writing.
        io: Non-blocking access to the stream's socket, if it has one (write-through; on
            trio, the writer waits for writability itself).
    """

    __slots__ = (
        "_high_water",
        "_io",
        "_on_error",
        "_piece",
        "_pings",
        "_preamble",
        "_progress",
        "_protocol",
        "_spawn",
        "_spawned",
        "_stream",
        "_wakeup",
        "has_written",
        "may_write_through",
        "running",
        "stopped",
        "unanswered",
        "writing",
    )

    def __init__(
        self,
        stream: ByteStream,
        protocol: Connection,
        high_water: int,
        pings: PingTracker,
        on_error: Callable[[BaseException], None],
        io: SocketIO | None = None,
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._high_water = high_water
        self._pings = pings
        self._on_error = on_error
        self._io = io
        self._piece = _WHOLE_PAYLOAD if protocol.role is Role.SERVER else WRITE_PIECE
        self._progress: anyio.Event | None = None
        # Bytes written before anything the core buffered: the server's 101 response, and
        # what the socket did not take of a piece (a view of a large payload, not a copy).
        self._preamble: bytes | memoryview = b""
        # Starts the writer task (set by the connection once it has a task group).
        self._spawn: Callable[[], object] | None = None
        self._spawned = False  # a writer task was started and has not ended
        self._wakeup: anyio.Event | None = None  # the writer task waits (streams only)
        #: The writer task is running (not started, or ended, otherwise).
        self.running = False
        #: Writing ended for good (transport error): buffered bytes will never be sent.
        self.stopped = False
        #: A ``stream.send`` is in flight.
        self.writing = False
        #: Bytes of automatic answers (pongs, close replies) queued by received data since
        #: the last write completed (counted by the connection; see replies_over_limit).
        self.unanswered = 0
        #: A write completed (the first one carries what :meth:`write_first` gave).
        self.has_written = False
        #: The next message may be written by its sender (set again by the reader when
        #: bytes arrive and by the writer task when it drained the buffer).
        self.may_write_through = io is not None

    def set_spawner(self, spawn: Callable[[], object]) -> None:
        """Let :meth:`wake` start the writer task with ``spawn()`` when it is not running."""
        self._spawn = spawn

    def wake(self) -> None:
        """Tell the writer that the core's buffer has new bytes (start its task if needed)."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()
        elif not self._spawned and self._spawn is not None and not self.stopped:
            # Until the task runs, flush() and blocked senders write from their own task
            # (cancel-safe on a socket: see _write_once); the task then finds less, or
            # nothing, to do. A task started in a cancelled task group may never run at
            # all: writing then goes on as when the writer task was cancelled.
            self._spawned = True
            try:
                self._spawn()
            except RuntimeError:  # the task group is closed: same as cancelled
                pass

    def write_or_wake(self) -> None:
        """A message was just buffered: write it from here if possible, else wake the writer.

        Never waits, so it cannot be cancelled half-way: what the socket does not take now
        is left for the writer task, in front of anything buffered later.
        """
        io = self._io
        if (
            io is None
            or not self.may_write_through
            or self.writing
            or self._preamble
            or self.stopped
        ):
            self.wake()
            return
        self.may_write_through = False
        pings = self._pings
        if pings.unwritten is not None:
            pings.mark_written(pings.take_unwritten())
        protocol = self._protocol
        while True:
            # Small messages come whole; a large payload piece by piece (see WRITE_PIECE).
            data = protocol.next_data_to_send(self._piece)
            try:
                sent = io.try_send(data)
            except OSError:
                # Let the writer task meet the error on its own write and report it.
                sent = 0
            if sent < len(data):
                self._preamble = data[sent:]
                self.wake()
                return
            if not protocol.bytes_to_send:
                if io.unsent:  # TLS records the socket had no room for: the task sends them
                    self.wake()
                    return
                self.unanswered = 0
                return

    def write_first(self, data: bytes) -> None:
        """Write ``data`` before anything the core has buffered (the handshake's answer)."""
        self._preamble = b"".join((self._preamble, data))

    @property
    def buffered(self) -> int:
        """How many bytes wait to be written: the core's buffer plus what is held here."""
        io = self._io
        unsent = io.unsent if io is not None else 0
        return len(self._preamble) + self._protocol.bytes_to_send + unsent

    @property
    def replies_over_limit(self) -> bool:
        """Whether more than ``high_water`` bytes of automatic answers (pongs, the close
        reply) were queued since the last write completed: the reader then waits."""
        return self.unanswered > self._high_water and not self.stopped

    async def wait_for_replies(self) -> None:
        """Wait until a write completes (the peer reads again) or writing stopped.

        Cancellation: safe; nothing is lost.
        """
        while self.replies_over_limit:
            if not self.running and not self.writing:
                await self._write_once()
                await checkpoint()
                continue
            self.wake()
            await self._wait_for_progress()

    @property
    def pending(self) -> bool:
        """Whether bytes wait to be written (or a write is in flight)."""
        io = self._io
        return bool(
            self._preamble
            or self._protocol.bytes_to_send
            or self.writing
            or (io is not None and io.unsent)
        )

    def _notify_progress(self) -> None:
        progress = self._progress
        if progress is not None:
            self._progress = None
            progress.set()

    async def _wait_for_progress(self) -> None:
        progress = self._progress
        if progress is None:
            progress = self._progress = anyio.Event()
        await progress.wait()

    async def _write_once(self) -> None:
        """Send what is buffered now; on a transport error, stop writing for good.

        Cancellation: on a socket (:mod:`trio_ws._transport`), what was not written yet is
        kept, in front of the buffer, for the next write: blocked senders and ``flush()``
        may write from their own task. On any other stream, a cancelled ``send`` may have
        put part of a frame on the wire, so writing stops for good.
        """
        # Pings are stamped when their write starts: the pong may be processed before
        # this task resumes after the write.
        stamped = self._pings.take_unwritten()
        if stamped:
            self._pings.mark_written(stamped)
        protocol = self._protocol
        io = self._io
        data = self._preamble
        self._preamble = b""
        remaining = 0  # bytes the core holds now, still to take piece by piece
        if io is None:
            queued = protocol.data_to_send()
            data = b"".join((data, queued)) if data else queued  # after the handshake's answer
        else:
            # What the core holds now is taken by this write, in pieces (see WRITE_PIECE).
            # What is left of an earlier write goes first: with small frames in one buffer
            # (one system call), before a large payload on its own (no copy of either).
            remaining = protocol.bytes_to_send
            if remaining and (not data or remaining <= _JOIN_SMALL):
                piece = protocol.next_data_to_send(self._piece)
                remaining -= len(piece)
                data = b"".join((data, piece)) if data else piece
        self.writing = True
        try:
            if io is None:
                await self._stream.send(data)  # type: ignore[arg-type]
            elif io.waits:
                await self._send_nonblocking(io, data, remaining)
            else:
                await self._send_transport(io, data, remaining)
            self.unanswered = 0  # the peer took what we owed it (the kernel did)
            self.has_written = True
        except Exception as exc:  # transport errors of any kind end writing
            self.stopped = True
            self._on_error(exc)
            return
        except BaseException:
            if io is None:
                # Part of a frame may be on the wire: nothing more can be written safely.
                self.stopped = True
            else:
                self.wake()  # the writer task takes over what is left
            raise
        finally:
            self.writing = False
            self._notify_progress()

    def _keep_unsent(self, data: bytes | memoryview) -> None:
        preamble = self._preamble
        self._preamble = b"".join((data, preamble)) if preamble else data

    async def _send_nonblocking(
        self, io: SocketIO, data: bytes | memoryview, remaining: int
    ) -> None:
        """Send ``data``, then ``remaining`` more bytes from the core, piece by piece,
        waiting for room only when the socket has none."""
        protocol = self._protocol
        while True:
            view = memoryview(data)
            sent = io.try_send(view)
            try:
                while sent < len(view):
                    await io.wait_writable()
                    sent += io.try_send(view[sent:])
            except BaseException:
                self._keep_unsent(view[sent:])
                raise
            if remaining <= 0:
                break
            data = protocol.next_data_to_send(self._piece)
            if not data:
                break
            remaining -= len(data)
        # TLS: records the socket had no room for are the write's last bytes (cancel-safe:
        # they stay in ``io`` until sent).
        while io.unsent:
            await io.wait_writable()
            io.flush_unsent()

    async def _send_transport(self, io: SocketIO, data: bytes | memoryview, remaining: int) -> None:
        """Hand ``data``, then ``remaining`` more bytes from the core piece by piece, to an
        asyncio transport, each once its buffer is empty; then wait until it is drained.

        ``io.wait_drained()`` is the wait (the socket stream's ``send(b"")``, under TLS
        too): it writes nothing, so a cancellation loses nothing.
        """
        protocol = self._protocol
        while True:
            while not io.try_send(data):
                if io.closing:
                    raise anyio.BrokenResourceError
                try:
                    await io.wait_drained()  # earlier bytes are still queued
                except BaseException:
                    self._keep_unsent(data)
                    raise
            if remaining <= 0:
                break
            data = protocol.next_data_to_send(self._piece)
            if not data:
                break
            remaining -= len(data)
        await io.wait_drained()

    async def run(self) -> None:
        """The writer task: write until the buffer is empty, cancelled or the transport fails.

        Started by :meth:`wake` when bytes wait and no task is writing them.
        """
        self.running = True
        try:
            protocol = self._protocol
            while not self.stopped:
                if self.writing:
                    # flush() is writing from outside, as it does before this task starts.
                    await self._wait_for_progress()
                    continue
                io = self._io
                if not protocol.bytes_to_send and not self._preamble and not (io and io.unsent):
                    if io is None:
                        # Without a socket, only this task writes: it stays (see wake).
                        wakeup = self._wakeup = anyio.Event()
                        await wakeup.wait()
                        continue
                    self.may_write_through = True
                    return
                await self._write_once()
        finally:
            self.running = False
            self._spawned = False
            self._wakeup = None
            self._notify_progress()

    async def wait_for_space(self) -> None:
        """Wait while the buffer is above the high-water mark (and writing can go on).

        Cancellation: safe; nothing is lost.
        """
        protocol = self._protocol
        while protocol.bytes_to_send > self._high_water and not self.stopped:
            if not self.running and not self.writing:
                # No writer task (not started yet, or cancelled with its task group):
                # write from here, and yield even if the socket took everything at once,
                # so that a sending loop cannot starve the other tasks.
                await self._write_once()
                await checkpoint()
                continue
            self.wake()
            await self._wait_for_progress()

    async def flush(self) -> None:
        """Wait until everything buffered has been written (or writing stopped).

        Works with or without the writer task: when the task is gone, write from here.
        """
        while self.pending and not self.stopped:
            if not self.running and not self.writing:
                await self._write_once()
                await checkpoint()
                continue
            self.wake()
            await self._wait_for_progress()
