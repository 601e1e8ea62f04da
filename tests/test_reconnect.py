"""``reconnecting()``: backoff, what is retried and what is not, cancellation, closing.

Where the backoff's timing is the subject, the tests run on trio with
``MockClock(autojump_threshold=0)``: the servers are in the same process on loopback, so
a waiting task always has its data already, and the clock jumps only over the backoff's
sleeps. The other tests run on both loops with tiny real delays.
"""

from __future__ import annotations

import functools
import itertools
import logging
import socket
import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest
import trio
import trio.testing

from trio_ws import (
    Backoff,
    ConnectionClosed,
    ConnectionRejected,
    InvalidURL,
    WebSocketRequest,
    reconnecting,
    serve_websocket,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

FAST = Backoff(initial_delay=0.01, max_delay=0.05, reset_after=60.0)


@asynccontextmanager
async def server(handler: Callable[[WebSocketRequest], Any], **options: Any) -> AsyncIterator[str]:
    async with anyio.create_task_group() as tg:
        running = await tg.start(
            functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
        )
        yield f"{'wss' if options.get('ssl_context') else 'ws'}://127.0.0.1:{running.port}/"
        tg.cancel_scope.cancel()


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}/"


class Attempts:
    """The attempts of :func:`connect_until_error`, kept for after it raised."""

    count = 0


async def connect_until_error(url: str, seen: Attempts, **kwargs: Any) -> None:
    """Run ``reconnecting()`` and fail the test if it ever connects: it must raise."""
    async with reconnecting(url, **kwargs) as attempts:
        try:
            async for _ws in attempts:
                pytest.fail("connected")
        finally:
            seen.count = attempts.attempts


# --- Both loops, real (tiny) delays -------------------------------------------------------


@pytest.mark.anyio
async def test_reconnects_after_each_drop() -> None:
    served = 0

    async def once_then_close(request: WebSocketRequest) -> None:
        nonlocal served
        served += 1
        ws = await request.accept()
        await ws.send_message(f"connection {served}")  # then return: closes with 1000

    received = []
    with anyio.fail_after(10):
        async with server(once_then_close) as url, reconnecting(url, backoff=FAST) as attempts:
            async for ws in attempts:
                received.extend([message async for message in ws])
                if len(received) == 3:
                    break
    assert received == ["connection 1", "connection 2", "connection 3"]
    assert attempts.attempts == 3
    assert attempts.connection is None or attempts.connection.closed


@pytest.mark.anyio
async def test_retries_503_then_connects(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_ws.client")
    requests = 0

    async def busy_twice(request: WebSocketRequest) -> None:
        nonlocal requests
        requests += 1
        if requests <= 2:
            await request.reject(503, headers=[("Retry-After", "0")])
            return
        ws = await request.accept()
        await ws.send_message("finally")
        await ws.get_message()

    with anyio.fail_after(10):
        async with server(busy_twice) as url, reconnecting(url, backoff=FAST) as attempts:
            async for ws in attempts:
                assert await ws.get_message() == "finally"
                break
    assert attempts.attempts == 3
    assert caplog.text.count("failed: server rejected the WebSocket handshake with HTTP 503") == 2
    assert "connected to" in caplog.text


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_stops_at_once_on_other_4xx(status: int) -> None:
    async def refuse(request: WebSocketRequest) -> None:
        await request.reject(status)

    with anyio.fail_after(10):
        async with server(refuse) as url:
            seen = Attempts()
            with pytest.raises(ConnectionRejected) as caught:
                await connect_until_error(url, seen, backoff=FAST)
    assert caught.value.status_code == status
    assert seen.count == 1


@pytest.mark.anyio
async def test_stops_on_a_certificate_that_does_not_verify(
    server_ssl_context: ssl.SSLContext,
) -> None:
    async def accept(request: WebSocketRequest) -> None:
        await request.accept()

    with anyio.fail_after(10):
        async with server(accept, ssl_context=server_ssl_context) as url:
            # The default context does not trust the test CA.
            seen = Attempts()
            with pytest.raises(ssl.SSLCertVerificationError):
                await connect_until_error(url, seen, backoff=FAST)
    assert seen.count == 1


@pytest.mark.anyio
async def test_gives_up_after_max_attempts() -> None:
    with anyio.fail_after(10):
        seen = Attempts()
        with pytest.raises(OSError, match=r"(?i)connect"):  # refused, in each loop's words
            await connect_until_error(refused_url(), seen, backoff=FAST, max_attempts=3)
    assert seen.count == 3


@pytest.mark.anyio
async def test_cancelling_stops_a_long_wait_at_once() -> None:
    slow = Backoff(initial_delay=3600, max_delay=3600)
    started = anyio.current_time()
    with anyio.move_on_after(0.3) as scope:
        async with reconnecting(refused_url(), backoff=slow) as attempts:
            async for _ws in attempts:
                pytest.fail("connected")
    assert scope.cancelled_caught
    assert attempts.attempts == 1
    assert anyio.current_time() - started < 5


@pytest.mark.anyio
async def test_leaving_the_block_closes_the_connection() -> None:
    codes: list[int | None] = []
    both_closed = anyio.Event()

    async def fail_in_the_body(url: str) -> None:
        async with reconnecting(url, backoff=FAST) as attempts:
            async for _ws in attempts:
                raise ZeroDivisionError

    async def record(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed:
            pass
        codes.append(ws.close_code)
        if len(codes) == 2:
            both_closed.set()

    with anyio.fail_after(10):
        async with server(record) as url:
            async with reconnecting(url, backoff=FAST) as attempts:
                async for _ws in attempts:
                    break
            with pytest.raises(ZeroDivisionError):
                await fail_in_the_body(url)
            await both_closed.wait()
    assert codes == [1000, 1011]


@pytest.mark.anyio
async def test_bad_arguments_fail_before_any_attempt() -> None:
    with pytest.raises(InvalidURL):
        async with reconnecting("http://example.com/"):
            pytest.fail("entered")
    with pytest.raises(ValueError, match="max_queue"):
        async with reconnecting("ws://127.0.0.1/", max_queue=-1):
            pytest.fail("entered")
    with pytest.raises(ValueError, match="max_attempts"):
        async with reconnecting("ws://127.0.0.1/", max_attempts=0):
            pytest.fail("entered")
    with pytest.raises(TypeError, match="Backoff"):
        async with reconnecting("ws://127.0.0.1/", backoff=1.0):  # type: ignore[arg-type]
            pytest.fail("entered")


# --- The backoff's arithmetic ---------------------------------------------------------------


def test_backoff_delays_grow_cap_and_jitter() -> None:
    exact = Backoff(initial_delay=1, factor=2, max_delay=10, jitter=0)
    assert [exact.delay(n) for n in range(7)] == [0, 1, 2, 4, 8, 10, 10]
    assert exact.delay(100_000) == 10  # no overflow
    jittered = Backoff(initial_delay=1, factor=2, max_delay=10, jitter=0.5)
    delays = [jittered.delay(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # really random


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"initial_delay": -1}, ValueError),
        ({"factor": 0.5}, ValueError),
        ({"jitter": 1.5}, ValueError),
        ({"initial_delay": 5, "max_delay": 1}, ValueError),
        ({"reset_after": float("nan")}, ValueError),
        ({"max_delay": "60"}, TypeError),
    ],
)
def test_backoff_rejects_bad_values(arguments: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Backoff(**arguments)


# --- Timing, on trio's mock clock ------------------------------------------------------------


def run_on_mock_clock(test: Callable[[], Any]) -> None:
    trio.run(test, clock=trio.testing.MockClock(autojump_threshold=0))


def test_waits_grow_exponentially_between_failures() -> None:
    backoff = Backoff(initial_delay=1, factor=2, max_delay=5, jitter=0)

    async def main() -> None:
        url = refused_url()
        started = trio.current_time()
        seen = Attempts()
        with pytest.raises(OSError, match=r"(?i)connect"):
            await connect_until_error(url, seen, backoff=backoff, max_attempts=5)
        assert seen.count == 5
        assert trio.current_time() - started == pytest.approx(1 + 2 + 4 + 5, abs=0.01)

    run_on_mock_clock(main)


def test_retry_after_is_honoured_up_to_max_delay() -> None:
    backoff = Backoff(initial_delay=1, max_delay=30, jitter=0)
    times: list[float] = []

    async def main() -> None:
        async def busy(request: WebSocketRequest) -> None:
            times.append(trio.current_time())
            if len(times) == 1:
                await request.reject(429, headers=[("Retry-After", "7")])
            elif len(times) == 2:
                await request.reject(503, headers=[("Retry-After", "86400")])
            else:
                ws = await request.accept()
                await ws.get_message()

        async with server(busy) as url, reconnecting(url, backoff=backoff) as attempts:
            async for _ws in attempts:
                break

    run_on_mock_clock(main)
    assert [round(b - a, 2) for a, b in itertools.pairwise(times)] == [7.0, 30.0]


def test_a_long_lived_connection_resets_the_backoff() -> None:
    backoff = Backoff(initial_delay=1, factor=2, max_delay=60, jitter=0, reset_after=10)
    lifetimes = iter([0.0, 0.0, 0.0, 15.0, 0.0])
    times: list[float] = []

    async def main() -> None:
        async def short_lived(request: WebSocketRequest) -> None:
            times.append(trio.current_time())
            await request.accept()
            await trio.sleep(next(lifetimes))  # then close

        async with server(short_lived) as url, reconnecting(url, backoff=backoff) as attempts:
            async for ws in attempts:
                async for _message in ws:
                    pytest.fail("the server sends nothing")
                if len(times) == 5:
                    break

    run_on_mock_clock(main)
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    # Dropped at once: waits of 1, 2, 4 s. Then a connection that lived 15 s: at once.
    assert gaps == [1.0, 2.0, 4.0, 15.0]
