"""Frames: serialising, parsing and masking (RFC 6455 section 5)."""

from __future__ import annotations

import struct

import pytest

from tests.sansio.rfc6455_examples import (
    RFC_64K_HEADER,
    RFC_256_HEADER,
    RFC_FRAGMENT_HEL,
    RFC_FRAGMENT_LO,
    RFC_KEY,
    RFC_MASKED_HELLO,
    RFC_MASKED_PONG,
    RFC_UNMASKED_HELLO,
    RFC_UNMASKED_PING,
)
from trio_ws.sansio import (
    Frame,
    FrameParser,
    Opcode,
    RemoteProtocolError,
    apply_mask,
    serialize_frame,
)


def reference_mask(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(data))


def parse_all(data: bytes, **options: object) -> list[Frame]:
    parser = FrameParser(**options)  # type: ignore[arg-type]
    return parser.receive_data(data)


def parse_bytewise(data: bytes, **options: object) -> list[Frame]:
    parser = FrameParser(**options)  # type: ignore[arg-type]
    frames: list[Frame] = []
    for i in range(len(data)):
        frames += parser.receive_data(data[i : i + 1])
    return frames


RFC_EXAMPLES = [
    (RFC_UNMASKED_HELLO, None, [Frame(Opcode.TEXT, b"Hello")]),
    (RFC_MASKED_HELLO, RFC_KEY, [Frame(Opcode.TEXT, b"Hello")]),
    (
        RFC_FRAGMENT_HEL + RFC_FRAGMENT_LO,
        None,
        [Frame(Opcode.TEXT, b"Hel", fin=False), Frame(Opcode.CONTINUATION, b"lo")],
    ),
    (RFC_UNMASKED_PING, None, [Frame(Opcode.PING, b"Hello")]),
    (RFC_MASKED_PONG, RFC_KEY, [Frame(Opcode.PONG, b"Hello")]),
    (RFC_256_HEADER + bytes(256), None, [Frame(Opcode.BINARY, bytes(256))]),
    (RFC_64K_HEADER + bytes(65536), None, [Frame(Opcode.BINARY, bytes(65536))]),
]


@pytest.mark.parametrize(("wire", "key", "frames"), RFC_EXAMPLES)
def test_rfc_examples_serialise_byte_for_byte(
    wire: bytes, key: bytes | None, frames: list[Frame]
) -> None:
    assert b"".join(serialize_frame(frame, mask_key=key) for frame in frames) == wire


@pytest.mark.parametrize(("wire", "key", "frames"), RFC_EXAMPLES)
def test_rfc_examples_parse_whole_and_byte_by_byte(
    wire: bytes, key: bytes | None, frames: list[Frame]
) -> None:
    assert parse_all(wire) == frames
    if len(wire) < 1000:
        assert parse_bytewise(wire) == frames


def test_parser_returns_every_complete_frame_and_keeps_the_rest() -> None:
    parser = FrameParser()
    wire = RFC_UNMASKED_HELLO + RFC_UNMASKED_PING + RFC_FRAGMENT_HEL[:2]
    assert parser.receive_data(wire) == [
        Frame(Opcode.TEXT, b"Hello"),
        Frame(Opcode.PING, b"Hello"),
    ]
    assert parser.receive_data(RFC_FRAGMENT_HEL[2:]) == [Frame(Opcode.TEXT, b"Hel", fin=False)]
    assert parser.receive_data(b"") == []


@pytest.mark.parametrize(
    ("size", "header_size"),
    [(0, 2), (125, 2), (126, 4), (65535, 4), (65536, 10), (100_000, 10)],
)
def test_lengths_use_the_minimal_encoding(size: int, header_size: int) -> None:
    wire = serialize_frame(Frame(Opcode.BINARY, b"a" * size))
    assert len(wire) == header_size + size
    masked = serialize_frame(Frame(Opcode.BINARY, b"a" * size), mask_key=b"abcd")
    assert len(masked) == header_size + 4 + size
    assert parse_all(wire) == [Frame(Opcode.BINARY, b"a" * size)]
    assert parse_all(masked) == [Frame(Opcode.BINARY, b"a" * size)]


def test_non_minimal_lengths_are_accepted_on_receipt() -> None:
    sixteen = struct.pack("!BBH", 0x82, 126, 5) + b"hello"
    sixty_four = struct.pack("!BBQ", 0x82, 127, 5) + b"hello"
    assert parse_all(sixteen) == [Frame(Opcode.BINARY, b"hello")]
    assert parse_all(sixty_four) == [Frame(Opcode.BINARY, b"hello")]


def test_64_bit_length_with_the_top_bit_set_is_invalid() -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_all(struct.pack("!BBQ", 0x82, 127, 1 << 63))
    assert info.value.code == 1002


def test_flags_and_reserved_bits_round_trip() -> None:
    frame = Frame(Opcode.BINARY, b"x", fin=False, rsv1=True, rsv2=True, rsv3=True)
    wire = serialize_frame(frame)
    assert wire[0] == 0x72
    assert parse_all(wire, reserved_bits=(True, True, True)) == [frame]


@pytest.mark.parametrize(("bits", "index"), [((True, False, False), 0), ((False, True, False), 1)])
def test_reserved_bits_are_rejected_unless_allowed(
    bits: tuple[bool, bool, bool], index: int
) -> None:
    flags = [False, False, False]
    flags[index] = True
    wire = serialize_frame(Frame(Opcode.TEXT, b"x", rsv1=flags[0], rsv2=flags[1], rsv3=flags[2]))
    assert parse_all(wire, reserved_bits=bits)[0].payload == b"x"
    with pytest.raises(RemoteProtocolError, match="reserved bits"):
        parse_all(wire, reserved_bits=(False, False, True))


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(opcode: int) -> None:
    wire = bytes([0x80 | opcode, 0])
    with pytest.raises(RemoteProtocolError) as info:
        parse_all(wire)
    assert info.value.code == 1002
    (frame,) = parse_all(wire, allow_reserved_opcodes=True)
    assert frame.opcode == opcode
    assert not isinstance(frame.opcode, Opcode)


def test_known_opcodes_parse_as_opcode_members() -> None:
    (frame,) = parse_all(RFC_UNMASKED_PING)
    assert frame.opcode is Opcode.PING


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (bytes([0x09, 0x00]), "fragmented control frame"),
        (bytes([0x89, 0x7E, 0x00, 0x7E]), "control frame too long"),
    ],
)
def test_control_frame_rules(wire: bytes, reason: str) -> None:
    # Both fail on the header alone: the payload never arrives.
    with pytest.raises(RemoteProtocolError, match=reason):
        parse_all(wire)


def test_control_frame_of_125_bytes_is_fine() -> None:
    assert parse_all(serialize_frame(Frame(Opcode.PING, b"p" * 125)))[0].payload == b"p" * 125


def test_masking_requirements() -> None:
    masked = serialize_frame(Frame(Opcode.TEXT, b"x"), mask_key=b"abcd")
    unmasked = serialize_frame(Frame(Opcode.TEXT, b"x"))
    assert parse_all(masked, require_mask=True)[0].payload == b"x"
    assert parse_all(unmasked, require_mask=False)[0].payload == b"x"
    with pytest.raises(RemoteProtocolError, match="unmasked frame"):
        parse_all(unmasked, require_mask=True)
    with pytest.raises(RemoteProtocolError, match="masked frame"):
        parse_all(masked, require_mask=False)


def test_max_frame_size_is_checked_on_the_header() -> None:
    header = struct.pack("!BBH", 0x82, 126, 1001)
    with pytest.raises(RemoteProtocolError) as info:
        parse_all(header, max_frame_size=1000)
    assert info.value.code == 1009
    assert parse_all(struct.pack("!BBH", 0x82, 126, 1000) + bytes(1000), max_frame_size=1000)


def test_a_failed_parser_stays_failed() -> None:
    parser = FrameParser()
    with pytest.raises(RemoteProtocolError):
        parser.receive_data(bytes([0x83, 0x00]))
    with pytest.raises(RemoteProtocolError, match="already failed"):
        parser.receive_data(RFC_UNMASKED_HELLO)


def test_incomplete_extended_lengths_wait_for_more() -> None:
    parser = FrameParser()
    wire = struct.pack("!BBQ", 0x82, 127, 3) + b"abc"
    for i in range(len(wire) - 1):
        assert parser.receive_data(wire[i : i + 1]) == []
    assert parser.receive_data(wire[-1:]) == [Frame(Opcode.BINARY, b"abc")]


def test_serialize_rejects_a_bad_mask_key() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        serialize_frame(Frame(Opcode.TEXT, b""), mask_key=b"abc")


def test_opcode_is_control() -> None:
    assert [op for op in Opcode if op.is_control] == [Opcode.CLOSE, Opcode.PING, Opcode.PONG]


def test_apply_mask_rfc_example() -> None:
    assert apply_mask(b"Hello", RFC_KEY) == RFC_MASKED_HELLO[6:]


@pytest.mark.parametrize(
    "size", [0, 1, 2, 3, 4, 5, 31, 32, 33, 16383, 16384, 16385, 3 * 16384 + 7, 65536]
)
def test_apply_mask_matches_the_definition(size: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    key = b"\x01\x80\xfe\x5a"
    masked = apply_mask(data, key)
    assert masked == reference_mask(data, key)
    assert apply_mask(masked, key) == data


def test_apply_mask_accepts_any_bytes_like() -> None:
    data = bytes(range(200)) * 100
    expected = reference_mask(data, b"wxyz")
    assert apply_mask(bytearray(data), b"wxyz") == expected
    assert apply_mask(memoryview(data), b"wxyz") == expected
    assert isinstance(apply_mask(memoryview(data), b"wxyz"), bytes)
