"""The blocking client (``connect_sync``), used from plain threads as a script would.

The server runs in an event loop of its own in another thread (an anyio blocking portal),
so that the test itself is ordinary synchronous code, on both loops for the client.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.from_thread import start_blocking_portal

from trio_ws import (
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectionRejected,
    WebSocketRequest,
    connect_sync,
    serve_websocket,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

BACKENDS = pytest.mark.parametrize("backend", ["trio", "asyncio"])


class Server:
    """A server in a thread: its URL, and a way to stop it from the test."""

    def __init__(self, url: str, stop: Any) -> None:
        self.url = url
        self.stop = stop


@pytest.fixture
def serve() -> Iterator[Any]:
    portals = []

    def start(handler: Any) -> Server:
        manager = start_blocking_portal("trio")
        portal = manager.__enter__()
        portals.append(manager)
        scopes: list[anyio.CancelScope] = []

        async def run(task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                async with anyio.create_task_group() as tg:
                    server = await tg.start(
                        functools.partial(serve_websocket, handler, "127.0.0.1", 0)
                    )
                    task_status.started(server.port)

        def stop() -> None:
            async def cancel() -> None:
                scopes[0].cancel()

            portal.call(cancel)

        _, port = portal.start_task(run)
        stops.append(stop)
        return Server(f"ws://127.0.0.1:{port}/", stop)

    stops: list[Any] = []
    yield start
    for stop in stops:
        stop()  # a second stop is harmless
    for manager in portals:
        manager.__exit__(None, None, None)


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@BACKENDS
def test_send_receive_iterate_and_close(serve: Any, backend: str) -> None:
    server = serve(echo)
    threads_before = threading.active_count()
    with connect_sync(server.url, backend=backend) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00bytes")
        assert ws.recv(timeout=5) == b"\x00bytes"
        ws.send("as bytes", text=False)
        assert ws.recv(timeout=5) == b"as bytes"
        assert ws.ping() >= 0
    assert ws.closed
    assert ws.close_code == 1000
    with pytest.raises(ConnectionClosedOK):
        ws.send("after close")
    ws.close()  # idempotent
    assert threading.active_count() <= threads_before  # the loop thread ended


@BACKENDS
def test_recv_times_out_and_loses_nothing(serve: Any, backend: str) -> None:
    server = serve(echo)
    with connect_sync(server.url, backend=backend) as ws:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 5
        ws.send("late")
        assert ws.recv(timeout=5) == "late"


@BACKENDS
def test_one_thread_sends_while_another_receives(serve: Any, backend: str) -> None:
    server = serve(echo)
    count = 200
    received: list[str | bytes] = []
    with connect_sync(server.url, backend=backend) as ws:

        def receive() -> None:
            received.extend(ws.recv(timeout=10) for _ in range(count))

        receiver = threading.Thread(target=receive)
        receiver.start()
        for n in range(count):
            ws.send(str(n))
        receiver.join(timeout=20)
        assert not receiver.is_alive()
    assert received == [str(n) for n in range(count)]


@BACKENDS
def test_close_from_one_thread_ends_another_threads_iteration(serve: Any, backend: str) -> None:
    server = serve(echo)
    received: list[str | bytes] = []
    outcome: list[BaseException | None] = []
    with connect_sync(server.url, backend=backend) as ws:

        def listen() -> None:
            try:
                received.extend(ws)  # blocked in recv() when the other thread closes
                outcome.append(None)
            except BaseException as exc:  # reported by the assertion below
                outcome.append(exc)

        listener = threading.Thread(target=listen)
        listener.start()
        ws.send("one")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.01)
        ws.close()
        listener.join(timeout=10)
        assert not listener.is_alive()
    assert received == ["one"]
    assert outcome == [None]  # the loop ended quietly, not with an error


@BACKENDS
def test_iteration_ends_when_the_server_closes(serve: Any, backend: str) -> None:
    async def three_then_close(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for n in range(3):
            await ws.send_message(f"m{n}")

    server = serve(three_then_close)
    with connect_sync(server.url, backend=backend) as ws:
        assert list(ws) == ["m0", "m1", "m2"]
        assert ws.close_code == 1000


@BACKENDS
def test_a_server_that_goes_away(serve: Any, backend: str) -> None:
    server = serve(echo)
    with connect_sync(server.url, backend=backend) as ws:
        ws.send("before")
        assert ws.recv(timeout=5) == "before"
        server.stop()  # the server shuts down: 1001 to its connections
        with pytest.raises(ConnectionClosedOK) as caught:
            ws.recv(timeout=5)
        assert caught.value.code == 1001


@BACKENDS
def test_errors_while_connecting_leave_no_thread(serve: Any, backend: str) -> None:
    async def reject(request: WebSocketRequest) -> None:
        await request.reject(403)

    server = serve(reject)
    threads_before = threading.active_count()
    with pytest.raises(ConnectionRejected) as caught:
        connect_sync(server.url, backend=backend)
    assert caught.value.status_code == 403
    with pytest.raises(OSError, match=r"(?i)connect"):  # refused, in each loop's words
        connect_sync("ws://127.0.0.1:1/", backend=backend)
    assert threading.active_count() <= threads_before


def test_an_exception_in_the_block_closes_with_1011(serve: Any) -> None:
    codes: list[int | None] = []

    async def record(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosedError as exc:
            codes.append(exc.code)

    server = serve(record)
    with pytest.raises(KeyError), connect_sync(server.url) as ws:
        raise KeyError("boom")
    assert ws.close_code == 1011
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:  # bounded: the server's side
        time.sleep(0.01)
    assert codes == [1011]


def test_keyboard_interrupt_cancels_the_call_and_closes_with_1001(serve: Any) -> None:
    server = serve(echo)
    with connect_sync(server.url) as ws:
        # A KeyboardInterrupt while recv() waits, delivered as Ctrl-C is: SIGINT to the
        # main thread, which interrupts its blocking wait.
        main = threading.main_thread().ident
        assert main is not None
        timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            ws.recv()  # no timeout: only the interrupt ends it
        timer.join()
        # The cancelled receive took nothing: the connection still works.
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"
    with pytest.raises(KeyboardInterrupt), connect_sync(server.url) as ws2:
        raise KeyboardInterrupt
    assert ws2.close_code == 1001
