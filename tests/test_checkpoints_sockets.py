"""Checkpoints over real sockets, on both backends (the fast paths of ``_transport``).

``test_checkpoints`` checks every call with trio's own tools over an in-memory pair; here
the same guarantees are checked where the socket fast paths run, on trio and on asyncio:
a call cancelled at its checkpoint loses nothing, and a sending loop lets other tasks run.
"""

from __future__ import annotations

import functools

import anyio
import pytest

from trio_ws import WebSocketRequest, open_websocket_url, serve_websocket

pytestmark = pytest.mark.anyio


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def test_a_get_message_cancelled_at_its_checkpoint_keeps_the_waiting_message() -> None:
    queued = anyio.Event()
    results: list[object] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await queued.wait()
        with anyio.CancelScope() as scope:
            scope.cancel()
            results.append(await ws.get_message())
        results.append(scope.cancelled_caught)
        results.append(ws.get_message_nowait())
        await ws.send_message("checked")

    async with anyio.create_task_group() as tg:
        server = await tg.start(functools.partial(serve_websocket, handler, "127.0.0.1", 0))
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
            await ws.send_message("kept")
            with anyio.fail_after(5):
                # The server's core handles frames in order: once this ping is answered,
                # "kept" is in the server's queue.
                await ws.ping()
                queued.set()
                assert await ws.get_message() == "checked"
        tg.cancel_scope.cancel()
    assert results == [True, "kept"]


async def test_a_cancelled_send_message_sends_nothing_over_a_socket() -> None:
    async with anyio.create_task_group() as tg:
        server = await tg.start(functools.partial(serve_websocket, _echo, "127.0.0.1", 0))
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
            with anyio.CancelScope() as scope:
                scope.cancel()
                await ws.send_message("dropped")
            assert scope.cancelled_caught
            await ws.send_message("sent")
            with anyio.fail_after(5):
                assert await ws.get_message() == "sent"
        tg.cancel_scope.cancel()


async def test_a_sending_loop_lets_other_tasks_run() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        server = await tg.start(functools.partial(serve_websocket, _echo, "127.0.0.1", 0))
        async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
            tg.start_soon(ticker)
            await anyio.lowlevel.checkpoint()
            before = ticks
            with anyio.fail_after(10):
                for _ in range(1000):
                    await ws.send_message("x")
            # Each send_message is a schedule point: the ticker ran between them.
            assert ticks - before >= 500
            with anyio.fail_after(10):
                for _ in range(1000):
                    assert await ws.get_message() == "x"
        tg.cancel_scope.cancel()
