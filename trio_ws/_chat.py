"""The chat example that ships with the package: ``trio-ws serve --chat``.

One handler serves everything on one port: the page (``GET /``, a plain-JavaScript
WebSocket client, package data in ``trio_ws/chat/index.html``), a health check
(``GET /healthz``) and the chat itself, a WebSocket at ``/ws?name=NAME&room=ROOM``.

Rooms are topics of a hub (``trio_ws.BaseHub``): an in-process ``trio_ws.Hub``
by default; a hub shared between processes can be passed to :func:`chat_handler`. Every
message on the wire is a JSON object: ``{"type": "message", "name": ..., "text": ...}``,
or ``{"type": "join" | "leave", "name": ...}``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING

import anyio

from ._hub import Hub

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from ._connection import WebSocketConnection
    from ._hub import BaseHub, Message
    from ._request import WebSocketRequest

__all__ = ["chat_handler", "chat_page"]

#: Names and rooms are cut to this many characters: they are labels, not messages.
MAX_LABEL = 40
#: The largest chat message relayed, in characters (larger ones are dropped).
MAX_TEXT = 4000
#: Messages a slow reader may have waiting before it misses the oldest.
OUTBOX_SIZE = 100
#: How long a "leave" notice may take when the server is shutting down.
LEAVE_TIMEOUT = 1.0

_HTML = ("Content-Type", "text/html; charset=utf-8")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_NO_STORE = ("Cache-Control", "no-store")


def chat_page() -> bytes:
    """The chat page (HTML with its script inline), read from the package data."""
    return resources.files("trio_ws").joinpath("chat", "index.html").read_bytes()


def _label(value: str | None, default: str) -> str:
    value = " ".join((value or "").split())[:MAX_LABEL]
    return value or default


async def _deliver(ws: WebSocketConnection, messages: AsyncIterator[Message]) -> None:
    async for message in messages:
        await ws.send_message(message)


def chat_handler(hub: BaseHub | None = None) -> Callable[[WebSocketRequest], Awaitable[None]]:
    """The chat's handler, for ``serve_websocket(..., allow_plain_http=True)``.

    ``hub`` carries the rooms, as topics ``chat:ROOM`` (a new in-process ``Hub`` by
    default); pass a hub shared between processes to run the chat in several of them.
    """
    rooms: BaseHub = Hub() if hub is None else hub
    page = chat_page()

    async def handle(request: WebSocketRequest) -> None:
        if not request.is_websocket:
            if request.path in ("/", "/index.html"):
                await request.reject(200, headers=[_HTML, _NO_STORE], body=page)
            elif request.path == "/healthz":
                await request.reject(200, headers=[_TEXT, _NO_STORE], body="ok\n")
            else:
                await request.reject(404, headers=[_TEXT], body="not found\n")
            return
        if request.path != "/ws":
            await request.reject(404, headers=[_TEXT], body="the chat is at /ws\n")
            return
        params = request.query_params
        name = _label(params.get("name"), "anonymous")
        room = "chat:" + _label(params.get("room"), "lobby")
        ws = await request.accept()
        subscription = rooms.subscribe(room, max_buffer=OUTBOX_SIZE)
        async with subscription as messages, ws.task_group() as tasks:
            tasks.start_soon(_deliver, ws, messages)
            await rooms.publish(room, json.dumps({"type": "join", "name": name}))
            try:
                async for text in ws:
                    if isinstance(text, str) and 0 < len(text) <= MAX_TEXT:
                        notice = {"type": "message", "name": name, "text": text}
                        await rooms.publish(room, json.dumps(notice))
            finally:
                # Also on shutdown (cancelled): the others still hear of it, within a bound.
                with anyio.move_on_after(LEAVE_TIMEOUT, shield=True):
                    await rooms.publish(room, json.dumps({"type": "leave", "name": name}))

    return handle
