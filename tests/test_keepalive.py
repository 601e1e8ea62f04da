"""Keepalive pings: timeouts on silent peers, and no false timeouts on busy ones.

Time is the subject here, so on trio these tests run on ``MockClock(autojump_threshold=0)``:
the clock jumps to the next deadline as soon as every task waits (in-memory streams only,
where waiting means waiting for the other side). On asyncio they keep tiny real delays.
"""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.handlers import recording_echo
from trio_ws import ConnectionClosedError, ConnectionConfig
from trio_ws._connection import ConnectionInfo, open_connection
from trio_ws._groups import open_task_group
from trio_ws._keepalive import KeepaliveScheduler, PendingPing, PingTracker
from trio_ws.sansio import Connection, Ping, Role
from trio_ws.testing._memory import MemoryByteStream, memory_stream_pair
from trio_ws.testing._pair import (
    build_linked,
    open_connection_pair,
    open_raw_peer as _open_raw_peer_task,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio_ws import WebSocketConnection

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """trio with a mock clock that jumps while every task waits; asyncio in real time."""
    if request.param == "trio":
        import trio.testing

        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    return "asyncio"


@pytest.fixture(params=["task", "scheduler"])
def keepalive_mode(request: pytest.FixtureRequest) -> str:
    """Keepalive in a task of the connection's own, or in a shared scheduler (servers)."""
    return str(request.param)


@asynccontextmanager
async def open_raw_peer(
    config: ConnectionConfig, mode: str = "task"
) -> AsyncIterator[tuple[WebSocketConnection, Connection, MemoryByteStream]]:
    """As ``testing._pair.open_raw_peer``, with the keepalive run the ``mode`` way."""
    if mode == "task":
        async with _open_raw_peer_task(config) as peer:
            yield peer
        return
    assert config.ping_interval is not None
    scheduler = KeepaliveScheduler(config.ping_interval, config.ping_timeout)
    ws_stream, peer_stream = memory_stream_pair(65536)
    async with open_task_group() as task_group:
        task_group.start_soon(scheduler.run)
        ws, link = build_linked(ws_stream, Role.CLIENT, config)
        link.start(task_group, keepalive=scheduler)
        try:
            yield ws, Connection(Role.SERVER, max_message_size=None), peer_stream
        finally:
            await link.abort()
            task_group.cancel_scope.cancel()


@asynccontextmanager
async def open_pair(
    config: ConnectionConfig, mode: str
) -> AsyncIterator[tuple[WebSocketConnection, WebSocketConnection]]:
    """A client and a server connection, both with ``config``'s keepalive."""
    if mode == "task":
        async with open_connection_pair(client_config=config, server_config=config) as pair:
            yield pair
        return
    assert config.ping_interval is not None
    scheduler = KeepaliveScheduler(config.ping_interval, config.ping_timeout)
    client_stream, server_stream = memory_stream_pair(65536)
    async with open_task_group() as task_group:
        task_group.start_soon(scheduler.run)
        client, client_link = build_linked(client_stream, Role.CLIENT, config)
        server, server_link = build_linked(server_stream, Role.SERVER, config)
        client_link.start(task_group, keepalive=scheduler)
        server_link.start(task_group, keepalive=scheduler)
        try:
            yield client, server
        finally:
            await client.aclose()
            await server.aclose()
            task_group.cancel_scope.cancel()


def _fast(max_queue: int = 16) -> ConnectionConfig:
    """Keepalive settings short enough for tests."""
    return ConnectionConfig(
        ping_interval=0.05, ping_timeout=0.15, close_timeout=0.5, max_queue=max_queue
    )


async def test_silent_peer_fails_the_connection_with_1011(keepalive_mode: str) -> None:
    with anyio.fail_after(5):
        async with open_raw_peer(_fast(), keepalive_mode) as (ws, _peer, _peer_stream):
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1011
            assert "keepalive" in info.value.reason
            assert ws.closed


async def test_responsive_peer_stays_connected_and_latency_is_measured(
    keepalive_mode: str,
) -> None:
    config = _fast()
    with anyio.fail_after(5):
        async with open_pair(config, keepalive_mode) as (client, server):
            await anyio.sleep(0.5)  # several ping intervals and timeouts
            assert not client.closed
            assert not server.closed
            assert client.latency is not None
            assert server.latency is not None
            await client.send_message("alive")
            assert await server.get_message() == "alive"


async def test_no_false_timeout_while_a_long_message_streams_in(keepalive_mode: str) -> None:
    with anyio.fail_after(5):
        async with open_raw_peer(_fast(), keepalive_mode) as (ws, peer, peer_stream):
            # The peer never answers pings (it never reads), but it keeps sending one
            # message for 0.6 s, four times the ping timeout: that is a sign of life.
            for _ in range(20):
                peer.send_fragment(b"x" * 100, text=False, fin=False)
                await peer_stream.send(peer.data_to_send())
                await anyio.sleep(0.03)
                assert not ws.closed
            peer.send_fragment(b"end", text=False, fin=True)
            await peer_stream.send(peer.data_to_send())
            assert await ws.get_message() == b"x" * 2000 + b"end"


async def test_no_timeout_while_reading_is_paused_by_backpressure(keepalive_mode: str) -> None:
    config = _fast(max_queue=1)
    with anyio.fail_after(5):
        async with open_raw_peer(config, keepalive_mode) as (ws, peer, peer_stream):
            for index in range(3):
                peer.send_binary(bytes([index]))
                await peer_stream.send(peer.data_to_send())
                await anyio.sleep(0.01)
            # The queue is full: the connection stopped reading, so the pong may be
            # waiting in the socket; the silence must not count against the peer.
            await anyio.sleep(0.5)
            assert not ws.closed
            assert [await ws.get_message() for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
            # Reading again, and the peer really is silent: now it times out.
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1011


async def test_keepalive_can_be_disabled() -> None:
    config = ConnectionConfig(ping_interval=None, ping_timeout=0.05)
    with anyio.fail_after(5):
        async with open_raw_peer(config) as (ws, _peer, peer_stream):
            await anyio.sleep(0.3)
            assert not ws.closed
            assert peer_stream.buffered == 0  # no ping was ever sent


async def test_pings_without_timeout_never_fail(keepalive_mode: str) -> None:
    config = ConnectionConfig(ping_interval=0.05, ping_timeout=None)
    with anyio.fail_after(5):
        async with open_raw_peer(config, keepalive_mode) as (ws, peer, peer_stream):
            await anyio.sleep(0.3)
            assert not ws.closed
            assert peer_stream.buffered == 0  # the peer never answered
            events = peer.receive_data(await peer_stream.receive())
            assert len([event for event in events if isinstance(event, Ping)]) >= 2


async def test_scheduler_pings_one_interval_after_each_pong() -> None:
    # The peer answers every ping at once: pings then come one interval apart, as with a
    # task per connection, even though the interval is shorter than the timeout.
    config = ConnectionConfig(ping_interval=0.1, ping_timeout=1.0, close_timeout=0.5)
    with anyio.fail_after(5):
        async with open_raw_peer(config, "scheduler") as (ws, peer, peer_stream):
            times: list[float] = []
            while len(times) < 4:
                events = peer.receive_data(await peer_stream.receive())
                if events:
                    times.append(anyio.current_time())
                    await peer_stream.send(peer.data_to_send())  # the automatic pong
            gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
            assert all(0.09 <= gap < 0.5 for gap in gaps), gaps
            assert ws.latency is not None
            assert not ws.closed


async def test_scheduler_forgets_a_closed_connection() -> None:
    config = _fast()
    scheduler = KeepaliveScheduler(0.05, 0.15)
    stream, _peer_stream = memory_stream_pair(65536)
    with anyio.fail_after(5):
        async with open_task_group() as task_group:
            task_group.start_soon(scheduler.run)
            ws, link = open_connection(
                stream, Connection(Role.CLIENT), config=config, info=ConnectionInfo()
            )
            link.start(task_group, keepalive=scheduler)
            assert len(scheduler) == 1
            await link.abort()
            await anyio.sleep(0.1)  # the entry came due and was dropped, not pinged
            assert len(scheduler) == 0
            assert ws.closed
            task_group.cancel_scope.cancel()


@pytest.mark.parametrize("anyio_backend", ["trio", "asyncio"])  # real TCP: real time
async def test_server_keepalive_fails_a_silent_client_and_keeps_a_live_one() -> None:
    import functools

    from trio_ws import open_websocket_url, serve_websocket
    from trio_ws.sansio import CloseConnection, ConnectionFailed
    from trio_ws.sansio._handshake import ClientHandshake

    server_sides: list[WebSocketConnection] = []
    handler = recording_echo(server_sides)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await tg.start(
                functools.partial(
                    serve_websocket,
                    handler,
                    "127.0.0.1",
                    0,
                    ping_interval=0.05,
                    ping_timeout=0.2,
                    close_timeout=0.5,
                )
            )
            # trio_ws's client answers pings; a raw client that never reads does not.
            async with open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", ping_interval=None
            ) as live:
                async with await anyio.connect_tcp("127.0.0.1", server.port) as raw:
                    handshake = ClientHandshake("127.0.0.1", port=server.port)
                    await raw.send(handshake.data_to_send())
                    accepted = None
                    while accepted is None:
                        accepted = handshake.receive_data(await raw.receive())
                    await anyio.sleep(0.6)  # several intervals and timeouts
                    # Now read: pings, then the server's close frame with 1011.
                    peer = Connection(Role.CLIENT)
                    closing: list[CloseConnection | ConnectionFailed] = []
                    data = accepted.extra_data
                    while not closing:
                        events = peer.receive_data(data)
                        closing = [
                            event
                            for event in events
                            if isinstance(event, (CloseConnection, ConnectionFailed))
                        ]
                        if not closing:
                            data = await raw.receive()
                    assert isinstance(closing[0], CloseConnection)
                    assert closing[0].code == 1011
                await live.send_message("still here")
                assert await live.get_message() == "still here"
                assert server_sides[0].latency is not None
            tg.cancel_scope.cancel()


def _pending(tracker: PingTracker) -> dict[bytes, PendingPing] | None:
    # Read through a call, so that the type checker does not keep an earlier narrowing.
    return tracker.pending


@pytest.mark.anyio
async def test_ping_tracker_holds_no_containers_without_pings_in_flight() -> None:
    tracker = PingTracker()
    assert _pending(tracker) is None
    assert tracker.take_unwritten() == ()
    first = tracker.add(b"one")
    second = tracker.add(b"two")
    assert tracker.take_unwritten() == [first, second]
    assert tracker.take_unwritten() == ()
    tracker.discard(second)
    assert _pending(tracker) == {b"one": first}
    assert tracker.acknowledge(b"one")
    assert _pending(tracker) is None  # dropped with the last pending ping
    assert not tracker.acknowledge(b"one")  # unsolicited now
    third = tracker.add(b"three")
    tracker.discard(third)
    assert _pending(tracker) is None
    tracker.add(b"four")
    tracker.close()
    assert _pending(tracker) is None
    assert tracker.take_unwritten() == ()
