"""A chat room: what one member says is relayed to every other member.

Connect with ``ws://HOST:PORT/?name=YOURNAME``. ``/healthz`` answers HTTP 200 for load
balancers, to plain HTTP (``curl http://HOST:PORT/healthz``) and WebSocket probes alike.
Runs on trio (default) or asyncio::

    python3 examples/chat_server.py --port 8765 [--backend asyncio]
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal

import anyio

from trio_ws import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket


class ChatRoom:
    """The members currently connected, and the handler that serves each of them."""

    def __init__(self) -> None:
        self.members: dict[WebSocketConnection, str] = {}

    async def broadcast(self, text: str, *, sender: WebSocketConnection | None = None) -> None:
        for member in list(self.members):
            if member is sender:
                continue
            try:
                await member.send_message(text)
            except ConnectionClosed:
                pass  # that member is leaving; its own handler removes it

    async def handler(self, request: WebSocketRequest) -> None:
        # Look at the request before accepting it: answer health checks, demand a name.
        if request.path == "/healthz":
            await request.reject(200, body=f"{len(self.members)} members online\n")
            return
        if not request.is_websocket:
            return  # another plain HTTP request: trio_ws answers 426 Upgrade Required
        name = request.query_params.get("name", "").strip()
        if not name:
            await request.reject(400, body="add ?name=YOURNAME to the URL\n")
            return
        ws = await request.accept()
        self.members[ws] = name
        try:
            await self.broadcast(f"* {name} joined", sender=ws)
            async for message in ws:
                if isinstance(message, str):
                    await self.broadcast(f"{name}: {message}", sender=ws)
        finally:
            del self.members[ws]
        # Reached when the member closed the connection (or the server is shutting down).
        await self.broadcast(f"* {name} left")


async def main(host: str, port: int) -> None:
    room = ChatRoom()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            serve = functools.partial(serve_websocket, allow_plain_http=True)
            server = await tg.start(serve, room.handler, host, port)
            print(f"chat server on ws://{host}:{server.port}/?name=YOURNAME")
            async for _ in signals:
                tg.cancel_scope.cancel()  # members get 1001 (going away)
                break
    print("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    anyio.run(main, args.host, args.port, backend=args.backend)
