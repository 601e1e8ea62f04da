"""The cost of permessage-deflate on a JSON-like workload: trio_ws beside websockets.

A client's sans-IO object sends a stream of JSON messages (chat and feed events, 100 bytes
to 2 KiB, generated from a fixed seed) to a server's, in one process. For each library and
setting it reports:

- throughput: messages per second through the client's send path (compress + mask) and
  the server's receive path (unmask + inflate + UTF-8 check), both together;
- bytes on the wire per message (frames included) and the ratio to the JSON text.

Settings, each negotiated the same way for both libraries:

- ``off``: no compression;
- ``default``: each library's default (window 12 both ways, memory level 5 for both);
- ``max-window``: window 15 both ways, memory level 8 (zlib's defaults).

    python benchmarks/bench_compression.py            # about half a minute
    python benchmarks/bench_compression.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

MESSAGES = (3_000, 600)  # per timed repetition: full, quick
REPEATS = (5, 3)

#: (client window bits, server window bits, memory level) per setting; None is "off".
SETTINGS: dict[str, tuple[int, int, int] | None] = {
    "off": None,
    "default": (12, 12, 5),
    "max-window": (15, 15, 8),
}


def json_messages(count: int, seed: int = 6455) -> list[str]:
    """Chat and feed events of 100 bytes to 2 KiB, as a real application would send."""
    rng = random.Random(seed)
    words = [
        "trio",
        "nursery",
        "cancel",
        "scope",
        "websocket",
        "frame",
        "stream",
        "message",
        "channel",
        "topic",
    ]
    users = [f"user{n:04d}" for n in range(200)]
    messages = []
    for n in range(count):
        if rng.random() < 0.7:
            event = {
                "type": "chat",
                "id": n,
                "room": rng.choice(["general", "random", "dev", "ops"]),
                "from": rng.choice(users),
                "ts": 1_790_000_000 + n * 7,
                "text": " ".join(rng.choices(words, k=rng.randint(3, 25))),
            }
        else:
            event = {
                "type": "feed",
                "id": n,
                "items": [
                    {
                        "symbol": rng.choice(["ABC", "DEF", "GHI", "JKL"]),
                        "price": round(rng.uniform(10, 500), 2),
                        "volume": rng.randint(1, 10_000),
                        "user": rng.choice(users),
                    }
                    for _ in range(rng.randint(1, 20))
                ],
            }
        messages.append(json.dumps(event))
    return messages


def trio_ws_pair(setting: tuple[int, int, int] | None) -> Callable[[list[str]], tuple[int, int]]:
    from trio_ws.sansio import Connection, Role, TextMessage
    from trio_ws.sansio.extensions import PerMessageDeflate

    def extensions(local_bits: int, remote_bits: int, mem_level: int) -> list[PerMessageDeflate]:
        return [
            PerMessageDeflate(
                local_max_window_bits=local_bits,
                remote_max_window_bits=remote_bits,
                mem_level=mem_level,
            )
        ]

    if setting is None:
        client = Connection(Role.CLIENT, max_message_size=None)
        server = Connection(Role.SERVER, max_message_size=None)
    else:
        client_bits, server_bits, mem_level = setting
        client = Connection(
            Role.CLIENT,
            max_message_size=None,
            extensions=extensions(client_bits, server_bits, mem_level),
        )
        server = Connection(
            Role.SERVER,
            max_message_size=None,
            extensions=extensions(server_bits, client_bits, mem_level),
        )

    def run(messages: list[str]) -> tuple[int, int]:
        wire = received = 0
        for message in messages:
            client.send_text(message)
            data = client.data_to_send()
            wire += len(data)
            for event in server.receive_data(data):
                if type(event) is TextMessage:
                    received += 1
        return received, wire

    return run


def websockets_pair(
    setting: tuple[int, int, int] | None,
) -> Callable[[list[str]], tuple[int, int]]:
    from websockets.extensions.permessage_deflate import PerMessageDeflate
    from websockets.frames import Frame, Opcode
    from websockets.protocol import CLIENT, SERVER, Protocol

    client = Protocol(CLIENT, max_size=None)
    server = Protocol(SERVER, max_size=None)
    if setting is not None:
        client_bits, server_bits, mem_level = setting
        client.extensions = [
            PerMessageDeflate(False, False, server_bits, client_bits, {"memLevel": mem_level})
        ]
        server.extensions = [
            PerMessageDeflate(False, False, client_bits, server_bits, {"memLevel": mem_level})
        ]

    def run(messages: list[str]) -> tuple[int, int]:
        wire = received = 0
        for message in messages:
            client.send_text(message.encode())
            data = b"".join(client.data_to_send())
            wire += len(data)
            server.receive_data(data)
            for event in server.events_received():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    received += 1
        return received, wire

    return run


LIBRARIES = {"trio_ws": trio_ws_pair, "websockets": websockets_pair}


def measure(library: str, setting: str, messages: list[str], repeats: int) -> tuple[float, float]:
    """Median messages/s and bytes on the wire per message."""
    rates = []
    wire_per_message = 0.0
    for _ in range(repeats + 1):  # the first repetition warms up and is not counted
        run = LIBRARIES[library](SETTINGS[setting])
        start = time.perf_counter()
        received, wire = run(messages)
        elapsed = time.perf_counter() - start
        if received != len(messages):
            raise AssertionError(f"{library}/{setting}: {received} of {len(messages)} arrived")
        rates.append(len(messages) / elapsed)
        wire_per_message = wire / len(messages)
    return statistics.median(rates[1:]), wire_per_message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args()
    count, repeats = (MESSAGES[1], REPEATS[1]) if args.quick else (MESSAGES[0], REPEATS[0])
    messages = json_messages(count)
    text_bytes = sum(len(message.encode()) for message in messages) / len(messages)
    print(f"\npermessage-deflate on {count} JSON messages, {text_bytes:.0f} bytes on average")
    header = f"{'setting':<11} {'library':<11} {'msg/s':>9} {'vs websockets':>14}"
    header += f" {'wire B/msg':>11} {'wire/text':>10}"
    print(header)
    print("-" * len(header))
    for setting in SETTINGS:
        results = {library: measure(library, setting, messages, repeats) for library in LIBRARIES}
        reference = results["websockets"][0]
        for library, (rate, wire) in results.items():
            print(
                f"{setting:<11} {library:<11} {rate:>9,.0f} {rate / reference:>13.2f}x"
                f" {wire:>11.1f} {wire / text_bytes:>9.1%}"
            )


if __name__ == "__main__":
    main()
