"""The Autobahn Testsuite testee server: a trio_ws server that echoes every message.

The suite's fuzzing client (``wstest -m fuzzingclient``) connects once per case and checks
what comes back. Usage::

    python compliance/echo_server.py [--backend trio|asyncio] [--no-compression] PORT

It prints one line once it is listening, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import functools
import signal

import anyio

import trio_ws

# The 9.x cases send messages of up to 16 MiB; leave room above the largest.
MAX_MESSAGE_SIZE = 2**26


async def echo(request: trio_ws.WebSocketRequest) -> None:
    """Accept the connection and send back every message until the peer closes."""
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
            await ws.send_message(message)
        except trio_ws.ConnectionClosed:
            return


async def serve(port: int, *, compression: bool) -> None:
    """Serve the echo handler on 127.0.0.1:``port`` until cancelled."""
    async with anyio.create_task_group() as task_group:
        await task_group.start(
            functools.partial(
                trio_ws.serve_websocket,
                echo,
                "127.0.0.1",
                port,
                compression="deflate" if compression else None,
                max_message_size=MAX_MESSAGE_SIZE,
                # 9.3 and 9.4 send 4 MiB messages in fragments as small as 64 bytes.
                max_fragments=None,
                # No keepalive: the suite compares every frame it receives with what the
                # case expects, so a ping of ours in the middle of a long 9.x case fails it.
                ping_interval=None,
            )
        )
        print(f"trio_ws echo server listening on 127.0.0.1:{port}", flush=True)
        # Stop on SIGINT/SIGTERM by cancelling the server: a graceful shutdown, no traceback.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: shutting down", flush=True)
                task_group.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the server on the chosen backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    parser.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    args = parser.parse_args(argv)
    anyio.run(
        functools.partial(serve, args.port, compression=not args.no_compression),
        backend=args.backend,
    )


if __name__ == "__main__":
    main()
