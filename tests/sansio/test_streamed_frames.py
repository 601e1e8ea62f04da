"""Large data frames are received piece by piece: unmasked as they arrive, joined once.

Whatever the pieces, the events must be exactly those of one feed of the whole stream, and
errors found at the end of such a frame (invalid UTF-8) must fail the connection as usual.
"""

from __future__ import annotations

import os
import random

import pytest

from trio_ws.sansio import (
    BytesMessage,
    CloseConnection,
    Connection,
    ConnectionFailed,
    ConnectionState,
    Event,
    Ping,
    Role,
    TextMessage,
)
from trio_ws.sansio.extensions import PerMessageDeflate

# Odd sizes, so that pieces end at every offset of the 4-byte masking key.
LARGE = os.urandom(300_001)
TEXT = ("héllo wörld ✓ " * 6000)[:70_001]


def _stream(role: Role, *, deflate: bool = False) -> bytes:
    """Frames as the peer of ``role`` sends them: large, small and control, mixed."""
    sender = Connection(
        Role.SERVER if role is Role.CLIENT else Role.CLIENT,
        extensions=[PerMessageDeflate()] if deflate else (),
    )
    sender.send_binary(LARGE)
    sender.send_text("small")
    sender.send_ping(b"p")
    sender.send_text(TEXT)
    sender.send_fragment(LARGE[:100_000], text=False, fin=False)
    sender.send_fragment(b"", text=False, fin=False)
    sender.send_fragment(LARGE[100_000:], text=False, fin=True)
    sender.send_binary(b"x" * 65_536)  # exactly at the threshold
    sender.send_close(1000, "bye")
    return sender.data_to_send()


def _events_in_pieces(role: Role, data: bytes, sizes: list[int], **options: object) -> list[Event]:
    receiver = Connection(role, max_message_size=None, **options)  # type: ignore[arg-type]
    events: list[Event] = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        events += receiver.receive_data(data[pos : pos + size])
        pos += size
        index += 1
    return events


EXPECTED = [
    BytesMessage(data=LARGE),
    TextMessage(data="small"),
    Ping(payload=b"p"),
    TextMessage(data=TEXT),
    BytesMessage(data=LARGE),
    BytesMessage(data=b"x" * 65_536),
    CloseConnection(code=1000, reason="bye"),
]

PIECES = [
    [10**7],  # everything at once
    [65_536],
    [65_537, 3],
    [1000, 7, 1],
    [131_072, 5, 70_000, 2],
]


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
@pytest.mark.parametrize("sizes", PIECES)
def test_any_split_gives_the_events_of_one_feed(role: Role, sizes: list[int]) -> None:
    assert _events_in_pieces(role, _stream(role), sizes) == EXPECTED


def test_random_splits() -> None:
    data = _stream(Role.SERVER)
    rng = random.Random(6)
    for _ in range(5):
        sizes = [rng.choice([1, 2, 3, 5, 700, 4096, 65_535, 200_000]) for _ in range(50)]
        assert _events_in_pieces(Role.SERVER, data, sizes) == EXPECTED


def test_compressed_large_frames_in_pieces() -> None:
    data = _stream(Role.SERVER, deflate=True)
    events = _events_in_pieces(Role.SERVER, data, [65_537, 11], extensions=[PerMessageDeflate()])
    assert events == EXPECTED


def test_decode_text_false_keeps_the_bytes() -> None:
    events = _events_in_pieces(Role.SERVER, _stream(Role.SERVER), [4097], decode_text=False)
    assert events[3] == TextMessage(data=TEXT.encode())


def test_invalid_utf8_in_a_large_text_frame_fails_with_1007() -> None:
    sender = Connection(Role.CLIENT)
    payload = b"a" * 100_000 + b"\xff" + b"a" * 10
    sender.send_text(payload)  # bytes sent as text: taken as valid UTF-8 by the sender
    sender.send_text("never seen")
    events = _events_in_pieces(Role.SERVER, sender.data_to_send(), [65_536])
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1007


def test_eof_in_the_middle_of_a_large_frame() -> None:
    sender = Connection(Role.CLIENT)
    sender.send_binary(LARGE)
    data = sender.data_to_send()
    receiver = Connection(Role.SERVER, max_message_size=None)
    assert receiver.receive_data(data[:100_000]) == []
    assert receiver._frame_remaining  # streaming, not buffering
    receiver.receive_eof()
    assert receiver.state is ConnectionState.CLOSED
    assert receiver.close_code == 1006
    assert receiver.receive_data(data[100_000:]) == []


def test_the_size_limit_still_applies_before_streaming() -> None:
    sender = Connection(Role.CLIENT)
    sender.send_binary(LARGE)
    receiver = Connection(Role.SERVER, max_message_size=200_000)
    events = receiver.receive_data(sender.data_to_send()[:70_000])
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009
