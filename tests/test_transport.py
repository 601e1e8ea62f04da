"""The direct socket paths (``trio_ws._transport``): write-through and non-blocking reads.

Unit tests drive the writer with a fake socket that takes only part of what it is given;
the TCP tests check the same paths end to end on both backends: order across partial
writes, a peer that stops reading, cancellation, and that TLS never takes the raw path.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.streams.tls import TLSStream

from trio_ws import (
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)
from trio_ws._keepalive import PingTracker
from trio_ws._private_apis import FAST_PATHS
from trio_ws._transport import TLSSocketIO, TransportTLSIO, socket_io
from trio_ws._writer import Writer
from trio_ws.sansio import Connection, Role
from trio_ws.testing import memory_stream_pair

FAST_PATHS_ONLY = pytest.mark.skipif(
    not FAST_PATHS, reason="checks a fast path itself (TRIO_WS_FAST_PATHS=0)"
)

if TYPE_CHECKING:
    import ssl

    from trio_ws import WebSocketConnection

# --- the writer, with a socket that takes a few bytes at a time ---------------------------


class _Wire:
    """What was written, in order, whichever path wrote it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.stream_writes = 0


class _PartialSocket:
    """A stand-in for SocketIO (trio flavour) whose socket takes ``room`` bytes, then more
    once the writer waited for writability (unless ``blocked``)."""

    waits = True
    closing = False
    unsent = 0  # a plain socket: nothing is held between calls

    def __init__(self, wire: _Wire, room: int) -> None:
        self.wire = wire
        self.room = room
        self.calls = 0
        self.blocked = False

    def try_send(self, data: bytes | memoryview) -> int:
        self.calls += 1
        taken = bytes(data[: self.room])
        self.wire.data += taken
        self.room -= len(taken)
        return len(taken)

    def flush_unsent(self) -> None:
        pass

    async def wait_writable(self) -> None:
        await anyio.lowlevel.checkpoint()
        if self.blocked:
            await anyio.sleep_forever()
        self.room = 10**9


class _WireStream:
    """The stream's own ``send`` (the writer never needs it on a socket)."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire

    async def send(self, item: bytes) -> None:
        self.wire.stream_writes += 1
        self.wire.data += item


def _writer(room: int) -> tuple[Writer, Connection, _Wire, _PartialSocket]:
    wire = _Wire()
    io = _PartialSocket(wire, room)
    protocol = Connection(Role.SERVER)
    errors: list[BaseException] = []
    writer = Writer(_WireStream(wire), protocol, 2**16, PingTracker(), errors.append, io)  # type: ignore[arg-type]
    return writer, protocol, wire, io


def _frames(*messages: bytes) -> bytes:
    protocol = Connection(Role.SERVER)
    for message in messages:
        protocol.send_binary(message)
    return protocol.data_to_send()


@pytest.mark.anyio
async def test_a_partial_write_through_leaves_the_rest_in_front_of_later_messages() -> None:
    writer, protocol, wire, io = _writer(room=5)
    protocol.send_binary(b"first message")
    writer.write_or_wake()
    assert io.calls == 1
    assert bytes(wire.data) == _frames(b"first message")[:5]
    assert writer.pending  # the rest waits for the writer
    protocol.send_binary(b"second")
    writer.write_or_wake()  # a burst: no second write-through
    assert io.calls == 1
    with anyio.fail_after(5):
        await writer.flush()
    assert bytes(wire.data) == _frames(b"first message", b"second")
    assert not writer.pending


@pytest.mark.anyio
async def test_a_cancelled_write_from_a_blocked_sender_keeps_the_rest() -> None:
    # A sender waiting for room writes the buffer itself while no writer task runs; if
    # it is cancelled mid-write, the unsent bytes stay in front: nothing is lost.
    writer, protocol, wire, io = _writer(room=7)
    writer._high_water = 10
    protocol.send_binary(b"first message")
    writer.may_write_through = False
    io.blocked = True
    with anyio.fail_after(5):
        with anyio.move_on_after(0.05) as scope:
            await writer.wait_for_space()
        assert scope.cancelled_caught
        assert not writer.stopped
        assert writer.pending
        assert bytes(wire.data) == _frames(b"first message")[:7]
        protocol.send_binary(b"second")
        io.blocked = False
        await writer.flush()
    assert bytes(wire.data) == _frames(b"first message", b"second")
    assert wire.stream_writes == 0


class _TransportIO:
    """A stand-in for SocketIO (asyncio flavour): the transport takes all or nothing, and
    ``wait_drained()`` waits for ``release`` (then moves the transport's bytes to the wire)."""

    waits = False
    unsent = 0  # what the transport took counts as sent (it keeps it in order)

    def __init__(self, wire: _Wire, release: anyio.Event) -> None:
        self.wire = wire
        self.release = release
        self.buffered = b""  # taken by the transport, not yet by the kernel
        self.closing = False

    def try_send(self, data: bytes | memoryview) -> int:
        if self.buffered or self.closing:
            return 0
        self.buffered = bytes(data)
        return len(data)

    async def wait_drained(self) -> None:
        await self.release.wait()
        self.wire.data += self.buffered
        self.buffered = b""


@pytest.mark.anyio
async def test_asyncio_transport_writes_are_whole_and_cancel_safe() -> None:
    wire = _Wire()
    release = anyio.Event()
    io = _TransportIO(wire, release)
    protocol = Connection(Role.SERVER)
    writer = Writer(None, protocol, 10, PingTracker(), print, io)  # type: ignore[arg-type]
    io.buffered = b"earlier"  # the transport still holds bytes: the next write waits
    protocol.send_binary(b"first message")
    with anyio.fail_after(5):
        with anyio.move_on_after(0.05) as scope:
            await writer.wait_for_space()
        assert scope.cancelled_caught
        assert not writer.stopped
        assert writer.pending  # kept for the next write
        release.set()
        await writer.flush()
    assert bytes(wire.data) == b"earlier" + _frames(b"first message")
    io.closing = True
    protocol.send_binary(b"late")
    with anyio.fail_after(5):
        await writer.flush()
    assert writer.stopped  # a closing transport ends writing


@pytest.mark.anyio
async def test_a_whole_write_through_needs_no_writer() -> None:
    writer, protocol, wire, io = _writer(room=10_000)
    protocol.send_binary(b"hello")
    writer.write_or_wake()
    assert bytes(wire.data) == _frames(b"hello")
    assert not writer.pending
    assert wire.stream_writes == 0
    # The next message is part of the same burst: it goes to the writer...
    protocol.send_binary(b"again")
    writer.write_or_wake()
    assert io.calls == 1
    assert protocol.bytes_to_send
    # ... until the connection receives something, which ends the burst.
    with anyio.fail_after(5):
        await writer.flush()
    calls = io.calls
    writer.may_write_through = True
    protocol.send_binary(b"third")
    writer.write_or_wake()
    assert io.calls == calls + 1
    assert not protocol.bytes_to_send
    assert bytes(wire.data) == _frames(b"hello", b"again", b"third")


@pytest.mark.anyio
async def test_no_write_through_while_a_write_is_in_flight_or_after_the_preamble() -> None:
    writer, protocol, wire, io = _writer(room=10_000)
    writer.writing = True
    protocol.send_binary(b"queued")
    writer.write_or_wake()
    assert io.calls == 0
    assert protocol.bytes_to_send
    writer.writing = False
    protocol.data_to_send()
    writer.write_first(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
    protocol.send_binary(b"after the 101")
    writer.write_or_wake()
    assert io.calls == 0
    with anyio.fail_after(5):
        await writer.flush()
    assert bytes(wire.data).startswith(b"HTTP/1.1 101")
    assert bytes(wire.data).endswith(_frames(b"after the 101"))


@pytest.mark.anyio
async def test_a_transport_error_in_write_through_is_reported_by_the_writer() -> None:
    errors: list[BaseException] = []

    class Broken:
        waits = False
        unsent = 0

        def try_send(self, data: bytes | memoryview) -> int:
            raise ConnectionResetError

    class BrokenStream:
        async def send(self, item: bytes) -> None:
            raise anyio.BrokenResourceError

    protocol = Connection(Role.SERVER)
    writer = Writer(BrokenStream(), protocol, 2**16, PingTracker(), errors.append, Broken())  # type: ignore[arg-type]
    protocol.send_binary(b"lost")
    writer.write_or_wake()  # does not raise into the sender
    assert writer.pending
    assert not errors
    with anyio.fail_after(5):
        await writer.flush()
    assert writer.stopped
    assert len(errors) == 1
    # The writer met the error on its own write (the transport's, not the stream's).
    assert isinstance(errors[0], ConnectionResetError)


# --- which streams get the direct path ------------------------------------------------------


@FAST_PATHS_ONLY
@pytest.mark.anyio
async def test_only_anyio_socket_streams_and_tls_over_them_get_direct_access(
    anyio_backend: str,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    memory, _ = memory_stream_pair()
    assert socket_io(memory) is None
    with anyio.fail_after(10):
        async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(anyio.abc.SocketAttribute.local_port)
            async with anyio.create_task_group() as tg:

                async def accept_tls() -> None:
                    async def serve(stream: anyio.abc.SocketStream) -> None:
                        tls = await TLSStream.wrap(
                            stream, server_side=True, ssl_context=server_ssl_context
                        )
                        await tls.aclose()
                        tg.cancel_scope.cancel()

                    await listener.serve(serve)

                tg.start_soon(accept_tls)
                stream = await anyio.connect_tcp("127.0.0.1", port)
                io = socket_io(stream)
                assert io is not None
                # trio: trio_ws waits for readiness itself; asyncio: the reader takes the
                # chunks from anyio's protocol.
                assert io.waits == (anyio_backend == "trio")
                assert (io.protocol is not None) == (anyio_backend == "asyncio")
                tls = await TLSStream.wrap(
                    stream, hostname="127.0.0.1", ssl_context=client_ssl_context
                )
                # TLS 1.3: through the stream's own SSLObject, never the bare socket or
                # transport (on asyncio the chunks the reader takes are decrypted).
                tls_io = socket_io(tls)
                if anyio_backend == "trio":
                    assert isinstance(tls_io, TLSSocketIO)
                else:
                    assert isinstance(tls_io, TransportTLSIO)
                    assert tls_io.decrypt is not None
                    assert io.decrypt is None
                await tls.aclose()


# --- end to end over TCP, both backends ---------------------------------------------------


async def _start_server(tg: Any, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_large_and_small_messages_keep_their_order_across_partial_writes() -> None:
    # 4 MiB is more than a loopback socket takes at once: the write-through is partial and
    # the small messages sent right after it must wait behind its rest.
    large = bytes(range(256)) * (4 * 2**20 // 256)
    expected: list[bytes] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, _echo, compression=None, max_message_size=None)
            async with open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", compression=None, max_message_size=None
            ) as ws:
                for round_number in range(3):
                    for message in (large, b"small %d" % round_number, b"x" * 100_000):
                        await ws.send_message(message)
                        expected.append(message)
                for message in expected:
                    assert await ws.get_message() == message
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_peer_that_stops_reading_blocks_senders_and_loses_nothing() -> None:
    release = anyio.Event()
    received: list[str | bytes] = []

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        received.extend([message async for message in ws])

    high_water = 2**14
    message = b"m" * 1000
    sent = 0
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, slow, compression=None, max_queue=1)
            async with open_websocket_url(
                f"ws://127.0.0.1:{server.port}/", compression=None, write_high_water=high_water
            ) as ws:
                # Send until send_message() blocks: the socket buffers are full and the
                # write buffer is above its high-water mark.
                blocked = False
                for _ in range(100_000):
                    with anyio.move_on_after(0.5) as scope:
                        await ws.send_message(message + b"%08d" % sent)
                    if scope.cancelled_caught:
                        blocked = True
                        break
                    sent += 1
                assert blocked
                assert ws._protocol.bytes_to_send <= high_water + len(message) + 16
                release.set()
                await ws.send_message(b"last")
                await ws.aclose()
            for _ in range(1000):
                if received and received[-1] == b"last":
                    break
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    # Every message whose send_message() returned arrived, once, in order; the cancelled
    # one did not.
    assert received == [message + b"%08d" % i for i in range(sent)] + [b"last"]


@FAST_PATHS_ONLY
@pytest.mark.anyio
async def test_a_full_queue_pauses_reading_then_everything_arrives_in_order(
    anyio_backend: str,
) -> None:
    # Backpressure on both read paths: with max_queue=1, the server stops reading while
    # its handler does not take messages (on asyncio: the transport's reading is paused),
    # then reads on once it does; nothing is lost or reordered.
    go = anyio.Event()
    connections: list[WebSocketConnection] = []
    received: list[str | bytes] = []

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        connections.append(ws)
        await go.wait()
        received.extend([message async for message in ws])

    count = 200
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, slow, compression=None, max_queue=1)
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                for index in range(count):
                    await ws.send_message(b"%04d" % index)
                for _ in range(500):
                    if connections and connections[0]._reading_paused:
                        break
                    await anyio.sleep(0.01)
                server_side = connections[0]
                assert server_side._reading_paused
                if anyio_backend == "asyncio":
                    io = server_side._io
                    assert io is not None
                    assert not io.transport.is_reading()
                go.set()
                await ws.send_message(b"last")
                for _ in range(500):
                    if received and received[-1] == b"last":
                        break
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert received == [b"%04d" % index for index in range(count)] + [b"last"]


@pytest.mark.anyio
async def test_a_client_that_vanishes_closes_the_server_side_with_1006() -> None:
    from trio_ws import ConnectionClosedError
    from trio_ws.sansio._handshake import ClientHandshake

    outcome: list[BaseException] = []
    done = anyio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, handler, compression=None)
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            handshake = ClientHandshake("127.0.0.1", port=server.port)
            await stream.send(handshake.data_to_send())
            while handshake.receive_data(await stream.receive()) is None:
                pass
            await stream.aclose()  # no close frame
            await done.wait()
            tg.cancel_scope.cancel()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ConnectionClosedError)
    assert outcome[0].code == 1006


@FAST_PATHS_ONLY
@pytest.mark.anyio
async def test_the_loops_own_checkpoint_is_chosen_once(anyio_backend: str) -> None:
    from trio_ws._transport import loop_checkpoint_if_cancelled

    chosen = loop_checkpoint_if_cancelled()
    if anyio_backend == "trio":
        import trio

        assert chosen is trio.lowlevel.checkpoint_if_cancelled
    else:
        # anyio's asyncio backend method, bound once (not the public per-call lookup)
        assert chosen is not anyio.lowlevel.checkpoint_if_cancelled
        assert getattr(chosen, "__self__", None).__name__ == "AsyncIOBackend"  # type: ignore[union-attr]
    await chosen()  # not cancelled: returns
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await chosen()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio never needs the lookup
async def test_without_anyios_private_backend_lookup_the_public_checkpoint_is_chosen(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio._core._eventloop

    from trio_ws._transport import loop_checkpoint_if_cancelled

    def missing() -> None:
        raise AttributeError("no such function in this anyio")

    monkeypatch.setattr(anyio._core._eventloop, "get_async_backend", missing)
    assert loop_checkpoint_if_cancelled() is anyio.lowlevel.checkpoint_if_cancelled


def test_outside_an_event_loop_anyios_checkpoint_is_chosen() -> None:
    from trio_ws._transport import loop_checkpoint_if_cancelled

    assert loop_checkpoint_if_cancelled() is anyio.lowlevel.checkpoint_if_cancelled


# --- the reader ends with the connection, wherever it waits ------------------------------


async def _flood(request: WebSocketRequest) -> None:
    ws = await request.accept()
    for index in range(200):
        await ws.send_message(b"%04d" % index)
    async for _ in ws:  # until the client goes away
        pass


@pytest.mark.anyio
@pytest.mark.parametrize("paused", [False, True], ids=["idle", "paused"])
async def test_aborting_ends_the_reader_whether_idle_or_paused(paused: bool) -> None:
    # On trio the socket reader runs without a cancel scope: closing the socket must end
    # its wait for readability, and its wait for room in the queue has a scope of its own.
    # The client's tasks run in a task group of the test's, which must end by itself.
    from trio_ws import ConnectionClosedError, connect_websocket_url

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, _flood if paused else _echo, compression=None)
            async with anyio.create_task_group() as own:
                ws = await connect_websocket_url(
                    own, f"ws://127.0.0.1:{server.port}/", compression=None, max_queue=1
                )
                if paused:
                    for _ in range(500):
                        if ws._reading_paused:
                            break
                        await anyio.sleep(0.01)
                    assert ws._reading_paused
                else:
                    await anyio.wait_all_tasks_blocked()
                await ws._abort()
            assert not own.cancel_scope.cancel_called
            assert ws._reader_done.is_set()
            assert not ws._task_scopes
            # The messages received before the abort are still delivered, then the close.
            received = [await ws.get_message() for _ in range(len(ws._messages))]
            assert received == [b"%04d" % index for index in range(len(received))]
            assert bool(received) == paused
            with pytest.raises(ConnectionClosedError) as caught:
                await ws.get_message()
            assert caught.value.code == 1006
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_stream_closed_under_a_waiting_reader_fails_with_anyios_error() -> None:
    from trio_ws import ConnectionClosedError, connect_websocket_url

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, _echo, compression=None)
            async with anyio.create_task_group() as own:
                ws = await connect_websocket_url(
                    own, f"ws://127.0.0.1:{server.port}/", compression=None
                )
                await anyio.wait_all_tasks_blocked()
                await ws._stream.aclose()  # behind the connection's back
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.get_message()
                await ws.aclose()
            assert caught.value.code == 1006
            assert isinstance(caught.value.__cause__, anyio.ClosedResourceError)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_an_unexpected_error_in_the_socket_reader_fails_the_connection_with_1011(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trio_ws import ConnectionClosedError
    from trio_ws.sansio import Connection, Event

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _start_server(tg, _echo, compression=None)
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
                original = Connection.receive_data

                def broken(self: Connection, data: bytes) -> list[Event]:
                    if self is ws._protocol:
                        raise RuntimeError("bug")
                    return original(self, data)

                # On the class: Connection has __slots__.
                monkeypatch.setattr(Connection, "receive_data", broken)
                await ws.send_message("echo me")
                with pytest.raises(ConnectionClosedError) as caught:
                    await ws.get_message()
                assert caught.value.code == 1011
                assert isinstance(caught.value.__cause__, RuntimeError)
            assert ws._reader_done.is_set()
            tg.cancel_scope.cancel()
