"""The trio stream adapter translates trio's stream protocol into anyio's."""

from __future__ import annotations

import ssl

import anyio
import pytest
import trio
import trio.testing
from anyio.abc import SocketAttribute

from trio_ws._streams import TrioStreamAdapter, as_byte_stream

pytestmark = pytest.mark.trio


async def test_data_then_end_of_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    adapter = TrioStreamAdapter(left)
    await right.send_all(b"hello")
    assert await adapter.receive() == b"hello"
    await right.aclose()
    with pytest.raises(anyio.EndOfStream):
        await adapter.receive()


async def test_closed_stream_errors_become_anyio_errors() -> None:
    left, _right = trio.testing.memory_stream_pair()
    adapter = TrioStreamAdapter(left)
    await adapter.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await adapter.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await adapter.send(b"x")


async def test_broken_stream_errors_become_anyio_errors() -> None:
    left, right = trio.testing.lockstep_stream_pair()
    adapter = TrioStreamAdapter(left)
    await right.aclose()
    with pytest.raises(anyio.BrokenResourceError):
        await adapter.send(b"x")


async def test_concurrent_receives_are_busy() -> None:
    left, _right = trio.testing.memory_stream_pair()
    adapter = TrioStreamAdapter(left)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter.receive)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError):
                await adapter.receive()
            nursery.cancel_scope.cancel()


async def test_concurrent_sends_are_busy() -> None:
    left, _right = trio.testing.lockstep_stream_pair()  # a send waits for the receiver
    adapter = TrioStreamAdapter(left)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(adapter.send, b"first")
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(anyio.BusyResourceError):
                await adapter.send(b"second")
            nursery.cancel_scope.cancel()


async def test_send_eof_half_closes_when_supported() -> None:
    left, right = trio.testing.memory_stream_pair()
    adapter = TrioStreamAdapter(left)
    await adapter.send_eof()
    assert await right.receive_some() == b""
    await adapter.aclose()
    await adapter.send_eof()  # on a closed stream: nothing to do, no error


async def test_send_eof_is_a_no_op_without_half_close() -> None:
    class NoHalfClose(trio.abc.Stream):
        async def send_all(self, data: bytes | bytearray | memoryview) -> None:
            raise AssertionError("not used")

        async def wait_send_all_might_not_block(self) -> None:
            raise AssertionError("not used")

        async def receive_some(self, max_bytes: int | None = None) -> bytes:
            raise AssertionError("not used")

        async def aclose(self) -> None:
            pass

    await TrioStreamAdapter(NoHalfClose()).send_eof()


async def test_socket_addresses_are_exposed_also_under_tls() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    try:
        adapter = TrioStreamAdapter(client)
        assert adapter.extra(SocketAttribute.remote_address) == ("127.0.0.1", port)
        assert adapter.extra(SocketAttribute.local_address)[0] == "127.0.0.1"
        wrapped = TrioStreamAdapter(trio.SSLStream(client, ssl.create_default_context()))
        assert wrapped.extra(SocketAttribute.remote_address) == ("127.0.0.1", port)
    finally:
        await client.aclose()
        for listener in listeners:
            await listener.aclose()


async def test_no_addresses_without_a_socket() -> None:
    left, _right = trio.testing.memory_stream_pair()
    assert TrioStreamAdapter(left).extra_attributes == {}


async def test_as_byte_stream() -> None:
    left, _right = trio.testing.memory_stream_pair()
    adapted = as_byte_stream(left)
    assert isinstance(adapted, TrioStreamAdapter)
    assert as_byte_stream(adapted) is adapted  # already an anyio stream
    with pytest.raises(TypeError, match=r"expected an anyio\.abc\.ByteStream"):
        as_byte_stream(object())
