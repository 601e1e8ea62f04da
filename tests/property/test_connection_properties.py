"""Property tests of Connection: messages survive any split; no input makes it raise."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from trio_ws.sansio import (
    BytesMessage,
    CloseConnection,
    Connection,
    ConnectionFailed,
    ConnectionState,
    Event,
    Frame,
    Ping,
    Pong,
    Role,
    TextMessage,
    serialize_frame,
)

SETTINGS = settings(max_examples=200, deadline=None)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


# One action of the sender and the event it must produce on the other side.
Action = tuple[str, object]

actions = st.one_of(
    st.tuples(st.just("text"), st.text(max_size=50)),
    st.tuples(st.just("binary"), st.binary(max_size=300)),
    st.tuples(st.just("ping"), st.binary(max_size=125)),
    st.tuples(st.just("pong"), st.binary(max_size=125)),
    st.tuples(
        st.just("fragments"),
        st.tuples(st.booleans(), st.lists(st.text(max_size=10), min_size=1, max_size=4)),
    ),
)


def perform(sender: Connection, action: Action) -> list[Event]:
    """Do ``action`` on ``sender``; return the events the peer must see for it."""
    kind, value = action
    if kind == "text":
        assert isinstance(value, str)
        sender.send_text(value)
        return [TextMessage(data=value)]
    if kind == "binary":
        assert isinstance(value, bytes)
        sender.send_binary(value)
        return [BytesMessage(data=value)]
    if kind == "ping":
        assert isinstance(value, bytes)
        sender.send_ping(value)
        return [Ping(payload=value)]
    if kind == "pong":
        assert isinstance(value, bytes)
        sender.send_pong(value)
        return [Pong(payload=value)]
    assert isinstance(value, tuple)
    is_text: bool = value[0]
    parts: list[str] = value[1]
    # Split the encoded text anywhere, even inside a character.
    encoded = "".join(parts).encode()
    step = max(1, len(encoded) // len(parts))
    pieces = [encoded[i : i + step] for i in range(0, len(encoded), step)] or [b""]
    events: list[Event] = []
    for index, piece in enumerate(pieces):
        sender.send_fragment(piece, text=is_text, fin=index == len(pieces) - 1)
        if index < len(pieces) - 1:
            sender.send_ping(b"between")
            events.append(Ping(payload=b"between"))
    events.append(TextMessage(data="".join(parts)) if is_text else BytesMessage(data=encoded))
    return events


@SETTINGS
@given(
    st.sampled_from([Role.CLIENT, Role.SERVER]),
    st.lists(actions, max_size=10),
    st.lists(st.integers(min_value=0), max_size=30),
    st.none() | st.integers(min_value=1000, max_value=4999).filter(lambda c: c < 1004 or c > 2999),
)
def test_messages_survive_any_split(
    sender_role: Role, sent: list[Action], cuts: list[int], close_code: int | None
) -> None:
    receiver_role = Role.SERVER if sender_role is Role.CLIENT else Role.CLIENT
    sender = Connection(sender_role)
    receiver = Connection(receiver_role)
    expected: list[Event] = []
    for action in sent:
        expected += perform(sender, action)
    sender.send_close(close_code)
    expected.append(CloseConnection(code=1005 if close_code is None else close_code))
    received: list[Event] = []
    for chunk in split(sender.data_to_send(), cuts):
        received += receiver.receive_data(chunk)
    assert received == expected
    assert receiver.state is ConnectionState.CLOSED
    # The automatic replies (pongs, then the close) complete the sender's handshake.
    replies = sender.receive_data(receiver.data_to_send())
    assert replies[-1] == CloseConnection(code=1005 if close_code is None else close_code)
    assert sender.close_expected


def check_events(events: list[Event], conn: Connection) -> None:
    for index, event in enumerate(events):
        if isinstance(event, (ConnectionFailed, CloseConnection)):
            # A failure or a close is always the last event, and the connection is over.
            assert index == len(events) - 1
            assert conn.state is ConnectionState.CLOSED
            assert conn.close_expected


@SETTINGS
@given(
    st.sampled_from([Role.CLIENT, Role.SERVER]),
    st.lists(st.binary(max_size=64), max_size=12),
    st.none() | st.integers(min_value=0, max_value=200),
    st.booleans(),
)
def test_arbitrary_bytes_never_raise(
    role: Role, chunks: list[bytes], max_size: int | None, decode_text: bool
) -> None:
    conn = Connection(role, max_message_size=max_size, decode_text=decode_text)
    for chunk in chunks:
        check_events(conn.receive_data(chunk), conn)
    assert conn.receive_eof() == []
    assert conn.state is ConnectionState.CLOSED


@st.composite
def wire_frames(draw: st.DrawFn, masked: bool) -> bytes:
    """Structurally valid frames with arbitrary flags, opcodes and payloads."""
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 0, 1, 2, 3, 11]))
    payload = draw(
        st.one_of(
            st.binary(max_size=140),
            st.text(max_size=20).map(str.encode),
            st.tuples(st.integers(min_value=0, max_value=5100), st.text(max_size=5)).map(
                lambda pair: pair[0].to_bytes(2, "big") + pair[1].encode()
            ),
        )
    )
    frame = Frame(
        opcode,  # type: ignore[arg-type]
        payload,
        fin=draw(st.booleans()),
        rsv1=draw(st.integers(0, 9)) == 0,
    )
    # Occasionally send the other role's masking, which is a violation.
    if draw(st.integers(0, 19)) == 0:
        masked = not masked
    return serialize_frame(frame, mask_key=b"\x10\x20\x30\x40" if masked else None)


@SETTINGS
@given(st.data(), st.sampled_from([Role.CLIENT, Role.SERVER]), st.none() | st.integers(0, 300))
def test_arbitrary_frames_never_raise_and_any_split_agrees(
    data: st.DataObject, role: Role, max_size: int | None
) -> None:
    wire = b"".join(data.draw(st.lists(wire_frames(masked=role is Role.SERVER), max_size=8)))
    cuts = data.draw(st.lists(st.integers(min_value=0), max_size=20))
    key = b"\x01\x02\x03\x04"
    whole = Connection(role, max_message_size=max_size, mask_key_source=lambda: key)
    pieces = Connection(role, max_message_size=max_size, mask_key_source=lambda: key)
    whole_events = whole.receive_data(wire)
    check_events(whole_events, whole)
    split_events: list[Event] = []
    for chunk in split(wire, cuts):
        split_events += pieces.receive_data(chunk)
    assert split_events == whole_events
    assert whole.data_to_send() == pieces.data_to_send()
    assert whole.state is pieces.state
