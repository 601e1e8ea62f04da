"""A slowloris attack: connections held, memory per connection, good clients' latency.

One server process (``peers.py serve``) per library. This process opens N attacking
connections that complete the handshake, send the first bytes of a frame and then nothing
(a "slowloris" that a server must hold until its keepalive gives up), while a good client
measures its echo round trips. Reported: how many attacking connections the server held,
its RSS growth per held connection, and the good client's p50/p99 latency without and with
the attack, beside websockets measured the same way in the same run.

    python benchmarks/hostile.py               # 2,000 attacking connections
    python benchmarks/hostile.py --quick       # 200
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from run import Server  # noqa: E402

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
# A masked binary frame announcing 1000 bytes, and only 10 of them.
PARTIAL_FRAME = bytes([0x82, 0x80 | 126]) + (1000).to_bytes(2, "big") + b"mask" + b"x" * 10


def attack(port: int, count: int) -> list[socket.socket]:
    """Open ``count`` connections that stall in the middle of a frame."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        if head.startswith(b"HTTP/1.1 101"):
            sock.sendall(PARTIAL_FRAME)
            held.append(sock)
        else:
            sock.close()
    return held


def still_open(sockets: list[socket.socket]) -> int:
    """How many of ``sockets`` the server has not closed."""
    count = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            count += sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def latencies(port: int, rounds: int) -> list[float]:
    """A good client's echo round trips, in milliseconds."""
    from websockets.sync.client import connect

    times = []
    with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        for index in range(rounds):
            start = time.perf_counter()
            ws.send(f"hello {index}")
            ws.recv()
            times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(library: str, count: int, rounds: int) -> dict[str, float]:
    server = Server(library)
    try:
        time.sleep(0.2)
        quiet = latencies(server.port, rounds)
        before = peers.resident_kib(server.process.pid)
        sockets = attack(server.port, count)
        time.sleep(1)
        during = latencies(server.port, rounds)
        after = peers.resident_kib(server.process.pid)
        held = still_open(sockets)
        for sock in sockets:
            sock.close()
    finally:
        server.stop()
    return {
        "held": held,
        "kib_per_connection": (after - before) / max(1, held),
        "p50_quiet": statistics.median(quiet),
        "p99_quiet": percentile(quiet, 0.99),
        "p50_attack": statistics.median(during),
        "p99_attack": percentile(during, 0.99),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 connections, not 2,000")
    parser.add_argument("--connections", type=int, default=None)
    args = parser.parse_args(argv)
    count = args.connections or (200 if args.quick else 2000)
    peers.raise_fd_limit(2 * count + 256)
    rounds = 200
    results = {}
    for library in ("trio_ws-trio", "trio_ws-asyncio", "websockets-asyncio"):
        if peers.missing_reason(peers.LIBRARIES[library]) is None:
            results[library] = measure(library, count, rounds)
    print(f"slowloris: {count} connections stalled mid-frame, {rounds} echo round trips")
    print(
        f"{'library':<20} {'held':>6} {'KiB/conn':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'p50 attack':>11} {'p99 attack':>11}"
    )
    for library, r in results.items():
        print(
            f"{library:<20} {r['held']:>6.0f} {r['kib_per_connection']:>9.1f} "
            f"{r['p50_quiet']:>8.3f} {r['p99_quiet']:>8.3f} "
            f"{r['p50_attack']:>11.3f} {r['p99_attack']:>11.3f}"
        )
    reference = results.get("websockets-asyncio")
    if reference:
        for library, r in results.items():
            if library != "websockets-asyncio":
                print(
                    f"{library} / websockets-asyncio: memory per connection "
                    f"{r['kib_per_connection'] / reference['kib_per_connection']:.2f}x, "
                    f"p99 under attack {r['p99_attack'] / reference['p99_attack']:.2f}x"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
