"""Memory per idle connection: the growth of a server's resident memory per open connection.

One server process (``peers.py serve``) and one client process (``peers.py hold``) of the same
library; the client opens N connections and leaves them idle. The server's RSS (``VmRSS`` of
``/proc/PID/status``, read inside the server right after ``gc.collect()``) is taken after a
warm-up batch of connections has come and gone, and again once all N are open; the
difference divided by N is the cost of one idle connection, handshake buffers, tasks, keepalive
and (with compression) the zlib contexts included. Library defaults apply, except that
compression is switched on (each library's default permessage-deflate settings) or off.

With compression, connections that stay idle are measured once more: trio_ws frees the zlib
state of a connection that was idle for a whole keepalive interval. For that measurement both
libraries' servers run with a keepalive interval of 1 s (``IDLE_PING_INTERVAL``) instead of
their default (20 s), and the server is measured after 3.5 s of idleness. Freed memory goes
back to the allocator, which keeps it for the process's next allocations: RSS shows it only
after glibc's ``malloc_trim(0)``, so these figures are given both ways, with "used" (no idle
release) trimmed the same way for comparison.

    python benchmarks/memory.py                 # 2,000 connections
    python benchmarks/memory.py --quick         # 200 connections
    python benchmarks/memory.py --idle-only     # only the compressed used / idle figures
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from run import Server  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

LIBRARIES = ["trio_ws-trio", "websockets-asyncio"]
#: Issue 6's targets for trio_ws, in KiB per connection, by compression on/off.
TARGETS = {False: 10.0, True: 40.0}
#: What websockets documents for itself, for the table (KiB per connection).
DOCUMENTED = {False: 14.0, True: 64.0}
#: The servers' keepalive interval in the idle measurement, in seconds.
IDLE_PING_INTERVAL = 1.0
#: How long connections stay idle before that measurement: trio_ws releases a connection's
#: zlib state at the first keepalive ping that follows a whole interval without messages.
IDLE_WAIT = 2 * IDLE_PING_INTERVAL + 1.5


def _rss(server: Server, trim: bool = False) -> tuple[int, int]:
    answer = server.command("rss trim" if trim else "rss").split()
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


@contextlib.contextmanager
def _server_ping_interval(seconds: float | None) -> Iterator[None]:
    """Servers started inside use this keepalive interval (``peers.py`` reads it)."""
    if seconds is None:
        yield
        return
    previous = os.environ.get("PEERS_PING_INTERVAL")
    os.environ["PEERS_PING_INTERVAL"] = str(seconds)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["PEERS_PING_INTERVAL"]
        else:
            os.environ["PEERS_PING_INTERVAL"] = previous


def measure(
    library: str,
    connections: int,
    compression: bool,
    exchange: bool,
    *,
    idle: bool = False,
    trim: bool = False,
) -> float:
    """KiB of server RSS per idle open connection of ``library``.

    With ``exchange``, each connection has echoed one 1 KiB text message before going idle.
    With ``idle``, the server pings every ``IDLE_PING_INTERVAL`` seconds and is measured after
    ``IDLE_WAIT`` seconds of idleness. With ``trim``, each reading of RSS follows
    ``malloc_trim(0)``.
    """
    with _server_ping_interval(IDLE_PING_INTERVAL if idle else None):
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
        before, _ = _rss(server, trim)
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
            time.sleep(IDLE_WAIT if idle else 1.0)
            after, open_now = _rss(server, trim)
            if open_now < connections:
                raise RuntimeError(f"server has {open_now} of {connections} connections open")
        finally:
            _release(client)
        return (after - before) / connections
    finally:
        server.stop()


IDLE_COLUMNS = {
    "used": (False, False),
    "used, trimmed": (False, True),
    "idle": (True, False),
    "idle, trimmed": (True, True),
}


def measure_idle(
    libraries: list[str], connections: int
) -> tuple[dict[tuple[str, str], float], bool]:
    """The compressed connections that echoed a message, before and after an idle release."""
    print()
    print(
        f"With compression, after one message each way; 'idle': servers ping every "
        f"{IDLE_PING_INTERVAL:g} s (not their default 20 s), measured after {IDLE_WAIT:g} s "
        "of idleness; 'trimmed': malloc_trim(0) before each RSS reading."
    )
    results: dict[tuple[str, str], float] = {}
    failed = False
    for column, (idle, trim) in IDLE_COLUMNS.items():
        for library in libraries:
            if not peers.LIBRARIES[library].compression:
                continue
            label = f"{library:20} compression on  {column:13}"
            try:
                value = measure(library, connections, True, True, idle=idle, trim=trim)
            except RuntimeError as exc:
                print(f"  {label}: ERROR {exc}")
                failed = True
                continue
            results[library, column] = value
            print(f"  {label}: {value:6.1f} KiB", flush=True)
    return results, failed


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table and the targets; returns a process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 connections")
    parser.add_argument("--connections", type=int, help="connections (default 2000)")
    parser.add_argument("--libraries", nargs="+", choices=peers.LIBRARIES, metavar="LIB")
    parser.add_argument(
        "--idle-only", action="store_true", help="only the compressed used / idle figures"
    )
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
    results: dict[tuple[str, bool, bool], float] = {}
    failed = False
    if not args.idle_only:
        print("'fresh': idle since the handshake; 'used': idle after echoing one 1 KiB message.")
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
    idle_results, idle_failed = measure_idle(libraries, connections)
    failed = failed or idle_failed

    if not args.idle_only:
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
    print(
        f"Compression on, after one message each way (servers pinging every "
        f"{IDLE_PING_INTERVAL:g} s for the idle columns), KiB per connection:"
    )
    print("| library | " + " | ".join(IDLE_COLUMNS) + " |")
    print("|---|" + "---:|" * len(IDLE_COLUMNS))
    for library in libraries:
        if peers.LIBRARIES[library].compression:
            cells = [
                f"{idle_results[library, column]:.1f}"
                if (library, column) in idle_results
                else "n/a"
                for column in IDLE_COLUMNS
            ]
            print(f"| {library} | " + " | ".join(cells) + " |")

    print()
    print("Targets of issue 6 (memory per idle connection, trio_ws on trio):")
    verdicts: list[tuple[str, float | None, float]] = []
    if not args.idle_only:
        for compression in (False, True):
            for exchange in (False, True):
                label = (
                    f"{'with' if compression else 'without'} compression, "
                    f"{'after one message' if exchange else 'fresh'}"
                )
                value = results.get(("trio_ws-trio", compression, exchange))
                verdicts.append((label, value, TARGETS[compression]))
    for column in ("idle", "idle, trimmed"):
        label = f"with compression, after one message then idle past a keepalive ({column})"
        verdicts.append((label, idle_results.get(("trio_ws-trio", column)), TARGETS[True]))
    for label, value, target in verdicts:
        if value is None:
            print(f"  [NOT MEASURED] {label}: <= {target:.0f} KiB")
        else:
            verdict = "MET" if value <= target else "NOT MET"
            print(f"  [{verdict}] {label}: {value:.1f} KiB (<= {target:.0f} KiB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
