"""Instructions per echoed message on trio, counted by valgrind: steady where rates are not.

Server and clients run in one trio process (``CONNECTIONS`` clients, each sending 32 bytes
of text and awaiting the echo); valgrind's callgrind counts the instructions of the whole
process. Each library runs twice, with ``N`` and ``2 N`` echoes per connection, and the
difference divided by the extra echoes is the cost of one echo, both sides together:
start-up, imports and the handshakes cancel out.

    python benchmarks/instructions.py                    # every library below
    python benchmarks/instructions.py tcp-trio trio_ws-trio --echoes 100

The libraries are the trio columns of ``run.py`` (see ``peers.py``), the raw TCP floor
included: the floor's count is what trio and the kernel cost per echo, and what a library
counts above it is its own. Instructions are not time (a system call counts only its few
user-space instructions), but they do not move with the load of the machine, so a change
of a few per cent shows. Needs ``valgrind``; takes one to three minutes per library.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from run import free_port  # noqa: E402

LIBRARIES = ("tcp-trio", "trio_ws-trio", "trio_ws-trio-nowait", "websockets-trio")
MESSAGE = "0123456789abcdefghijklmnopqrstuv"
#: valgrind runs a process about 50 times slower: trio_ws's reader grace period (a timer
#: that fires a few times a second on a busy connection) is stretched as much, so that it
#: fires as often per message as it does at full speed.
VALGRIND_SLOWDOWN = 50


def child(library_name: str, connections: int, echoes: int) -> None:
    """Run the echoes in this process (under valgrind, started by :func:`count`)."""
    import trio

    library = peers.LIBRARIES[library_name]
    if library_name.startswith("trio_ws"):
        from trio_ws import _reader

        _reader.GETTER_GRACE *= VALGRIND_SLOWDOWN

    async def main() -> None:
        port = free_port()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: library.serve(port, compression=False, max_size=None, ping_interval=None)
            )
            await peers.wait_until_listening(port)
            url = f"ws://127.0.0.1:{port}/"

            async def client() -> None:
                async with library.connect(url, compression=False, max_size=None) as (
                    send,
                    recv,
                ):
                    for _ in range(echoes):
                        await send(MESSAGE)
                        if await recv() != MESSAGE:
                            raise AssertionError("bad echo")

            async with trio.open_nursery() as clients:
                for _ in range(connections):
                    clients.start_soon(client)
            nursery.cancel_scope.cancel()

    trio.run(main)


def count(library: str, connections: int, echoes: int) -> int:
    """Instructions callgrind counts for the whole child process."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={scratch}/out",
            sys.executable,
            __file__,
            "--child",
            library,
            str(connections),
            str(echoes),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"{library} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    """Count every library's instructions per echo and print them beside the floor's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("libraries", nargs="*", metavar="LIB", help=", ".join(LIBRARIES))
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--echoes", type=int, default=200, help="N, echoes per connection")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        name, connections, echoes = args.child
        child(name, int(connections), int(echoes))
        return 0
    unknown = [name for name in args.libraries if name not in LIBRARIES]
    if unknown:
        parser.error(f"unknown libraries {unknown}: choose from {', '.join(LIBRARIES)}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing counted")
        return 1
    results: dict[str, float] = {}
    for library in args.libraries or LIBRARIES:
        reason = peers.missing_reason(peers.LIBRARIES[library])
        if reason:
            print(f"  SKIPPED {library}: {reason}")
            continue
        low = count(library, args.connections, args.echoes)
        high = count(library, args.connections, 2 * args.echoes)
        results[library] = (high - low) / (args.connections * args.echoes)
        print(f"  {library:22} {results[library] / 1000:7.1f} k instructions per echo", flush=True)
    floor = results.get("tcp-trio")
    print()
    print(f"{args.connections} connections in one trio process; both sides of each echo counted.")
    print("| library | k instructions per echo | above the floor | ratio to websockets-trio |")
    print("|---|---:|---:|---:|")
    peer = results.get("websockets-trio")
    for library, value in results.items():
        above = f"{(value - floor) / 1000:.1f} k" if floor else "n/a"
        ratio = f"{peer / value:.2f}x" if peer else "n/a"
        print(f"| {library} | {value / 1000:.1f} | {above} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
