"""Every awaited public call of a connection is a trio checkpoint, whatever the path.

``trio.testing.assert_checkpoints`` fails unless the block both could be cancelled and
yielded to the scheduler; ``assert_no_checkpoints`` checks the ``*_nowait`` methods.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws import ConnectionClosed, WouldBlock
from trio_ws.testing._pair import open_connection_pair

pytestmark = pytest.mark.trio


async def test_send_message_is_a_checkpoint() -> None:
    async with open_connection_pair() as (client, server):
        with trio.testing.assert_checkpoints():
            await client.send_message("hello")
        with trio.testing.assert_checkpoints():
            await client.send_message(b"bytes")
        assert await server.get_message() == "hello"
        assert await server.get_message() == b"bytes"


async def test_get_message_with_a_message_waiting_is_a_checkpoint() -> None:
    async with open_connection_pair() as (client, server):
        await client.send_message("one")
        await client.send_message("two")
        await trio.testing.wait_all_tasks_blocked()
        with trio.testing.assert_checkpoints():
            assert await server.get_message() == "one"
        with trio.testing.assert_checkpoints():
            assert await server.__anext__() == "two"


async def test_a_cancelled_get_message_takes_no_message() -> None:
    async with open_connection_pair() as (client, server):
        await client.send_message("kept")
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await server.get_message()
        assert scope.cancelled_caught
        assert server.get_message_nowait() == "kept"


async def test_a_cancelled_send_message_sends_nothing() -> None:
    async with open_connection_pair() as (client, server):
        with trio.CancelScope() as scope:
            scope.cancel()
            await client.send_message("dropped")
        assert scope.cancelled_caught
        await client.send_message("sent")
        assert await server.get_message() == "sent"


async def test_ping_and_pong_are_checkpoints() -> None:
    async with open_connection_pair() as (client, _server):
        with trio.testing.assert_checkpoints():
            await client.pong(b"heartbeat")
        with trio.testing.assert_checkpoints():
            latency = await client.ping(b"p")
        assert latency >= 0


async def test_send_message_parts_is_a_checkpoint() -> None:
    async with open_connection_pair() as (client, server):
        with trio.testing.assert_checkpoints():
            await client.send_message_parts(["a", "b"])
        assert await server.get_message() == "ab"


async def test_calls_that_raise_closed_are_checkpoints() -> None:
    async with open_connection_pair() as (client, server):
        await client.aclose()
        for call in (
            lambda: client.send_message("late"),
            lambda: client.pong(),
            lambda: client.ping(),
            lambda: client.get_message(),
        ):
            with trio.testing.assert_checkpoints(), pytest.raises(ConnectionClosed):
                await call()
        with pytest.raises(ConnectionClosed):
            server.get_message_nowait()  # the peer's close reached the server


async def test_the_nowait_variants_never_yield() -> None:
    async with open_connection_pair() as (client, server):
        with trio.testing.assert_no_checkpoints():
            client.send_message_nowait("fast")
        for _ in range(100):
            await trio.testing.wait_all_tasks_blocked()
            try:
                with trio.testing.assert_no_checkpoints():
                    message = server.get_message_nowait()
            except WouldBlock:
                continue
            assert message == "fast"
            break
        else:
            raise AssertionError("the message never arrived")
        with pytest.raises(WouldBlock):
            server.get_message_nowait()
