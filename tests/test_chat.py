"""The chat example's handler (``trio_ws._chat``, behind ``trio-ws serve --chat``) with a
hub of the caller's: its rooms are the hub's topics, so another hub can carry them."""

from __future__ import annotations

import functools
import json

import anyio
import pytest

from trio_ws import Hub, WebSocketServer, open_websocket_url, serve_websocket
from trio_ws._chat import MAX_TEXT, chat_handler

pytestmark = pytest.mark.anyio


async def test_rooms_are_topics_of_the_hub_given(anyio_backend: str) -> None:
    async with Hub() as hub, anyio.create_task_group() as tg:
        server: WebSocketServer = await tg.start(
            functools.partial(
                serve_websocket, chat_handler(hub), "127.0.0.1", 0, allow_plain_http=True
            )
        )
        url = f"ws://127.0.0.1:{server.port}/ws?name=%20ann%20%20lee%20&room=r1"
        with anyio.fail_after(10):
            async with hub.subscribe("chat:r1") as room:
                async with open_websocket_url(url) as ann:
                    # The name is a label: whitespace is folded.
                    joined = {"type": "join", "name": "ann lee"}
                    assert json.loads(await room.receive()) == joined
                    assert json.loads(await ann.get_message()) == joined
                    await ann.send_message("x" * (MAX_TEXT + 1))  # too long: dropped
                    await ann.send_message(b"binary")  # not text: dropped
                    # What another process would publish reaches the page's client.
                    await hub.publish("chat:r1", json.dumps({"type": "message", "text": "hi"}))
                    assert json.loads(await ann.get_message())["text"] == "hi"
                    await ann.send_message("hello")
                    said = {"type": "message", "name": "ann lee", "text": "hello"}
                    assert json.loads(await room.receive()) == {"type": "message", "text": "hi"}
                    assert json.loads(await room.receive()) == said
                assert json.loads(await room.receive()) == {"type": "leave", "name": "ann lee"}
            assert hub.topics == frozenset()  # nothing outlives the connection
        tg.cancel_scope.cancel()


async def test_a_room_defaults_to_the_lobby_and_other_paths_are_404(anyio_backend: str) -> None:
    async with Hub() as hub, anyio.create_task_group() as tg:
        server: WebSocketServer = await tg.start(
            functools.partial(
                serve_websocket, chat_handler(hub), "127.0.0.1", 0, allow_plain_http=True
            )
        )
        with anyio.fail_after(10):
            async with open_websocket_url(f"ws://127.0.0.1:{server.port}/ws") as ws:
                assert json.loads(await ws.get_message()) == {"type": "join", "name": "anonymous"}
                assert hub.topics == frozenset({"chat:lobby"})
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            async with stream:
                await stream.send(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = await stream.receive()
            assert answer.startswith(b"HTTP/1.1 404 ")
        tg.cancel_scope.cancel()
