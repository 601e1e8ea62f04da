"""The README's demo: a real chat server and its clients, in one process, in about a second.

It starts the chat server of ``chat_server.py`` on 127.0.0.1 (a free port), connects a
few clients over real sockets, prints the conversation, then shuts the server down
gracefully (the clients see close code 1001) and exits::

    python3 examples/demo.py                  # on trio
    python3 examples/demo.py --backend asyncio
"""

from __future__ import annotations

import argparse

import anyio
from chat_server import ChatServer  # the example next to this one

from trio_ws import (
    ConnectionClosed,
    ConnectionRejected,
    Hub,
    open_websocket_url,
    serve_websocket,
)


def say(who: str, what: str) -> None:
    print(f"{who:>8} | {what}")


async def demo(backend: str) -> None:
    async with Hub() as hub, anyio.create_task_group() as tg:
        chat = ChatServer(hub)
        server = await tg.start(serve_websocket, chat.handler, "127.0.0.1", 0)
        base = f"ws://127.0.0.1:{server.port}"
        say("server", f"chat server listening on {base}/ (on {backend})")

        try:
            async with open_websocket_url(f"{base}/"):
                pass
        except ConnectionRejected as rejected:
            reason = rejected.body.decode().strip()
            say("nobody", f"rejected without a name: HTTP {rejected.status_code} ({reason})")

        async with open_websocket_url(f"{base}/?name=alice") as alice:
            # Each member first sees its own arrival: then it is in the room.
            say("alice", f"received {await alice.get_message()!r}")
            async with open_websocket_url(f"{base}/?name=bob") as bob:
                say("bob", f"received {await bob.get_message()!r}")
                say("alice", f"received {await alice.get_message()!r}")
                await alice.send_message("hello bob!")
                say("bob", f"received {await bob.get_message()!r}")
                await bob.send_message("hi alice! shall we stop the server?")
                for _ in range(2):  # her own message, then bob's
                    say("alice", f"received {await alice.get_message()!r}")
                latency = await bob.ping()
                say("bob", f"ping round trip {latency * 1000:.2f} ms")

                say("server", f"{len(server.connections)} open connections; shutting down")
                await server.aclose()
                for name, ws in (("alice", alice), ("bob", bob)):
                    try:
                        while True:  # what is still on its way, then the close
                            await ws.get_message()
                    except ConnectionClosed as closed:
                        say(name, f"closed by the server: {closed.code} {closed.reason!r}")
    say("server", "stopped cleanly")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    args = parser.parse_args()
    anyio.run(demo, args.backend, backend=args.backend)
