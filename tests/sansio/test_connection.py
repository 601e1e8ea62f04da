"""The frame-level state machine: receiving, sending, closing, failing, extensions."""

from __future__ import annotations

import dataclasses
import itertools
import struct
from typing import ClassVar

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
    BytesMessage,
    CloseConnection,
    Connection,
    ConnectionFailed,
    ConnectionState,
    Event,
    Extension,
    Frame,
    FrameParser,
    LocalProtocolError,
    Opcode,
    Ping,
    Pong,
    RemoteProtocolError,
    Role,
    TextMessage,
    serialize_frame,
)

VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
VALID_CLOSE_CODES += [3000, 3999, 4000, 4999]
INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535]


def client(**options: object) -> Connection:
    return Connection(Role.CLIENT, mask_key_source=lambda: RFC_KEY, **options)  # type: ignore[arg-type]


def server(**options: object) -> Connection:
    return Connection(Role.SERVER, **options)  # type: ignore[arg-type]


def from_client(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """A masked frame, as a client sends it (``opcode`` may be reserved)."""
    frame = Frame(opcode, payload, fin=fin)  # type: ignore[arg-type]
    wire = bytearray(serialize_frame(frame, mask_key=b"\x01\x02\x03\x04"))
    wire[0] |= rsv
    return bytes(wire)


def from_server(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked frame, as a server sends it."""
    wire = bytearray(serialize_frame(Frame(opcode, payload, fin=fin)))  # type: ignore[arg-type]
    wire[0] |= rsv
    return bytes(wire)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return struct.pack("!H", code) + reason


def sent_frames(conn: Connection) -> list[Frame]:
    """Parse what ``conn`` queued, checking the masking rule of its role."""
    parser = FrameParser(require_mask=conn.role is Role.CLIENT, reserved_bits=(True, True, True))
    return parser.receive_data(conn.data_to_send())


def assert_failed(events: list[Event], conn: Connection, code: int) -> ConnectionFailed:
    failure = events[-1]
    assert isinstance(failure, ConnectionFailed)
    assert failure.code == code
    assert conn.state is ConnectionState.CLOSED
    assert conn.close_expected
    assert conn.close_sent == (code, failure.reason)
    return failure


# ---------------------------------------------------------------- receiving


def test_rfc_single_frame_unmasked_text() -> None:
    assert client().receive_data(RFC_UNMASKED_HELLO) == [TextMessage(data="Hello")]


def test_rfc_single_frame_masked_text() -> None:
    assert server().receive_data(RFC_MASKED_HELLO) == [TextMessage(data="Hello")]


def test_rfc_fragmented_text() -> None:
    conn = client()
    assert conn.receive_data(RFC_FRAGMENT_HEL) == []
    assert conn.receive_data(RFC_FRAGMENT_LO) == [TextMessage(data="Hello")]


def test_rfc_ping_is_answered_with_the_masked_pong() -> None:
    conn = client()
    assert conn.receive_data(RFC_UNMASKED_PING) == [Ping(payload=b"Hello")]
    # The client's automatic answer is exactly the RFC's masked pong.
    assert conn.data_to_send() == RFC_MASKED_PONG


def test_server_answers_pings_unmasked() -> None:
    conn = server()
    assert conn.receive_data(from_client(Opcode.PING, b"hi")) == [Ping(payload=b"hi")]
    assert conn.data_to_send() == from_server(Opcode.PONG, b"hi")


@pytest.mark.parametrize(("header", "size"), [(RFC_256_HEADER, 256), (RFC_64K_HEADER, 65536)])
def test_rfc_binary_headers(header: bytes, size: int) -> None:
    payload = bytes(range(256)) * (size // 256)
    assert client().receive_data(header + payload) == [BytesMessage(data=payload)]


def test_pong_is_reported() -> None:
    assert client().receive_data(from_server(Opcode.PONG, b"x")) == [Pong(payload=b"x")]


def stream_of_everything() -> tuple[bytes, list[Event]]:
    wire = b"".join(
        [
            from_client(Opcode.TEXT, "é€".encode()),
            from_client(Opcode.BINARY, b"\x00\x01"),
            from_client(Opcode.TEXT, b"ab\xc3", fin=False),
            from_client(Opcode.PING, b"p"),
            from_client(Opcode.CONTINUATION, b"\xa9", fin=False),
            from_client(Opcode.PONG, b"q"),
            from_client(Opcode.CONTINUATION, b"cd"),
            from_client(Opcode.BINARY, b"x" * 300, fin=False),
            from_client(Opcode.CONTINUATION, b"y" * 70000),
            from_client(Opcode.BINARY, b""),
        ]
    )
    events: list[Event] = [
        TextMessage(data="é€"),
        BytesMessage(data=b"\x00\x01"),
        Ping(payload=b"p"),
        Pong(payload=b"q"),
        TextMessage(data="abécd"),
        BytesMessage(data=b"x" * 300 + b"y" * 70000),
        BytesMessage(data=b""),
    ]
    return wire, events


def test_every_frame_in_one_call_is_parsed() -> None:
    wire, events = stream_of_everything()
    assert server().receive_data(wire) == events


def test_parsed_messages_are_the_frozen_values_their_constructors_make() -> None:
    # The parser builds message events without their __init__ (see _events).
    text, binary = server().receive_data(
        from_client(Opcode.TEXT, "é".encode()) + from_client(Opcode.BINARY, b"\x00")
    )
    for parsed, made in ((text, TextMessage(data="é")), (binary, BytesMessage(data=b"\x00"))):
        assert type(parsed) is type(made)
        assert parsed == made
        assert hash(parsed) == hash(made)
        assert repr(parsed) == repr(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            parsed.data = "changed"  # type: ignore[misc]


def test_byte_by_byte_gives_the_same_events() -> None:
    wire, events = stream_of_everything()
    conn = server()
    received: list[Event] = []
    for i in range(len(wire)):
        received += conn.receive_data(wire[i : i + 1])
    assert received == events


@pytest.mark.parametrize("chunk", [3, 7, 1000, 4096])
def test_any_chunking_gives_the_same_events(chunk: int) -> None:
    wire, events = stream_of_everything()
    conn = server()
    received: list[Event] = []
    for i in range(0, len(wire), chunk):
        received += conn.receive_data(memoryview(wire)[i : i + chunk])
    assert received == events


def test_bytearray_input_and_empty_input() -> None:
    conn = client()
    assert conn.receive_data(b"") == []
    assert conn.receive_data(bytearray(RFC_UNMASKED_HELLO)) == [TextMessage(data="Hello")]


def test_decode_text_false_delivers_validated_bytes() -> None:
    conn = client(decode_text=False)
    wire = (
        from_server(Opcode.TEXT, "é".encode())
        + from_server(Opcode.TEXT, b"\xc3", fin=False)
        + from_server(Opcode.CONTINUATION, b"\xa9")
    )
    assert conn.receive_data(wire) == [
        TextMessage(data="é".encode()),
        TextMessage(data="é".encode()),
    ]
    failure = client(decode_text=False).receive_data(
        from_server(Opcode.TEXT, b"a", fin=False) + from_server(Opcode.CONTINUATION, b"\xff")
    )
    assert isinstance(failure[-1], ConnectionFailed)
    assert failure[-1].code == 1007


# ---------------------------------------------------------------- violations


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (from_server(Opcode.TEXT, b"x"), 1002),  # a client must mask
        (from_client(Opcode.TEXT, b"x", rsv=0x40), 1002),
        (from_client(Opcode.TEXT, b"x", rsv=0x20), 1002),
        (from_client(Opcode.TEXT, b"x", rsv=0x10), 1002),
        (from_client(Opcode.PING, b"", fin=False), 1002),
        (from_client(Opcode.CONTINUATION, b"x"), 1002),
        (from_client(Opcode.TEXT, b"\xff"), 1007),
        (from_client(Opcode.TEXT, b"a\xe2\x82"), 1007),
        (from_client(Opcode.CLOSE, b"\x03"), 1002),
        (from_client(Opcode.CLOSE, close_payload(1000, b"\xff")), 1007),
    ],
)
def test_peer_violations_on_the_server(wire: bytes, code: int) -> None:
    conn = server()
    assert_failed(conn.receive_data(wire), conn, code)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_fail(opcode: int) -> None:
    conn = server()
    failure = assert_failed(conn.receive_data(from_client(opcode)), conn, 1002)
    assert "reserved opcode" in failure.reason


def test_masked_frame_from_a_server_fails() -> None:
    conn = client()
    assert_failed(conn.receive_data(RFC_MASKED_HELLO), conn, 1002)


def test_header_only_violations_fail_before_the_payload() -> None:
    # A 126-byte ping and a 2**63 length: only the header ever arrives.
    conn = client()
    assert_failed(conn.receive_data(bytes([0x89, 0x7E, 0x00, 0x7E])), conn, 1002)
    conn = client()
    assert_failed(conn.receive_data(struct.pack("!BBQ", 0x82, 127, 1 << 63)), conn, 1002)


def test_new_data_frame_inside_a_fragmented_message_fails() -> None:
    conn = client()
    events = conn.receive_data(
        from_server(Opcode.BINARY, b"a", fin=False) + from_server(Opcode.TEXT, b"b")
    )
    assert_failed(events, conn, 1002)


def test_invalid_utf8_fails_on_its_fragment_not_at_the_end() -> None:
    conn = client()
    assert conn.receive_data(from_server(Opcode.TEXT, "κό".encode(), fin=False)) == []
    events = conn.receive_data(from_server(Opcode.CONTINUATION, b"\xf4\x90", fin=False))
    assert_failed(events, conn, 1007)


def test_violation_keeps_earlier_events_queues_a_close_and_ignores_the_rest() -> None:
    conn = client()
    wire = RFC_UNMASKED_HELLO + from_server(Opcode.CONTINUATION, b"x") + RFC_UNMASKED_HELLO
    events = conn.receive_data(wire)
    assert events[0] == TextMessage(data="Hello")
    assert len(events) == 2
    failure = assert_failed(events, conn, 1002)
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(1002, failure.reason.encode()))]
    assert conn.receive_data(RFC_UNMASKED_HELLO) == []
    assert conn.close_code == 1002


def test_violation_while_closing_sends_no_second_close() -> None:
    conn = client()
    conn.send_close(1000)
    conn.data_to_send()
    events = conn.receive_data(from_server(Opcode.TEXT, b"\xff"))
    assert isinstance(events[-1], ConnectionFailed)
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b""
    assert conn.close_sent == (1000, "")


# ---------------------------------------------------------------- size limit


def test_message_at_the_limit_is_accepted() -> None:
    conn = client(max_message_size=10)
    assert conn.receive_data(from_server(Opcode.BINARY, b"x" * 10)) == [
        BytesMessage(data=b"x" * 10)
    ]


def test_oversized_frame_fails_on_its_header() -> None:
    conn = client(max_message_size=1000)
    assert_failed(conn.receive_data(struct.pack("!BBH", 0x82, 126, 1001)), conn, 1009)


def test_default_limit_is_one_mebibyte() -> None:
    conn = client()
    header = struct.pack("!BBQ", 0x82, 127, 2**20 + 1)
    assert_failed(conn.receive_data(header), conn, 1009)
    big = b"z" * (2**20 + 1)
    assert client(max_message_size=None).receive_data(header + big) == [BytesMessage(data=big)]


def test_fragmented_message_running_total_is_limited() -> None:
    conn = client(max_message_size=10)
    assert conn.receive_data(from_server(Opcode.TEXT, b"a" * 6, fin=False)) == []
    assert conn.receive_data(from_server(Opcode.CONTINUATION, b"a" * 4, fin=False)) == []
    # The next header alone pushes the total to 11.
    assert_failed(conn.receive_data(bytes([0x80, 0x01])), conn, 1009)


def test_control_frames_do_not_count_towards_the_limit() -> None:
    conn = client(max_message_size=4)
    wire = (
        from_server(Opcode.BINARY, b"ab", fin=False)
        + from_server(Opcode.PING, b"p" * 100)
        + from_server(Opcode.CONTINUATION, b"cd")
    )
    assert conn.receive_data(wire) == [Ping(payload=b"p" * 100), BytesMessage(data=b"abcd")]


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_message_size"):
        Connection(Role.CLIENT, max_message_size=-1)


# ---------------------------------------------------------------- close handshake


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_peer_close_is_echoed(code: int) -> None:
    conn = server()
    events = conn.receive_data(from_client(Opcode.CLOSE, close_payload(code, "bye é".encode())))
    assert events == [CloseConnection(code=code, reason="bye é")]
    assert conn.state is ConnectionState.CLOSED
    assert conn.close_expected
    assert conn.should_close_transport
    assert conn.close_received == (code, "bye é")
    assert conn.close_sent == (code, "")
    assert (conn.close_code, conn.close_reason) == (code, "bye é")
    assert conn.data_to_send() == from_server(Opcode.CLOSE, close_payload(code))


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_peer_close_with_an_invalid_code_fails(code: int) -> None:
    conn = server()
    failure = assert_failed(
        conn.receive_data(from_client(Opcode.CLOSE, close_payload(code))), conn, 1002
    )
    assert str(code) in failure.reason
    assert conn.close_received is None


def test_peer_close_without_status() -> None:
    conn = client()
    assert conn.receive_data(from_server(Opcode.CLOSE)) == [CloseConnection(code=1005, reason="")]
    assert conn.close_sent == (1005, "")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, b"")]


def test_nothing_is_accepted_after_the_peer_close() -> None:
    conn = client()
    events = conn.receive_data(from_server(Opcode.CLOSE) + RFC_UNMASKED_HELLO)
    assert events == [CloseConnection(code=1005, reason="")]
    assert conn.receive_data(RFC_UNMASKED_HELLO) == []
    conn.data_to_send()
    with pytest.raises(LocalProtocolError):
        conn.send_text("late")


def test_close_during_a_fragmented_message_drops_it() -> None:
    conn = client()
    wire = from_server(Opcode.TEXT, b"a", fin=False) + from_server(
        Opcode.CLOSE, close_payload(1001)
    )
    assert conn.receive_data(wire) == [CloseConnection(code=1001, reason="")]


def test_local_close_then_peer_close() -> None:
    conn = client()
    conn.send_close(3000, "done")
    assert conn.state is ConnectionState.LOCAL_CLOSING
    assert not conn.close_expected
    assert conn.close_sent == (3000, "done")
    assert (conn.close_code, conn.close_reason) == (3000, "done")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(3000, b"done"))]
    # Messages sent before the peer saw our close still arrive; pings get no pong.
    events = conn.receive_data(
        RFC_UNMASKED_HELLO + RFC_UNMASKED_PING + from_server(Opcode.CLOSE, close_payload(3000))
    )
    assert events == [
        TextMessage(data="Hello"),
        Ping(payload=b"Hello"),
        CloseConnection(code=3000, reason=""),
    ]
    assert conn.data_to_send() == b""
    assert conn.state is ConnectionState.CLOSED  # type: ignore[comparison-overlap]
    assert conn.close_expected  # type: ignore[unreachable]


def test_initial_close_attributes() -> None:
    conn = server()
    assert conn.state is ConnectionState.OPEN
    assert conn.close_sent is None
    assert conn.close_received is None
    assert conn.close_code is None
    assert conn.close_reason is None
    assert not conn.close_expected


def test_eof_without_close_is_abnormal() -> None:
    conn = client()
    conn.receive_data(RFC_FRAGMENT_HEL[:3])
    assert conn.receive_eof() == []
    assert conn.state is ConnectionState.CLOSED
    assert (conn.close_code, conn.close_reason) == (1006, "")
    assert conn.close_expected
    assert conn.receive_data(RFC_UNMASKED_HELLO) == []
    assert conn.receive_eof() == []
    with pytest.raises(LocalProtocolError):
        conn.send_binary(b"x")


def test_eof_after_the_close_handshake_keeps_the_codes() -> None:
    conn = client()
    conn.receive_data(from_server(Opcode.CLOSE, close_payload(1001, b"away")))
    conn.receive_eof()
    assert (conn.close_code, conn.close_reason) == (1001, "away")


def test_eof_while_closing_reports_the_code_sent() -> None:
    conn = client()
    conn.send_close(1000)
    conn.receive_eof()
    assert conn.state is ConnectionState.CLOSED
    assert conn.close_code == 1000


# ---------------------------------------------------------------- sending


def test_server_send_text_is_the_rfc_unmasked_frame() -> None:
    conn = server()
    conn.send_text("Hello")
    assert conn.bytes_to_send == len(RFC_UNMASKED_HELLO)
    assert conn.data_to_send() == RFC_UNMASKED_HELLO
    assert conn.bytes_to_send == 0
    assert conn.data_to_send() == b""


def test_client_send_text_is_the_rfc_masked_frame() -> None:
    conn = client()
    conn.send_text(b"Hello")
    assert conn.data_to_send() == RFC_MASKED_HELLO


def test_client_send_pong_is_the_rfc_masked_pong() -> None:
    conn = client()
    conn.send_pong(b"Hello")
    assert conn.data_to_send() == RFC_MASKED_PONG


def test_send_fragment_is_the_rfc_fragmented_message() -> None:
    conn = server()
    conn.send_fragment("Hel", text=True, fin=False)
    conn.send_fragment(b"lo", text=True, fin=True)
    assert conn.data_to_send() == RFC_FRAGMENT_HEL + RFC_FRAGMENT_LO


@pytest.mark.parametrize(("header", "size"), [(RFC_256_HEADER, 256), (RFC_64K_HEADER, 65536)])
def test_send_binary_headers(header: bytes, size: int) -> None:
    conn = server()
    conn.send_binary(bytearray(size))
    assert conn.data_to_send() == header + bytes(size)


def test_text_bytes_are_not_checked_and_str_binary_is_utf8() -> None:
    conn = server()
    conn.send_text(b"\xff")
    conn.send_binary("é")
    conn.send_binary(memoryview(b"m"))
    assert sent_frames(conn) == [
        Frame(Opcode.TEXT, b"\xff"),
        Frame(Opcode.BINARY, "é".encode()),
        Frame(Opcode.BINARY, b"m"),
    ]


def test_unencodable_text_is_refused() -> None:
    with pytest.raises(LocalProtocolError, match="UTF-8"):
        server().send_text("\ud800")


def test_control_frames_between_fragments() -> None:
    conn = client()
    conn.send_fragment(b"ab", text=False, fin=False)
    conn.send_ping(b"p")
    conn.send_fragment(b"cd", text=False, fin=False)
    conn.send_pong()
    conn.send_fragment(b"", text=False, fin=True)
    conn.send_text("next")
    assert sent_frames(conn) == [
        Frame(Opcode.BINARY, b"ab", fin=False),
        Frame(Opcode.PING, b"p"),
        Frame(Opcode.CONTINUATION, b"cd", fin=False),
        Frame(Opcode.PONG, b""),
        Frame(Opcode.CONTINUATION, b""),
        Frame(Opcode.TEXT, b"next"),
    ]


def test_fragment_misuse() -> None:
    conn = server()
    conn.send_fragment("a", text=True, fin=False)
    with pytest.raises(LocalProtocolError, match="another kind"):
        conn.send_fragment(b"b", text=False, fin=True)
    with pytest.raises(LocalProtocolError, match="fragmented message"):
        conn.send_text("whole")
    with pytest.raises(LocalProtocolError, match="fragmented message"):
        conn.send_binary(b"whole")
    with pytest.raises(LocalProtocolError, match="fragmented message"):
        conn.send_encoded(conn.encode_message("whole"))
    # A close may interrupt the message; after it, no fragment may follow.
    conn.send_close()
    with pytest.raises(LocalProtocolError):
        conn.send_fragment("b", text=True, fin=True)


def test_control_payload_limit() -> None:
    conn = server()
    conn.send_ping(b"p" * 125)
    conn.send_pong(bytearray(125))
    with pytest.raises(LocalProtocolError, match="125"):
        conn.send_ping(b"p" * 126)
    with pytest.raises(LocalProtocolError, match="125"):
        conn.send_pong(b"p" * 126)
    assert [frame.opcode for frame in sent_frames(conn)] == [Opcode.PING, Opcode.PONG]


@pytest.mark.parametrize("code", VALID_CLOSE_CODES)
def test_send_close_valid_codes(code: int) -> None:
    conn = server()
    conn.send_close(code, "r")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(code, b"r"))]


@pytest.mark.parametrize("code", INVALID_CLOSE_CODES)
def test_send_close_invalid_codes(code: int) -> None:
    conn = server()
    with pytest.raises(LocalProtocolError, match="invalid close code"):
        conn.send_close(code)
    assert conn.state is ConnectionState.OPEN
    assert conn.data_to_send() == b""


def test_close_reason_length_counts_utf8_bytes() -> None:
    conn = server()
    with pytest.raises(LocalProtocolError, match="123"):
        conn.send_close(1000, "é" * 62)  # 124 bytes
    conn.send_close(1000, "é" * 61 + "a")  # 123 bytes
    assert len(conn.data_to_send()) == 2 + 125


def test_send_close_without_code() -> None:
    conn = client()
    with pytest.raises(LocalProtocolError, match="needs a close code"):
        conn.send_close(None, "reason")
    conn.send_close(None)
    assert conn.close_sent == (1005, "")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, b"")]


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_text("x"),
        lambda c: c.send_binary(b"x"),
        lambda c: c.send_fragment(b"x", text=False, fin=True),
        lambda c: c.send_ping(),
        lambda c: c.send_pong(),
        lambda c: c.send_close(),
        lambda c: c.send_encoded(b"\x81\x00"),
    ],
)
def test_nothing_may_be_sent_after_send_close(send: object) -> None:
    conn = server()
    conn.send_close()
    with pytest.raises(LocalProtocolError, match="LOCAL_CLOSING"):
        send(conn)  # type: ignore[operator]


def test_client_masks_every_frame_with_a_fresh_key() -> None:
    keys = (bytes([i, i, i, i]) for i in itertools.count(1))
    conn = Connection(Role.CLIENT, mask_key_source=lambda: next(keys))
    conn.send_text("a")
    conn.send_binary(b"b")
    conn.send_ping(b"c")
    wire = conn.data_to_send()
    assert [wire[2:6], wire[9:13], wire[16:20]] == [b"\x01" * 4, b"\x02" * 4, b"\x03" * 4]


def test_default_mask_keys_are_random_and_keep_coming() -> None:
    conn = Connection(Role.CLIENT)
    for _ in range(300):  # more than one batch of keys
        conn.send_binary(b"\x00\x00\x00\x00")
    wire = conn.data_to_send()
    frames = [wire[i : i + 10] for i in range(0, len(wire), 10)]
    payloads = {frame[6:] for frame in frames}
    assert len(payloads) > 250  # masked zeros are the keys themselves
    peer = server()
    assert peer.receive_data(wire) == [BytesMessage(data=bytes(4))] * 300


# ---------------------------------------------------------------- fail


def test_fail_queues_a_close_and_ignores_input() -> None:
    conn = server()
    conn.fail(1011, "handler crashed")
    assert conn.state is ConnectionState.CLOSED
    assert conn.close_expected
    assert conn.close_sent == (1011, "handler crashed")
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(1011, b"handler crashed"))]
    assert conn.receive_data(from_client(Opcode.TEXT, b"x")) == []
    conn.fail(1001)  # already closed: nothing more
    assert conn.data_to_send() == b""


def test_fail_default_code_and_validation() -> None:
    conn = client()
    with pytest.raises(LocalProtocolError):
        conn.fail(1006)
    with pytest.raises(LocalProtocolError):
        conn.fail(1000, "x" * 124)
    conn.fail()
    assert conn.close_sent == (1011, "")


def test_fail_while_closing_sends_nothing_more() -> None:
    conn = client()
    conn.send_close(1000)
    conn.data_to_send()
    conn.fail(1011)
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b""
    assert conn.close_sent == (1000, "")


# ---------------------------------------------------------------- broadcast


def test_encode_once_send_to_many() -> None:
    first, second = server(), server()
    data = first.encode_message("hi")
    assert first.data_to_send() == b""  # encode_message touches nothing
    first.send_encoded(data)
    second.send_encoded(data)
    assert first.data_to_send() == second.data_to_send() == from_server(Opcode.TEXT, b"hi")
    assert first.encode_message(b"hi") == from_server(Opcode.BINARY, b"hi")
    assert first.encode_message(b"hi", text=True) == from_server(Opcode.TEXT, b"hi")
    assert first.encode_message("hi", text=False) == from_server(Opcode.BINARY, b"hi")


def test_encoded_frames_queue_behind_what_is_already_buffered() -> None:
    conn = server()
    conn.send_text("a")
    data = conn.encode_message("b")
    conn.send_encoded(data)
    conn.send_encoded(data)
    assert conn.bytes_to_send == 3 + 2 * len(data)
    assert conn.data_to_send() == from_server(Opcode.TEXT, b"a") + data + data
    assert conn.data_to_send() == b""


def test_encode_message_is_for_servers_without_stateful_extensions() -> None:
    with pytest.raises(LocalProtocolError, match="client"):
        client().encode_message("x")
    with pytest.raises(LocalProtocolError, match="client"):
        client().send_encoded(b"\x81\x00")
    conn = server(extensions=[ReverseExtension()])
    with pytest.raises(LocalProtocolError, match="x-reverse extension"):
        conn.encode_message("x")
    with pytest.raises(LocalProtocolError, match="x-reverse extension"):
        conn.send_encoded(b"\x81\x00")


def test_encoded_frames_go_out_plain_with_permessage_deflate() -> None:
    """With compression negotiated, one pre-encoded (uncompressed) frame serves every
    connection, and each connection's compression context is left as it was."""
    from trio_ws.sansio.extensions import PerMessageDeflate

    def deflate_pair() -> tuple[Connection, Connection]:
        return (
            server(extensions=[PerMessageDeflate(min_size=0)]),
            client(extensions=[PerMessageDeflate(min_size=0)]),
        )

    (first, first_peer), (second, second_peer) = deflate_pair(), deflate_pair()
    first.send_text("context " * 10)  # compressed: the context now holds this text
    first_peer.receive_data(first.data_to_send())
    frame = first.encode_message("broadcast to everyone")
    assert frame == from_server(Opcode.TEXT, b"broadcast to everyone")  # no RSV1
    for conn, peer in ((first, first_peer), (second, second_peer)):
        conn.send_encoded(frame)
        events = peer.receive_data(conn.data_to_send())
        assert [getattr(event, "data", None) for event in events] == ["broadcast to everyone"]
    # The compression context is intact: the next compressed message still decodes.
    first.send_text("context " * 10)
    events = first_peer.receive_data(first.data_to_send())
    assert [getattr(event, "data", None) for event in events] == ["context " * 10]


# ---------------------------------------------------------------- extensions


class ReverseExtension(Extension):
    """Test-only: reverses data payloads and marks them with RSV2."""

    name: ClassVar[str] = "x-reverse"
    reserved_bits: ClassVar[tuple[bool, bool, bool]] = (False, True, False)

    def __init__(self) -> None:
        self.max_sizes: list[int | None] = []

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        self.max_sizes.append(max_size)
        if not frame.rsv2:
            return frame
        return Frame(frame.opcode, frame.payload[::-1], fin=frame.fin, rsv1=frame.rsv1)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        if frame.opcode.is_control or compress is False:
            return frame
        return Frame(frame.opcode, frame.payload[::-1], fin=frame.fin, rsv2=True)


class SuffixExtension(Extension):
    """Test-only: appends a tag to every payload and checks and strips it on the way in."""

    name: ClassVar[str] = "x-suffix"

    def __init__(self, tag: bytes) -> None:
        self.tag = tag

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        if not frame.payload.endswith(self.tag):
            raise RemoteProtocolError(1008, f"missing tag {self.tag!r}")
        return Frame(frame.opcode, frame.payload[: -len(self.tag)], fin=frame.fin)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return Frame(frame.opcode, frame.payload + self.tag, fin=frame.fin)


class DoublingExtension(Extension):
    """Test-only: doubles each payload on the way in, ignoring max_size."""

    name: ClassVar[str] = "x-double"

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        return Frame(frame.opcode, frame.payload * 2, fin=frame.fin)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame


def test_extension_claims_rsv2_and_transforms_both_ways() -> None:
    sender = Connection(Role.CLIENT, extensions=[ReverseExtension()])
    receiver_ext = ReverseExtension()
    receiver = Connection(Role.SERVER, extensions=[receiver_ext], max_message_size=100)
    sender.send_text("hello")
    sender.send_fragment(b"ab", text=False, fin=False)
    sender.send_ping(b"pi")
    sender.send_fragment(b"cd", text=False, fin=True)
    sender.send_binary(b"raw", compress=False)
    wire = sender.data_to_send()
    assert wire[0] == 0x80 | 0x20 | 0x1  # FIN, RSV2, text
    assert receiver.extensions == (receiver_ext,)
    assert receiver.receive_data(wire) == [
        TextMessage(data="hello"),
        Ping(payload=b"pi"),
        BytesMessage(data=b"abcd"),
        BytesMessage(data=b"raw"),
    ]
    # max_size is what the message may still grow by; None for control frames.
    assert receiver_ext.max_sizes == [100, 100, None, 98, 100]


def test_rsv_bits_not_claimed_still_fail_with_an_extension() -> None:
    conn = server(extensions=[ReverseExtension()])
    assert_failed(conn.receive_data(from_client(Opcode.TEXT, b"x", rsv=0x40)), conn, 1002)


def test_extensions_encode_in_order_and_decode_in_reverse() -> None:
    sender = Connection(Role.SERVER, extensions=[SuffixExtension(b"A"), SuffixExtension(b"B")])
    receiver = Connection(Role.CLIENT, extensions=[SuffixExtension(b"A"), SuffixExtension(b"B")])
    sender.send_text("x")
    wire = sender.data_to_send()
    assert wire.endswith(b"xAB")
    assert receiver.receive_data(wire) == [TextMessage(data="x")]
    # The automatic pong goes through the extensions too.
    receiver.receive_data(from_server(Opcode.PING, b"pAB"))
    assert sender.receive_data(receiver.data_to_send()) == [Pong(payload=b"p")]


class FailingExtension(Extension):
    """Test-only: rejects every frame with a long reason."""

    name: ClassVar[str] = "x-fail"

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        raise RemoteProtocolError(1008, "missing tag " + "é" * 100)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame


def test_extension_errors_fail_the_connection_with_their_code() -> None:
    conn = client(extensions=[FailingExtension()])
    failure = assert_failed(conn.receive_data(from_server(Opcode.TEXT, b"no tag")), conn, 1008)
    assert failure.reason.startswith("missing tag")
    (close,) = sent_frames(conn)
    assert len(close.payload) == 124  # the long reason is cut to fit, between characters
    assert conn.close_sent is not None
    assert conn.close_sent[1] == close.payload[2:].decode()


def test_size_limit_applies_after_decoding() -> None:
    conn = client(extensions=[DoublingExtension()], max_message_size=10)
    assert conn.receive_data(from_server(Opcode.BINARY, b"12345")) == [
        BytesMessage(data=b"1234512345")
    ]
    assert_failed(conn.receive_data(from_server(Opcode.BINARY, b"123456")), conn, 1009)


def test_close_frames_go_through_extensions() -> None:
    conn = client(extensions=[SuffixExtension(b"A")])
    events = conn.receive_data(from_server(Opcode.CLOSE, close_payload(1000, b"okA")))
    assert events == [CloseConnection(code=1000, reason="ok")]
    assert sent_frames(conn) == [Frame(Opcode.CLOSE, close_payload(1000, b"A"))]
