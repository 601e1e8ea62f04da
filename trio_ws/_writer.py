"""The write path: one writer task drains the core's outgoing buffer.

Senders never touch the stream. They append frames to the core's buffer (which never
waits) and wake the writer, which sends everything buffered in one ``stream.send`` per
wake-up. While a write is in flight, further messages pile up in the buffer and go out
together in the next write: many small messages cost one system call. Senders wait only
while the buffer is above ``write_high_water``, so memory stays bounded when the peer
reads slowly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from collections.abc import Callable

    from anyio.abc import ByteStream

    from ._keepalive import PingTracker
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
    """

    __slots__ = (
        "_high_water",
        "_on_error",
        "_pings",
        "_preamble",
        "_progress",
        "_protocol",
        "_stream",
        "_wakeup",
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
    ) -> None:
        self._stream = stream
        self._protocol = protocol
        self._high_water = high_water
        self._pings = pings
        self._on_error = on_error
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

    def wake(self) -> None:
        """Tell the writer that the core's buffer has new bytes."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

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
                # No writer task (cancelled with its task group): write from here.
                await self._write_once()
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
                continue
            self.wake()
            await self._wait_for_progress()
