"""Keepalive pings: timeouts on silent peers, and no false timeouts on busy ones."""

from __future__ import annotations

import anyio
import pytest

from trio_ws import ConnectionClosedError, ConnectionConfig
from trio_ws.testing._pair import open_connection_pair, open_raw_peer

pytestmark = pytest.mark.anyio


def _fast(max_queue: int = 16) -> ConnectionConfig:
    """Keepalive settings short enough for tests."""
    return ConnectionConfig(
        ping_interval=0.05, ping_timeout=0.15, close_timeout=0.5, max_queue=max_queue
    )


async def test_silent_peer_fails_the_connection_with_1011() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer(_fast()) as (ws, _peer, _peer_stream):
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1011
            assert "keepalive" in info.value.reason
            assert ws.closed


async def test_responsive_peer_stays_connected_and_latency_is_measured() -> None:
    config = _fast()
    with anyio.fail_after(5):
        async with open_connection_pair(client_config=config, server_config=config) as (
            client,
            server,
        ):
            await anyio.sleep(0.5)  # several ping intervals and timeouts
            assert not client.closed
            assert not server.closed
            assert client.latency is not None
            assert server.latency is not None
            await client.send_message("alive")
            assert await server.get_message() == "alive"


async def test_no_false_timeout_while_a_long_message_streams_in() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer(_fast()) as (ws, peer, peer_stream):
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


async def test_no_timeout_while_reading_is_paused_by_backpressure() -> None:
    config = _fast(max_queue=1)
    with anyio.fail_after(5):
        async with open_raw_peer(config) as (ws, peer, peer_stream):
            for index in range(3):
                peer.send_binary(bytes([index]))
                await peer_stream.send(peer.data_to_send())
                await anyio.sleep(0.01)
            # The queue is full: the connection stopped reading, so the pong may be
            # waiting in the socket; the silence must not count against the peer.
            await anyio.sleep(0.5)
            assert not ws.closed
            assert ws._reading_paused
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


async def test_pings_without_timeout_never_fail() -> None:
    config = ConnectionConfig(ping_interval=0.05, ping_timeout=None)
    with anyio.fail_after(5):
        async with open_raw_peer(config) as (ws, _peer, peer_stream):
            await anyio.sleep(0.3)
            assert not ws.closed
            assert ws._stream.buffered > 0  # type: ignore[attr-defined]
            assert peer_stream.buffered == 0
