"""Received messages waiting for ``get_message()``: a bounded queue that pauses the reader.

A deque and two one-shot events are cheaper than a memory object stream, and let
``get_message()`` return at once, with no task switch, when a message is already there.

The bound is soft: the reader puts every message parsed from one chunk it received (at most
64 KiB of frames), then waits for room before reading the next chunk. That keeps the
reader's fast path free of per-message waits while memory stays bounded. Once the
connection starts closing, :meth:`MessageQueue.discard` drops what is queued and lifts the
bound, so the reader can always reach the peer's close frame.
"""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["MessageQueue"]


class MessageQueue:
    """A FIFO of messages, bounded by ``limit``, with wake-ups for one reader and getters."""

    __slots__ = ("_items", "_limit", "_message_wakeup", "_space_wakeup", "closed")

    def __init__(self, limit: int) -> None:
        self._items: deque[str | bytes] = deque()
        self._limit: float = limit
        self._message_wakeup: anyio.Event | None = None
        self._space_wakeup: anyio.Event | None = None
        #: No more messages will be put: getters stop waiting once the queue is empty.
        self.closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        """Whether the reader should wait before reading more."""
        return len(self._items) >= self._limit

    def put(self, message: str | bytes) -> None:
        """Append a message (never waits: the reader checks :attr:`full` between chunks)."""
        self._items.append(message)
        wakeup = self._message_wakeup
        if wakeup is not None:
            self._message_wakeup = None
            wakeup.set()

    def get_nowait(self) -> str | bytes:
        """Pop the oldest message. Raises :exc:`IndexError` when empty."""
        message = self._items.popleft()
        wakeup = self._space_wakeup
        if wakeup is not None and len(self._items) < self._limit:
            self._space_wakeup = None
            wakeup.set()
        return message

    async def wait_for_message(self) -> None:
        """Wait until a message is put or the queue is closed (then check again)."""
        wakeup = self._message_wakeup
        if wakeup is None:
            wakeup = self._message_wakeup = anyio.Event()
        await wakeup.wait()

    async def wait_for_space(self) -> None:
        """Wait until the queue is below its limit (or the limit is lifted)."""
        while len(self._items) >= self._limit:
            wakeup = self._space_wakeup
            if wakeup is None:
                wakeup = self._space_wakeup = anyio.Event()
            await wakeup.wait()

    def close(self) -> None:
        """No more messages will come: wake every getter so it can see that."""
        self.closed = True
        wakeup = self._message_wakeup
        if wakeup is not None:
            self._message_wakeup = None
            wakeup.set()

    def discard(self) -> None:
        """Drop every queued message, lift the bound and close (the connection is closing)."""
        self._items.clear()
        self._limit = float("inf")
        wakeup = self._space_wakeup
        if wakeup is not None:
            self._space_wakeup = None
            wakeup.set()
        self.close()
