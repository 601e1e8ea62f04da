"""The task waiting in ``get_message()`` reads the socket itself, on trio (``SocketReading``).

Once the reader task has handed a message to a waiting getter, it lends the socket to
the getters and parks. These tests check, through what the peer and the handler see,
that nothing the reader task did is lost meanwhile: pings are answered once the handler
stops reading, a close from another task, the end of the stream and resets still close the
connection, a cancelled getter loses nothing, large and pipelined messages arrive whole and
in order. They run on both backends and over TLS (asyncio reads from callbacks, and the
behaviour must be the same). The last test counts the reader task's steps on trio: it
must take none per echoed message.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.hostile import RawPeer
from trio_ws import (
    ConnectionClosed,
    ConnectionClosedError,
    WebSocketConnection,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)
from trio_ws._private_apis import FAST_PATHS
from trio_ws.sansio import TextMessage

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Awaitable, Callable

pytestmark = pytest.mark.anyio

# Exchanges before the interesting part: the first is delivered by the reader task, which
# then lends the socket; the next ones are read by the handler's own get_message().
WARM_UP = 3


@pytest.fixture(params=["ws", "wss"])
def tls(
    request: pytest.FixtureRequest,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Server options, client options and scheme, for ``ws://`` and ``wss://``."""
    if request.param == "ws":
        return {}, {}, "ws"
    return {"ssl_context": server_ssl_context}, {"ssl_context": client_ssl_context}, "wss"


async def _warm_up(ws: WebSocketConnection) -> None:
    for index in range(WARM_UP):
        await ws.send_message(f"warm {index}")
        assert await ws.get_message() == f"warm {index}"


async def _echo_warm_up(ws: WebSocketConnection) -> None:
    for _ in range(WARM_UP):
        await ws.send_message(await ws.get_message())


async def _serve(
    tg: anyio.abc.TaskGroup,
    handler: Callable[[WebSocketConnection], Awaitable[None]],
    **options: Any,
) -> int:
    async def accept(request: WebSocketRequest) -> None:
        await handler(await request.accept())

    server = await tg.start(
        functools.partial(serve_websocket, accept, "127.0.0.1", 0, compression=None, **options)
    )
    port: int = server.port
    return port


async def test_pings_are_answered_after_the_handler_stops_reading(
    tls: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    server_options, client_options, scheme = tls
    release = anyio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        await _echo_warm_up(ws)
        await release.wait()  # reads nothing from now on

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, **server_options)
        async with open_websocket_url(f"{scheme}://127.0.0.1:{port}/", **client_options) as ws:
            await _warm_up(ws)
            with anyio.fail_after(5):
                # Answered by the server's reader task, once its grace period is over.
                for _ in range(3):
                    await ws.ping()
            release.set()
        tg.cancel_scope.cancel()


async def test_a_close_from_another_task_ends_a_getter_reading_the_socket(
    tls: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    server_options, client_options, scheme = tls
    seen: list[BaseException] = []
    handler_done = anyio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        await _echo_warm_up(ws)

        async def get() -> None:
            try:
                await ws.get_message()
            except ConnectionClosed as exc:
                seen.append(exc)

        async with anyio.create_task_group() as getters:
            getters.start_soon(get)
            await anyio.sleep(0.05)  # the getter now waits for the socket
            await ws.aclose(4000, "bye")
        handler_done.set()

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, **server_options)
        async with open_websocket_url(f"{scheme}://127.0.0.1:{port}/", **client_options) as ws:
            await _warm_up(ws)
            with anyio.fail_after(5), pytest.raises(ConnectionClosed) as closed:
                await ws.get_message()
            assert (closed.value.code, closed.value.reason) == (4000, "bye")
        with anyio.fail_after(5):
            await handler_done.wait()
        tg.cancel_scope.cancel()
    # On trio the getter reading the socket ends with the close handshake, and reports the
    # peer's answer (RFC 6455 7.1.5: the code of the close frame received); on asyncio it
    # ends at once, with this side's code and reason.
    assert [exc.code for exc in seen] == [4000]  # type: ignore[attr-defined]


async def test_a_getter_reading_the_socket_ends_when_the_peer_never_answers_a_close() -> None:
    seen: list[BaseException] = []
    closed = anyio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        async def get() -> None:
            try:
                await ws.get_message()
            except ConnectionClosed as exc:
                seen.append(exc)

        await _echo_warm_up(ws)
        async with anyio.create_task_group() as getters:
            getters.start_soon(get)
            await anyio.sleep(0.05)
            await ws.aclose()  # the peer never answers: close_timeout ends it
        closed.set()

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, close_timeout=0.3)
        peer = await RawPeer.connect(port)
        for index in range(WARM_UP):
            peer.core.send_text(f"raw {index}")
            await peer.flush()
            await peer.next_event()
        with anyio.fail_after(5):
            await closed.wait()
        await peer.stream.aclose()
        tg.cancel_scope.cancel()
    [error] = seen
    assert isinstance(error, ConnectionClosed)


@pytest.mark.parametrize("ending", ["fin", "reset"])
async def test_the_peer_vanishing_while_the_getter_reads_closes_with_1006(ending: str) -> None:
    seen: list[BaseException] = []
    done = anyio.Event()

    async def handler(ws: WebSocketConnection) -> None:
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed as exc:
            seen.append(exc)
        done.set()

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler)
        peer = await RawPeer.connect(port)
        for index in range(WARM_UP):
            peer.core.send_text(f"raw {index}")
            await peer.flush()
            event = await peer.next_event()
            assert isinstance(event, TextMessage)
            assert event.data == f"raw {index}"
        if ending == "reset":
            await peer.abort()
        else:
            await peer.stream.aclose()
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()
    [error] = seen
    assert isinstance(error, ConnectionClosedError)
    assert error.code == 1006


async def test_a_cancelled_getter_loses_nothing_and_the_next_one_reads_on(
    tls: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    server_options, client_options, scheme = tls
    got: list[str | bytes] = []

    async def handler(ws: WebSocketConnection) -> None:
        await _echo_warm_up(ws)
        for _ in range(3):
            with anyio.move_on_after(0.02):  # nothing comes: cancelled while reading
                got.append(await ws.get_message())
        await ws.send_message("ready")
        got.append(await ws.get_message())
        await ws.send_message("done")

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, **server_options)
        async with open_websocket_url(f"{scheme}://127.0.0.1:{port}/", **client_options) as ws:
            await _warm_up(ws)
            with anyio.fail_after(5):
                assert await ws.get_message() == "ready"
                await ws.send_message("after the cancellations")
                assert await ws.get_message() == "done"
        tg.cancel_scope.cancel()
    assert got == ["after the cancellations"]


async def test_large_and_pipelined_messages_read_by_the_getter_arrive_whole_and_in_order(
    tls: tuple[dict[str, Any], dict[str, Any], str],
) -> None:
    server_options, client_options, scheme = tls

    async def handler(ws: WebSocketConnection) -> None:
        async for message in ws:
            await ws.send_message(message)

    large = bytes(range(256)) * 4096 * 3  # 3 MiB: many reads for one message
    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, max_message_size=None, **server_options)
        url = f"{scheme}://127.0.0.1:{port}/"
        async with open_websocket_url(url, max_message_size=None, **client_options) as ws:
            await _warm_up(ws)
            with anyio.fail_after(10):
                await ws.send_message(large)
                assert await ws.get_message() == large
                for index in range(200):
                    ws.send_message_nowait(f"pipelined {index}")
                for index in range(200):
                    assert await ws.get_message() == f"pipelined {index}"
        tg.cancel_scope.cancel()


@pytest.fixture
def trio_only(anyio_backend: str) -> None:
    if anyio_backend != "trio":
        pytest.skip("the reader task lends the socket on trio; asyncio reads from callbacks")
    if not FAST_PATHS:
        pytest.skip("the fast paths are off (TRIO_WS_FAST_PATHS=0)")


def _reader_step_counter(steps: Counter[str]) -> Any:
    """A trio instrument that counts in ``steps`` the steps of each connection's reader
    task, by task name."""
    import trio

    class ReaderSteps(trio.abc.Instrument):
        def before_task_step(self, task: trio.lowlevel.Task) -> None:
            if task.name.endswith("] reader"):
                steps[task.name] += 1

    return ReaderSteps()


@pytest.fixture
async def reader_steps(trio_only: None) -> AsyncIterator[Counter[str]]:
    """How many steps trio ran each connection's reader task for, by task name."""
    import trio

    steps: Counter[str] = Counter()
    instrument = _reader_step_counter(steps)
    trio.lowlevel.add_instrument(instrument)
    try:
        yield steps
    finally:
        trio.lowlevel.remove_instrument(instrument)


@pytest.mark.parametrize("echo_loop", ["awaited", "nowait"])
async def test_the_reader_task_takes_no_step_per_echoed_message_on_trio(
    reader_steps: Counter[str], tls: tuple[dict[str, Any], dict[str, Any], str], echo_loop: str
) -> None:
    server_options, client_options, scheme = tls
    echoes = 200

    async def handler(ws: WebSocketConnection) -> None:
        if echo_loop == "awaited":
            async for message in ws:
                await ws.send_message(message)
        else:
            # The getter is back in get_message() before the reader task runs again.
            while True:
                ws.send_message_nowait(await ws.get_message())

    async with anyio.create_task_group() as tg:
        port = await _serve(tg, handler, **server_options)
        async with open_websocket_url(f"{scheme}://127.0.0.1:{port}/", **client_options) as ws:
            await _warm_up(ws)
            before = sum(reader_steps.values())
            with anyio.fail_after(10):
                for index in range(echoes):
                    await ws.send_message(f"echo {index}")
                    assert await ws.get_message() == f"echo {index}"
            during = sum(reader_steps.values()) - before
        tg.cancel_scope.cancel()
    # Two reader tasks (client and server); without the lending, each takes a step per
    # message. A few wake-ups remain: the end of a grace period, renewed.
    assert len(reader_steps) == 2
    assert during < echoes // 10, reader_steps


def test_the_reader_task_stays_parked_while_echoes_flow_for_many_grace_periods() -> None:
    """The reader's grace period ends many times during a run of echoes (trio's clock is
    stopped and jumped by hand, a second at a time, far longer than the grace period), with
    the handler back in get_message() before the reader task runs: the reader must still
    not wake for each message, only about once per grace period."""
    trio = pytest.importorskip("trio")
    if not FAST_PATHS:
        pytest.skip("the fast paths are off (TRIO_WS_FAST_PATHS=0)")
    from trio.testing import MockClock

    echoes, jump_every = 200, 10
    steps: Counter[str] = Counter()

    async def handler(ws: WebSocketConnection) -> None:
        while True:
            ws.send_message_nowait(await ws.get_message())

    async def main() -> int:
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, handler, ping_interval=None)
            url = f"ws://127.0.0.1:{port}/"
            async with open_websocket_url(url, ping_interval=None) as ws:
                await _warm_up(ws)
                instrument = _reader_step_counter(steps)
                trio.lowlevel.add_instrument(instrument)
                # The clock moves by the jumps below (20 s in all), and by itself only
                # when nothing has run for a real second (a hang ends with the deadline).
                with trio.fail_after(60):
                    for index in range(echoes):
                        if index % jump_every == 0:
                            clock.jump(1.0)
                        await ws.send_message(f"echo {index}")
                        assert await ws.get_message() == f"echo {index}"
                trio.lowlevel.remove_instrument(instrument)
            clock.jump(3600)  # whatever waits for a timeout (in a failed run) ends now
            nursery.cancel_scope.cancel()
        return sum(steps.values())

    clock = MockClock(rate=0, autojump_threshold=1.0)
    during = trio.run(main, clock=clock)
    # Two reader tasks (client and server), each woken about once per jump of the clock;
    # a reader woken for every message would take about a step per echo.
    assert during <= 3 * (echoes // jump_every), steps


def test_a_close_takes_the_socket_back_at_once_on_trio() -> None:
    """The handler closes while the reader task is parked in its grace period: the close
    wakes it. With trio's clock stopped, the grace period never ends, so only that wake-up
    can finish the close handshake before every task is blocked."""
    trio = pytest.importorskip("trio")
    if not FAST_PATHS:
        pytest.skip("the fast paths are off (TRIO_WS_FAST_PATHS=0)")
    from trio.testing import MockClock, wait_all_tasks_blocked

    closed = trio.Event()
    client_saw: list[int] = []

    async def handler(ws: WebSocketConnection) -> None:
        await _echo_warm_up(ws)
        await ws.aclose(4001)
        closed.set()

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            port = await _serve(nursery, handler)

            async def client() -> None:
                async with open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                    await _warm_up(ws)
                    try:
                        await ws.get_message()
                    except ConnectionClosed as exc:
                        client_saw.append(exc.code)

            nursery.start_soon(client)
            await wait_all_tasks_blocked(0.2)  # real seconds with nothing runnable
            outcome.append((closed.is_set(), list(client_saw)))
            clock.jump(3600)  # whatever waits for a timeout (in a failed run) ends now
            nursery.cancel_scope.cancel()

    outcome: list[tuple[bool, list[int]]] = []
    clock = MockClock(rate=0)
    trio.run(main, clock=clock)
    assert outcome == [(True, [4001])]
