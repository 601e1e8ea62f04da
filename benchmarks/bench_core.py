"""Micro-benchmarks of the protocol layer, in one process: trio_ws beside wsproto and websockets.

For payloads of 32 bytes, 64 KiB and 4 MiB it measures, for each library's sans-IO object:

- parse: a server receiving binary frames masked by a client, fed in 64 KiB chunks as a
  socket would deliver them, until every message event is out (unmasking included);
- serialise (server): a binary message in, frame bytes out (unmasked);
- serialise (client): the same, masked with a fresh key per frame;
- mask: the masking function alone, over a payload of that size.

The libraries: trio_ws's ``Connection`` (and its frame-level functions, ``FrameParser`` and
``frame_bytes``), wsproto's ``Connection`` (its ``FrameProtocol`` inside), websockets'
``Protocol`` objects. websockets masks with a C extension when it is built
(``websockets.speedups``); the table says which one ran, and its pure-Python ``apply_mask``
is measured beside it. Each figure is the median of several timed repetitions
(``time.perf_counter``) after one untimed warm-up; ratios are to websockets.

    python benchmarks/bench_core.py            # full, about a minute
    python benchmarks/bench_core.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import time
from collections.abc import Callable
from typing import Any

SIZES = {"32 B": 32, "64 KiB": 64 * 2**10, "4 MiB": 4 * 2**20}
#: Frames per timed repetition, by payload size: (full, quick).
FRAMES = {32: (20_000, 4_000), 64 * 2**10: (160, 40), 4 * 2**20: (6, 2)}
CHUNK = 64 * 2**10
KEY = b"\x37\xfa\x21\x3d"

#: A job is built untimed (``setup``), then timed (``run``); it returns how many frames it did.
Job = Callable[[], Callable[[], int]]


def _client_frame(payload: bytes, key: bytes, mask: Callable[[bytes, bytes], bytes]) -> bytes:
    """One FIN binary frame as a client sends it (masked), built without any library."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x82, 0x80 | size)
    elif size < 65536:
        header = struct.pack("!BBH", 0x82, 0x80 | 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, size)
    return header + key + mask(payload, key)


def _reference_mask() -> Callable[[bytes, bytes], bytes]:
    # Building the input must not depend on the code under test: a plain int XOR.
    def mask(data: bytes, key: bytes) -> bytes:
        repeated = (key * (len(data) // 4 + 1))[: len(data)]
        size = len(data)
        return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")

    return mask


def stream_chunks(size: int, frames: int) -> list[bytes]:
    """``frames`` masked client frames of ``size`` bytes each, cut into 64 KiB reads."""
    payload = os.urandom(size)
    stream = _client_frame(payload, KEY, _reference_mask()) * frames
    return [stream[start : start + CHUNK] for start in range(0, len(stream), CHUNK)]


# --- the jobs of each library -----------------------------------------------------------------


def trio_ws_jobs(payload: bytes, chunks: list[bytes], frames: int) -> dict[str, Job]:
    """trio_ws's ``Connection`` (and its frame-level functions as ``trio_ws frames``)."""
    from trio_ws.sansio import BytesMessage, Connection, Role

    def parse() -> Callable[[], int]:
        connection = Connection(Role.SERVER, max_message_size=None)
        receive = connection.receive_data

        def run() -> int:
            count = 0
            for chunk in chunks:
                for event in receive(chunk):
                    if type(event) is BytesMessage:
                        count += 1
            return count

        return run

    def serialise(role: Any) -> Job:
        def setup() -> Callable[[], int]:
            connection = Connection(role, max_message_size=None)
            send, drain = connection.send_binary, connection.data_to_send

            def run() -> int:
                for _ in range(frames):
                    send(payload)
                    drain()
                return frames

            return run

        return setup

    return {
        "parse": parse,
        "serialise (server)": serialise(Role.SERVER),
        "serialise (client)": serialise(Role.CLIENT),
    }


def trio_ws_frame_jobs(payload: bytes, chunks: list[bytes], frames: int) -> dict[str, Job]:
    """trio_ws's frame-level functions: ``FrameParser``, ``frame_bytes``, ``apply_mask``."""
    from trio_ws.sansio import _frames

    def parse() -> Callable[[], int]:
        parser = _frames.FrameParser(require_mask=True)

        def run() -> int:
            return sum(len(parser.receive_data(chunk)) for chunk in chunks)

        return run

    def serialise(masked: bool) -> Job:
        def setup() -> Callable[[], int]:
            frame_bytes = _frames.frame_bytes

            def run() -> int:
                for _ in range(frames):
                    frame_bytes(0x82, payload, os.urandom(4) if masked else None)
                return frames

            return run

        return setup

    def mask() -> Callable[[], int]:
        apply_mask = _frames.apply_mask

        def run() -> int:
            for _ in range(frames):
                apply_mask(payload, KEY)
            return frames

        return run

    return {
        "parse": parse,
        "serialise (server)": serialise(False),
        "serialise (client)": serialise(True),
        "mask": mask,
    }


def wsproto_jobs(payload: bytes, chunks: list[bytes], frames: int) -> dict[str, Job]:
    """wsproto's ``Connection`` after the handshake, and its ``XorMaskerSimple``."""
    from wsproto.connection import Connection, ConnectionType
    from wsproto.events import BytesMessage
    from wsproto.frame_protocol import XorMaskerSimple

    def parse() -> Callable[[], int]:
        connection = Connection(ConnectionType.SERVER)

        def run() -> int:
            count = 0
            for chunk in chunks:
                connection.receive_data(chunk)
                for event in connection.events():
                    # wsproto hands out a large frame piece by piece as it arrives.
                    if type(event) is BytesMessage and event.message_finished:
                        count += 1
            return count

        return run

    def serialise(kind: Any) -> Job:
        def setup() -> Callable[[], int]:
            connection = Connection(kind)
            send = connection.send

            def run() -> int:
                for _ in range(frames):
                    send(BytesMessage(data=payload))
                return frames

            return run

        return setup

    def mask() -> Callable[[], int]:
        def run() -> int:
            for _ in range(frames):
                XorMaskerSimple(KEY).process(payload)
            return frames

        return run

    return {
        "parse": parse,
        "serialise (server)": serialise(ConnectionType.SERVER),
        "serialise (client)": serialise(ConnectionType.CLIENT),
        "mask": mask,
    }


def websockets_jobs(payload: bytes, chunks: list[bytes], frames: int) -> dict[str, Job]:
    """websockets' ``Protocol`` objects (state OPEN) and its ``apply_mask``."""
    from websockets.frames import Frame, apply_mask
    from websockets.protocol import Protocol, Side

    def parse() -> Callable[[], int]:
        protocol = Protocol(Side.SERVER, max_size=None)

        def run() -> int:
            count = 0
            for chunk in chunks:
                protocol.receive_data(chunk)
                for event in protocol.events_received():
                    if type(event) is Frame:
                        count += 1
            return count

        return run

    def serialise(side: Any) -> Job:
        def setup() -> Callable[[], int]:
            protocol = Protocol(side, max_size=None)
            send, drain = protocol.send_binary, protocol.data_to_send

            def run() -> int:
                # data_to_send returns a list of bytes (one per frame) that the I/O layer
                # writes with writelines; it is not joined here.
                for _ in range(frames):
                    send(payload)
                    drain()
                return frames

            return run

        return setup

    def mask() -> Callable[[], int]:
        def run() -> int:
            for _ in range(frames):
                apply_mask(payload, KEY)
            return frames

        return run

    return {
        "parse": parse,
        "serialise (server)": serialise(Side.SERVER),
        "serialise (client)": serialise(Side.CLIENT),
        "mask": mask,
    }


def websockets_python_mask_jobs(payload: bytes, chunks: list[bytes], frames: int) -> dict[str, Job]:
    """websockets' pure-Python ``apply_mask`` (used where its C extension is not built)."""
    from websockets.utils import apply_mask

    def mask() -> Callable[[], int]:
        def run() -> int:
            for _ in range(frames):
                apply_mask(payload, KEY)
            return frames

        return run

    return {"mask": mask}


def websockets_masking() -> str:
    """Which masking function websockets' protocol uses here."""
    import websockets.frames

    module = getattr(websockets.frames.apply_mask, "__module__", "") or ""
    return "C extension" if "speedups" in module else "pure Python"


LIBRARIES: dict[str, Callable[[bytes, list[bytes], int], dict[str, Job]]] = {
    "trio_ws": trio_ws_jobs,
    "trio_ws frames": trio_ws_frame_jobs,
    "wsproto": wsproto_jobs,
    "websockets": websockets_jobs,
    "websockets (Python mask)": websockets_python_mask_jobs,
}
BASELINE = "websockets"
OPERATIONS = ["parse", "serialise (server)", "serialise (client)", "mask"]


def time_job(job: Job, repeats: int, expected: int) -> float:
    """Median seconds of ``repeats`` timed runs (after one warm-up) of a freshly set-up job."""
    timings = []
    for attempt in range(repeats + 1):
        run = job()
        start = time.perf_counter()
        done = run()
        elapsed = time.perf_counter() - start
        if done != expected:
            raise AssertionError(f"job did {done} frames, expected {expected}")
        if attempt:
            timings.append(elapsed)
    return statistics.median(timings)


def fmt_rate(frames_per_second: float, size: int) -> str:
    """``frames/s, MB/s``, rounded for reading."""
    megabytes = frames_per_second * size / 1e6
    if frames_per_second >= 1e6:
        rate = f"{frames_per_second / 1e6:.2f} M/s"
    elif frames_per_second >= 1e3:
        rate = f"{frames_per_second / 1e3:.1f} k/s"
    else:
        rate = f"{frames_per_second:.1f} /s"
    return f"{rate}, {megabytes:,.0f} MB/s" if megabytes >= 10 else f"{rate}, {megabytes:.1f} MB/s"


def main(argv: list[str] | None = None) -> int:
    """Run every job, print the table; returns a process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7

    available = {}
    for name, factory in LIBRARIES.items():
        try:
            factory(b"x", [], 1)
        except ImportError as exc:
            print(f"SKIPPED {name}: {exc}")
            continue
        available[name] = factory
    names = list(available)

    print(
        f"Protocol-layer micro-benchmarks ({'quick' if args.quick else 'full'} mode, median of "
        f"{repeats}); websockets masks with its {websockets_masking()}."
    )
    print("Cells: frames (or mask calls) per second, MB/s (10**6 bytes), ratio to websockets.")
    print()
    print("| operation | size | " + " | ".join(names) + " |")
    print("|---|---|" + "---:|" * len(names))
    for label, size in SIZES.items():
        frames = FRAMES[size][1 if args.quick else 0]
        payload = os.urandom(size)
        chunks = stream_chunks(size, frames)
        jobs = {name: factory(payload, chunks, frames) for name, factory in available.items()}
        for operation in OPERATIONS:
            rates: dict[str, float] = {}
            for name in names:
                job = jobs[name].get(operation)
                if job is not None:
                    rates[name] = frames / time_job(job, repeats, frames)
            base = rates.get(BASELINE)
            cells = []
            for name in names:
                if name not in rates:
                    cells.append("")
                elif base and name != BASELINE:
                    cells.append(f"{fmt_rate(rates[name], size)} ({rates[name] / base:.2f}x)")
                else:
                    cells.append(fmt_rate(rates[name], size))
            print(f"| {operation} | {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
