"""Large frames are sent piece by piece: ``next_data_to_send`` and ``bytes_wanted``.

Whatever the piece size, the pieces must be exactly the bytes ``data_to_send`` would return
at once; a large payload must not be copied (a server's) nor masked before it is taken (a
client's), and the receive hint must follow the frame being received.
"""

from __future__ import annotations

import itertools
import os

import pytest

from trio_ws.sansio import BytesMessage, Connection, Role, TextMessage
from trio_ws.sansio._frames import (
    apply_mask,
    frame_bytes,
    frame_header,
    mask_parts,
    rotate_mask,
)

# Odd sizes, so that pieces end at every offset of the 4-byte masking key.
LARGE = os.urandom(300_003)
LARGER = os.urandom(2**17 + 1)
KEYS = [b"\x01\x02\x03\x04", b"\xa0\xb1\xc2\xd3", b"\xff\x00\xff\x00"]


def _connection(role: Role) -> Connection:
    # A fixed sequence of masking keys, so that two connections send the same bytes.
    keys = itertools.cycle(KEYS)
    return Connection(role, max_message_size=None, mask_key_source=lambda: next(keys))


def _send_all(connection: Connection) -> None:
    connection.send_binary(b"small")
    connection.send_binary(LARGE)
    connection.send_ping(b"between")
    connection.send_text("x" * 200_000)
    connection.send_binary(LARGER)
    connection.send_binary(LARGER)  # two large payloads in a row
    connection.send_fragment(LARGE, text=False, fin=False)
    connection.send_fragment(b"end", text=False, fin=True)
    connection.send_close(1000, "done")


def _drain_in_pieces(connection: Connection, max_bytes: int) -> list[bytes | memoryview]:
    pieces: list[bytes | memoryview] = []
    while True:
        left = connection.bytes_to_send
        piece = connection.next_data_to_send(max_bytes)
        if not piece:
            assert left == 0
            return pieces
        assert connection.bytes_to_send == left - len(piece)
        pieces.append(piece)


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
@pytest.mark.parametrize("max_bytes", [1, 3, 4, 4093, 65_536, 2**17, 2**30])
def test_pieces_are_the_bytes_of_data_to_send(role: Role, max_bytes: int) -> None:
    whole = _connection(role)
    _send_all(whole)
    expected = whole.data_to_send()
    pieces_connection = _connection(role)
    _send_all(pieces_connection)
    assert pieces_connection.bytes_to_send == len(expected)
    pieces = _drain_in_pieces(pieces_connection, max_bytes)
    assert b"".join(pieces) == expected
    # A large payload never comes in pieces over max_bytes; whole frames come together.
    assert max(len(piece) for piece in pieces) <= max(max_bytes, 200_100)
    assert pieces_connection.data_to_send() == b""


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_pieces_then_data_to_send_take_the_rest(role: Role) -> None:
    whole = _connection(role)
    _send_all(whole)
    expected = whole.data_to_send()
    connection = _connection(role)
    _send_all(connection)
    taken = [connection.next_data_to_send(1000) for _ in range(3)]
    rest = connection.data_to_send()
    assert b"".join([*taken, rest]) == expected
    assert connection.bytes_to_send == 0
    assert connection.next_data_to_send(1000) == b""


def test_small_frames_only_come_whole_whatever_max_bytes() -> None:
    connection = Connection(Role.SERVER)
    connection.send_binary(b"a" * 1000)
    connection.send_binary(b"b" * 1000)
    expected = frame_bytes(0x82, b"a" * 1000, None) + frame_bytes(0x82, b"b" * 1000, None)
    assert connection.next_data_to_send(10) == expected
    assert connection.bytes_to_send == 0


def test_a_server_payload_is_written_from_the_callers_bytes_without_a_copy() -> None:
    connection = Connection(Role.SERVER)
    connection.send_binary(LARGE)
    header = connection.next_data_to_send(2**30)
    assert header == frame_header(0x82, len(LARGE), None)
    payload = connection.next_data_to_send(2**30)
    assert isinstance(payload, memoryview)
    assert payload.obj is LARGE
    assert connection.bytes_to_send == 0


def test_a_client_masks_a_large_payload_as_it_is_taken() -> None:
    connection = _connection(Role.CLIENT)
    connection.send_binary(LARGE)
    key = KEYS[0]
    assert connection.next_data_to_send(100) == frame_header(0x82, len(LARGE), key)
    first = connection.next_data_to_send(4001)  # ends at key offset 1
    second = connection.next_data_to_send(4000)
    assert first == apply_mask(LARGE[:4001], key)
    assert second == apply_mask(LARGE[4001:8001], rotate_mask(key, 4001))
    rest = connection.data_to_send()
    assert b"".join([first, second, rest]) == apply_mask(LARGE, key)


def test_a_large_frame_sent_in_pieces_is_received_whole() -> None:
    client = _connection(Role.CLIENT)
    server = Connection(Role.SERVER, max_message_size=None)
    client.send_binary(LARGE)
    client.send_text("héllo" * 30_000)
    events = []
    for piece in _drain_in_pieces(client, 2**15 + 1):
        events += server.receive_data(piece)
    assert events == [BytesMessage(data=LARGE), TextMessage(data="héllo" * 30_000)]


@pytest.mark.parametrize("first_byte", [0x81, 0x02, 0x8A])
@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 300_000])
@pytest.mark.parametrize("key", [None, b"\x01\x02\x03\x04"])
def test_frame_header_is_the_start_of_the_frame(
    first_byte: int, size: int, key: bytes | None
) -> None:
    payload = bytes(size)
    header = frame_header(first_byte, size, key)
    frame = frame_bytes(first_byte, payload, key)
    assert frame[: len(header)] == header
    assert len(frame) == len(header) + size


@pytest.mark.parametrize("size", [0, 1, 5, 32_767, 32_768, 32_769, 65_536, 100_003])
def test_mask_parts_join_to_the_masked_payload(size: int) -> None:
    data = os.urandom(size)
    key = b"\x12\x34\x56\x78"
    parts = mask_parts(data, key)
    assert all(isinstance(part, bytes) for part in parts)
    assert b"".join(parts) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert b"".join(mask_parts(memoryview(data), key)) == apply_mask(data, key)


@pytest.mark.parametrize("offset", range(9))
def test_rotate_mask_continues_the_key_at_an_offset(offset: int) -> None:
    key = b"\x01\x02\x03\x04"
    data = os.urandom(40)
    masked = apply_mask(data, key)
    assert apply_mask(data[offset:], rotate_mask(key, offset)) == masked[offset:]


# --- bytes_wanted: the receive hint -------------------------------------------------------


def test_bytes_wanted_follows_the_frame_being_received() -> None:
    client = _connection(Role.CLIENT)
    server = Connection(Role.SERVER, max_message_size=None)
    assert server.bytes_wanted == 2
    client.send_binary(b"x" * 1000)
    small = client.data_to_send()  # 1000 bytes: 2 + 2 (length) + 4 (key) of header
    assert server.receive_data(small[:1]) == []
    assert server.bytes_wanted == 1  # the rest of the 2-byte header
    assert server.receive_data(small[1:3]) == []
    assert server.bytes_wanted == 1  # the extended length is not complete yet
    assert server.receive_data(small[3:20]) == []
    assert server.bytes_wanted == len(small) - 20
    assert server.receive_data(small[20:]) == [BytesMessage(data=b"x" * 1000)]
    assert server.bytes_wanted == 2

    client.send_binary(LARGE)
    large = client.data_to_send()
    assert server.receive_data(large[:100_000]) == []
    assert server.bytes_wanted == len(large) - 100_000  # the rest of the payload
    assert server.receive_data(large[100_000:]) == [BytesMessage(data=LARGE)]
    assert server.bytes_wanted == 2

    client.send_close(1000)
    server.receive_data(client.data_to_send())
    assert server.bytes_wanted == 0  # input closed: nothing more is read for the core
