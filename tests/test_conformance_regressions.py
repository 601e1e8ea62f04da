"""Regression tests for what the Autobahn Testsuite found (``nox -s autobahn``).

Each test replays, against the sans-IO core, the bytes of one Autobahn case (named in the
test) and checks the outcome the suite wants. The suite is the net, these tests the floor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio_ws.sansio import (
    CloseCode,
    Connection,
    ConnectionFailed,
    Frame,
    Opcode,
    Role,
    serialize_frame,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

MASK_KEY = b"\x37\xfa\x21\x3d"
# Autobahn's 6.4.x payload: valid UTF-8, then a code point above U+10FFFF, then more text.
VALID_PART = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()  # "κόσμε"
INVALID_PART = b"\xf4\x90\x80\x80"
REST = b"edited"


def client_frame(opcode: Opcode, payload: bytes, *, fin: bool = True) -> bytes:
    """A frame as a client sends it: masked."""
    return serialize_frame(Frame(opcode, payload, fin=fin), mask_key=MASK_KEY)


def failures(events: Sequence[object]) -> list[ConnectionFailed]:
    return [event for event in events if isinstance(event, ConnectionFailed)]


def test_invalid_utf8_fails_fast_across_fragments() -> None:
    """Autobahn 6.4.1: the fragment holding the invalid byte fails the connection at once,
    before the message's last fragment arrives."""
    server = Connection(Role.SERVER)
    assert server.receive_data(client_frame(Opcode.TEXT, VALID_PART, fin=False)) == []
    events = server.receive_data(client_frame(Opcode.CONTINUATION, INVALID_PART, fin=False))
    assert [event.code for event in failures(events)] == [CloseCode.INVALID_FRAME_PAYLOAD_DATA]


def test_invalid_utf8_fails_fast_inside_one_frame() -> None:
    """Autobahn 6.4.3: one text frame arrives in three chops; the chop holding the invalid
    byte fails the connection at once, before the rest of the frame arrives."""
    server = Connection(Role.SERVER)
    frame = client_frame(Opcode.TEXT, VALID_PART + INVALID_PART + REST)
    header_size = len(frame) - len(VALID_PART + INVALID_PART + REST)
    first_chop = header_size + len(VALID_PART)
    second_chop = first_chop + len(INVALID_PART)
    assert server.receive_data(frame[:first_chop]) == []
    events = server.receive_data(frame[first_chop:second_chop])
    assert [event.code for event in failures(events)] == [CloseCode.INVALID_FRAME_PAYLOAD_DATA]


def test_invalid_utf8_fails_fast_inside_a_continuation_frame() -> None:
    """A continuation frame still arriving is checked from where its message's previous
    fragment ended: a character cut between fragments is completed, not rejected."""
    server = Connection(Role.SERVER)
    euro = "€".encode()  # three bytes: the first fragment ends after one of them
    assert server.receive_data(client_frame(Opcode.TEXT, VALID_PART + euro[:1], fin=False)) == []
    frame = client_frame(Opcode.CONTINUATION, euro[1:] + INVALID_PART + REST)
    header_size = len(frame) - len(euro[1:] + INVALID_PART + REST)
    assert server.receive_data(frame[: header_size + 2]) == []  # "€" completed: valid
    events = server.receive_data(frame[header_size + 2 : header_size + 4])
    assert [event.code for event in failures(events)] == [CloseCode.INVALID_FRAME_PAYLOAD_DATA]


def test_valid_text_frame_in_chops_is_delivered_whole() -> None:
    """Checking text as it arrives changes nothing for valid text cut anywhere."""
    message = "κόσμε € 𝄞 ascii".encode()
    frame = client_frame(Opcode.TEXT, message)
    for cut in range(1, len(frame)):
        server = Connection(Role.SERVER)
        events = server.receive_data(frame[:cut]) + server.receive_data(frame[cut:])
        assert [getattr(event, "data", None) for event in events] == [message.decode()]


def test_compressed_text_is_not_checked_before_it_is_complete() -> None:
    """With permessage-deflate the payload is deflate data, not UTF-8: it is decoded once
    the frame is complete, so a compressed frame in chops still arrives whole."""
    from trio_ws.sansio.extensions import PerMessageDeflate

    def extension() -> PerMessageDeflate:
        return PerMessageDeflate(
            local_no_context_takeover=False,
            remote_no_context_takeover=False,
            local_max_window_bits=15,
            remote_max_window_bits=15,
        )

    client = Connection(Role.CLIENT, extensions=[extension()])
    server = Connection(Role.SERVER, extensions=[extension()])
    text = "compressible text " * 20
    client.send_text(text, compress=True)
    frame = client.data_to_send()
    events = server.receive_data(frame[:10]) + server.receive_data(frame[10:])
    assert [getattr(event, "data", None) for event in events] == [text]
