"""Fuzz targets of the sans-IO core: one function per parser, each taking arbitrary bytes.

A target returns normally for any input the core handles as documented (events, or the
documented protocol errors) and raises for anything else: an unexpected exception, or a
broken invariant (an assertion). ``fuzz/run.py`` drives them with atheris (coverage-guided,
libFuzzer); ``tests/test_fuzz.py`` replays the corpora and runs a short atheris pass.

The first bytes of an input choose the settings (role, limits, chunk size), so the fuzzer
explores them together with the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio_ws.sansio import (
    ClientHandshake,
    CloseConnection,
    Connection,
    ConnectionFailed,
    ConnectionRejected,
    ConnectionState,
    Frame,
    InvalidHandshake,
    Opcode,
    Role,
    ServerHandshake,
    serialize_frame,
)
from trio_ws.sansio.extensions import PerMessageDeflate, server_extensions

if TYPE_CHECKING:
    from collections.abc import Callable

    from trio_ws.sansio import Event

__all__ = ["TARGETS", "deflate", "frames", "handshake_request", "handshake_response"]

_KEY = b"\x01\x02\x03\x04"
# The statuses the handshake answers bad requests with (501: an unknown Transfer-Encoding,
# as RFC 9112 section 6.1 asks).
_ERROR_STATUSES = frozenset({400, 405, 414, 426, 431, 501, 505})


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


def _check_events(events: list[Event], conn: Connection) -> None:
    for index, event in enumerate(events):
        if isinstance(event, (ConnectionFailed, CloseConnection)):
            # A failure or a close is the last event, and the connection is then over.
            assert index == len(events) - 1, events
            assert conn.state is ConnectionState.CLOSED


def _feed(conn: Connection, data: bytes, size: int) -> list[Event]:
    events: list[Event] = []
    for chunk in _chunks(data, size):
        new = conn.receive_data(chunk)
        _check_events(new, conn)
        events += new
    return events


def frames(data: bytes) -> None:
    """The frame parser and the connection's state machine, on arbitrary wire bytes.

    Any input yields events (never an exception), and the events do not depend on how the
    input is cut into receive buffers.
    """
    if len(data) < 2:
        return
    flags, limit, wire = data[0], data[1], data[2:]
    role = Role.CLIENT if flags & 1 else Role.SERVER
    max_size = None if flags & 2 else limit * 8
    decode_text = not flags & 4
    size = (flags >> 3) + 1

    def connection() -> Connection:
        return Connection(
            role, max_message_size=max_size, decode_text=decode_text, mask_key_source=lambda: _KEY
        )

    whole, pieces = connection(), connection()
    whole_events = _feed(whole, wire, len(wire) or 1)
    pieces_events = _feed(pieces, wire, size)
    if whole_events != pieces_events:
        # Allowed difference: given the whole input at once, the connection may fail fast on
        # a frame that is still incomplete (invalid UTF-8 in its first bytes), where small
        # pieces only fail once the frame is complete, which this input never makes it.
        assert isinstance(whole_events[-1], ConnectionFailed), (whole_events, pieces_events)
        assert pieces_events == whole_events[:-1], (whole_events, pieces_events)
        return
    assert whole.data_to_send() == pieces.data_to_send()
    assert whole.receive_eof() == pieces.receive_eof()
    assert whole.state is ConnectionState.CLOSED


def handshake_request(data: bytes) -> None:
    """The server's handshake parser, on an arbitrary request.

    Only :exc:`InvalidHandshake` may come out, with an HTTP status to answer.
    """
    if not data:
        return
    size = data[0] + 1
    handshake = ServerHandshake(extensions=server_extensions("deflate"), max_request_size=4096)
    status = None
    try:
        for chunk in _chunks(data[1:], size):
            if handshake.receive_data(chunk) is not None:
                return
        handshake.receive_data(b"")
    except InvalidHandshake as exc:
        status = exc.status_code
    assert status is None or status in _ERROR_STATUSES, status


def handshake_response(data: bytes) -> None:
    """The client's handshake parser, on an arbitrary response.

    Only :exc:`ConnectionRejected` (a well-formed non-101 answer) or
    :exc:`InvalidHandshake` may come out.
    """
    handshake = ClientHandshake(
        "example.com",
        "/chat",
        key="dGhlIHNhbXBsZSBub25jZQ==",  # RFC 6455's example, so seeds can answer it
        subprotocols=["chat", "superchat"],
    )
    handshake.data_to_send()
    try:
        for chunk in _chunks(data, 37):
            if handshake.receive_data(chunk) is not None:
                return
        handshake.receive_eof()
    except (ConnectionRejected, InvalidHandshake):
        pass


def deflate(data: bytes) -> None:
    """permessage-deflate on arbitrary compressed payloads, and a round trip.

    Arbitrary bytes as the payload of compressed frames yield events, never an exception
    (a corrupt stream fails the connection); and any data, compressed by one side, comes
    out unchanged on the other.
    """
    if not data:
        return
    flags, payload = data[0], data[1:]
    receiver = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=1 << 16)
    frame_count = (flags & 3) + 1
    step = max(1, len(payload) // frame_count)
    wire = b""
    for index in range(frame_count):
        part = payload[index * step : (index + 1) * step if index < frame_count - 1 else None]
        wire += serialize_frame(
            Frame(
                Opcode.BINARY if index == 0 else Opcode.CONTINUATION,
                part,
                fin=index == frame_count - 1,
                rsv1=index == 0,
            ),
            mask_key=_KEY,
        )
    _feed(receiver, wire, (flags >> 2) + 1)
    # The round trip: compress with a client, decompress with a server.
    sender = Connection(Role.CLIENT, extensions=[PerMessageDeflate()], mask_key_source=lambda: _KEY)
    peer = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=None)
    sender.send_binary(payload)
    events = peer.receive_data(sender.data_to_send())
    assert len(events) == 1, events
    assert getattr(events[0], "data", None) == payload


def _selftest(data: bytes) -> None:
    """Fails on inputs of three bytes or more: proves that ``run.py`` reports a failure."""
    if len(data) >= 3:
        raise ValueError("the self-test target fails, as it should")


#: The targets by name; names starting with ``_`` are not fuzzed by default.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "_selftest": _selftest,
    "frames": frames,
    "handshake_request": handshake_request,
    "handshake_response": handshake_response,
    "deflate": deflate,
}
