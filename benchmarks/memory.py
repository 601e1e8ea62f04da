"""Memory per idle connection: the growth of a server's resident memory per open connection.

One server process (``peers.py serve``) and one client process (``peers.py hold``) of the same
library; the client opens N connections and leaves them idle. The server's RSS (``VmRSS`` of
``/proc/PID/status``, read inside the server right after ``gc.collect()``) is taken after a
warm-up batch of connections has come and gone, and again once all N are open; the
difference divided by N is the cost of one idle connection, handshake buffers, tasks, keepalive
and (with compression) the zlib contexts included. Library defaults apply, except that
compression is switched on (each library's default permessage-deflate settings) or off.

    python benchmarks/memory.py                 # 2,000 connections
    python benchmarks/memory.py --quick         # 200 connections
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from run import Server  # noqa: E402

LIBRARIES = ["trio_ws-trio", "websockets-asyncio"]
#: Issue 6's targets for trio_ws, in KiB per connection, by compression on/off.
TARGETS = {False: 10.0, True: 40.0}
#: What websockets documents for itself, for the table (KiB per connection).
DOCUMENTED = {False: 14.0, True: 64.0}


def _rss(server: Server) -> tuple[int, int]:
    answer = server.command("rss").split()
    if len(answer) != 3 or answer[0] != "rss":
        raise RuntimeError(f"bad answer from the server: {answer!r}: {server.error_tail()}")
    return int(answer[1]), int(answer[2])


def _hold(
    library: str, port: int, connections: int, compression: bool, exchange: bool = False
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(HERE / "peers.py"),
        "hold",
        library,
        "--port",
        str(port),
        "--connections",
        str(connections),
    ]
    if compression:
        command.append("--compression")
    if exchange:
        command.append("--exchange")
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_open(client: subprocess.Popen[str], timeout: float) -> None:
    import selectors

    assert client.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(client.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            client.kill()
            raise RuntimeError("the client did not open its connections in time")
    line = client.stdout.readline().strip()
    if not line.startswith("open"):
        client.kill()
        _, errors = client.communicate()
        raise RuntimeError(f"the client failed: {line!r} {errors[-2000:]}")


def _release(client: subprocess.Popen[str]) -> None:
    assert client.stdin is not None
    client.stdin.close()
    try:
        client.wait(20)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait()


def measure(library: str, connections: int, compression: bool, exchange: bool) -> float:
    """KiB of server RSS per idle open connection of ``library``.

    With ``exchange``, each connection has echoed one 1 KiB text message before going idle.
    """
    server = Server(library, compression=compression, max_size=2**20)
    try:
        # Warm-up: the first connections pay for imports, caches and arenas once.
        warmup = _hold(library, server.port, min(50, connections), compression, exchange)
        _wait_open(warmup, 60)
        _release(warmup)
        for _ in range(100):
            if _rss(server)[1] == 0:
                break
            time.sleep(0.1)
        before, _ = _rss(server)
        client = _hold(library, server.port, connections, compression, exchange)
        try:
            _wait_open(client, 300)
            # The client sees the 101 before the server's handler has settled: wait for it.
            for _ in range(200):
                after, open_now = _rss(server)
                if open_now >= connections:
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError(f"server has {open_now} of {connections} connections open")
            time.sleep(1.0)
            after, open_now = _rss(server)
        finally:
            _release(client)
        return (after - before) / connections
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the targets; returns a process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 connections")
    parser.add_argument("--connections", type=int, help="connections (default 2000)")
    parser.add_argument("--libraries", nargs="+", choices=peers.LIBRARIES, metavar="LIB")
    args = parser.parse_args(argv)
    connections = args.connections or (200 if args.quick else 2000)
    peers.raise_fd_limit(connections + 256)

    libraries = []
    for name in args.libraries or LIBRARIES:
        reason = peers.missing_reason(peers.LIBRARIES[name])
        if reason:
            print(f"SKIPPED {name}: {reason}")
        else:
            libraries.append(name)

    print(f"Server memory per idle connection, {connections} connections, KiB (RSS growth / N).")
    print("'fresh': idle since the handshake; 'used': idle after echoing one 1 KiB message.")
    results: dict[tuple[str, bool, bool], float] = {}
    failed = False
    for compression in (False, True):
        for exchange in (False, True):
            for library in libraries:
                if compression and not peers.LIBRARIES[library].compression:
                    continue
                label = (
                    f"{library:20} compression {'on ' if compression else 'off'} "
                    f"{'used ' if exchange else 'fresh'}"
                )
                try:
                    value = measure(library, connections, compression, exchange)
                except RuntimeError as exc:
                    print(f"  {label}: ERROR {exc}")
                    failed = True
                    continue
                results[library, compression, exchange] = value
                print(f"  {label}: {value:6.1f} KiB", flush=True)

    print()
    columns = [(library, exchange) for library in libraries for exchange in (False, True)]
    print(
        "| compression | "
        + " | ".join(f"{library} {'used' if used else 'fresh'}" for library, used in columns)
        + " | websockets documents | target |"
    )
    print("|---|" + "---:|" * (len(columns) + 2))
    for compression in (False, True):
        cells = [
            f"{results[library, compression, used]:.1f}"
            if (library, compression, used) in results
            else "n/a"
            for library, used in columns
        ]
        print(
            f"| {'on (defaults)' if compression else 'off'} | "
            + " | ".join(cells)
            + f" | {DOCUMENTED[compression]:.0f} | <= {TARGETS[compression]:.0f} |"
        )
    print()
    print("Targets of issue 6 (memory per idle connection, trio_ws on trio):")
    for compression in (False, True):
        for exchange in (False, True):
            value = results.get(("trio_ws-trio", compression, exchange))
            label = (
                f"{'with' if compression else 'without'} compression, "
                f"{'after one message' if exchange else 'fresh'}"
            )
            if value is None:
                print(f"  [NOT MEASURED] {label}: <= {TARGETS[compression]:.0f} KiB")
            else:
                verdict = "MET" if value <= TARGETS[compression] else "NOT MET"
                print(f"  [{verdict}] {label}: {value:.1f} KiB (<= {TARGETS[compression]:.0f} KiB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
