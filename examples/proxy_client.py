"""Send a message to a WebSocket server through a proxy, and tell what went wrong if it fails.

Usage: python examples/proxy_client.py URL [PROXY]

PROXY is an http://, https://, socks5:// or socks5h:// URL, with user:password@ if the
proxy wants credentials. Without it the proxy comes from the environment (https_proxy for
wss://, http_proxy for ws://, all_proxy, no_proxy); PROXY "none" connects directly.
"""

from __future__ import annotations

import sys

import trio

from trio_ws import HandshakeError, ProxyError, open_websocket_url


async def main(url: str, proxy: str | bool | None) -> int:
    try:
        with trio.fail_after(10):
            async with open_websocket_url(url, proxy=proxy) as ws:
                await ws.send_message("hello through the proxy")
                print("answer:", await ws.get_message())
    except ProxyError as exc:
        detail = f" (HTTP {exc.status_code})" if exc.status_code else ""
        print(f"the proxy said no{detail}: {exc}", file=sys.stderr)
        return 2
    except (HandshakeError, OSError) as exc:
        print(f"could not connect: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    argument = sys.argv[2] if len(sys.argv) > 2 else None
    chosen: str | bool | None = True if argument is None else argument
    if argument == "none":
        chosen = None
    sys.exit(trio.run(main, sys.argv[1], chosen))
