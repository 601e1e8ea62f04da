"""Send a few messages to a WebSocket echo server and print the answers.

Usage: python examples/echo_client.py [ws://127.0.0.1:8765/]  (the echo server's default)

Runs on trio by default; set TRIO_WS_BACKEND=asyncio to run the same code on asyncio.
"""

from __future__ import annotations

import os
import sys

import anyio

from trio_ws import open_websocket_url


async def main(url: str) -> None:
    async with open_websocket_url(url) as ws:
        for text in ("hello", "structured", "concurrency"):
            await ws.send_message(text)
            print("echo:", await ws.get_message())
        print(f"round trip: {await ws.ping() * 1000:.2f} ms")


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "ws://127.0.0.1:8765/"
    anyio.run(main, target, backend=os.environ.get("TRIO_WS_BACKEND", "trio"))
