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
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import checkpoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

    from ._keepalive import PingTracker
    from ._transport import SocketIO
    from .sansio import Connection

__all__ = ["Writer"]


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
        "_pings",
        "_preamble",
        "_progress",
        "_protocol",
        "_stream",
        "_wakeup",
        "may_write_through",
        "running",
        "stopped",
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
        self._wakeup: anyio.Event | None = None
        self._progress: anyio.Event | None = None
        # Bytes written before anything the core buffered: the server's 101 response.
        self._preamble = b""
        #: The writer task is running (not yet started, or ended, otherwise).
        self.running = False
        #: Writing ended for good (transport error): buffered bytes will never be sent.
        self.stopped = False
        #: A ``stream.send`` is in flight.
        self.writing = False
        #: The next message may be written by its sender (set again by the reader when
        #: bytes arrive and by the writer task when it drained the buffer).
        self.may_write_through = io is not None

    def wake(self) -> None:
        """Tell the writer that the core's buffer has new bytes."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

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
        stamped = self._pings.take_unwritten()
        if stamped:
            self._pings.mark_written(stamped)
        data = self._protocol.data_to_send()
        try:
            sent = io.try_send(data)
        except OSError:
            # Let the writer task meet the error on its own write and report it.
            sent = 0
        if sent < len(data):
            self._preamble = data[sent:]
            self.wake()

    def write_first(self, data: bytes) -> None:
        """Write ``data`` before anything the core has buffered (the handshake's answer)."""
        self._preamble += data

    @property
    def pending(self) -> bool:
        """Whether bytes wait to be written (or a write is in flight)."""
        return bool(self._preamble or self._protocol.bytes_to_send or self.writing)

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
        """Send what is buffered now; on a transport error, stop writing for good."""
        # Pings are stamped when their write starts: the pong may be processed before
        # this task resumes after the write.
        stamped = self._pings.take_unwritten()
        if stamped:
            self._pings.mark_written(stamped)
        data = self._protocol.data_to_send()
        if self._preamble:
            data = self._preamble + data
            self._preamble = b""
        self.writing = True
        try:
            io = self._io
            if io is not None and io.waits:
                await self._send_nonblocking(io, data)
            else:
                await self._stream.send(data)
        except Exception as exc:  # transport errors of any kind end writing
            self.stopped = True
            self._on_error(exc)
            return
        except BaseException:
            # Cancelled in the middle of a write: part of a frame may be on the wire, so
            # nothing more can be written safely.
            self.stopped = True
            raise
        finally:
            self.writing = False
            self._notify_progress()

    @staticmethod
    async def _send_nonblocking(io: SocketIO, data: bytes) -> None:
        """Send all of ``data``, waiting for room only when the socket has none."""
        view = memoryview(data)
        sent = io.try_send(view)
        while sent < len(view):
            await io.wait_writable()
            sent += io.try_send(view[sent:])

    async def run(self) -> None:
        """The writer task: write whenever woken, until cancelled or the transport fails."""
        self.running = True
        try:
            protocol = self._protocol
            while not self.stopped:
                if self.writing:
                    # flush() is writing from outside, as it does before this task starts.
                    await self._wait_for_progress()
                    continue
                if not protocol.bytes_to_send and not self._preamble:
                    self.may_write_through = self._io is not None
                    wakeup = self._wakeup = anyio.Event()
                    await wakeup.wait()
                    continue
                await self._write_once()
        finally:
            self.running = False
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
