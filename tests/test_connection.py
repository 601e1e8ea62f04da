"""WebSocketConnection over in-memory streams, on trio and asyncio."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionConfig,
    LocalProtocolError,
    WebSocketConnection,
)
from trio_ws._groups import open_task_group
from trio_ws._streams import TrioStreamAdapter, as_byte_stream
from trio_ws.sansio import CloseConnection, Connection, Ping, Role, TextMessage
from trio_ws.testing import memory_stream_pair
from trio_ws.testing._pair import build_linked, open_connection_pair, open_raw_peer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from trio_ws.sansio import Event
    from trio_ws.testing import MemoryByteStream

pytestmark = pytest.mark.anyio


async def _peer_events(peer: Connection, stream: MemoryByteStream) -> list[Event]:
    """Receive one chunk on the raw peer's side and parse it."""
    return peer.receive_data(await stream.receive())


async def _peer_flush(peer: Connection, stream: MemoryByteStream) -> None:
    await stream.send(peer.data_to_send())


async def test_text_and_binary_messages() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await client.send_message("héllo")
            await client.send_message(b"\x00\x01")
            await client.send_message(bytearray(b"ba"))
            await client.send_message(memoryview(b"mv"))
            assert await server.get_message() == "héllo"
            assert await server.get_message() == b"\x00\x01"
            assert await server.get_message() == b"ba"
            assert await server.get_message() == b"mv"
            await server.send_message("back")
            assert await client.get_message() == "back"


async def test_text_from_bytes_and_binary_from_str() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await client.send_message("é".encode(), text=True)
            await client.send_message("é", text=False)
            assert await server.get_message() == "é"
            assert await server.get_message() == "é".encode()


async def test_receive_text_undecoded() -> None:
    config = ConnectionConfig(ping_interval=None, decode_text=False)
    with anyio.fail_after(5):
        async with open_connection_pair(server_config=config) as (client, server):
            await client.send_message("é")
            assert await server.get_message() == "é".encode()


async def test_fragmented_message_from_an_iterable_is_sent_in_frames() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            await ws.send_message_parts(["a", "b", "c"])
            received = b""
            events: list[Event] = []
            while not events:
                chunk = await peer_stream.receive()
                received += chunk
                events = peer.receive_data(chunk)
            assert events == [TextMessage(data="abc")]
            # Three masked frames of one byte each: 3 * (2 header + 4 mask + 1) bytes.
            assert len(received) == 21


async def test_fragmented_message_from_an_async_iterable() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one ", b"two ", b"three"):
            await anyio.lowlevel.checkpoint()
            yield part

    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await client.send_message_parts(parts())
            await client.send_message_parts([])
            await client.send_message_parts([b"x"], text=True)
            assert await server.get_message() == b"one two three"
            assert await server.get_message() == b""
            assert await server.get_message() == "x"


async def test_other_messages_wait_for_a_fragmented_message() -> None:
    gate = anyio.Event()

    async def parts() -> AsyncIterator[str]:
        yield "first "
        await gate.wait()
        yield "second"

    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send_message_parts, parts())
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(client.send_message, "after")
                await anyio.wait_all_tasks_blocked()
                gate.set()
            assert await server.get_message() == "first second"
            assert await server.get_message() == "after"


async def test_interrupted_fragmented_message_fails_the_connection() -> None:
    async def parts() -> AsyncIterator[str]:
        yield "first"
        yield "second"
        raise RuntimeError("source broke")

    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            with pytest.raises(RuntimeError, match="source broke"):
                await client.send_message_parts(parts())
            with pytest.raises(ConnectionClosedError) as info:
                await server.get_message()
            assert info.value.code == 1011
            assert client.close_code == 1011


async def test_async_iteration_ends_on_normal_close() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await server.send_message("one")
            await server.send_message("two")
            await server.aclose()
            received = [message async for message in client]
            assert received == ["one", "two"]
            assert client.close_code == 1000
            with pytest.raises(ConnectionClosedOK):
                await client.send_message("late")


async def test_async_iteration_raises_on_abnormal_close() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await server.send_message("one")
            await server.aclose(4000, "custom")
            received: list[str | bytes] = []

            async def consume() -> None:
                async for message in client:
                    received.append(message)  # noqa: PERF401 (the list is checked below)

            with pytest.raises(ConnectionClosedError) as info:
                await consume()
            assert received == ["one"]
            assert (info.value.code, info.value.reason) == (4000, "custom")
            assert (client.close_code, client.close_reason) == (4000, "custom")


async def test_aclose_is_idempotent_and_concurrent() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            state_before = (client.closed, client.close_code)
            assert state_before == (False, None)
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.aclose)
                tg.start_soon(client.aclose)
            await client.aclose()
            assert client.closed
            assert client.close_code == 1000
            with pytest.raises(ConnectionClosedOK):
                await server.get_message()
            with pytest.raises(ConnectionClosedOK):
                await client.ping()


async def test_ping_measures_latency() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            latency_before = client.latency
            assert latency_before is None
            latency = await client.ping()
            # Measured from the write of the ping, which always precedes its pong.
            assert latency > 0
            assert client.latency == latency
            assert await server.ping(b"custom") >= 0
            await client.pong(b"unsolicited")  # ignored by the server's tracker
            assert await server.ping(b"custom") >= 0


async def test_a_pong_acknowledges_earlier_pings() -> None:
    results: list[float] = []

    async def ping(ws: WebSocketConnection, payload: bytes) -> None:
        results.append(await ws.ping(payload))

    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            async with anyio.create_task_group() as tg:
                tg.start_soon(ping, ws, b"first")
                await anyio.wait_all_tasks_blocked()
                tg.start_soon(ping, ws, b"second")
                events: list[Event] = []
                while len(events) < 2:
                    events += await _peer_events(peer, peer_stream)
                assert events == [Ping(payload=b"first"), Ping(payload=b"second")]
                # The peer answers only the latest ping (the core queued both pongs:
                # drop them and send just the last one).
                peer.data_to_send()
                peer.send_pong(b"second")
                await _peer_flush(peer, peer_stream)
            assert len(results) == 2
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.ping, b"same")
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(LocalProtocolError, match="already waiting"):
                    await ws.ping(b"same")
                tg.cancel_scope.cancel()
            # The cancelled ping stopped waiting: its payload may be used again (a ping
            # still tracked would raise "already waiting" out of this task group).
            async with anyio.create_task_group() as tg:
                tg.start_soon(ws.ping, b"same")
                await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()


async def test_over_long_ping_and_pong_raise_the_same_error() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            for ws in (client, server):
                with pytest.raises(LocalProtocolError, match="125"):
                    await ws.ping(b"x" * 126)
                with pytest.raises(LocalProtocolError, match="125"):
                    await ws.pong(b"x" * 126)
            assert await client.ping(b"x" * 125) >= 0  # the limit itself is fine
            await client.pong(b"x" * 125)


async def test_ping_fails_when_the_connection_closes() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            async with anyio.create_task_group() as tg:

                async def close_soon() -> None:
                    await anyio.wait_all_tasks_blocked()
                    peer.send_close(1001, "bye")
                    await _peer_flush(peer, peer_stream)

                tg.start_soon(close_soon)
                with pytest.raises(ConnectionClosedOK) as info:
                    await ws.ping()
            assert info.value.code == 1001


async def test_peer_vanishing_mid_message_is_1006_with_cause() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            peer.send_text("a message that never arrives whole")
            frame = peer.data_to_send()
            await peer_stream.send(frame[:10])
            await peer_stream.aclose()
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1006
            assert isinstance(info.value.__cause__, anyio.EndOfStream)
            assert ws.close_code == 1006
            with pytest.raises(ConnectionClosedError):
                await ws.send_message("too late")


async def test_cancelled_get_message_leaves_the_connection_usable() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            with anyio.move_on_after(0.05) as scope:
                await client.get_message()
            assert scope.cancelled_caught
            await server.send_message("still here")
            assert await client.get_message() == "still here"
            # A cancelled call with a message waiting does not consume it.
            await server.send_message("kept")
            await server.ping()  # the message is now queued at the client
            with anyio.CancelScope() as cancelled:
                cancelled.cancel()
                await client.get_message()
            assert await client.get_message() == "kept"


async def test_peer_protocol_violation_fails_with_its_code() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            # An unmasked frame from a client is a protocol error (the raw peer is the
            # server role, so masked frames from it break the rules instead).
            await peer_stream.send(b"\x81\x85\x00\x00\x00\x00hello")
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1002
            events = await _peer_events(peer, peer_stream)
            assert isinstance(events[0], CloseConnection)
            assert events[0].code == 1002


async def test_unexpected_reader_error_becomes_connection_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, peer, peer_stream):
            original = Connection.receive_data

            def broken(self: Connection, data: bytes) -> list[Event]:
                if self is not peer:  # the connection's own core
                    raise RuntimeError("bug")
                return original(self, data)

            # On the class: Connection has __slots__, its methods cannot be patched per
            # instance.
            monkeypatch.setattr(Connection, "receive_data", broken)
            peer.send_binary(b"x")
            await _peer_flush(peer, peer_stream)
            with pytest.raises(ConnectionClosedError) as info:
                await ws.get_message()
            assert info.value.code == 1011
            assert isinstance(info.value.__cause__, RuntimeError)
            events = await _peer_events(peer, peer_stream)
            assert events == [CloseConnection(code=1011, reason="internal error")]


async def test_send_fails_once_the_transport_breaks() -> None:
    with anyio.fail_after(5):
        async with open_raw_peer() as (ws, _peer, peer_stream):
            await peer_stream.aclose()

            async def send_until_it_fails() -> None:
                for _ in range(100):
                    await ws.send_message(b"x" * 1000)
                    await anyio.sleep(0.001)

            with pytest.raises(ConnectionClosed):
                await send_until_it_fails()
            assert ws.close_code == 1006


async def test_task_group_helpers_are_cancelled_when_the_connection_closes() -> None:
    helper_cancelled = anyio.Event()

    async def helper() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            helper_cancelled.set()

    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            async with client.task_group() as tg:
                tg.start_soon(helper)
                await anyio.wait_all_tasks_blocked()
                await server.aclose()
                with pytest.raises(ConnectionClosedOK):
                    await client.get_message()
            assert helper_cancelled.is_set()


async def test_task_group_helper_exception_comes_out_as_itself() -> None:
    async def helper() -> None:
        raise KeyError("helper")

    with anyio.fail_after(5):
        async with open_connection_pair() as (client, _server):

            async def run_helpers() -> None:
                async with client.task_group() as tg:
                    tg.start_soon(helper)
                    await anyio.sleep_forever()

            with pytest.raises(KeyError, match="helper"):
                await run_helpers()


async def test_properties() -> None:
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            assert client.is_client
            assert not server.is_client
            assert client.id != server.id
            assert len(client.id) == 6
            assert (client.path, client.query, client.resource) == ("/", "", "/")
            assert client.subprotocol is None
            assert client.extensions == ()
            assert len(client.request_headers) == 0
            assert len(client.response_headers) == 0
            assert client.local_address is None
            assert client.remote_address is None
            assert client.id in repr(client)


async def test_debug_logs_carry_the_connection_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with anyio.fail_after(5):
        async with open_connection_pair() as (client, server):
            await client.send_message("x" * 100)
            await server.get_message()
            await client.aclose(1000, "done")
    client_lines = [r.getMessage() for r in caplog.records if f"[{client.id}]" in r.getMessage()]
    assert any("> TEXT 100" in line for line in client_lines)
    assert any("> CLOSE code 1000 reason 'done'" in line for line in client_lines)
    server_lines = [r.getMessage() for r in caplog.records if f"[{server.id}]" in r.getMessage()]
    # At most a short prefix of the payload is logged.
    assert any("< TEXT 100 bytes" in line and "x" * 30 not in line for line in server_lines)


async def test_memory_streams_half_close_and_errors() -> None:
    left, right = memory_stream_pair(4)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(left.send, b"abcdef")  # more than the capacity: it waits
            await anyio.wait_all_tasks_blocked()
            assert left.buffered == 4
            assert await right.receive(3) == b"abc"
        assert left.buffered == 3
        await left.send_eof()
        assert await right.receive() == b"def"
        with pytest.raises(anyio.EndOfStream):
            await right.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await left.send(b"x")
        await left.aclose()
        with pytest.raises(anyio.BrokenResourceError):
            await right.send(b"x")
    with pytest.raises(ValueError, match="capacity"):
        memory_stream_pair(0)


async def test_as_byte_stream_rejects_other_objects() -> None:
    left, _right = memory_stream_pair()
    assert as_byte_stream(left) is left
    with pytest.raises(TypeError, match="ByteStream"):
        as_byte_stream(object())


@pytest.mark.trio
async def test_connection_over_trio_streams() -> None:
    import trio
    import trio.testing

    left, right = trio.testing.memory_stream_pair()
    config = ConnectionConfig(ping_interval=None, close_timeout=1)
    with trio.fail_after(5):
        async with open_task_group() as tg:
            client, client_link = build_linked(as_byte_stream(left), Role.CLIENT, config)
            server, server_link = build_linked(TrioStreamAdapter(right), Role.SERVER, config)
            client_link.start(tg)
            server_link.start(tg)
            await client.send_message(b"over trio")
            assert await server.get_message() == b"over trio"
            await client.aclose()
            with pytest.raises(ConnectionClosedOK):
                await server.get_message()
