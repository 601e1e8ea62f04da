"""The chat (examples/chat_server.py) in N worker processes sharing one port.

Each worker binds the same port with ``reuse_port=True`` (SO_REUSEPORT: Linux, macOS, the
BSDs; not Windows) and the kernel spreads the connections between them. With
``--redis URL`` the rooms are topics of a :class:`trio_ws.RedisHub`, so the members of a
room talk whichever worker they reached; without it each worker has its own in-process
:class:`trio_ws.Hub` and a room only spans the members of one worker (fine for a demo,
wrong for a chat). ``/worker`` answers the worker's process id. Ctrl-C (SIGINT) or SIGTERM
stops every worker: members get 1001 (going away)::

    python3 examples/multiprocess_server.py --workers 4 --port 8765 --redis redis://HOST
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import socket
import subprocess
import sys
import time

import anyio
from chat_server import ChatServer  # the example next to this one

from trio_ws import (
    BaseHub,
    Handler,
    Hub,
    RedisHub,
    WebSocketRequest,
    serve_websocket,
)


def worker_handler(chat: ChatServer) -> Handler:
    """The chat's handler, plus ``/worker``: which process answered."""

    async def handler(request: WebSocketRequest) -> None:
        if request.path == "/worker" and not request.is_websocket:
            await request.reject(200, body=f"{os.getpid()}\n")
        else:
            await chat.handler(request)

    return handler


async def worker(host: str, port: int, redis: str | None) -> None:
    """One worker: the chat on ``host:port``, the port shared with the other workers."""
    # Opened first and closed last: a second signal during the shutdown (see
    # ignore_stop_signals) lands in it and changes nothing; one during the start-up stops
    # the worker as soon as it listens.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        hub: BaseHub = Hub() if redis is None else RedisHub(redis)
        async with hub:
            handler = worker_handler(ChatServer(hub))
            async with anyio.create_task_group() as tg:
                serve = functools.partial(serve_websocket, allow_plain_http=True, reuse_port=True)
                await tg.start(serve, handler, host, port)
                print(f"worker {os.getpid()} listening", flush=True)
                async for _ in signals:
                    tg.cancel_scope.cancel()  # members get 1001 (going away)
                    break
    ignore_stop_signals()  # closing the receiver restored a handler (on asyncio the default)


def ignore_stop_signals() -> None:
    """Ignore SIGINT and SIGTERM: a worker does, except while its signal receiver is open.

    A worker is signalled twice when its whole process group is (Ctrl-C in a terminal, or
    a service manager that signals every process of the service): directly, then by the
    supervisor, which forwards the signal. The second must neither interrupt the graceful
    shutdown (KeyboardInterrupt) nor kill a worker that has finished it and is exiting
    (which the supervisor would report as a failure). The supervisor starts the workers so
    (ignored dispositions survive exec, and Python keeps them), and a worker calls this
    again once it has closed its receiver.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def free_port(host: str) -> socket.socket:
    """A socket holding a free port for the workers (SO_REUSEPORT, so they can bind it)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock  # bound, not listening: it receives no connections


def supervise(args: argparse.Namespace) -> int:
    """Start the workers, print the URL once they all listen, stop them on a signal."""
    holder = free_port(args.host) if args.port == 0 else None
    port = holder.getsockname()[1] if holder is not None else args.port
    command = [sys.executable, __file__, "--worker", "--host", args.host, "--port", str(port)]
    command += ["--backend", args.backend] + (["--redis", args.redis] if args.redis else [])
    stop = [False]

    def on_signal(signum: int, frame: object) -> None:
        stop[0] = True

    # Before the workers start: a signal meanwhile must not kill the supervisor and leave
    # the workers running.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # The workers start with the signals ignored (preexec_fn: the supervisor has no threads):
    # one that Ctrl-C reaches while it imports would otherwise die of a KeyboardInterrupt.
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, preexec_fn=ignore_stop_signals)
        for _ in range(args.workers)
    ]
    ready: list[subprocess.Popen[str]] = []
    try:
        for process in workers:
            assert process.stdout is not None
            if not process.stdout.readline():  # "worker PID listening"
                print("a worker failed to start", file=sys.stderr)
                return 1
            ready.append(process)
        if holder is not None:
            holder.close()
        shared = "rooms shared through Redis" if args.redis else "rooms per worker"
        if not stop[0]:  # else stopped while starting
            print(
                f"{args.workers} workers on ws://{args.host}:{port}/?name=YOURNAME ({shared})",
                flush=True,
            )
        while not stop[0] and all(process.poll() is None for process in workers):
            time.sleep(0.2)
    finally:
        for process in workers:
            if process.poll() is None:
                if process in ready:
                    process.send_signal(signal.SIGINT)  # graceful: members get 1001
                else:
                    # Serving nobody yet, and ignoring signals until its receiver is open.
                    process.kill()
        codes = [_wait_or_kill(process) for process in workers]
    print("stopped", flush=True)
    return 0 if all(code == 0 for code in codes) else 1


def _wait_or_kill(process: subprocess.Popen[str], timeout: float = 30) -> int:
    """The worker's exit code; a worker that has not stopped within ``timeout`` is killed."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"worker {process.pid} did not stop within {timeout:g} s: killed", file=sys.stderr)
        process.kill()
        return process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free one")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backend", choices=["trio", "asyncio"], default="trio")
    parser.add_argument("--redis", metavar="URL", help="share the rooms through this Redis")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        anyio.run(worker, args.host, args.port, args.redis, backend=args.backend)
    else:
        sys.exit(supervise(args))
