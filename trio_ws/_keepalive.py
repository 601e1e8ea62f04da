"""Pings: matching pongs to pending pings, measuring latency, and the keepalive task.

RFC 6455 section 5.5.3 lets a pong answer only the most recent ping, so a pong
acknowledges its own ping and every ping sent before it. Latency is measured from the
moment the ping's bytes were written to the transport, not from when it was queued.

The keepalive task pings every ``ping_interval`` seconds and fails the connection (1011)
when ``ping_timeout`` passes with no sign of life. Any byte received is a sign of life:
a peer busy sending a long message is alive even though its pong waits behind it. And
while the connection itself stopped reading (its message queue is full), silence proves
nothing, so the timeout does not run.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import anyio

from .sansio._errors import LocalProtocolError

if TYPE_CHECKING:
    from ._connection import WebSocketConnection

__all__ = ["PendingPing", "PingTracker", "run_keepalive"]


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
    """The pings of one connection that wait for a pong, oldest first."""

    __slots__ = ("_unwritten", "last_received", "latency", "pending")

    def __init__(self) -> None:
        self.pending: dict[bytes, PendingPing] = {}
        self._unwritten: list[PendingPing] = []
        #: When bytes were last received while a ping was pending.
        self.last_received = float("-inf")
        #: The last measured round trip, in seconds.
        self.latency: float | None = None

    def new_payload(self) -> bytes:
        """A random 4-byte payload that no pending ping uses."""
        while True:
            payload = random.getrandbits(32).to_bytes(4, "big")
            if payload not in self.pending:
                return payload

    def add(self, payload: bytes) -> PendingPing:
        """Track a ping that was just queued.

        Raises:
            LocalProtocolError: a ping with the same payload is still waiting for its pong.
        """
        if payload in self.pending:
            raise LocalProtocolError(
                f"a ping with payload {payload!r} is already waiting for a pong"
            )
        ping = PendingPing(payload, anyio.current_time())
        self.pending[payload] = ping
        self._unwritten.append(ping)
        return ping

    def discard(self, ping: PendingPing) -> None:
        """Stop tracking ``ping`` (its waiter was cancelled)."""
        if self.pending.get(ping.payload) is ping:
            del self.pending[ping.payload]

    def take_unwritten(self) -> list[PendingPing]:
        """The pings queued since the last write (called just before draining the buffer)."""
        if not self._unwritten:
            return self._unwritten
        unwritten, self._unwritten = self._unwritten, []
        return unwritten

    @staticmethod
    def mark_written(pings: list[PendingPing]) -> None:
        """Record that the write carrying ``pings`` is starting now."""
        now = anyio.current_time()
        for ping in pings:
            ping.written_at = now

    def acknowledge(self, payload: bytes) -> bool:
        """Handle a pong: release its ping and every older one. False if unsolicited."""
        if payload not in self.pending:
            return False
        now = anyio.current_time()
        pending = self.pending
        for key in list(pending):
            ping = pending.pop(key)
            ping.latency = now - (
                ping.written_at if ping.written_at is not None else ping.created_at
            )
            ping.acknowledged.set()
            if key == payload:
                self.latency = ping.latency
                break
        return True

    def close(self) -> None:
        """The connection closed: release every waiter (with no latency)."""
        for ping in self.pending.values():
            ping.acknowledged.set()
        self.pending.clear()
        self._unwritten = []


async def run_keepalive(
    ws: WebSocketConnection, interval: float, pong_timeout: float | None
) -> None:
    """Ping every ``interval`` seconds; fail the connection if the peer shows no life
    for ``pong_timeout`` seconds after a ping.

    Never raises: a timeout becomes the connection's close (1011).
    """
    tracker = ws._pings
    while True:
        await anyio.sleep(interval)
        ping = ws._send_ping_now(None)
        if ping is None:
            return  # closing or closed
        if pong_timeout is None:
            continue
        while not ping.acknowledged.is_set():
            now = anyio.current_time()
            if ws._reading_paused:
                # We are not reading, so the pong may be waiting in the socket.
                since = now
            else:
                sent = ping.written_at if ping.written_at is not None else ping.created_at
                since = max(sent, tracker.last_received)
            remaining = since + pong_timeout - now
            if remaining <= 0:
                await ws._fail(1011, "keepalive ping timeout")
                return
            with anyio.move_on_after(remaining):
                await ping.acknowledged.wait()
        if ping.latency is None:
            return
