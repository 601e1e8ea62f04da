"""Chat rooms on a hub of topics: what a member says reaches every member of the room.

Connect with ``ws://HOST:PORT/?name=YOURNAME&room=ROOM`` (the room defaults to ``lobby``);
each room is a topic of a :class:`trio_ws.Hub`. ``/healthz`` answers HTTP 200 for load
balancers, to plain HTTP (``curl http://HOST:PORT/healthz``) and WebSocket probes alike.
A member that falls 100 messages behind is disconnected with 1013 (try again later). Runs
on trio (default) or asyncio. With ``--redis URL`` the rooms are topics of a
:class:`trio_ws.RedisHub` instead (``pip install trio_ws[redis]``): run several servers on
one Redis and members of a room talk across them::

    python3 examples/chat_server.py --port 8765 [--backend asyncio] [--redis redis://HOST]
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal

import anyio

from trio_ws import (
    BaseHub,
    CloseCode,
    Hub,
    RedisHub,
    Subscription,
    SubscriptionOverflow,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
)


class ChatServer:
    """Serves the members of every room; the rooms are topics of ``hub``."""

    def __init__(self, hub: BaseHub) -> None:
        self.hub = hub
        self.online = 0

    async def deliver(self, subscription: Subscription, ws: WebSocketConnection) -> None:
        """Send the room's messages to one member, at the member's own pace."""
        try:
            async for text in subscription:
                await ws.send_message(text)
        except SubscriptionOverflow:
            await ws.aclose(CloseCode.TRY_AGAIN_LATER, "too slow to keep up")

    async def handler(self, request: WebSocketRequest) -> None:
        # Look at the request before accepting it: answer health checks, demand a name.
        if request.path == "/healthz":
            await request.reject(200, body=f"{self.online} members online\n")
            return
        if not request.is_websocket:
            return  # another plain HTTP request: trio_ws answers 426 Upgrade Required
        name = request.query_params.get("name", "").strip()
        if not name:
            await request.reject(400, body="add ?name=YOURNAME to the URL\n")
            return
        topic = "room:" + (request.query_params.get("room", "").strip() or "lobby")
        ws = await request.accept()
        self.online += 1
        try:
            # Subscribed before announcing: the member sees its own arrival.
            async with (
                self.hub.subscribe(topic, max_buffer=100, overflow="end") as subscription,
                ws.task_group() as tasks,
            ):
                tasks.start_soon(self.deliver, subscription, ws)
                await self.hub.publish(topic, f"* {name} joined")
                async for message in ws:
                    if isinstance(message, str):
                        await self.hub.publish(topic, f"{name}: {message}")
        finally:
            self.online -= 1
            # Reached when the member left (or was too slow, or the server is stopping).
            with anyio.CancelScope(shield=True):
                await self.hub.publish(topic, f"* {name} left")


async def main(host: str, port: int, redis: str | None = None) -> None:
    async with Hub() if redis is None else RedisHub(redis) as hub:
        chat = ChatServer(hub)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                serve = functools.partial(serve_websocket, allow_plain_http=True)
                server = await tg.start(serve, chat.handler, host, port)
                print(f"chat server on ws://{host}:{server.port}/?name=YOURNAME&room=lobby")
                async for _ in signals:
                    tg.cancel_scope.cancel()  # members get 1001 (going away)
                    break
    print("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--redis", metavar="URL", help="share the rooms through this Redis")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    anyio.run(main, args.host, args.port, args.redis, backend=args.backend)
