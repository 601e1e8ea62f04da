"""Load over real loopback sockets, on trio and asyncio, bounded in count and time.

Hundreds of raw peers at once, some of them stalled or resetting, while each honest one
does its echo: the server serves them all, holds bounded memory per connection, leaves no
connection behind and logs no ERROR for what the peers did.
"""

from __future__ import annotations

import logging
import tracemalloc
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.hostile import RawPeer, errors, start_server, wait_until_empty
from trio_ws.sansio import TextMessage

if TYPE_CHECKING:
    from trio_ws import WebSocketRequest

pytestmark = pytest.mark.anyio

COUNT = 300


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def test_hundreds_of_concurrent_connections_with_stallers_and_resets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    everyone_connected = anyio.Event()
    connected = 0
    served = 0
    held = 0

    async def honest(port: int, index: int) -> None:
        nonlocal connected, served
        peer = await RawPeer.connect(port)
        connected += 1
        if connected == COUNT:
            everyone_connected.set()
        await everyone_connected.wait()
        peer.core.send_text(f"m{index}")
        await peer.flush()
        assert await peer.next_event() == TextMessage(data=f"m{index}")
        served += 1
        if index % 3 == 0:
            await peer.abort()  # a third vanish with an RST
        else:
            peer.core.send_close(1000)
            await peer.flush()
            await peer.next_event()
            await peer.stream.aclose()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await start_server(
                tg, echo, compression=None, backlog=1024, ping_interval=None, open_timeout=2
            )
            # Stallers that never finish their request, there all along.
            stallers = [await RawPeer.connect(server.port, handshake=False) for _ in range(20)]
            for staller in stallers:
                await staller.stream.send(b"GET / HTTP/1.1\r\n")
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                async with anyio.create_task_group() as clients:
                    for index in range(COUNT):
                        clients.start_soon(honest, server.port, index)
                    await everyone_connected.wait()
                    held = len(server.connections)
                    during = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            assert held == COUNT
            assert served == COUNT
            # Both ends of each connection are in this process: bound the pair.
            per_pair = (during - before) / COUNT
            assert per_pair < 64 * 1024, per_pair
            await wait_until_empty(server)
            for staller in stallers:
                await staller.stream.aclose()
            tg.cancel_scope.cancel()
    assert not errors(caplog)
