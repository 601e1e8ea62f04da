"""Server handlers shared by several test modules."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from trio_ws import ConnectionClosed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from trio_ws import WebSocketConnection, WebSocketRequest


def recording_echo(
    server_sides: list[WebSocketConnection],
) -> Callable[[WebSocketRequest], Awaitable[None]]:
    """An echo handler that appends each accepted connection to ``server_sides``."""

    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        server_sides.append(ws)
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                await ws.send_message(message)

    return echo
