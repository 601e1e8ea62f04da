"""A peer that floods us with pings and never reads cannot make our write buffer grow.

Each ping queues a pong; the pongs wait behind what the peer does not read. The reader
stops reading once more than ``write_high_water`` bytes of such answers are owed, so the
peer's own sends block instead (RFC 6455 lets us answer only the latest ping anyway).
"""

from __future__ import annotations

import tracemalloc

import anyio
import pytest

from trio_ws import ConnectionConfig
from trio_ws.sansio import Role
from trio_ws.testing._pair import open_connection_pair, open_raw_peer

pytestmark = pytest.mark.anyio

HIGH_WATER = 4096
CAPACITY = 16384
PINGS = 20_000  # 2.6 MB of pings: as many pongs if every one were buffered
PAYLOAD = b"p" * 125


async def test_a_peer_that_pings_and_never_reads_is_not_read_either() -> None:
    config = ConnectionConfig(ping_interval=None, close_timeout=1, write_high_water=HIGH_WATER)
    sent = 0
    async with open_raw_peer(config, role=Role.SERVER, capacity=CAPACITY) as (
        ws,
        peer,
        peer_stream,
    ):

        async def flood() -> None:
            nonlocal sent
            for _ in range(PINGS):
                peer.send_ping(PAYLOAD)
                await peer_stream.send(peer.data_to_send())
                sent += 1

        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(flood)
                    for _ in range(20):  # until everyone waits: the flood is stuck
                        await anyio.wait_all_tasks_blocked()
                    _, peak = tracemalloc.get_traced_memory()
                    assert sent < PINGS // 10
                    # What we owe is bounded by the high-water mark plus the answers to
                    # one read (at most a pipe's worth of pings).
                    assert ws.buffered_amount <= HIGH_WATER + CAPACITY + 2 * len(PAYLOAD)
                    assert peak - before < 512 * 1024
                    assert not ws.closed  # paused, not failed
                    tg.cancel_scope.cancel()
        finally:
            tracemalloc.stop()


async def test_two_peers_sending_large_messages_at_once_do_not_wait_for_each_other() -> None:
    # Only automatic answers pause reading: two sides that both write more than their
    # high-water mark, and both read, never deadlock.
    config = ConnectionConfig(ping_interval=None, write_high_water=HIGH_WATER)
    large = b"x" * (256 * 1024)
    with anyio.fail_after(20):
        async with open_connection_pair(
            client_config=config, server_config=config, capacity=CAPACITY
        ) as (client, server):
            received: dict[str, list[str | bytes]] = {"client": [], "server": []}

            async def send(ws: object, count: int) -> None:
                for _ in range(count):
                    await ws.send_message(large)  # type: ignore[attr-defined]

            async def receive(ws: object, name: str, count: int) -> None:
                for _ in range(count):
                    received[name].append(await ws.get_message())  # type: ignore[attr-defined]

            async with anyio.create_task_group() as tg:
                tg.start_soon(send, client, 4)
                tg.start_soon(send, server, 4)
                tg.start_soon(receive, client, "client", 4)
                tg.start_soon(receive, server, "server", 4)
            assert received == {"client": [large] * 4, "server": [large] * 4}
