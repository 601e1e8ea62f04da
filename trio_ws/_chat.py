"""The chat example that ships with the package: ``trio-ws serve --chat``.

One handler serves everything on one port: the page (``GET /``, a plain-JavaScript
WebSocket client, package data in ``trio_ws/chat/index.html``), a health check
(``GET /healthz``) and the chat itself, a WebSocket at ``/ws?name=NAME&room=ROOM``.

Rooms are topics of a *hub*: an object with ``subscribe(topic)`` (an async context manager
yielding an async iterator of messages) and ``async publish(topic, message)``. By default
it is an in-process one; another (one shared between processes) can be passed to
:func:`chat_handler`. Every message on the wire is a JSON object: ``{"type": "message",
"name": ..., "text": ...}``, or ``{"type": "join" | "leave", "name": ...}``.
"""

from __future__ import annotations

import contextlib
import json
from importlib import resources
from typing import TYPE_CHECKING, Protocol

import anyio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from contextlib import AbstractAsyncContextManager

    from anyio.streams.memory import MemoryObjectSendStream

    from ._connection import WebSocketConnection
    from ._request import WebSocketRequest

__all__ = ["ChatHub", "chat_handler", "chat_page"]

#: Names and rooms are cut to this many characters: they are labels, not messages.
MAX_LABEL = 40
#: The largest chat message relayed, in characters (larger ones are dropped).
MAX_TEXT = 4000
#: Messages a slow reader may have waiting before it misses some.
OUTBOX_SIZE = 100
#: How long a "leave" notice may take when the server is shutting down.
LEAVE_TIMEOUT = 1.0

_HTML = ("Content-Type", "text/html; charset=utf-8")
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_NO_STORE = ("Cache-Control", "no-store")


class ChatHub(Protocol):
    """What the chat needs of a publish/subscribe hub: rooms are its topics."""

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[str]]: ...

    async def publish(self, topic: str, message: str) -> None: ...


class _LocalRooms:
    """The default hub: in-process fan-out, one bounded outbox per subscriber."""

    def __init__(self) -> None:
        self._rooms: dict[str, set[MemoryObjectSendStream[str]]] = {}

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[str]]:
        send, receive = anyio.create_memory_object_stream[str](OUTBOX_SIZE)
        members = self._rooms.setdefault(topic, set())
        members.add(send)
        try:
            async with receive:
                yield receive
        finally:
            members.discard(send)
            send.close()
            if not members:
                self._rooms.pop(topic, None)

    async def publish(self, topic: str, message: str) -> None:
        await anyio.lowlevel.checkpoint()
        for outbox in list(self._rooms.get(topic, ())):
            try:
                outbox.send_nowait(message)
            except anyio.WouldBlock:
                pass  # this member reads too slowly: it misses the message


def chat_page() -> bytes:
    """The chat page (HTML with its script inline), read from the package data."""
    return resources.files("trio_ws").joinpath("chat", "index.html").read_bytes()


def _label(value: str | None, default: str) -> str:
    value = " ".join((value or "").split())[:MAX_LABEL]
    return value or default


async def _deliver(ws: WebSocketConnection, messages: AsyncIterator[str]) -> None:
    async for message in messages:
        await ws.send_message(message)


def chat_handler(hub: ChatHub | None = None) -> Callable[[WebSocketRequest], Awaitable[None]]:
    """The chat's handler, for ``serve_websocket(..., allow_plain_http=True)``.

    ``hub`` carries the rooms (an in-process one by default); pass a shared one to run the
    chat in several processes.
    """
    rooms: ChatHub = _LocalRooms() if hub is None else hub
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
        room = _label(params.get("room"), "lobby")
        ws = await request.accept()
        async with rooms.subscribe(room) as messages, ws.task_group() as tasks:
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
