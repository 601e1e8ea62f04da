"""Stay connected to a WebSocket server: reconnect, with backoff, whenever the connection drops.

Usage: python examples/reconnecting_client.py URL

On each connection it sends "hello" and prints what comes back. Stop the server and start
it again: the client waits (1 s, then 2 s, 4 s, ... up to a minute, with jitter) and
reconnects. Each attempt is logged to stderr. Ctrl-C stops it.
"""

from __future__ import annotations

import logging
import sys

import trio

from trio_ws import Backoff, ConnectionClosed, reconnecting


async def main(url: str) -> None:
    backoff = Backoff(initial_delay=0.5, max_delay=10)
    async with reconnecting(url, backoff=backoff) as attempts:
        async for ws in attempts:
            print(f"connected (attempt {attempts.attempts})", flush=True)
            try:
                await ws.send_message("hello")
                async for message in ws:  # ends quietly when the server closes normally
                    print("received:", message, flush=True)
            except ConnectionClosed as exc:  # dropped: the loop reconnects
                print(f"connection lost: {exc}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        trio.run(main, sys.argv[1])
    except KeyboardInterrupt:
        pass
