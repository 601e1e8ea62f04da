"""Hostile peers over real loopback sockets, on trio and asyncio.

Each test has peers do what no honest client does (stall, reset TCP at every step of the
lifecycle, flood pings, send endless or tiny fragments, never read) and checks that the
server holds bounded memory, closes them with the right code and a log line that names the
limit, leaves no handler behind, logs no ERROR for a peer's fault, and keeps serving the
well-behaved clients meanwhile.
"""

from __future__ import annotations

import logging
import tracemalloc
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.hostile import (
    RawPeer,
    errors,
    read_until_eof,
    reset,
    small_buffers,
    start_server,
    wait_until,
    wait_until_empty,
)
from trio_ws import (
    ConnectionClosed,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
)
from trio_ws.sansio import CloseConnection, TextMessage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = pytest.mark.anyio

LOGGERS = ("trio_ws", "trio_ws.server")


class Handlers:
    """An echo handler that counts the handlers running and the close codes they saw."""

    def __init__(self) -> None:
        self.running = 0
        self.started = 0
        self.closes: list[int | None] = []

    async def __call__(self, request: WebSocketRequest) -> None:
        self.running += 1
        self.started += 1
        try:
            ws = await request.accept()
            try:
                async for message in ws:
                    await ws.send_message(message)
            finally:
                self.closes.append(ws.close_code)
        finally:
            self.running -= 1

    async def wait_idle(self, server: WebSocketServer) -> None:
        await wait_until_empty(server)
        await wait_until(lambda: not self.running)


async def good_client_echoes(server: WebSocketServer, count: int = 3) -> None:
    async with open_websocket_url(f"ws://127.0.0.1:{server.port}/", compression=None) as ws:
        for index in range(count):
            await ws.send_message(f"good {index}")
            assert await ws.get_message() == f"good {index}"


def debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)


async def close_event(peer: RawPeer) -> CloseConnection:
    with anyio.fail_after(5):
        while True:
            event = await peer.next_event()
            if isinstance(event, CloseConnection):
                return event


# --- limits: the right close code, and a log line that names the limit -------------------


async def test_endless_empty_fragments_are_closed_with_1009_naming_max_fragments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_logs(caplog)
    handlers = Handlers()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handlers, max_fragments=100, ping_interval=None)
            peer = await RawPeer.connect(server.port)
            peer.core.send_fragment(b"start", text=False, fin=False)

            async def endless() -> None:
                for _ in range(10_000):  # the server closes long before
                    peer.core.send_fragment(b"", text=False, fin=False)
                    await peer.flush()
                    await anyio.sleep(0.001)

            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                with pytest.raises((anyio.BrokenResourceError, anyio.EndOfStream, OSError)):
                    await endless()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert peak - before < 1024 * 1024  # the log records captured included
            await handlers.wait_idle(server)
            assert handlers.closes == [1009]
            await peer.stream.aclose()
            await good_client_echoes(server)
            tg.cancel_scope.cancel()
    assert any("max_fragments" in record.getMessage() for record in caplog.records)
    assert not errors(caplog)


async def test_a_message_over_max_message_size_is_closed_with_1009_naming_the_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_logs(caplog)
    handlers = Handlers()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handlers, max_message_size=1000, ping_interval=None)
            peer = await RawPeer.connect(server.port)
            # Only the header of a 1 GB frame: refused before a byte of payload is read.
            length = (2**30).to_bytes(8, "big")
            await peer.stream.send(bytes([0x82, 0x80 | 127]) + length + b"mask")
            assert (await close_event(peer)).code == 1009
            await peer.stream.aclose()
            await handlers.wait_idle(server)
            tg.cancel_scope.cancel()
    assert handlers.closes == [1009]
    assert any("max_message_size" in record.getMessage() for record in caplog.records)
    assert not errors(caplog)


async def test_two_byte_fragments_arrive_intact_in_bounded_memory() -> None:
    # 64 KiB in 2-byte fragments: 32768 frames, each its own small write on the socket.
    message = bytes(range(256)) * 256
    handlers = Handlers()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handlers, max_fragments=None, ping_interval=None)
            peer = await RawPeer.connect(server.port)
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for start in range(0, len(message), 2):
                    peer.core.send_fragment(
                        message[start : start + 2], text=False, fin=start + 2 >= len(message)
                    )
                    if start % 512 == 0:
                        await peer.flush()
                await peer.flush()
                with anyio.fail_after(10):
                    event = await peer.next_event()
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert event.data == message  # type: ignore[union-attr]
            # The message costs its size (joined in one buffer), not 32768 objects.
            assert peak - before < 2 * 1024 * 1024
            await peer.abort()
            await handlers.wait_idle(server)
            tg.cancel_scope.cancel()


# "echo first": the flood starts after messages were echoed, when the handler's own
# get_message() reads the socket on trio (see trio_ws._reader.SocketReading).
@pytest.mark.parametrize("echo_first", [False, True], ids=["flood", "echo-then-flood"])
async def test_a_ping_flood_from_a_peer_that_never_reads_is_bounded(
    caplog: pytest.LogCaptureFixture, echo_first: bool
) -> None:
    caplog.set_level(logging.INFO)  # not DEBUG: a line per ping would be the test's cost
    handlers = Handlers()
    sent = 0
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start_server(
                tg, handlers, write_high_water=4096, ping_interval=None, close_timeout=0.5
            )
            peer = await RawPeer.connect(server.port)
            small_buffers(peer.stream)
            for index in range(3 if echo_first else 0):
                peer.core.send_text(f"first {index}")
                await peer.flush()
                assert isinstance(await peer.next_event(), TextMessage)

            async def flood() -> None:
                nonlocal sent
                for _ in range(400):  # 5 MB of pings
                    for _ in range(100):
                        peer.core.send_ping(b"p" * 125)
                    await peer.flush()
                    sent += 100

            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                async with anyio.create_task_group() as flooding:
                    flooding.start_soon(flood)
                    # Others are served meanwhile.
                    await good_client_echoes(server)
                    await wait_until(lambda: sent == 40_000, 15)
                    peak = tracemalloc.get_traced_memory()[1]
                    assert server.connections  # the flooder is not failed, only bounded
            finally:
                tracemalloc.stop()
            # The core answers only the latest of the pings one read brings (at most 16
            # pongs wait), and reading pauses when answers are owed: the flood's cost is
            # bounded whether or not the flood itself stalls.
            assert peak - before < 2 * 1024 * 1024
            await peer.abort()
            await handlers.wait_idle(server)
            tg.cancel_scope.cancel()
    assert not errors(caplog)


# --- stalls ---------------------------------------------------------------------------


async def test_peers_stalling_mid_handshake_and_mid_frame_are_dropped_while_others_are_served(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_logs(caplog)
    handlers = Handlers()
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tg:
            server = await start_server(
                tg,
                handlers,
                open_timeout=0.5,
                ping_interval=0.2,
                ping_timeout=0.3,
                close_timeout=0.3,
            )
            # Ten stall in the request, ten in the middle of a frame.
            in_handshake = []
            for count in range(10):
                peer = await RawPeer.connect(server.port, handshake=False)
                await peer.stream.send(b"GET /raw HTTP/1.1\r\nHost: 127.0"[: 5 + count])
                in_handshake.append(peer)
            mid_frame = []
            for _ in range(10):
                peer = await RawPeer.connect(server.port)
                peer.core.send_binary(b"x" * 1000)
                await peer.stream.send(peer.core.data_to_send()[:200])
                mid_frame.append(peer)
            await good_client_echoes(server)
            # The handshakes run out of open_timeout, the frames of ping_timeout.
            for peer in in_handshake:
                with anyio.fail_after(3):
                    assert await read_until_eof(peer.stream) == b""
                await peer.stream.aclose()
            for peer in mid_frame:
                with anyio.fail_after(3):
                    await read_until_eof(peer.stream)
                await peer.stream.aclose()
            await handlers.wait_idle(server)
            assert sorted(code or 0 for code in handlers.closes) == [1000] + [1011] * 10
            await good_client_echoes(server)
            tg.cancel_scope.cancel()
    assert not errors(caplog)


# --- TCP resets at every step of the lifecycle ----------------------------------------


async def _before_request(peer: RawPeer) -> None:
    pass


async def _mid_request(peer: RawPeer) -> None:
    await peer.stream.send(b"GET /raw HTTP/1.1\r\nHost: 12")
    await anyio.sleep(0.01)


async def _after_101(peer: RawPeer) -> None:
    await peer.handshake()


async def _mid_frame(peer: RawPeer) -> None:
    await peer.handshake()
    peer.core.send_text("x" * 500)
    await peer.stream.send(peer.core.data_to_send()[:100])
    await anyio.sleep(0.01)


async def _mid_message(peer: RawPeer) -> None:
    await peer.handshake()
    peer.core.send_fragment("first half", text=True, fin=False)
    await peer.flush()
    await anyio.sleep(0.01)


async def _mid_close_ours(peer: RawPeer) -> None:
    # We send our close frame and vanish before the server's reply.
    await peer.handshake()
    peer.core.send_close(1000)
    await peer.flush()


async def _mid_close_theirs(peer: RawPeer) -> None:
    # The server starts the close ("bye" makes the handler return); we never answer.
    await peer.handshake()
    peer.core.send_text("bye")
    await peer.flush()
    with anyio.fail_after(5):
        while not isinstance(await peer.next_event(), CloseConnection):
            pass


async def _while_server_sends(peer: RawPeer) -> None:
    await peer.handshake()
    peer.core.send_text("flood")
    await peer.flush()
    await peer.next_event()


STEPS: dict[str, Callable[[RawPeer], Awaitable[None]]] = {
    "before request": _before_request,
    "mid request": _mid_request,
    "after 101": _after_101,
    "mid frame": _mid_frame,
    "mid message": _mid_message,
    "mid close (ours)": _mid_close_ours,
    "mid close (theirs)": _mid_close_theirs,
    "while the server sends": _while_server_sends,
}


async def test_a_reset_at_every_step_of_the_lifecycle_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_logs(caplog)
    started = 0
    running = 0

    async def handler(request: WebSocketRequest) -> None:
        nonlocal started, running
        started += 1
        running += 1
        try:
            ws = await request.accept()
            await serve_one(ws)
        finally:
            running -= 1

    async def serve_one(ws: WebSocketConnection) -> None:
        try:
            async for message in ws:
                if message == "bye":
                    return
                if message == "flood":
                    for _ in range(1000):
                        await ws.send_message(b"z" * 65536)
                await ws.send_message(message)
        except ConnectionClosed:
            pass

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, close_timeout=1, ping_interval=None)
            for step in STEPS.values():
                for _ in range(3):
                    peer = await RawPeer.connect(server.port, handshake=False)
                    await step(peer)
                    await peer.abort()
                await good_client_echoes(server, count=1)
            await wait_until_empty(server)
            await wait_until(lambda: not running)
            # Every step after the handshake reached a handler (3 each, plus the goodies).
            assert started == 3 * 6 + len(STEPS)
            tg.cancel_scope.cancel()
    assert not errors(caplog), [r.getMessage() for r in errors(caplog)]


# --- a consumer that never reads ------------------------------------------------------


async def test_a_consumer_that_never_reads_blocks_the_handler_not_the_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_logs(caplog)
    chunk = b"m" * (1024 * 1024)
    total = 100  # 100 MB, were it all buffered
    sent = 0
    ended = anyio.Event()
    high_water = 64 * 1024

    async def handler(request: WebSocketRequest) -> None:
        nonlocal sent
        ws = await request.accept()
        if request.path != "/raw":
            async for message in ws:  # the good clients
                await ws.send_message(message)
            return
        try:
            for _ in range(total):
                await ws.send_message(chunk)
                sent += 1
        except ConnectionClosed:
            pass
        finally:
            ended.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start_server(
                tg, handler, write_high_water=high_water, ping_interval=None, close_timeout=0.5
            )
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                peer = await RawPeer.connect(server.port)
                small_buffers(peer.stream)
                reset(peer.stream)
                stalled_at = -1
                while stalled_at != sent:  # until the handler is blocked
                    stalled_at = sent
                    await anyio.sleep(0.2)
                current, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert not ended.is_set()
            # Blocked after a few MB (the kernel's socket buffers), not 100.
            assert sent < 20
            # What the server holds: the message being sent and write_high_water, not the
            # messages the handler tried to send.
            assert current - before < 4 * len(chunk)
            assert peak - before < 6 * len(chunk)
            await good_client_echoes(server)
            await peer.stream.aclose()  # an RST: the handler's send fails at once
            with anyio.fail_after(5):
                await ended.wait()
            await wait_until_empty(server)
            tg.cancel_scope.cancel()
    assert not errors(caplog)
