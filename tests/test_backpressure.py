"""Backpressure: bounded memory whatever the peer does, and closing never deadlocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectionConfig,
    WebSocketConnection,
    WouldBlock,
)
from trio_ws._reader import RECEIVE_SIZE
from trio_ws.testing._pair import open_connection_pair

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

pytestmark = pytest.mark.anyio

CAPACITY = 32 * 1024  # the in-memory "TCP window" in each direction
HIGH_WATER = 16 * 1024
MAX_QUEUE = 4
MESSAGE = b"m" * 1000
FRAME = len(MESSAGE) + 2 + 2 + 4  # header, 16-bit length, mask


def _pair(
    close_timeout: float,
) -> AbstractAsyncContextManager[tuple[WebSocketConnection, WebSocketConnection]]:
    """A client with a small write buffer and a server with a small queue."""
    return open_connection_pair(
        capacity=CAPACITY,
        client_config=ConnectionConfig(
            ping_interval=None, write_high_water=HIGH_WATER, close_timeout=close_timeout
        ),
        server_config=ConnectionConfig(
            ping_interval=None, max_queue=MAX_QUEUE, close_timeout=close_timeout
        ),
    )


async def test_a_consumer_that_never_reads_bounds_the_memory_of_both_sides() -> None:
    sent = 0

    async def flood(ws: object) -> None:
        nonlocal sent
        for _ in range(10_000):
            await client.send_message(MESSAGE)
            sent += 1

    with anyio.fail_after(10):
        async with (
            _pair(0.5) as (
                client,
                server,
            ),
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(flood, client)
            for _ in range(50):  # let the flood go as far as it can
                await anyio.wait_all_tasks_blocked()
                await anyio.sleep(0.01)
            buffered = client.buffered_amount
            # The sender is stuck: far fewer than 10,000 messages went out...
            assert sent < 200
            # ... and each buffer on the way is bounded: the client's write buffer by
            # its high-water mark (plus one message), the server's queue by max_queue
            # plus the messages of one chunk it read (counted by taking them).
            assert buffered <= HIGH_WATER + FRAME
            queued = 0
            while True:
                try:
                    server.get_message_nowait()
                except WouldBlock:
                    break
                queued += 1
            assert queued <= MAX_QUEUE + RECEIVE_SIZE // FRAME + 1
            # In total, at most: the queue, the pipe, one write in flight and the
            # write buffer (each at most one frame over its bound).
            bound = (MAX_QUEUE + RECEIVE_SIZE // FRAME + 1) * FRAME + CAPACITY
            assert sent * FRAME <= bound + 2 * (HIGH_WATER + FRAME)
            # Reading resumes as soon as the consumer reads: the flood moves on.
            stuck_at = sent
            for _ in range(10):
                assert await server.get_message() == MESSAGE
            await anyio.wait_all_tasks_blocked()
            assert sent > stuck_at
            tg.cancel_scope.cancel()


async def test_aclose_with_a_full_queue_does_not_deadlock() -> None:
    async def flood() -> None:
        try:
            while True:
                await client.send_message(MESSAGE)
        except ConnectionClosed:
            pass

    # close_timeout is far above fail_after: closing must not need it.
    with anyio.fail_after(5):
        async with _pair(60) as (
            client,
            server,
        ):
            async with anyio.create_task_group() as tg:
                tg.start_soon(flood)
                await anyio.wait_all_tasks_blocked()  # the flood is stuck: queue full
                assert client.buffered_amount > 0
                await server.aclose()
            assert server.close_code == 1000
            with pytest.raises(ConnectionClosedOK):
                await client.get_message()
            with pytest.raises(ConnectionClosedOK):
                await server.get_message()  # unread messages were dropped


async def test_sender_blocked_on_a_full_buffer_wakes_when_the_peer_closes() -> None:
    with anyio.fail_after(5):
        async with _pair(60) as (
            client,
            server,
        ):

            async def flood() -> None:
                while True:
                    await client.send_message(MESSAGE)

            async with anyio.create_task_group() as tg:

                async def close_soon() -> None:
                    await anyio.wait_all_tasks_blocked()
                    await server.aclose(1001)

                tg.start_soon(close_soon)
                with pytest.raises(ConnectionClosedOK) as info:
                    await flood()
            assert info.value.code == 1001
