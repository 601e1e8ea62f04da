"""Profile a library's echo SERVER process while a client runs one end-to-end scenario.

Two tools: cProfile (deterministic; its per-call overhead inflates small functions) inside
the server, or py-spy (sampling, nearly free; ``pip install py-spy``) attached from outside.
Both print where the server spends its time: by function, own time first, then inclusive.

    python benchmarks/profile_server.py trio_ws-trio pipelined              # py-spy
    python benchmarks/profile_server.py trio_ws-trio rtt --tool cprofile
    python benchmarks/profile_server.py trio_ws-trio pipelined --flamegraph /tmp/flame.svg
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from run import FULL, Plan, Server, run_client  # noqa: E402


def summarise_collapsed(path: Path, top: int) -> None:
    """Print own and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        # Frames look like "function (path/file.py:line)"; drop the line to group by function.
        frames = [frame.rsplit(":", 1)[0] + ")" for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        print("no samples")
        return
    print(f"{total} samples. Own time (the function itself, not what it calls):")
    for frame, count in own.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    print("Inclusive time (the function and everything it calls):")
    for frame, count in inclusive.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {frame}")


def main(argv: list[str] | None = None) -> int:
    """Run the server under the chosen profiler, one client run, then print the profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", choices=peers.LIBRARIES)
    parser.add_argument("scenario", choices=FULL)
    parser.add_argument("--tool", choices=["py-spy", "cprofile"], default="py-spy")
    parser.add_argument("--cap", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--flamegraph", type=Path, help="also write a py-spy flame graph (SVG)")
    args = parser.parse_args(argv)

    plan = FULL[args.scenario]
    plan = Plan(count=plan.count * 100, cap=args.cap, connections=plan.connections)
    if args.scenario == "fan-in":
        # The cap is checked between bursts: a burst of 100,000 messages (a few seconds)
        # keeps the run near it. At 10,000 round trips per connection, one burst outlasted
        # the client's deadline.
        plan = Plan(count=500, cap=args.cap, connections=plan.connections)
    workdir = Path(tempfile.mkdtemp(prefix="trio_ws-profile-"))

    if args.tool == "cprofile":
        stats_path = workdir / "server.prof"
        server = Server(args.library, profile=str(stats_path))
        try:
            result = run_client(args.library, args.scenario, server, plan)
        finally:
            server.stop()
        print(result)
        stats = pstats.Stats(str(stats_path))
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        return 0

    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("py-spy is not installed: pip install py-spy")
        return 1
    server = Server(args.library)
    collapsed = workdir / "server.txt"
    record = [py_spy, "record", "--pid", str(server.process.pid), "--rate", "250", "--nonblocking"]
    outputs = [["--format", "raw", "--output", str(collapsed)]]
    if args.flamegraph:
        outputs.append(["--output", str(args.flamegraph)])
    recorders = [
        subprocess.Popen([*record, *output], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for output in outputs
    ]
    try:
        result = run_client(args.library, args.scenario, server, plan)
    finally:
        for recorder in recorders:
            # py-spy writes its output when interrupted (or when the process exits).
            recorder.send_signal(2)
        for recorder in recorders:
            try:
                recorder.wait(30)
            except subprocess.TimeoutExpired:
                recorder.kill()
        server.stop()
    print(result)
    summarise_collapsed(collapsed, args.top)
    print(f"(raw stacks: {collapsed}; pid was {server.process.pid}; host pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
