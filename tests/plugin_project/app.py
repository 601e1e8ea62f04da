"""A small application under test: a chat room handler that greets by cookie."""

from __future__ import annotations

import contextlib

from trio_ws import ConnectionClosed, WebSocketRequest


async def handler(request: WebSocketRequest) -> None:
    if request.path != "/chat":
        await request.reject(404, body=b"no such room")
        return
    ws = await request.accept()
    name = request.headers.get("x-user", "stranger")
    await ws.send_message(f"welcome, {name}")
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            if message == "boom":
                raise RuntimeError("the handler failed")
            await ws.send_message(f"{name}: {message!s}")
