"""RedisHub: topics shared by many processes and machines through Redis pub/sub.

Each process holds one Redis SUBSCRIBE per topic however many local subscribers it has;
messages from Redis are fanned out by an in-process :class:`~trio_ws.Hub`, so buffering and
overflow policies are the Hub's own. Pub/sub is at-most-once: whatever is published while
this process is disconnected from Redis is lost for its subscribers. The client is coredis
(the ``trio_ws[redis]`` extra, built on anyio), imported only when a RedisHub is created.

Wire format: one type byte, then the payload: ``b"t"`` + UTF-8 for text, ``b"b"`` + the
bytes for binary, so that str and bytes survive the trip.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, final

import anyio

from ._hub import DEFAULT_MAX_BUFFER, BaseHub, Hub, Message, Overflow, Subscription
from ._reconnect import Backoff
from .sansio._errors import HubUnavailable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["DEFAULT_REDIS_BACKOFF", "RedisHub"]

logger = logging.getLogger("trio_ws.redis")

#: The reconnection schedule of a :class:`RedisHub` unless told otherwise: 0.1 s doubling up
#: to 10 s (a lost Redis is usually back within seconds, and every second away loses
#: messages).
DEFAULT_REDIS_BACKOFF = Backoff(initial_delay=0.1, max_delay=10.0, reset_after=1.0)


def _encode(message: Message) -> bytes:
    if isinstance(message, str):
        return b"t" + message.encode()
    return b"b" + bytes(message)


def _decode(payload: bytes) -> Message:
    if payload[:1] == b"t":
        return payload[1:].decode()
    if payload[:1] == b"b":
        return payload[1:]
    raise ValueError(f"not a trio_ws hub payload: {payload[:16]!r}")


@final
class _Subscribing:
    """A topic's SUBSCRIBE in flight: done once Redis answered or its sender gave up."""

    __slots__ = ("confirmed", "done")

    def __init__(self) -> None:
        self.done = anyio.Event()
        #: Redis confirmed it (or is unreachable: the reconnection will subscribe).
        self.confirmed = False


@final
class RedisHub(BaseHub):
    """A hub whose topics span processes and machines, through Redis pub/sub.

    ``async with RedisHub("redis://host:6379") as hub:`` then use it as a :class:`Hub`.
    Every process holds one Redis subscription per topic, however many local subscribers
    it has (and drops it when the last one leaves); each local subscription keeps its own
    bounded buffer and overflow policy. Text and binary messages both round-trip (a type
    byte, ``t`` or ``b``, precedes the payload on the Redis channel).

    When Redis goes away the hub logs a WARNING on the ``trio_ws.redis`` logger, retries
    on ``backoff``'s schedule and resubscribes every topic; messages published meanwhile
    are lost (pub/sub is at-most-once). Works on trio and asyncio. Needs the ``redis``
    extra: ``pip install trio_ws[redis]``.

    Args:
        url: The Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        backoff: The reconnection schedule (by default 0.1 s, doubling up to 10 s).
        connect_timeout: How long entering the hub waits for the first connection.

    Raises:
        ImportError: coredis is not installed.
        TimeoutError: Entering the hub: Redis did not answer within ``connect_timeout``.
    """

    __slots__ = (
        "_backoff",
        "_client",
        "_connect_timeout",
        "_connected",
        "_counts",
        "_local",
        "_pubsub",
        "_runner",
        "_session",
        "_subscribing",
        "_task_group",
        "_url",
    )

    def __init__(
        self,
        url: str,
        *,
        backoff: Backoff = DEFAULT_REDIS_BACKOFF,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            import coredis
        except ImportError as error:
            raise ImportError(
                "RedisHub needs the coredis package: pip install trio_ws[redis]"
            ) from error
        self._url = url
        self._client: Any = coredis.Redis.from_url(url)
        self._local = Hub()
        # The pub/sub session while connected, and a scope that ends it (to force a
        # reconnection when a SUBSCRIBE failed on a connection that looks alive).
        self._pubsub: Any = None
        self._session: anyio.CancelScope | None = None
        # Local subscribers per topic: the Redis subscriptions this process must hold.
        self._counts: dict[str, int] = {}
        # The SUBSCRIBEs in flight, by topic (see _hold_topic).
        self._subscribing: dict[str, _Subscribing] = {}
        self._backoff = backoff
        self._connect_timeout = connect_timeout
        self._task_group: anyio.abc.TaskGroup | None = None
        self._runner = anyio.CancelScope()
        self._connected = anyio.Event()

    async def __aenter__(self) -> Self:
        await self._client.__aenter__()
        try:
            self._task_group = anyio.create_task_group()
            await self._task_group.__aenter__()
            self._task_group.start_soon(self._run)
            try:
                with anyio.move_on_after(self._connect_timeout):
                    await self._connected.wait()
                if not self._connected.is_set():
                    raise TimeoutError(
                        f"cannot reach Redis at {self._url} within {self._connect_timeout:g} s"
                    )
            except BaseException:
                # The error is not the task group's: exit it cleanly (no exception group).
                self._runner.cancel()
                await self._task_group.__aexit__(None, None, None)
                raise
        except BaseException:
            await self._client.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The body's exception is not given to the task groups (the hub's and the
        # client's): they would wrap it in an exception group; it propagates as it is.
        try:
            with anyio.CancelScope(shield=True):  # also when the body was cancelled
                await self.aclose()
            assert self._task_group is not None
            await self._task_group.__aexit__(None, None, None)
        finally:
            # Not shielded: the client exits scopes it entered in __aenter__, and a shield
            # scope around that would be exited out of order.
            await self._client.__aexit__(None, None, None)

    async def _run(self) -> None:
        # Its own scope: cancelling the task group's would cancel the body of the
        # ``async with`` block too (the host task is inside it).
        with self._runner:
            await self._reconnect_forever()

    async def _reconnect_forever(self) -> None:
        failures = 0
        while True:
            connected_at = None
            try:
                with anyio.CancelScope() as self._session:
                    # No retry policy: this loop owns reconnection (and its schedule).
                    async with self._client.pubsub(retry_policy=None) as pubsub:
                        # Published before SUBSCRIBE so that a topic subscribed meanwhile
                        # is sent on this connection; SUBSCRIBE twice is harmless.
                        self._pubsub = pubsub
                        if self._counts:
                            await pubsub.subscribe(*self._counts)
                        connected_at = anyio.current_time()
                        if failures:
                            logger.warning("Redis reachable again; topics resubscribed")
                        self._connected.set()
                        await self._relay(pubsub)
            except Exception as error:  # coredis raises its own errors and OS errors
                # A string, not the error: its traceback would keep the connection alive.
                reason = str(error) or type(error).__name__
            else:
                reason = "SUBSCRIBE failed"
            finally:
                self._pubsub = None
                self._session = None
            if (
                connected_at is not None
                and anyio.current_time() - connected_at >= self._backoff.reset_after
            ):
                failures = 0
            failures += 1
            delay = self._backoff.delay(failures)
            logger.warning("Redis unreachable (%s); retrying in %.1f s", reason, delay)
            await anyio.sleep(delay)

    async def _relay(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True)
            if message is None or message["type"] != "message":
                continue
            topic = message["channel"]
            if isinstance(topic, bytes):
                topic = topic.decode()
            try:
                decoded = _decode(message["data"])
            except ValueError:  # someone else PUBLISHed on the channel (or not UTF-8)
                logger.warning("ignoring a message on %r that no RedisHub sent", topic)
                continue
            await self._local.publish(topic, decoded)

    async def _redis_subscribe(self, topic: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return  # reconnecting: the new session subscribes every counted topic
        try:
            await pubsub.subscribe(topic)
        except Exception:
            logger.warning("could not SUBSCRIBE to %r; reconnecting", topic)
            if self._session is not None:
                self._session.cancel()

    async def _redis_unsubscribe(self, topic: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await pubsub.unsubscribe(topic)
            except Exception:
                # The connection is going away anyway: the next one will not resubscribe.
                logger.warning("could not UNSUBSCRIBE from %r", topic)

    async def _hold_topic(self, topic: str, *, first: bool) -> None:
        """Return once Redis has confirmed the SUBSCRIBE to ``topic`` (or is unreachable).

        The first local subscriber sends it; later ones wait for its answer, and send it
        themselves if that subscriber was cancelled before the answer came.
        """
        while True:
            pending = self._subscribing.get(topic)
            if pending is None:
                if not first:
                    return  # confirmed before this subscriber came
                pending = self._subscribing[topic] = _Subscribing()
                try:
                    await self._redis_subscribe(topic)
                    pending.confirmed = True
                finally:
                    del self._subscribing[topic]
                    pending.done.set()
                return
            await pending.done.wait()
            if pending.confirmed:
                return
            first = True  # its sender gave up: this subscriber sends it again

    @asynccontextmanager
    async def _subscription(
        self, topic: str, max_buffer: int, overflow: Overflow
    ) -> AsyncIterator[Subscription]:
        async with self._local.subscribe(
            topic, max_buffer=max_buffer, overflow=overflow
        ) as subscription:
            self._counts[topic] = self._counts.get(topic, 0) + 1
            try:
                await self._hold_topic(topic, first=self._counts[topic] == 1)
                yield subscription
            finally:
                self._counts[topic] -= 1
                if not self._counts[topic]:
                    del self._counts[topic]
                    await self._redis_unsubscribe(topic)

    def subscribe(
        self,
        topic: str,
        *,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        overflow: Overflow = "drop_oldest",
    ) -> AbstractAsyncContextManager[Subscription]:
        """Subscribe to ``topic`` in every process; see :meth:`BaseHub.subscribe`.

        Entering waits until Redis has confirmed the topic's SUBSCRIBE: the first local
        subscriber sends it, and those that come before the confirmation wait for it too,
        so that a message published after entering reaches the subscription. While Redis
        is unreachable it does not wait: the reconnection subscribes.
        """
        return self._subscription(topic, max_buffer, overflow)

    async def publish(self, topic: str, message: Message) -> int:
        """PUBLISH ``message`` through Redis to the subscribers of every process.

        Returns:
            How many processes (Redis subscriptions) Redis delivered it to.

        Raises:
            HubUnavailable: Redis is unreachable; the message is lost (pub/sub is
                at-most-once), coredis's error is the ``__cause__``.
            anyio.ClosedResourceError: The hub is closed.
        """
        if self._local.closed:
            raise anyio.ClosedResourceError
        payload = _encode(message)
        try:
            delivered = await self._client.publish(topic, payload)
        except Exception as error:  # coredis's errors, OS errors, timeouts
            raise HubUnavailable(f"cannot publish to {topic!r}: Redis is unreachable") from error
        return int(delivered)

    async def aclose(self) -> None:
        """End every local subscription and stop listening to Redis; idempotent."""
        await self._local.aclose()
        self._runner.cancel()

    @property
    def topics(self) -> frozenset[str]:
        """The topics with at least one subscriber in this process."""
        return self._local.topics

    def subscriber_count(self, topic: str) -> int:
        """How many subscriptions to ``topic`` are active in this process."""
        return self._local.subscriber_count(topic)

    def __repr__(self) -> str:
        state = "connected" if self._pubsub is not None else "disconnected"
        return f"<RedisHub {state} topics={len(self._counts)}>"
