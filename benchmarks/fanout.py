"""Fan-out throughput (issue 12): messages per second delivered to 1,000 subscribers.

Scenarios, measured in the same run:

- ``hub``: a trio_ws hub, in the process: one publisher, 1,000 subscriber tasks that each
  receive every message (no network). On trio and on asyncio.
- ``hub-ws``: the hub behind a WebSocket server: 1,000 connections, each handler forwards
  its subscription with ``send_message`` (the chat server's shape).
- ``broadcast``: ``trio_ws.broadcast()`` to the 1,000 connections (one frame, encoded once).
- ``websockets``: ``websockets.asyncio.server.broadcast()`` to 1,000 connections.

The WebSocket scenarios share one client: a separate process that opens the connections
with a minimal handshake (no extensions) and counts the bytes of every frame it receives,
the same for every server. A delivery is one message received by one connection; the rate
is deliveries divided by the time from the first publish to the last byte received. Every
scenario is lossless here (the write buffers are large enough to hold the whole run), and
any loss would be reported.

    python benchmarks/fanout.py            # 1,000 subscribers x 1,000 messages
    python benchmarks/fanout.py --quick    # 1,000 x 200, a smoke run
    python benchmarks/fanout.py --hub redis   # the hubs through Redis (its own redis-server)
    python benchmarks/fanout.py --hub NAME --hub-url URL   # another hub (see HUBS)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

HERE = Path(__file__).resolve().parent
# The trio_ws of this checkout, also when another one is installed.
sys.path.insert(0, str(HERE.parent))

import anyio  # noqa: E402

import trio_ws  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Hubs by name: a factory taking the ``--hub-url`` value. A hub that spans processes (a
#: Redis hub, say) registers itself here; the ``hub`` and ``hub-ws`` scenarios use it.
HUBS: dict[str, Callable[[str | None], trio_ws.BaseHub]] = {
    "inprocess": lambda url: trio_ws.Hub(),
    # Without --hub-url, main() starts a redis-server of its own on a free loopback port.
    "redis": lambda url: trio_ws.RedisHub(url or "redis://127.0.0.1:6379"),
}


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway ``redis-server`` on a free loopback port, without persistence; its URL."""
    program = shutil.which("redis-server")
    if program is None:
        sys.exit("SKIPPED the redis hub: redis-server is not installed (apt install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                program,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                directory,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:  # bounded: until it accepts connections, at most 10 s
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


PAYLOAD = b"m" * 64  # a small chat-like message; its server frame is 2 + 64 bytes
FRAME_SIZE = 2 + len(PAYLOAD)
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


# ------------------------------------------------------------------ the reader process


def run_reader(port: int, connections: int, messages: int, idle: float) -> None:
    """Open ``connections``, say ``ready``, count bytes until all arrived or ``idle`` s pass."""
    expected = messages * FRAME_SIZE
    selector = selectors.DefaultSelector()
    received: dict[socket.socket, int] = {}
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(HANDSHAKE)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise SystemExit("the server closed during the handshake")
            head += chunk
        status, _, rest = head.partition(b"\r\n\r\n")
        if not status.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"handshake refused: {status[:80]!r}")
        received[sock] = len(rest)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    print("ready", flush=True)
    pending = sum(1 for count in received.values() if count < expected)
    last = time.monotonic()
    while pending:
        events = selector.select(timeout=idle)
        if not events:
            break
        for key, _ in events:
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                chunk = sock.recv(1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                selector.unregister(sock)
                continue
            before = received[sock]
            received[sock] = before + len(chunk)
            if before < expected <= received[sock]:
                pending -= 1
        last = time.monotonic()
    total = sum(min(count, expected) for count in received.values())
    print(json.dumps({"frames": total // FRAME_SIZE, "last": last}), flush=True)
    for sock in received:
        sock.close()


class Reader:
    """The reader process, seen from the server under test."""

    def __init__(self, port: int, connections: int, messages: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--reader",
                str(port),
                str(connections),
                str(messages),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )

    async def ready(self) -> None:
        assert self.process.stdout is not None
        line = await anyio.to_thread.run_sync(self.process.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"the reader failed: {line!r}")

    async def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await anyio.to_thread.run_sync(self.process.stdout.readline)
        await anyio.to_thread.run_sync(self.process.wait)
        return dict(json.loads(line))


def _rate(result: dict[str, Any], start: float, connections: int, messages: int) -> dict[str, Any]:
    frames = int(result["frames"])
    return {
        "rate": frames / (float(result["last"]) - start),
        "lost": connections * messages - frames,
    }


# ----------------------------------------------------------------------- scenarios


async def hub_in_process(
    make_hub: Callable[[], trio_ws.BaseHub], subscribers: int, messages: int
) -> dict[str, Any]:
    """One publisher, ``subscribers`` tasks that each receive ``messages``."""
    received = 0
    message = PAYLOAD.decode()
    async with make_hub() as hub, anyio.create_task_group() as tg:
        ready = 0
        all_ready = anyio.Event()

        async def subscriber() -> None:
            nonlocal received, ready
            async with hub.subscribe("bench", max_buffer=messages) as subscription:
                ready += 1
                if ready == subscribers:
                    all_ready.set()
                count = 0
                async for _ in subscription:
                    count += 1
                    if count == messages:
                        break
                received += count

        for _ in range(subscribers):
            tg.start_soon(subscriber)
        await all_ready.wait()
        start = time.monotonic()
        for _ in range(messages):
            await hub.publish("bench", message)
    elapsed = time.monotonic() - start
    return {"rate": received / elapsed, "lost": subscribers * messages - received}


async def trio_ws_server(
    mode: str, make_hub: Callable[[], trio_ws.BaseHub], connections: int, messages: int
) -> dict[str, Any]:
    """``mode`` ``"broadcast"`` or ``"hub-ws"``: trio_ws serving the reader process."""
    conns: list[trio_ws.WebSocketConnection] = []
    joined = anyio.Event()
    message = PAYLOAD.decode()
    async with make_hub() as hub:

        async def forward(
            subscription: trio_ws.Subscription, ws: trio_ws.WebSocketConnection
        ) -> None:
            async for text in subscription:
                await ws.send_message(text)

        async def handler(request: trio_ws.WebSocketRequest) -> None:
            ws = await request.accept()
            if mode == "broadcast":
                conns.append(ws)
                if len(conns) == connections:
                    joined.set()
                async for _ in ws:
                    pass
                return
            async with hub.subscribe("bench", max_buffer=messages) as subscription:
                conns.append(ws)
                if len(conns) == connections:
                    joined.set()
                async with ws.task_group() as tasks:
                    tasks.start_soon(forward, subscription, ws)
                    async for _ in ws:
                        pass

        async with anyio.create_task_group() as tg:
            server = await tg.start(
                lambda task_status: trio_ws.serve_websocket(
                    handler,
                    "127.0.0.1",
                    0,
                    ping_interval=None,
                    compression=None,
                    write_high_water=2**24,  # holds the whole run: lossless, like websockets
                    task_status=task_status,
                )
            )
            reader = Reader(server.port, connections, messages)
            await reader.ready()
            await joined.wait()
            start = time.monotonic()
            for _ in range(messages):
                if mode == "broadcast":
                    trio_ws.broadcast(conns, message)
                    await anyio.lowlevel.checkpoint()
                else:
                    await hub.publish("bench", message)
            result = await reader.result()
            tg.cancel_scope.cancel()
    return _rate(result, start, connections, messages)


async def websockets_server(connections: int, messages: int) -> dict[str, Any]:
    """websockets' own broadcast() on asyncio, serving the reader process."""
    import asyncio

    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    conns: list[ServerConnection] = []
    joined = asyncio.Event()
    message = PAYLOAD.decode()

    async def handler(ws: ServerConnection) -> None:
        conns.append(ws)
        if len(conns) == connections:
            joined.set()
        with contextlib.suppress(ConnectionClosed):  # the reader exits without closing
            async for _ in ws:
                pass

    async with serve(
        handler, "127.0.0.1", 0, ping_interval=None, compression=None, max_queue=None
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        reader = Reader(port, connections, messages)
        await reader.ready()
        await joined.wait()
        start = time.monotonic()
        for _ in range(messages):
            broadcast(conns, message)
            await asyncio.sleep(0)
        result = await reader.result()
        server.close()
    return _rate(result, start, connections, messages)


# --------------------------------------------------------------------------- main


def run_one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    make_hub = lambda: HUBS[args.hub](args.hub_url)  # noqa: E731
    n, m = args.subscribers, args.messages
    if name == "hub (trio)":
        return anyio.run(hub_in_process, make_hub, n, m, backend="trio")
    if name == "hub (asyncio)":
        return anyio.run(hub_in_process, make_hub, n, m, backend="asyncio")
    if name == "hub-ws (trio)":
        return anyio.run(trio_ws_server, "hub-ws", make_hub, n, m, backend="trio")
    if name == "broadcast (trio)":
        return anyio.run(trio_ws_server, "broadcast", make_hub, n, m, backend="trio")
    if name == "broadcast (asyncio)":
        return anyio.run(trio_ws_server, "broadcast", make_hub, n, m, backend="asyncio")
    if name == "websockets broadcast":
        import asyncio

        return asyncio.run(websockets_server(n, m))
    raise ValueError(name)


SCENARIOS = [
    "hub (trio)",
    "hub (asyncio)",
    "hub-ws (trio)",
    "broadcast (trio)",
    "broadcast (asyncio)",
    "websockets broadcast",
]
BASELINE = "websockets broadcast"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one round")
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--hub", choices=sorted(HUBS), default="inprocess")
    parser.add_argument("--hub-url", default=None, help="passed to the hub's factory")
    parser.add_argument("--reader", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        run_reader(*args.reader, idle=10.0)
        return
    if args.hub == "redis" and args.hub_url is None:
        with redis_server() as url:
            args.hub_url = url
            _measure(args)
        return
    _measure(args)


def _measure(args: argparse.Namespace) -> None:
    if args.messages is None:
        args.messages = 200 if args.quick else 1000
    rounds = args.rounds or (1 if args.quick else 3)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in SCENARIOS}
    for round_ in range(rounds):
        # Rotate the order, so that slow drifts of the machine hit every scenario alike.
        order = SCENARIOS[round_ % len(SCENARIOS) :] + SCENARIOS[: round_ % len(SCENARIOS)]
        for name in order:
            results[name].append(run_one(name, args))
    baseline = statistics.median(r["rate"] for r in results[BASELINE])
    print(
        f"fan-out: {args.subscribers} subscribers x {args.messages} messages of "
        f"{len(PAYLOAD)} bytes, hub {args.hub!r}, median of {rounds} round(s), "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"{'scenario':<24}{'deliveries/s':>14}{'vs websockets':>15}{'lost':>8}")
    for name in SCENARIOS:
        rate = statistics.median(r["rate"] for r in results[name])
        lost = max(r["lost"] for r in results[name])
        print(f"{name:<24}{rate:>14,.0f}{rate / baseline:>14.2f}x{lost:>8}")


if __name__ == "__main__":
    main()
