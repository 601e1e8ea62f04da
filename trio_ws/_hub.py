"""Topics: publish a message once, every subscriber of its topic gets it.

:class:`BaseHub` is the interface every hub implements (the in-process :class:`Hub` here, a
Redis-backed hub shared by many processes elsewhere). A subscriber holds a
:class:`Subscription`: a bounded buffer with its own overflow policy, so that publishing
never waits for the slowest subscriber. Subscriptions live in ``async with`` blocks: leaving
the block (normally, by an exception or by cancellation) unsubscribes.
"""

from __future__ import annotations

import abc
from collections import deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, Literal, final

import anyio
import anyio.lowlevel

from .sansio._errors import SubscriptionOverflow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "DEFAULT_MAX_BUFFER",
    "PUBLISH_BATCH",
    "BaseHub",
    "Hub",
    "Message",
    "Overflow",
    "Subscription",
]

#: What a hub carries: a text or a binary message, as a WebSocket does.
Message = str | bytes

#: What a subscription does when a message arrives and its buffer is full:
#: ``"drop_oldest"`` drops the oldest buffered message to make room (the subscriber sees the
#: latest messages), ``"drop_newest"`` drops the arriving one (the subscriber sees a
#: contiguous prefix), ``"end"`` ends the subscription with :exc:`SubscriptionOverflow`.
Overflow = Literal["drop_oldest", "drop_newest", "end"]

_OVERFLOWS: Final = ("drop_oldest", "drop_newest", "end")

#: The default size of a subscription's buffer, in messages.
DEFAULT_MAX_BUFFER: Final = 100

#: :meth:`Hub.publish` yields to other tasks after this many deliveries.
PUBLISH_BATCH: Final = 512


@final
class Subscription:
    """One subscriber's view of one topic: a bounded buffer of the messages published there.

    Iterate over it (``async for message in subscription``) or call :meth:`receive`. The
    iteration ends when the hub closes; with ``overflow="end"`` it raises
    :exc:`SubscriptionOverflow` once the subscriber fell behind. Obtained from
    :meth:`BaseHub.subscribe`; hub implementations construct it and feed it with
    :meth:`deliver` and :meth:`end`.

    Args:
        topic: The topic name.
        max_buffer: How many messages may wait to be received (at least 1).
        overflow: The policy when the buffer is full (see :data:`trio_ws.Overflow`).
    """

    __slots__ = (
        "_buffer",
        "_ended",
        "_error",
        "_waiter",
        "dropped",
        "max_buffer",
        "overflow",
        "topic",
    )

    def __init__(
        self,
        topic: str,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        overflow: Overflow = "drop_oldest",
    ) -> None:
        if not isinstance(max_buffer, int) or isinstance(max_buffer, bool) or max_buffer < 1:
            raise ValueError(f"max_buffer must be an int of at least 1, not {max_buffer!r}")
        if overflow not in _OVERFLOWS:
            raise ValueError(f"overflow must be one of {', '.join(_OVERFLOWS)}, not {overflow!r}")
        #: The topic name.
        self.topic: Final = topic
        #: The buffer size, in messages.
        self.max_buffer: Final = max_buffer
        #: The overflow policy.
        self.overflow: Final[Overflow] = overflow
        #: How many messages were dropped for this subscriber by its overflow policy.
        self.dropped = 0
        self._buffer: deque[Message] = deque()
        self._waiter: anyio.Event | None = None
        self._ended = False
        self._error: SubscriptionOverflow | None = None

    # --- the hub's side

    def deliver(self, message: Message) -> bool:
        """Buffer ``message`` for the subscriber (for hub implementations); never waits.

        Applies the overflow policy when the buffer is full.

        Returns:
            Whether the message was buffered (``False``: dropped, or the subscription has
            ended, possibly just now by ``overflow="end"``).
        """
        if self._ended:
            return False
        buffer = self._buffer
        if len(buffer) >= self.max_buffer:
            overflow = self.overflow
            if overflow == "drop_newest":
                self.dropped += 1
                return False
            if overflow == "end":
                self.dropped += 1 + len(buffer)
                self.end(SubscriptionOverflow(self.topic, self.max_buffer))
                return False
            buffer.popleft()
            self.dropped += 1
        buffer.append(message)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()
        return True

    def end(self, error: SubscriptionOverflow | None = None) -> None:
        """End the subscription (for hub implementations); idempotent.

        Without ``error`` the subscriber still receives what is buffered, then the
        iteration stops. With ``error`` the buffer is discarded and the next receive raises
        it.
        """
        if self._ended:
            return
        self._ended = True
        if error is not None:
            self._error = error
            self._buffer.clear()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    # --- the subscriber's side

    @property
    def ended(self) -> bool:
        """Whether the subscription has ended: no more messages will be buffered."""
        return self._ended

    @property
    def buffered(self) -> int:
        """How many messages wait to be received."""
        return len(self._buffer)

    def receive_nowait(self) -> Message:
        """Take the next buffered message without waiting.

        Raises:
            anyio.WouldBlock: Nothing is buffered (yet).
            anyio.EndOfStream: The subscription ended and everything buffered was received.
            SubscriptionOverflow: The subscription ended because its buffer overflowed
                (``overflow="end"``).
        """
        if self._buffer:
            return self._buffer.popleft()
        if self._error is not None:
            raise self._error
        if self._ended:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def receive(self) -> Message:
        """Wait for the next message.

        Raises:
            anyio.EndOfStream: The subscription ended (the hub closed) and everything
                buffered was received.
            SubscriptionOverflow: The subscription ended because its buffer overflowed
                (``overflow="end"``).

        Cancellation:
            Safe: if cancelled, no message was taken.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            message = self.receive_nowait()
        except anyio.WouldBlock:
            pass
        else:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return message
        while True:
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()
            try:
                return self.receive_nowait()
            except anyio.WouldBlock:
                continue

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def __repr__(self) -> str:
        state = "ended" if self._ended else "active"
        return f"<Subscription {self.topic!r} {state} buffered={len(self._buffer)}>"


class BaseHub(abc.ABC):
    """The interface of a hub of topics; implement it for another transport (e.g. Redis).

    A hub is an async context manager: leaving ``async with hub:`` calls :meth:`aclose`.
    Subscribers ``async with hub.subscribe(topic) as subscription:``; publishers
    ``await hub.publish(topic, message)``. Publishing never waits for a slow subscriber:
    each subscription's buffer and overflow policy decide what it misses. Messages from one
    publisher reach each subscriber in the order they were published.
    """

    __slots__ = ()

    @abc.abstractmethod
    def subscribe(
        self,
        topic: str,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        overflow: Overflow = "drop_oldest",
    ) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe to ``topic`` for the duration of an ``async with`` block.

        Messages published after entering the block are buffered for the subscriber;
        leaving the block, however it is left (also by cancellation), unsubscribes.

        Args:
            topic: The topic name (any string, e.g. ``"room:42"``).
            max_buffer: How many messages may wait to be received (at least 1).
            overflow: What to do when the buffer is full (see :data:`trio_ws.Overflow`).

        Raises:
            anyio.ClosedResourceError: The hub is closed.
            ValueError: ``max_buffer`` or ``overflow`` is invalid.
        """

    @abc.abstractmethod
    async def publish(self, topic: str, message: Message) -> int:
        """Publish ``message`` to every subscriber of ``topic``; a checkpoint.

        Returns:
            How many subscribers it was delivered to (buffered for); a hub that spans
            processes may count only the local ones, or the ones the broker reports.

        Raises:
            anyio.ClosedResourceError: The hub is closed.
        """

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the hub: end every subscription (iterations stop), refuse new calls.

        Idempotent.
        """

    @property
    @abc.abstractmethod
    def topics(self) -> frozenset[str]:
        """The topics that have at least one subscriber in this process."""

    @abc.abstractmethod
    def subscriber_count(self, topic: str) -> int:
        """How many subscriptions to ``topic`` are active in this process."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


@final
class Hub(BaseHub):
    """The in-process hub: topics shared by the tasks of one process, no service needed.

    Works on trio and asyncio. Publishing to a topic with many subscribers appends the
    message to each subscription's buffer (no copy, no encoding) and yields to other tasks
    every 512 subscribers (``PUBLISH_BATCH``).

    Example::

        hub = trio_ws.Hub()

        async def handler(ws):
            async with hub.subscribe("room:42") as subscription:
                async with ws.task_group() as tg:
                    tg.start_soon(forward, subscription, ws)
                    async for message in ws:
                        await hub.publish("room:42", message)
    """

    __slots__ = ("_closed", "_topics")

    def __init__(self) -> None:
        # Each topic maps to its subscriptions in subscription order (a dict as an ordered
        # set); a topic without subscribers is removed, so nothing outlives its users.
        self._topics: dict[str, dict[Subscription, None]] = {}
        self._closed = False

    @asynccontextmanager
    async def _subscription(
        self, topic: str, max_buffer: int, overflow: Overflow
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(topic, max_buffer=max_buffer, overflow=overflow)
        if self._closed:
            raise anyio.ClosedResourceError
        self._topics.setdefault(topic, {})[subscription] = None
        try:
            yield subscription
        finally:
            self._remove(subscription)
            subscription.end()

    def _remove(self, subscription: Subscription) -> None:
        subscribers = self._topics.get(subscription.topic)
        if subscribers is not None:
            subscribers.pop(subscription, None)
            if not subscribers:
                del self._topics[subscription.topic]

    def subscribe(
        self,
        topic: str,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        overflow: Overflow = "drop_oldest",
    ) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe to ``topic`` for the duration of an ``async with`` block.

        See :meth:`BaseHub.subscribe`. Entering the block does not yield.
        """
        return self._subscription(topic, max_buffer, overflow)

    def publish_nowait(self, topic: str, message: Message) -> int:
        """Deliver ``message`` to every subscriber of ``topic`` without yielding.

        Not a checkpoint: with many subscribers prefer :meth:`publish`, which lets other
        tasks run between batches.

        Returns:
            How many subscribers it was buffered for.

        Raises:
            anyio.ClosedResourceError: The hub is closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        subscribers = self._topics.get(topic)
        if not subscribers:
            return 0
        delivered = 0
        ended: list[Subscription] = []
        for subscription in subscribers:
            if subscription.deliver(message):
                delivered += 1
            elif subscription.ended:
                ended.append(subscription)
        for subscription in ended:  # overflow="end": it leaves the topic at once
            self._remove(subscription)
        return delivered

    async def publish(self, topic: str, message: Message) -> int:
        """Publish ``message`` to every subscriber of ``topic``; see :meth:`BaseHub.publish`.

        Never waits for a subscriber. After every 512 deliveries (``PUBLISH_BATCH``) it
        yields to other tasks, so that a topic with 10,000 subscribers does not stall the
        event loop.

        Cancellation:
            A cancellation point only before the first delivery: once delivering starts
            the message reaches every subscriber of the topic at that moment (the yields
            in between are shielded), and the cancellation is delivered at the caller's
            next checkpoint.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise anyio.ClosedResourceError
        subscribers = self._topics.get(topic)
        if not subscribers:
            await anyio.lowlevel.cancel_shielded_checkpoint()
            return 0
        # A snapshot: subscriptions may come and go while this yields. One that leaves
        # meanwhile has ended, and deliver() ignores it.
        snapshot = tuple(subscribers)
        delivered = 0
        ended: list[Subscription] = []
        for index, subscription in enumerate(snapshot, 1):
            if subscription.deliver(message):
                delivered += 1
            elif subscription.ended:
                ended.append(subscription)
            if index % PUBLISH_BATCH == 0:
                await anyio.lowlevel.cancel_shielded_checkpoint()
        for subscription in ended:
            self._remove(subscription)
        await anyio.lowlevel.cancel_shielded_checkpoint()
        return delivered

    async def aclose(self) -> None:
        """Close the hub: every subscription ends (after its buffered messages); idempotent.

        A checkpoint. Later :meth:`subscribe` and :meth:`publish` calls raise
        :exc:`anyio.ClosedResourceError`.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        self._closed = True
        topics, self._topics = self._topics, {}
        for subscribers in topics.values():
            for subscription in subscribers:
                subscription.end()
        await anyio.lowlevel.cancel_shielded_checkpoint()

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._closed

    @property
    def topics(self) -> frozenset[str]:
        """The topics that have at least one subscriber."""
        return frozenset(self._topics)

    def subscriber_count(self, topic: str) -> int:
        """How many subscriptions to ``topic`` are active."""
        return len(self._topics.get(topic, ()))

    def __repr__(self) -> str:
        return f"<Hub topics={len(self._topics)}>"
