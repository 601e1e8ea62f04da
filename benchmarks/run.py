"""End-to-end benchmark of issue 6: echo servers and clients in separate processes.

For each library (see ``peers.LIBRARIES``) and each scenario (see ``scenarios.py``), a server
process and a client process of that library talk over 127.0.0.1 with compression off. Runs
are interleaved (the library order rotates from round to round, so slow drifts of the machine
hit every library alike), every scenario has a fixed count and a time cap, and the table shows
the median of the rounds and the ratio to websockets on asyncio, then the targets of issue 6.

    python benchmarks/run.py            # full: 3 rounds, about 5 minutes on 2 cores
    python benchmarks/run.py --quick    # smoke run: 1 round, well under a minute
    nox -s bench [-- --quick]           # installs the peers, then runs every benchmark
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

BASELINE = "websockets-asyncio"
SUBJECT = "trio_ws-trio"
SUBJECT_ASYNCIO = "trio_ws-asyncio"
SUBJECT_NOWAIT = "trio_ws-trio-nowait"
ASYNCIO_NOWAIT = "trio_ws-asyncio-nowait"


@dataclass(frozen=True)
class Plan:
    """How much work one run of a scenario does: a fixed count, bounded by a time cap."""

    count: int
    cap: float
    connections: int = 1


FULL = {
    "rtt": Plan(count=20_000, cap=4.0),
    "pipelined": Plan(count=300_000, cap=4.0),
    "large": Plan(count=200, cap=4.0),
    "fan-in": Plan(count=50, cap=10.0, connections=200),
    "setup": Plan(count=5, cap=10.0, connections=1000),
}
QUICK = {
    "rtt": Plan(count=3_000, cap=1.0),
    "pipelined": Plan(count=30_000, cap=1.0),
    "large": Plan(count=20, cap=1.0),
    "fan-in": Plan(count=50, cap=1.5, connections=200),
    "setup": Plan(count=2, cap=2.0, connections=1000),
}
#: The scenarios issue 6 sets targets for (set-up comes from issue 10).
ISSUE_6_SCENARIOS = ("rtt", "pipelined", "large", "fan-in")
UNITS = {
    "rtt": "round trips/s",
    "pipelined": "msg/s",
    "large": "MB/s",
    "fan-in": "msg/s",
    "setup": "handshakes/s",
}
DESCRIPTIONS = {
    "rtt": "rtt: 32 B send, await echo (round trips/s)",
    "pipelined": "pipelined: 32 B messages, one connection (msg/s)",
    "large": "large: 4 MiB binary echoes (MB/s)",
    "fan-in": "fan-in: 200 connections x 50 round trips (msg/s)",
    "setup": "setup: 1,000 clients connecting at once (handshakes/s)",
}

CPU_DESCRIPTIONS = {
    "rtt": "rtt (µs per round trip)",
    "pipelined": "pipelined (µs per message)",
    "large": "large (µs per MB)",
    "fan-in": "fan-in (µs per message)",
    "setup": "setup (µs per connection, opened and closed)",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A server process of ``peers.py``; stops when its standard input closes."""

    def __init__(
        self,
        library: str,
        *,
        compression: bool = False,
        max_size: int | None = None,
        profile: str | None = None,
    ):
        self.port = free_port()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        command = [
            sys.executable,
            str(HERE / "peers.py"),
            "serve",
            library,
            "--port",
            str(self.port),
        ]
        if compression:
            command.append("--compression")
        if max_size is not None:
            command += ["--max-size", str(max_size)]
        if profile is not None:
            command += ["--profile", profile]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        line = self._readline(timeout=30)
        if line != "ready":
            self.stop()
            raise RuntimeError(f"{library} server did not start: {self.error_tail()}")

    def _readline(self, timeout: float) -> str:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return ""
        return self.process.stdout.readline().strip()

    def command(self, line: str, timeout: float = 60) -> str:
        """Send one control line (``rss``) and return the answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._readline(timeout)

    def error_tail(self) -> str:
        """The last lines the server wrote on its standard error."""
        self.stderr.seek(0)
        return b"\n".join(self.stderr.read().splitlines()[-10:]).decode(errors="replace")

    def stop(self) -> None:
        """Close the server's input, wait for it a little, then kill it."""
        if self.process.stdin is not None:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time consumed so far by process ``pid``."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name (field 2) may hold spaces; the fields after it are fixed.
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(library: str, scenario: str, server: Server, plan: Plan) -> dict[str, Any]:
    """Run one scenario's client process against ``server``: its result, or an error.

    The client prints ``mark`` when its timed part starts and ends; the server's CPU time
    is sampled then, so the result also says how much server CPU the timed work cost.
    """
    command = [
        sys.executable,
        str(HERE / "peers.py"),
        "client",
        library,
        scenario,
        "--port",
        str(server.port),
        "--count",
        str(plan.count),
        "--cap",
        str(plan.cap),
        "--connections",
        str(plan.connections),
    ]
    deadline = time.monotonic() + plan.cap * 3 + 60
    with tempfile.TemporaryFile() as errors:
        client = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        assert client.stdout is not None
        marks: list[float] = []
        last = ""
        with selectors.DefaultSelector() as selector:
            selector.register(client.stdout, selectors.EVENT_READ)
            while True:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    client.kill()
                    client.wait()
                    return {"error": "client timed out"}
                line = client.stdout.readline()
                if not line:
                    break
                if line.strip() == "mark":
                    marks.append(cpu_seconds(server.process.pid))
                elif line.strip():
                    last = line.strip()
        returncode = client.wait()
        if returncode != 0 or not last:
            errors.seek(0)
            tail = b"\n".join(errors.read().splitlines()[-6:]).decode(errors="replace")
            return {"error": f"client failed:\n{tail}\nserver:\n{server.error_tail()}"}
    result: dict[str, Any] = json.loads(last)
    if len(marks) == 2 and result["done"]:
        result["server_cpu"] = marks[1] - marks[0]
    return result


def run_once(library: str, scenario: str, plan: Plan) -> dict[str, Any]:
    """One server process, one client process, one scenario: the client's result."""
    server = Server(library)
    try:
        return run_client(library, scenario, server, plan)
    finally:
        server.stop()


def fmt(value: float) -> str:
    """A rate, rounded the way people read tables."""
    if value >= 10_000:
        return f"{round(value, -2):,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def table(
    scenarios: list[str],
    libraries: list[str],
    medians: dict[tuple[str, str], float],
    descriptions: dict[str, str] | None = None,
) -> str:
    """A Markdown table: medians, and the ratio to websockets on asyncio in parentheses."""
    descriptions = descriptions or DESCRIPTIONS
    header = "| scenario | " + " | ".join(libraries) + " |"
    rule = "|---|" + "---:|" * len(libraries)
    rows = [header, rule]
    for scenario in scenarios:
        base = medians.get((scenario, BASELINE))
        cells = []
        for library in libraries:
            value = medians.get((scenario, library))
            if value is None:
                cells.append("n/a")
            elif base and library != BASELINE:
                cells.append(f"{fmt(value)} ({value / base:.2f}x)")
            else:
                cells.append(fmt(value))
        rows.append(f"| {descriptions[scenario]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def targets(medians: dict[tuple[str, str], float]) -> list[tuple[str, str, bool | None]]:
    """Issue 10's end-to-end targets: (description, measured ratios, met or None if unknown)."""

    def ratio(scenario: str, library: str, base: str) -> float | None:
        top = medians.get((scenario, library))
        bottom = medians.get((scenario, base))
        return top / bottom if top and bottom else None

    checks: list[tuple[str, str, bool | None]] = []

    def check(description: str, parts: list[tuple[str, str, str, float]]) -> None:
        measured = []
        met: bool | None = True
        for scenario, library, base, minimum in parts:
            value = ratio(scenario, library, base)
            if value is None:
                measured.append(f"{scenario} vs {base}: n/a")
                met = None
                continue
            measured.append(f"{scenario} vs {base}: {value:.2f}x (need {minimum}x)")
            if value < minimum and met is not None:
                met = False
        checks.append((description, "; ".join(measured), met))

    # Issue 10's targets, checked for both ways of writing the echo handler: the awaited
    # calls (a checkpoint each) and the *_nowait calls (a checkpoint per batch).
    for trio_lib, asyncio_lib in ((SUBJECT, SUBJECT_ASYNCIO), (SUBJECT_NOWAIT, ASYNCIO_NOWAIT)):
        check(
            f"{trio_lib} vs websockets-asyncio: rtt >= 1.2x, pipelined >= 2.0x, "
            "fan-in >= 1.5x, large >= 1.0x",
            [
                ("rtt", trio_lib, BASELINE, 1.2),
                ("pipelined", trio_lib, BASELINE, 2.0),
                ("fan-in", trio_lib, BASELINE, 1.5),
                ("large", trio_lib, BASELINE, 1.0),
            ],
        )
        check(
            f"{trio_lib} vs websockets-trio: pipelined and fan-in >= 4x",
            [
                ("pipelined", trio_lib, "websockets-trio", 4.0),
                ("fan-in", trio_lib, "websockets-trio", 4.0),
            ],
        )
        check(
            f"{asyncio_lib}: every scenario >= 1.0x websockets-asyncio",
            [(scenario, asyncio_lib, BASELINE, 1.0) for scenario in ISSUE_6_SCENARIOS],
        )
    return checks


def tls_targets(cpu: dict[tuple[str, str], float]) -> list[tuple[str, str, bool | None]]:
    """Issue 10's TLS target: ``wss://`` within 1.5x of plain TCP's server CPU per echo,
    on each loop, for rtt and fan-in (the echoes of small messages)."""
    checks: list[tuple[str, str, bool | None]] = []
    for plain in (SUBJECT, SUBJECT_ASYNCIO):
        secure = f"{plain}-tls"
        measured = []
        met: bool | None = True
        for scenario in ("rtt", "fan-in"):
            top = cpu.get((scenario, secure))
            bottom = cpu.get((scenario, plain))
            if not top or not bottom:
                measured.append(f"{scenario}: n/a")
                met = None
                continue
            value = top / bottom
            measured.append(f"{scenario}: {value:.2f}x (need <= 1.5x)")
            if value > 1.5 and met is not None:
                met = False
        checks.append(
            (f"{secure} server CPU per echo vs {plain}: <= 1.5x", "; ".join(measured), met)
        )
    return checks


def floor_report(
    medians: dict[tuple[str, str], float], cpu: dict[tuple[str, str], float]
) -> list[str]:
    """How close each loop's libraries come to that loop's raw TCP floor (``peers.py``).

    The floor echoes bytes with the same system calls per message as a WebSocket library
    and does nothing else: a library written in Python on that loop cannot use less server
    CPU per message (a compiled one, picows, can). The rate also depends on the client,
    which is the floor's own on that side too: on asyncio, the floor's client (a future per
    message) is slower than picows' and trio_ws's, so there the rate is not a bound.
    """
    lines: list[str] = []
    for floor, loop in (("tcp-trio", "trio"), ("tcp-asyncio", "asyncio")):
        for scenario in peers.FLOOR_SCENARIOS:
            floor_rate = medians.get((scenario, floor))
            floor_cpu = cpu.get((scenario, floor))
            if not floor_rate or not floor_cpu:
                continue
            if not lines:
                lines += [
                    "",
                    "The raw TCP floors (no WebSocket, the same system calls per message; "
                    "rate as a share of the floor's, server CPU per message above it):",
                ]
            lines.append(
                f"  {scenario} on {loop}: floor {fmt(floor_rate)} {UNITS[scenario]}, "
                f"{floor_cpu:.1f} µs of server CPU"
            )
            for (other_scenario, library), rate in sorted(medians.items()):
                if other_scenario != scenario or library == floor:
                    continue
                if peers.LIBRARIES[library].backend != loop:
                    continue
                extra = cpu.get((scenario, library))
                above = f", {extra - floor_cpu:+.1f} µs" if extra else ""
                lines.append(
                    f"    {library:24} {rate / floor_rate:5.2f}x of the floor{above}; "
                    f"the floor is {floor_rate / rate:.2f}x {library}"
                )
    return lines


def _trio_ws_masking() -> str:
    """Which masking kernel trio_ws's processes use (they inherit TRIO_WS_NO_SPEEDUPS)."""
    try:
        import trio_ws.sansio
    except ImportError:
        return "n/a"
    return "C (trio_ws.sansio._speedups)" if trio_ws.sansio.SPEEDUPS else "pure Python"


def environment() -> dict[str, str]:
    """What the numbers depend on: date, machine, interpreter and library versions."""
    from importlib import metadata

    versions = {}
    for distribution in (
        "trio-ws",
        "trio",
        "anyio",
        "websockets",
        "wsproto",
        "trio-websocket",
        "picows",
    ):
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = "not installed"
    try:
        import websockets.frames

        masking = (
            "C (websockets.speedups)"
            if "speedups" in str(websockets.frames.apply_mask.__module__)
            else "pure Python"
        )
    except ImportError:
        masking = "n/a"
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "load average (1/5/15 min) at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "websockets masking": masking,
        "trio_ws masking": _trio_ws_masking(),
        **versions,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables; returns a process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of short runs")
    parser.add_argument("--rounds", type=int, help="rounds (default 3, quick 1)")
    parser.add_argument("--libraries", nargs="+", choices=peers.LIBRARIES, metavar="LIB")
    parser.add_argument("--scenarios", nargs="+", choices=FULL, metavar="SCENARIO")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    args = parser.parse_args(argv)

    plans = QUICK if args.quick else FULL
    rounds = args.rounds or (1 if args.quick else 3)
    scenarios = args.scenarios or list(plans)
    env = environment()
    print("End-to-end WebSocket benchmark (issue 6): server and client in separate processes,")
    print("127.0.0.1, compression off; each library's client against its own server.")
    for key, value in env.items():
        print(f"  {key}: {value}")

    libraries = []
    for name in args.libraries or list(peers.LIBRARIES):
        reason = peers.missing_reason(peers.LIBRARIES[name])
        if reason:
            print(f"  SKIPPED {name}: {reason}")
        else:
            libraries.append(name)
    print()

    results: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    raw: list[dict[str, Any]] = []
    started = time.monotonic()
    for round_index in range(rounds):
        for scenario in scenarios:
            shift = round_index % len(libraries) if libraries else 0
            order = libraries[shift:] + libraries[:shift]
            for library in order:
                measured_in = peers.LIBRARIES[library].scenarios
                if measured_in is not None and scenario not in measured_in:
                    continue
                result = run_once(library, scenario, plans[scenario])
                result.setdefault("library", library)
                result.setdefault("scenario", scenario)
                result["round"] = round_index + 1
                raw.append(result)
                if "error" in result:
                    print(
                        f"round {round_index + 1} {scenario:9} {library:18} ERROR {result['error']}"
                    )
                    continue
                results.setdefault((scenario, library), []).append(result["rate"])
                if "server_cpu" in result:
                    units = result["rate"] * result["seconds"]
                    cpu.setdefault((scenario, library), []).append(
                        1e6 * result["server_cpu"] / units
                    )
                print(
                    f"round {round_index + 1} {scenario:9} {library:18} "
                    f"{fmt(result['rate']):>10} {result['unit']:14} "
                    f"({result['done']} in {result['seconds']:.2f} s)",
                    flush=True,
                )
    elapsed = time.monotonic() - started

    medians = {key: statistics.median(values) for key, values in results.items()}
    print()
    print(f"Medians of {rounds} round(s), ratio to {BASELINE} in parentheses ({elapsed:.0f} s):")
    print()
    print(table(scenarios, libraries, medians))
    print()
    print(
        "Server CPU time (user + system) per unit of work, microseconds, median: per echoed "
        "message (per MB for large); lower is better, ratio to websockets-asyncio:"
    )
    print()
    cpu_medians = {key: statistics.median(values) for key, values in cpu.items()}
    print(table(scenarios, libraries, cpu_medians, descriptions=CPU_DESCRIPTIONS))
    print()
    print("Targets of issue 10 (end to end; memory targets: benchmarks/memory.py):")
    for description, measured, met in targets(medians) + tls_targets(cpu_medians):
        verdict = {True: "MET", False: "NOT MET", None: "NOT MEASURED"}[met]
        print(f"  [{verdict}] {description}\n      {measured}")
    for line in floor_report(medians, cpu_medians):
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps({"environment": env, "results": raw, "rounds": rounds}, indent=2)
        )
    return 1 if any("error" in result for result in raw) else 0


if __name__ == "__main__":
    sys.exit(main())
