"""Pings: matching pongs to pending pings, measuring latency, and the keepalive task.

RFC 6455 section 5.5.3 lets a pong answer only the most recent ping, so a pong
acknowledges its own ping and every ping sent before it. Latency is measured from the
moment the ping's bytes were written to the transport, not from when it was queued.

The keepalive task pings every ``ping_interval`` seconds and fails the connection (1011)
when ``ping_timeout`` passes with no sign of life. Any byte received is a sign of life:
a peer busy sending a long message is alive even though its pong waits behind it. And
while the connection itself stopped reading (its message queue is full), silence proves
nothing, so the timeout does not run.

A server runs one :class:`KeepaliveScheduler` for all its connections instead of a task
per connection: a task costs several KiB, an entry in the scheduler's heap about a hundred
bytes.

Each keepalive ping also lets the connection's extensions free what they can rebuild if they
were idle since the previous ping (``Extension.release_idle_memory``): with
permessage-deflate, a connection silent for one interval sheds its zlib state.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from typing import TYPE_CHECKING, Protocol

import anyio

from ._groups import open_task_group
from .sansio._errors import LocalProtocolError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anyio.abc import TaskGroup

__all__ = [
    "KeepaliveEntry",
    "KeepaliveHost",
    "KeepaliveScheduler",
    "PendingPing",
    "PingTracker",
    "run_keepalive",
]

logger = logging.getLogger("trio_ws")


class PendingPing:
    """One ping waiting for its pong."""

    __slots__ = ("acknowledged", "created_at", "latency", "payload", "written_at")

    def __init__(self, payload: bytes, now: float) -> None:
        self.payload = payload
        self.created_at = now
        #: When its bytes were written to the transport (``None``: not yet).
        self.written_at: float | None = None
        #: Set when the pong arrives or the connection closes.
        self.acknowledged = anyio.Event()
        #: The measured round trip; ``None`` if the connection closed first.
        self.latency: float | None = None


class PingTracker:
    """The pings of one connection that wait for a pong, oldest first.

    Most connections have no ping in flight most of the time, so the containers are made
    on the first ping and dropped when the last one is answered (about 120 bytes per idle
    connection).
    """

    __slots__ = ("last_received", "latency", "pending", "unwritten")

    def __init__(self) -> None:
        #: The pings waiting for their pong, by payload; ``None`` when there are none.
        self.pending: dict[bytes, PendingPing] | None = None
        #: The pings queued since the last write, ``None`` when there are none (read-only
        #: outside the tracker: the writer checks it before each write, a cheap test).
        self.unwritten: list[PendingPing] | None = None
        #: When bytes were last received while a ping was pending.
        self.last_received = float("-inf")
        #: The last measured round trip, in seconds.
        self.latency: float | None = None

    def new_payload(self) -> bytes:
        """A random 4-byte payload that no pending ping uses."""
        pending = self.pending or {}
        while True:
            payload = random.getrandbits(32).to_bytes(4, "big")
            if payload not in pending:
                return payload

    def add(self, payload: bytes) -> PendingPing:
        """Track a ping that was just queued.

        Raises:
            LocalProtocolError: a ping with the same payload is still waiting for its pong.
        """
        pending = self.pending
        if pending is None:
            pending = self.pending = {}
        elif payload in pending:
            raise LocalProtocolError(
                f"a ping with payload {payload!r} is already waiting for a pong"
            )
        ping = PendingPing(payload, anyio.current_time())
        pending[payload] = ping
        if self.unwritten is None:
            self.unwritten = [ping]
        else:
            self.unwritten.append(ping)
        return ping

    def discard(self, ping: PendingPing) -> None:
        """Stop tracking ``ping`` (its waiter was cancelled)."""
        pending = self.pending
        if pending is not None and pending.get(ping.payload) is ping:
            del pending[ping.payload]
            if not pending:
                self.pending = None

    def take_unwritten(self) -> Sequence[PendingPing]:
        """The pings queued since the last write (called just before draining the buffer)."""
        unwritten = self.unwritten
        if unwritten is None:
            return ()
        self.unwritten = None
        return unwritten

    @staticmethod
    def mark_written(pings: Sequence[PendingPing]) -> None:
        """Record that the write carrying ``pings`` is starting now."""
        now = anyio.current_time()
        for ping in pings:
            ping.written_at = now

    def acknowledge(self, payload: bytes) -> bool:
        """Handle a pong: release its ping and every older one. False if unsolicited."""
        pending = self.pending
        if pending is None or payload not in pending:
            return False
        now = anyio.current_time()
        for key in list(pending):
            ping = pending.pop(key)
            ping.latency = now - (
                ping.written_at if ping.written_at is not None else ping.created_at
            )
            ping.acknowledged.set()
            if key == payload:
                self.latency = ping.latency
                break
        if not pending:
            self.pending = None
        return True

    def close(self) -> None:
        """The connection closed: release every waiter (with no latency)."""
        pending, self.pending = self.pending, None
        for ping in (pending or {}).values():
            ping.acknowledged.set()
        self.unwritten = None


class KeepaliveHost(Protocol):
    """What the keepalive needs from its connection (``trio_ws._connection.ConnectionLink``)."""

    id: str
    pings: PingTracker

    @property
    def reading_paused(self) -> bool: ...
    def send_keepalive_ping(self) -> PendingPing | None: ...
    async def fail(self, code: int, reason: str) -> None: ...
    def release_idle_memory(self) -> None: ...


def _pong_deadline(ws: KeepaliveHost, ping: PendingPing, timeout: float, now: float) -> float:
    """When the peer's silence after ``ping`` becomes a timeout, as seen at ``now``."""
    if ws.reading_paused:
        # We are not reading, so the pong may be waiting in the socket.
        return now + timeout
    sent = ping.written_at if ping.written_at is not None else ping.created_at
    return max(sent, ws.pings.last_received) + timeout


async def run_keepalive(ws: KeepaliveHost, interval: float, pong_timeout: float | None) -> None:
    """Ping every ``interval`` seconds; fail the connection if the peer shows no life
    for ``pong_timeout`` seconds after a ping.

    Never raises: a timeout becomes the connection's close (1011).
    """
    while True:
        await anyio.sleep(interval)
        ping = ws.send_keepalive_ping()
        if ping is None:
            return  # closing or closed
        ws.release_idle_memory()
        if pong_timeout is None:
            continue
        while not ping.acknowledged.is_set():
            now = anyio.current_time()
            remaining = _pong_deadline(ws, ping, pong_timeout, now) - now
            if remaining <= 0:
                await ws.fail(1011, "keepalive ping timeout")
                return
            with anyio.move_on_after(remaining):
                await ping.acknowledged.wait()
        if ping.latency is None:
            return


async def _fail_on_timeout(ws: KeepaliveHost) -> None:
    try:
        await ws.fail(1011, "keepalive ping timeout")
    except Exception:  # never into the scheduler's task group: the server runs it
        logger.exception("[%s] failing the connection after a keepalive timeout", ws.id)


class KeepaliveEntry:
    """One connection's place in a :class:`KeepaliveScheduler`."""

    __slots__ = ("ping", "ws")

    def __init__(self, ws: KeepaliveHost) -> None:
        #: ``None`` once the connection is closed (the heap may still hold the entry).
        self.ws: KeepaliveHost | None = ws
        #: The keepalive ping waiting for its pong; ``None`` between pings.
        self.ping: PendingPing | None = None


class KeepaliveScheduler:
    """Keepalive for many connections in one task: a heap of deadlines.

    Each connection behaves exactly as with :func:`run_keepalive`: a ping ``interval``
    seconds after the connection started or after the last keepalive pong, and a failure
    (1011) when ``timeout`` passes after a ping with no sign of life (no timeout while the
    connection's reading is paused). While a ping waits for its pong, the entry is checked
    at least every ``interval`` seconds, so the next ping still follows the pong by
    ``interval``.

    Args:
        interval: Seconds between pings.
        timeout: Seconds of silence after a ping before failing; ``None`` never fails.
    """

    __slots__ = ("_heap", "_interval", "_order", "_sleep", "_timeout")

    def __init__(self, interval: float, timeout: float | None) -> None:
        self._interval = interval
        self._timeout = timeout
        self._heap: list[tuple[float, int, KeepaliveEntry]] = []
        self._order = itertools.count()  # ties never compare entries
        self._sleep: anyio.CancelScope | None = None

    def __len__(self) -> int:
        """How many entries the heap holds (those of closed connections until they are due)."""
        return len(self._heap)

    def add(self, ws: KeepaliveHost) -> KeepaliveEntry:
        """Start the keepalive of ``ws``; clear the entry's ``ws`` to stop it."""
        entry = KeepaliveEntry(ws)
        self._push(anyio.current_time() + self._interval, entry)
        return entry

    def _push(self, deadline: float, entry: KeepaliveEntry) -> None:
        heapq.heappush(self._heap, (deadline, next(self._order), entry))
        sleep = self._sleep
        if sleep is not None and deadline < sleep.deadline:
            sleep.deadline = deadline

    async def run(self) -> None:
        """The scheduler's task: runs until cancelled (with the server)."""
        heap = self._heap
        async with open_task_group() as failing:
            while True:
                now = anyio.current_time()
                while heap and heap[0][0] <= now:
                    entry = heapq.heappop(heap)[2]
                    if entry.ws is not None:
                        self._due(entry, now, failing)
                with anyio.CancelScope(deadline=heap[0][0] if heap else math.inf) as sleep:
                    self._sleep = sleep
                    try:
                        await anyio.sleep_forever()
                    finally:
                        self._sleep = None

    def _due(self, entry: KeepaliveEntry, now: float, failing: TaskGroup) -> None:
        ws = entry.ws
        assert ws is not None
        interval = self._interval
        timeout = self._timeout
        ping = entry.ping
        if ping is None:
            ping = ws.send_keepalive_ping()
            if ping is None:  # closing or closed
                entry.ws = None
                return
            ws.release_idle_memory()
            if timeout is None:
                self._push(now + interval, entry)
            else:
                entry.ping = ping
                self._push(now + min(interval, timeout), entry)
            return
        if ping.acknowledged.is_set():
            entry.ping = None
            if ping.latency is None:  # the connection closed
                entry.ws = None
                return
            sent = ping.written_at if ping.written_at is not None else ping.created_at
            self._push(sent + ping.latency + interval, entry)
            return
        assert timeout is not None
        deadline = _pong_deadline(ws, ping, timeout, now)
        if deadline <= now:
            entry.ws = None
            failing.start_soon(_fail_on_timeout, ws)
            return
        self._push(min(deadline, now + interval), entry)
