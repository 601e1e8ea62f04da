"""Received messages waiting for ``get_message()``: a bounded queue that pauses the reader.

A deque and two one-shot events are cheaper than a memory object stream, and let
``get_message()`` return at once, with no task switch, when a message is already there.
The getter waits on the event loop's own primitive (a parked trio task, an asyncio future)
rather than an ``anyio.Event``: a waiting connection is the common case of a server, and
the event costs about a KiB per connection and a few microseconds per wake-up. A second
getter waiting at the same time (unusual) waits on an event.

The bound is soft: the reader puts every message parsed from one chunk it received (at most
64 KiB of frames), then waits for room before reading the next chunk. That keeps the
reader's fast path free of per-message waits while memory stays bounded. Once the
connection starts closing, :meth:`MessageQueue.discard` drops what is queued and lifts the
bound, so the reader can always reach the peer's close frame.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio

from ._private_apis import FAST_PATHS

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["MessageQueue"]

_UNKNOWN, _TRIO, _ASYNCIO, _OTHER = range(4)

# trio's low-level API, imported on first use on trio (trio_ws also runs without trio).
_trio_lowlevel: Any = None


def _current_loop_kind() -> int:
    global _trio_lowlevel
    if not FAST_PATHS:
        return _OTHER  # the generic path: anyio events only
    module = anyio.get_cancelled_exc_class().__module__
    if module.startswith("trio"):
        if _trio_lowlevel is None:
            import trio.lowlevel

            _trio_lowlevel = trio.lowlevel
        return _TRIO
    if module.startswith("asyncio"):
        return _ASYNCIO
    return _OTHER


class MessageQueue:
    """A FIFO of messages, bounded by ``limit``, with wake-ups for one reader and getters."""

    __slots__ = (
        "_getter",
        "_items",
        "_limit",
        "_loop_kind",
        "_message_wakeup",
        "_space_wakeup",
        "closed",
        "count",
        "full",
    )

    def __init__(self, limit: int) -> None:
        # Made by the first put, dropped when emptied: an idle connection holds no deque
        # (a deque allocates a block of 64 slots, about 0.7 KiB).
        self._items: deque[str | bytes] | None = None
        self._limit: float = limit
        self._message_wakeup: anyio.Event | None = None
        self._space_wakeup: anyio.Event | None = None
        # The one getter parked without an event: a trio task or an asyncio future.
        self._getter: Any = None
        self._loop_kind = _UNKNOWN  # found on the first wait (the queue may be built early)
        #: No more messages will be put: getters stop waiting once the queue is empty.
        self.closed = False
        # Attributes rather than properties: they are read several times per message.
        #: How many messages wait (read-only: only the queue's methods change it).
        self.count: int = 0
        #: Whether the reader should wait before reading more (read-only, like count).
        self.full = limit <= 0

    def __len__(self) -> int:
        return self.count

    @property
    def getter_parked(self) -> bool:
        """Whether a getter is parked, waiting for the next :meth:`put`."""
        return self._getter is not None

    def put(self, message: str | bytes) -> None:
        """Append a message (never waits: the reader checks :attr:`full` between chunks)."""
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(message)
        count = self.count = self.count + 1
        if count >= self._limit:
            self.full = True
        if self._getter is not None:
            self._wake_getter()
        wakeup = self._message_wakeup
        if wakeup is not None:
            self._message_wakeup = None
            wakeup.set()

    def _wake_getter(self) -> None:
        getter, self._getter = self._getter, None
        if self._loop_kind == _TRIO:
            _trio_lowlevel.reschedule(getter)
        elif not getter.done():
            getter.set_result(None)

    def get_nowait(self) -> str | bytes:
        """Pop the oldest message. Raises :exc:`IndexError` when empty."""
        items = self._items
        if items is None:
            raise IndexError("no message waiting")
        message = items.popleft()
        count = self.count = self.count - 1
        if not count:
            self._items = None
        if self.full and count < self._limit:
            self.full = False
            wakeup = self._space_wakeup
            if wakeup is not None:
                self._space_wakeup = None
                wakeup.set()
        return message

    def park_trio_getter(self) -> Awaitable[None] | None:
        """On trio, park the calling task as the getter; the wait it must await at once.

        ``get_message()`` awaits trio's wait directly, so that no frame of the queue's stays
        on the stack of a task waiting for a message (the common state of a server's
        connections). Returns ``None`` when not on trio, or when another getter is parked
        already: then await :meth:`wait_for_message` instead.
        """
        kind = self._loop_kind
        if kind == _UNKNOWN:
            kind = self._loop_kind = _current_loop_kind()
        if kind != _TRIO or self._getter is not None:
            return None
        self._getter = _trio_lowlevel.current_task()
        wait: Awaitable[None] = _trio_lowlevel.wait_task_rescheduled(self._abort_getter)
        return wait

    async def wait_for_message(self) -> None:
        """Wait until a message is put or the queue is closed (then check again).

        Cancellation: safe; a message put meanwhile stays in the queue.
        """
        parked = self.park_trio_getter()
        if parked is not None:
            await parked
            return
        if self._getter is None and self._loop_kind == _ASYNCIO:
            future = self._getter = asyncio.get_running_loop().create_future()
            try:
                await future
            finally:
                if self._getter is future:
                    self._getter = None
            return
        wakeup = self._message_wakeup
        if wakeup is None:
            wakeup = self._message_wakeup = anyio.Event()
        await wakeup.wait()

    async def wait_for_space(self) -> None:
        """Wait until the queue is below its limit (or the limit is lifted)."""
        while self.full:
            wakeup = self._space_wakeup
            if wakeup is None:
                wakeup = self._space_wakeup = anyio.Event()
            await wakeup.wait()

    def _abort_getter(self, _raise_cancel: object) -> Any:
        self._getter = None
        return _trio_lowlevel.Abort.SUCCEEDED

    def close(self) -> None:
        """No more messages will come: wake every getter so it can see that."""
        self.closed = True
        if self._getter is not None:
            self._wake_getter()
        wakeup = self._message_wakeup
        if wakeup is not None:
            self._message_wakeup = None
            wakeup.set()

    def discard(self) -> None:
        """Drop every queued message, lift the bound and close (the connection is closing)."""
        self._items = None
        self.count = 0
        self.full = False
        self._limit = float("inf")
        wakeup = self._space_wakeup
        if wakeup is not None:
            self._space_wakeup = None
            wakeup.set()
        self.close()
