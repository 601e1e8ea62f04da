"""Talk to a WebSocket server from ordinary, blocking code: no async, no await.

Usage: python examples/sync_client.py URL [MESSAGE ...]

Sends each MESSAGE (or three greetings), prints each answer, and waits at most five seconds
for each one. The event loop runs in a background thread that ``connect_sync`` starts and
stops; Ctrl-C closes the connection cleanly (code 1001) before the script exits.
"""

from __future__ import annotations

import sys

from trio_ws import ConnectionClosed, HandshakeError, connect_sync


def main(url: str, messages: list[str]) -> int:
    try:
        with connect_sync(url, open_timeout=10) as ws:
            for message in messages:
                ws.send(message)
                print("answer:", ws.recv(timeout=5))
    except HandshakeError as exc:  # before TimeoutError: a HandshakeTimeout is both
        print(f"the handshake failed: {exc}", file=sys.stderr)
        return 1
    except TimeoutError:
        print("no answer within 5 seconds", file=sys.stderr)
        return 1
    except ConnectionClosed as exc:
        print(f"the server closed the connection: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"could not connect: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2:] or ["hello", "from", "blocking code"]))
