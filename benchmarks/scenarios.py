"""The end-to-end scenarios of issue 6 (and set-up, of issue 10), written once for every library.

Each scenario receives ``connect()``, an async context manager yielding ``(send, recv)``
bound directly to the library's own methods (no wrapper on the hot path), runs on whatever
loop the process runs (trio or asyncio, through anyio), and returns a dict with the number of
units done, the seconds they took and the rate. Every loop stops at its fixed ``count`` or at
its time ``cap``, whichever comes first; connection set-up and a short warm-up are not timed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

SMALL = "0123456789abcdefghijklmnopqrstuv"  # 32 bytes of text
LARGE = bytes(range(256)) * (4 * 2**20 // 256)  # 4 MiB of binary
WARMUP = 200
#: Messages the pipelined sender may have in flight before it waits for echoes.
WINDOW = 1000
#: How often (in messages) the loops look at the clock.
CLOCK_EVERY = 64

Scenario = Callable[..., Awaitable[dict[str, Any]]]


def mark() -> None:
    """Tell the runner that the timed part starts or ends (it samples the server's CPU)."""
    print("mark", flush=True)


def _result(done: int, seconds: float, unit: str, per_unit: float = 1.0) -> dict[str, Any]:
    return {
        "done": done,
        "seconds": seconds,
        "rate": done * per_unit / seconds if seconds > 0 else 0.0,
        "unit": unit,
    }


async def rtt(connect: Any, *, count: int, cap: float, **_: Any) -> dict[str, Any]:
    """Send 32 bytes, await the echo, repeat: round trips per second."""
    async with connect() as (send, recv):
        for _ in range(WARMUP):
            await send(SMALL)
            await recv()
        mark()
        start = time.perf_counter()
        deadline = start + cap
        done = 0
        while done < count:
            await send(SMALL)
            reply = await recv()
            done += 1
            if done % CLOCK_EVERY == 0 and time.perf_counter() > deadline:
                break
        seconds = time.perf_counter() - start
        mark()
        if reply != SMALL:
            raise AssertionError(f"bad echo {reply!r}")
    return _result(done, seconds, "round trips/s")


async def pipelined(connect: Any, *, count: int, cap: float, **_: Any) -> dict[str, Any]:
    """Send 32-byte messages on one connection while receiving their echoes: messages/s.

    A sender task sends as fast as the library lets it while the caller receives; the sender
    waits only when ``WINDOW`` messages are in flight, so that libraries without
    backpressure on send (picows writes synchronously) stay bounded in memory.
    """
    async with connect() as (send, recv):
        for _ in range(WARMUP):
            await send(SMALL)
            await recv()
        state = {"sent": 0, "received": 0, "limit": count}
        resume: list[anyio.Event] = []

        async def sender() -> None:
            deadline = time.perf_counter() + cap
            sent = 0
            while sent < state["limit"]:
                if sent - state["received"] >= WINDOW:
                    event = anyio.Event()
                    resume.append(event)
                    await event.wait()
                    continue
                await send(SMALL)
                sent += 1
                state["sent"] = sent
                if sent % CLOCK_EVERY == 0 and time.perf_counter() > deadline:
                    state["limit"] = sent
            state["limit"] = sent

        mark()
        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            received = 0
            while received < state["limit"]:
                await recv()
                received += 1
                state["received"] = received
                if resume and state["sent"] - received <= WINDOW // 2:
                    resume.pop().set()
        seconds = time.perf_counter() - start
        mark()
    return _result(received, seconds, "msg/s")


async def large(connect: Any, *, count: int, cap: float, **_: Any) -> dict[str, Any]:
    """Send a 4 MiB binary message, await the echo, repeat: MB/s (10**6 bytes, counted once)."""
    async with connect() as (send, recv):
        await send(LARGE)
        await recv()
        mark()
        start = time.perf_counter()
        deadline = start + cap
        done = 0
        while done < count:
            await send(LARGE)
            reply = await recv()
            done += 1
            if time.perf_counter() > deadline:
                break
        seconds = time.perf_counter() - start
        mark()
        if len(reply) != len(LARGE):
            raise AssertionError(f"bad echo of {len(reply)} bytes")
    return _result(done, seconds, "MB/s", per_unit=len(LARGE) / 1e6)


#: Fan-in repeats its burst (every connection doing ``count`` round trips at once) this many
#: times, with a barrier between bursts: one burst of 10,000 messages lasts a fraction of a
#: second, too short to measure steadily on its own.
FAN_IN_BURSTS = 8


async def fan_in(
    connect: Any,
    *,
    count: int,
    cap: float,
    connections: int = 200,
    bursts: int = FAN_IN_BURSTS,
    **_: Any,
) -> dict[str, Any]:
    """``connections`` connections, each doing ``count`` round trips at once: messages/s.

    All connections are opened first (untimed); the clock runs from the moment the last one
    is open to the moment the last one has finished its round trips. The burst is repeated
    ``bursts`` times (all connections wait for each other between bursts), or until ``cap``
    seconds have passed at the end of a burst.
    """
    opened = 0
    done = 0
    all_open = anyio.Event()
    arrived = [0] * bursts
    burst_done = [anyio.Event() for _ in range(bursts)]
    stop_after = [False] * bursts  # decided once per burst, by its last connection
    times: dict[str, float] = {}
    gate = anyio.Semaphore(50)

    async def one() -> None:
        nonlocal opened, done
        async with gate:
            cm = connect()
            send, recv = await cm.__aenter__()
        try:
            opened += 1
            if opened == connections:
                mark()
                times["start"] = time.perf_counter()
                all_open.set()
            await all_open.wait()
            for burst in range(bursts):
                for _ in range(count):
                    await send(SMALL)
                    await recv()
                    done += 1
                arrived[burst] += 1
                if arrived[burst] == connections:
                    now = time.perf_counter()
                    stop_after[burst] = now > times["start"] + cap or burst == bursts - 1
                    if stop_after[burst]:
                        times["end"] = now
                        mark()
                    burst_done[burst].set()
                await burst_done[burst].wait()
                if stop_after[burst]:
                    break
        finally:
            await cm.__aexit__(None, None, None)

    async with anyio.create_task_group() as tg:
        for _ in range(connections):
            tg.start_soon(one)
    return _result(done, times["end"] - times["start"], "msg/s")


async def setup(
    connect: Any, *, count: int, cap: float, connections: int = 1000, **_: Any
) -> dict[str, Any]:
    """``connections`` clients connecting at once, ``count`` times: handshakes per second.

    Every client of a burst starts together (no gate: the server's backlog and accept loop
    are part of what is measured); the clock runs from the burst's start until the last
    handshake has completed. The connections are then closed (untimed) before the next
    burst; the bursts stop early once ``cap`` seconds of opening have been timed.
    """
    opening = 0.0
    done = 0

    async def one(opened: list[int], all_open: anyio.Event, finish: anyio.Event) -> None:
        async with connect():
            opened[0] += 1
            if opened[0] == connections:
                opened.append(time.perf_counter_ns())
                all_open.set()
            await finish.wait()

    mark()
    for _ in range(count):
        opened = [0]
        all_open = anyio.Event()
        finish = anyio.Event()
        async with anyio.create_task_group() as tg:
            start = time.perf_counter_ns()
            for _ in range(connections):
                tg.start_soon(one, opened, all_open, finish)
            await all_open.wait()
            finish.set()
        opening += (opened[1] - start) / 1e9
        done += connections
        if opening > cap:
            break
    mark()
    return _result(done, opening, "handshakes/s")


SCENARIOS: dict[str, Scenario] = {
    "rtt": rtt,
    "pipelined": pipelined,
    "large": large,
    "fan-in": fan_in,
    "setup": setup,
}
