"""A server connection on asyncio reads from the loop's callbacks while it is open.

No reader task exists while the connection is idle or echoing (see
``trio_ws._reader.CallbackReader``); backpressure, the close and the end of the stream
hand reading over to a task. These tests look at the tasks asyncio reports (public API)
and at what the peer sees; the behaviour itself is tested on both backends elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import (
    ConnectionConfig,
    WebSocketConnection,
    WebSocketRequest,
    connect_websocket,
    open_websocket_url,
    serve_websocket,
)
from trio_ws._private_apis import FAST_PATHS

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not FAST_PATHS, reason="the fast paths are off (TRIO_WS_FAST_PATHS=0)"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Scheme:
    """``ws://``, or ``wss://`` (TLS 1.3: the callbacks get records and decrypt them)."""

    name: str
    server: dict[str, Any] = field(default_factory=dict)
    client: dict[str, Any] = field(default_factory=dict)

    def url(self, port: int) -> str:
        return f"{self.name}://127.0.0.1:{port}/"


@pytest.fixture(params=["ws", "wss"])
def scheme(
    request: pytest.FixtureRequest,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> Scheme:
    if request.param == "ws":
        return Scheme("ws")
    return Scheme("wss", {"ssl_context": server_ssl_context}, {"ssl_context": client_ssl_context})


def _reader_tasks() -> list[str]:
    return [task.get_name() for task in asyncio.all_tasks() if task.get_name().endswith(" reader")]


async def _until_reader_tasks(condition: Callable[[int], bool]) -> None:
    """Wait until the number of reader tasks meets ``condition`` (the caller bounds it)."""
    # asyncio has no event for a task's start or end.
    while not condition(len(_reader_tasks())):  # noqa: ASYNC110
        await anyio.sleep(0.01)


async def _serve_with_a_small_queue(
    task_group: anyio.abc.TaskGroup,
    handler: Callable[[WebSocketRequest], Awaitable[None]],
    scheme: Scheme,
) -> str:
    """Start ``handler`` on a server whose connections queue at most 4 messages; its URL."""
    config = ConnectionConfig(max_queue=4, ping_interval=None)
    serve = functools.partial(
        serve_websocket, handler, "127.0.0.1", 0, config=config, **scheme.server
    )
    server = await task_group.start(serve)
    return scheme.url(server.port)


async def test_an_echoing_connection_has_no_reader_task_on_either_side(scheme: Scheme) -> None:
    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    async with anyio.create_task_group() as tg:
        server = await tg.start(
            functools.partial(serve_websocket, echo, "127.0.0.1", 0, **scheme.server)
        )
        # The async with block holds the client's task group open: it needs no task.
        async with open_websocket_url(scheme.url(server.port), **scheme.client) as ws:
            with anyio.fail_after(10):
                for number in range(200):
                    await ws.send_message(str(number))
                    assert await ws.get_message() == str(number)
            assert _reader_tasks() == []
        assert ws.close_code == 1000
        tg.cancel_scope.cancel()


async def test_connections_reading_at_once_each_get_their_own_bytes(scheme: Scheme) -> None:
    # Every callback reader of a loop reads into one shared buffer: what a read brings
    # must be consumed (or copied) before the next read of any connection overwrites it.
    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    async def client(url: str, number: int) -> None:
        async with open_websocket_url(url, max_message_size=None, **scheme.client) as ws:
            # Small messages several to a read; a large one over many reads (and over
            # the buffer's size), sent while the other connections read too.
            small = [f"{number}:{index}:" + "x" * index for index in range(50)]
            large = bytes([number]) * 700_000
            for message in small:
                ws.send_message_nowait(message)
            await ws.send_message(large)
            for message in small:
                assert await ws.get_message() == message
            assert await ws.get_message() == large

    async with anyio.create_task_group() as tg:
        serve = functools.partial(
            serve_websocket, echo, "127.0.0.1", 0, max_message_size=None, **scheme.server
        )
        server = await tg.start(serve)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as clients:
                for number in range(8):
                    clients.start_soon(client, scheme.url(server.port), number)
        tg.cancel_scope.cancel()


async def test_a_client_in_the_callers_task_group_keeps_its_reader_task(scheme: Scheme) -> None:
    # connect_websocket(task_group): the reader task is what keeps the caller's task group
    # open while the connection is, as on trio. Here the server ends the connection a
    # moment after the caller's block is done, and the task group waits for that.
    async def close_soon(request: WebSocketRequest) -> None:
        await request.accept()
        await anyio.sleep(0.2)

    async with anyio.create_task_group() as tg:
        server = await tg.start(
            functools.partial(serve_websocket, close_soon, "127.0.0.1", 0, **scheme.server)
        )
        with anyio.fail_after(10):
            async with anyio.create_task_group() as caller:
                ws = await connect_websocket(
                    caller,
                    "127.0.0.1",
                    server.port,
                    use_ssl=scheme.client.get("ssl_context", False),
                )
                assert len(_reader_tasks()) == 1
        assert ws.close_code == 1000
        tg.cancel_scope.cancel()


BACKLOG = [f"m{number}" for number in range(50)]


async def _send_a_backlog(ws: WebSocketConnection) -> int:
    """Send :data:`BACKLOG` to a small-queue server that does not read yet, until its
    reading pauses in a task of its own; the number of reader tasks before that."""
    before = len(_reader_tasks())
    for message in BACKLOG:
        await ws.send_message(message)
    await _until_reader_tasks(lambda count: count > before)
    return before


async def test_backpressure_hands_reading_to_a_task_and_loses_nothing(scheme: Scheme) -> None:
    release = anyio.Event()
    received: list[str | bytes] = []

    async def slow(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        received.extend([message async for message in ws])

    async with anyio.create_task_group() as tg:
        url = await _serve_with_a_small_queue(tg, slow, scheme)
        async with open_websocket_url(url, **scheme.client) as ws:
            with anyio.fail_after(10):
                # The server's queue fills up: reading pauses, in a task of its own.
                await _send_a_backlog(ws)
                release.set()
                await ws.aclose()
            assert ws.close_code == 1000
        tg.cancel_scope.cancel()
    assert received == BACKLOG


async def test_reading_returns_to_the_callbacks_once_the_backlog_is_read(scheme: Scheme) -> None:
    release = anyio.Event()

    async def slow_echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await release.wait()
        async for message in ws:
            await ws.send_message(message)

    async with anyio.create_task_group() as tg:
        url = await _serve_with_a_small_queue(tg, slow_echo, scheme)
        async with open_websocket_url(url, **scheme.client) as ws:
            with anyio.fail_after(10):
                before = await _send_a_backlog(ws)
                release.set()
                assert [await ws.get_message() for _ in BACKLOG] == BACKLOG
                # The backlog is read: the server's reader task ends, the callbacks read.
                await _until_reader_tasks(lambda count: count == before)
                for number in range(20):
                    await ws.send_message(f"again {number}")
                    assert await ws.get_message() == f"again {number}"
            assert len(_reader_tasks()) == before
        tg.cancel_scope.cancel()
