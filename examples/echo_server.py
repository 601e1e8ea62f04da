"""An echo server: every message comes back to its sender.

Run it, then talk to it with any WebSocket client::

    python3 examples/echo_server.py --port 8765
    python3 -m websockets ws://127.0.0.1:8765/

Ctrl+C (or SIGTERM) stops it gracefully: it cancels the nursery, and the server answers
that cancellation by closing open connections with 1001 (going away).
"""

from __future__ import annotations

import argparse
import logging
import signal

import trio

from trio_ws import WebSocketRequest, serve_websocket


async def echo(request: WebSocketRequest) -> None:
    # The handler's lifetime is the connection's: returning closes it with 1000.
    ws = await request.accept()
    async for message in ws:  # ends quietly when the client closes
        await ws.send_message(message)


async def main(host: str, port: int) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, echo, host, port)
            print(f"echo server listening on ws://{host}:{server.port}/")
            async for _ in signals:
                nursery.cancel_scope.cancel()  # the graceful shutdown starts here
                break
    print("stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--debug", action="store_true", help="log every frame")
    args = parser.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO)
    trio.run(main, args.host, args.port)
