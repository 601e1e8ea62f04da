"""Graceful, bounded shutdown of the server, driven by cancellation or ``server.aclose()``.

Shutdown stops accepting, answers handshakes in flight with 503, closes open connections
with 1001 (handlers see ConnectionClosed), waits at most ``close_timeout``, then aborts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)

if TYPE_CHECKING:
    from anyio.abc import ByteStream, TaskGroup, TaskStatus

UPGRADE = (
    b"GET / HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


class RunningServer:
    """A server in a cancel scope of its own, so a test can cancel it and nothing else."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        # Whatever left serve_websocket other than the cancellation this scope absorbs.
        self.escaped: BaseException | None = None
        self.returned = False

    async def run(
        self, handler: Any, options: dict[str, Any], *, task_status: TaskStatus[Any]
    ) -> None:
        try:
            with self.scope:
                await serve_websocket(handler, "127.0.0.1", 0, task_status=task_status, **options)
                self.returned = True
        except BaseException as exc:
            self.escaped = exc
            raise
        finally:
            self.finished.set()


async def start(
    tg: TaskGroup, handler: Any, **options: Any
) -> tuple[RunningServer, WebSocketServer]:
    running = RunningServer()
    server: WebSocketServer = await tg.start(running.run, handler, options)
    return running, server


def url(server: WebSocketServer) -> str:
    return f"ws://127.0.0.1:{server.port}/"


async def wait_for(condition: Any) -> None:
    # Polling: the server has no event for "N connections are open", on purpose.
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(0.01)


async def read_until_eof(stream: ByteStream) -> bytes:
    data = b""
    while True:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return data


class Recorder:
    """A handler that accepts, reads until the connection closes and records how it ended."""

    def __init__(self) -> None:
        self.closed_codes: list[int] = []
        self.connections: list[WebSocketConnection] = []

    async def __call__(self, request: WebSocketRequest) -> None:
        ws = await request.accept()
        self.connections.append(ws)
        try:
            while True:
                await ws.get_message()
        except ConnectionClosed as exc:
            self.closed_codes.append(exc.code)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancel", "aclose"])
async def test_shutdown_closes_open_connections_with_1001(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_ws")
    handler = Recorder()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, handler, close_timeout=5)
            async with (
                open_websocket_url(url(server)) as one,
                open_websocket_url(url(server)) as two,
            ):
                await wait_for(lambda: len(server.connections) == 2)
                if how == "cancel":
                    running.scope.cancel()
                else:
                    tg.start_soon(server.aclose)
                for ws in (one, two):
                    with pytest.raises(ConnectionClosed) as caught:
                        await ws.get_message()
                    assert caught.value.code == 1001
                    assert caught.value.reason == "server shutting down"
            await running.finished.wait()
    assert handler.closed_codes == [1001, 1001]
    assert server.closing
    assert server.connections == []
    # Nothing but the cancellation left serve_websocket: no ExceptionGroup, no error.
    assert running.escaped is None
    assert running.returned is (how == "aclose")
    assert not caplog.records


@pytest.mark.anyio
async def test_no_new_connections_after_shutdown() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            _running, server = await start(tg, Recorder())
            port = server.port
            await server.aclose()
            await server.aclose()  # idempotent
            with pytest.raises(OSError, match=r"(?i)connect"):
                await anyio.connect_tcp("127.0.0.1", port)


@pytest.mark.anyio
async def test_partial_request_in_flight_gets_503() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, Recorder())
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(UPGRADE[:50])
                await wait_for(lambda: len(server._sessions) == 1)
                running.scope.cancel()
                answer = await read_until_eof(stream)
            assert answer.startswith(b"HTTP/1.1 503 ")
            await running.finished.wait()


@pytest.mark.anyio
async def test_handshake_being_decided_gets_503(caplog: pytest.LogCaptureFixture) -> None:
    deciding = anyio.Event()
    cancelled = False

    async def slow_to_decide(request: WebSocketRequest) -> None:
        nonlocal cancelled
        deciding.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled = True
            raise

    caplog.set_level(logging.WARNING, logger="trio_ws")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, slow_to_decide)

            async def shut_down_when_deciding() -> None:
                await deciding.wait()
                running.scope.cancel()

            tg.start_soon(shut_down_when_deciding)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
            assert caught.value.status_code == 503
            await running.finished.wait()
    assert cancelled
    assert not caplog.records  # cancelling an undecided handler is not an error


@pytest.mark.anyio
async def test_shutdown_is_bounded_by_close_timeout_when_peer_never_answers() -> None:
    close_timeout = 0.5
    handler = Recorder()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, handler, close_timeout=close_timeout)
            # A client that completes the handshake, then never reads or answers again.
            async with await anyio.connect_tcp("127.0.0.1", server.port) as mute:
                await mute.send(UPGRADE)
                response = b""
                while b"\r\n\r\n" not in response:
                    response += await mute.receive()
                assert response.startswith(b"HTTP/1.1 101 ")
                await wait_for(lambda: len(server.connections) == 1)
                started = anyio.current_time()
                with anyio.fail_after(close_timeout + 3):
                    await server.aclose()
                elapsed = anyio.current_time() - started
                # The server waited for the close handshake, then gave up and aborted.
                assert elapsed >= close_timeout * 0.9
                rest = await read_until_eof(mute)
                assert rest.startswith(b"\x88")  # the 1001 close frame, then EOF
                assert rest[2:4] == (1001).to_bytes(2, "big")
            await running.finished.wait()
    assert len(handler.closed_codes) == 1
    assert handler.closed_codes[0] in (1001, 1006)


@pytest.mark.anyio
async def test_handler_ignoring_the_close_is_cancelled_at_the_deadline() -> None:
    cancelled = anyio.Event()

    async def stubborn(request: WebSocketRequest) -> None:
        await request.accept()
        try:
            await anyio.sleep_forever()  # never looks at the connection again
        finally:
            cancelled.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, stubborn, close_timeout=0.3)
            async with open_websocket_url(url(server)) as ws:
                await wait_for(lambda: len(server.connections) == 1)
                running.scope.cancel()
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.code == 1001
            await running.finished.wait()
    assert cancelled.is_set()


@pytest.mark.anyio
async def test_helper_tasks_are_cancelled_when_the_connection_closes() -> None:
    helper_cancelled = anyio.Event()
    handler_saw: list[int] = []

    async def helper() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            helper_cancelled.set()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            async with ws.task_group() as helpers:
                helpers.start_soon(helper)
                await ws.get_message()
        except ConnectionClosed as exc:
            handler_saw.append(exc.code)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, handler)
            async with open_websocket_url(url(server)):
                await wait_for(lambda: len(server.connections) == 1)
                running.scope.cancel()
                await helper_cancelled.wait()
            await running.finished.wait()
    assert handler_saw == [1001]


@pytest.mark.anyio
async def test_aclose_from_a_handler_returns_at_once() -> None:
    servers: list[WebSocketServer] = []
    aclose_returned = anyio.Event()
    handler = Recorder()

    async def admin_or_record(request: WebSocketRequest) -> None:
        if request.path != "/stop":
            await handler(request)
            return
        ws = await request.accept()
        await servers[0].aclose()  # would wait for this very handler without the guard
        aclose_returned.set()
        with pytest.raises(ConnectionClosed) as caught:
            await ws.get_message()
        assert caught.value.code == 1001

    with anyio.fail_after(4):  # well below close_timeout
        async with anyio.create_task_group() as tg:
            running, server = await start(tg, admin_or_record, close_timeout=8)
            servers.append(server)
            async with open_websocket_url(url(server)) as bystander:
                await wait_for(lambda: len(server.connections) == 1)
                async with open_websocket_url(url(server) + "stop") as admin:
                    with pytest.raises(ConnectionClosed) as caught:
                        await admin.get_message()
                    assert caught.value.code == 1001
                with pytest.raises(ConnectionClosed):
                    await bystander.get_message()
            await running.finished.wait()
    assert aclose_returned.is_set()
    assert running.returned
    assert handler.closed_codes == [1001]


@pytest.mark.trio
async def test_trio_cancel_scope_shutdown_raises_no_group() -> None:
    import trio

    handler = Recorder()
    escaped: list[BaseException] = []
    server_scope = trio.CancelScope()

    async def run_server(*, task_status: Any) -> None:
        with server_scope:
            try:
                await serve_websocket(handler, "127.0.0.1", 0, task_status=task_status)
            except BaseException as exc:
                escaped.append(exc)
                raise

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(run_server)
            async with open_websocket_url(url(server)) as one, open_websocket_url(url(server)):
                await wait_for(lambda: len(server.connections) == 2)
                server_scope.cancel()
                with pytest.raises(ConnectionClosed) as caught:
                    await one.get_message()
                assert caught.value.code == 1001
    assert len(escaped) == 1
    assert type(escaped[0]) is trio.Cancelled
    assert handler.closed_codes == [1001, 1001]
