"""In-memory byte streams: two connected ``anyio.abc.ByteStream`` ends, on any backend."""

from __future__ import annotations

import anyio
from anyio.abc import ByteStream

__all__ = ["MemoryByteStream", "memory_stream_pair"]


class _Pipe:
    """One direction: a byte buffer bounded by ``capacity`` (a TCP window, in miniature)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.buffer = bytearray()
        self.eof = False  # the writer closed or sent EOF
        self.reader_closed = False
        self.readable = anyio.Event()
        self.writable = anyio.Event()

    def wake_reader(self) -> None:
        self.readable.set()
        self.readable = anyio.Event()

    def wake_writer(self) -> None:
        self.writable.set()
        self.writable = anyio.Event()


class MemoryByteStream(ByteStream):
    """One end of :func:`memory_stream_pair`.

    Attributes:
        buffered: How many bytes this end has sent that the other end has not received.
    """

    def __init__(self, outgoing: _Pipe, incoming: _Pipe) -> None:
        self._outgoing = outgoing
        self._incoming = incoming
        self._closed = False

    @property
    def buffered(self) -> int:
        """Bytes sent by this end and not yet received by the other one."""
        return len(self._outgoing.buffer)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes``; :exc:`anyio.EndOfStream` once the peer sent EOF.

        Raises:
            anyio.ClosedResourceError: this end was closed.
            anyio.EndOfStream: the other end closed or sent EOF, and nothing is left.
        """
        pipe = self._incoming
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            if pipe.buffer:
                await anyio.lowlevel.checkpoint()
                if self._closed:
                    raise anyio.ClosedResourceError
                data = bytes(pipe.buffer[:max_bytes])
                del pipe.buffer[:max_bytes]
                pipe.wake_writer()
                return data
            if pipe.eof:
                await anyio.lowlevel.checkpoint()
                raise anyio.EndOfStream
            await pipe.readable.wait()

    async def send(self, item: bytes) -> None:
        """Send all of ``item``, waiting while the other end's window is full.

        Raises:
            anyio.ClosedResourceError: this end was closed or sent EOF.
            anyio.BrokenResourceError: the other end was closed.
        """
        pipe = self._outgoing
        view = memoryview(item)
        await anyio.lowlevel.checkpoint()
        while True:
            if self._closed or pipe.eof:
                raise anyio.ClosedResourceError
            if pipe.reader_closed:
                raise anyio.BrokenResourceError
            room = pipe.capacity - len(pipe.buffer)
            if room > 0 and view:
                pipe.buffer += view[:room]
                view = view[room:]
                pipe.wake_reader()
            if not view:
                return
            await pipe.writable.wait()

    async def send_eof(self) -> None:
        """Tell the other end that nothing more will be sent."""
        await anyio.lowlevel.checkpoint()
        self._outgoing.eof = True
        self._outgoing.wake_reader()

    async def aclose(self) -> None:
        """Close this end: the other end sees EOF, and its sends fail."""
        self._closed = True
        self._outgoing.eof = True
        self._outgoing.wake_reader()
        self._incoming.reader_closed = True
        self._incoming.buffer.clear()
        self._incoming.wake_writer()
        self._incoming.wake_reader()  # a receive() of this very end, blocked in another task
        await anyio.lowlevel.checkpoint()


def memory_stream_pair(capacity: int = 65536) -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected in-memory byte streams: what one sends, the other receives.

    Each direction holds at most ``capacity`` bytes; a sender waits while the other end
    does not read, like TCP flow control, so backpressure can be tested without sockets.
    Works on every anyio backend (trio and asyncio); call it inside an event loop.

    Args:
        capacity: The bytes each direction can hold before ``send`` waits.

    Returns:
        The two ends, ``(left, right)``.
    """
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    left_to_right, right_to_left = _Pipe(capacity), _Pipe(capacity)
    return (
        MemoryByteStream(left_to_right, right_to_left),
        MemoryByteStream(right_to_left, left_to_right),
    )
