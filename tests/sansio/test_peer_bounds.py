"""What a hostile peer can make the core hold: pongs it never reads, endless fragments."""

from __future__ import annotations

import tracemalloc

import pytest

from tests.sansio.test_connection import assert_failed, from_client, sent_frames, server
from trio_ws.sansio import BytesMessage, Connection, Opcode, Ping, Role, TextMessage

# How many automatic pongs may wait unsent before new ones replace the last (the core's
# bound, restated here so that a change to it is a visible change to this test).
PENDING_PONGS = 16


def pings(count: int, start: int = 0) -> bytes:
    return b"".join(from_client(Opcode.PING, b"%d" % n) for n in range(start, start + count))


def test_a_burst_of_pings_is_answered_ping_by_ping() -> None:
    # Autobahn 2.10: ten pings in a row, each answered, in order.
    conn = server()
    assert conn.receive_data(pings(10)) == [Ping(payload=b"%d" % n) for n in range(10)]
    pongs = sent_frames(conn)
    assert [(f.opcode, f.payload) for f in pongs] == [(Opcode.PONG, b"%d" % n) for n in range(10)]


def test_pings_never_read_queue_a_bounded_number_of_pongs() -> None:
    conn = server()
    events = conn.receive_data(pings(10_000))
    assert len(events) == 10_000
    # Each pong here is at most 2 + 4 bytes of payload: the queue is bounded by count.
    assert conn.bytes_to_send <= PENDING_PONGS * (2 + 4)
    pongs = sent_frames(conn)
    assert len(pongs) == PENDING_PONGS
    assert all(f.opcode is Opcode.PONG for f in pongs)
    # The first ones are answered as they came; the last answers the latest ping.
    assert [f.payload for f in pongs[:-1]] == [b"%d" % n for n in range(PENDING_PONGS - 1)]
    assert pongs[-1].payload == b"9999"
    # Once the writer took them, new pings are answered again.
    conn.receive_data(pings(3, start=20_000))
    assert [f.payload for f in sent_frames(conn)] == [b"20000", b"20001", b"20002"]


def test_a_flood_of_maximal_pings_costs_a_few_kilobytes() -> None:
    conn = server()
    ping = from_client(Opcode.PING, b"p" * 125)
    for _ in range(200):  # 200 x 50 pings of 125 bytes: about 1.3 MB received
        conn.receive_data(ping * 50)
        assert conn.bytes_to_send <= PENDING_PONGS * (2 + 125)


def test_coalesced_pongs_keep_their_place_among_other_frames() -> None:
    conn = server()
    conn.send_text("before")
    conn.receive_data(pings(10))
    conn.send_text("between")
    conn.receive_data(pings(20, start=10))
    frames = [(f.opcode, f.payload) for f in sent_frames(conn)]
    expected = [(Opcode.TEXT, b"before")]
    expected += [(Opcode.PONG, b"%d" % n) for n in range(10)]
    expected += [(Opcode.TEXT, b"between")]
    expected += [(Opcode.PONG, b"%d" % n) for n in range(10, PENDING_PONGS - 1)]
    expected += [(Opcode.PONG, b"29")]
    assert frames == expected


def test_taking_a_piece_of_a_large_frame_starts_a_new_count() -> None:
    # A large payload is written piece by piece; pongs queued behind it stay bounded per
    # piece taken and the latest ping is still the one answered last.
    conn = server()
    big = b"x" * 2**18
    conn.send_binary(big)
    conn.receive_data(pings(20))
    taken = [bytes(conn.next_data_to_send(2**16))]  # the header of the large frame
    conn.receive_data(pings(20, start=100))
    assert conn.bytes_to_send <= len(big) + 2 * PENDING_PONGS * (2 + 3)
    while conn.bytes_to_send:
        taken.append(bytes(conn.next_data_to_send(2**16)))
    probe = Connection(Role.CLIENT, max_message_size=None)
    events = probe.receive_data(b"".join(taken))
    assert events[0] == BytesMessage(data=big)
    # Pongs arrive at a client as Pong events; their payloads tell which pings were answered.
    payloads = [e.payload for e in events[1:]]  # type: ignore[union-attr]
    assert payloads[PENDING_PONGS - 1] == b"19"
    assert payloads[-1] == b"119"
    assert len(payloads) == 2 * PENDING_PONGS


# ------------------------------------------------------------ fragments


def test_a_message_that_never_ends_fails_at_max_fragments() -> None:
    conn = server()  # the default: 4096 fragments
    wire = from_client(Opcode.BINARY, b"x", fin=False)
    wire += from_client(Opcode.CONTINUATION, b"", fin=False) * 4095
    assert conn.receive_data(wire) == []
    failure = assert_failed(conn.receive_data(from_client(Opcode.CONTINUATION, b"")), conn, 1009)
    assert "max_fragments" in failure.reason
    assert "4096" in failure.reason


def test_a_message_of_exactly_max_fragments_is_accepted() -> None:
    conn = server(max_fragments=3)
    wire = from_client(Opcode.TEXT, b"a", fin=False)
    wire += from_client(Opcode.CONTINUATION, b"", fin=False)
    wire += from_client(Opcode.CONTINUATION, b"b")
    assert conn.receive_data(wire) == [TextMessage(data="ab")]
    # The count starts again with each message.
    assert conn.receive_data(wire) == [TextMessage(data="ab")]
    four = from_client(Opcode.TEXT, b"a", fin=False)
    four += from_client(Opcode.CONTINUATION, b"", fin=False) * 2
    four += from_client(Opcode.CONTINUATION, b"b")
    assert_failed(conn.receive_data(four), conn, 1009)


def test_control_frames_between_fragments_do_not_count() -> None:
    conn = server(max_fragments=2)
    wire = from_client(Opcode.BINARY, b"a", fin=False)
    wire += pings(5)
    wire += from_client(Opcode.CONTINUATION, b"b")
    assert conn.receive_data(wire)[-1] == BytesMessage(data=b"ab")


def test_no_fragment_limit_when_none() -> None:
    conn = server(max_fragments=None)
    wire = from_client(Opcode.BINARY, b"", fin=False)
    wire += from_client(Opcode.CONTINUATION, b"", fin=False) * 10_000
    wire += from_client(Opcode.CONTINUATION, b"end")
    assert conn.receive_data(wire) == [BytesMessage(data=b"end")]


@pytest.mark.parametrize("value", [0, -1])
def test_max_fragments_below_one_is_refused(value: int) -> None:
    with pytest.raises(ValueError, match="max_fragments"):
        Connection(Role.SERVER, max_fragments=value)


def _feed_tiny_fragments(conn: Connection, size: int) -> list[object]:
    """Send ``conn`` a binary message of ``size`` bytes in 2-byte fragments, 16 KiB at a time."""
    fragment = from_client(Opcode.CONTINUATION, b"ab", fin=False)
    batch = fragment * (2**14 // len(fragment))
    per_batch = len(batch) // len(fragment)
    events: list[object] = list(conn.receive_data(from_client(Opcode.BINARY, b"ab", fin=False)))
    remaining = size // 2 - 2  # fragments before the last one
    while remaining > 0 and not events:
        count = min(per_batch, remaining)
        events += conn.receive_data(batch[: count * len(fragment)])
        remaining -= count
    if not events:
        events += conn.receive_data(from_client(Opcode.CONTINUATION, b"ab"))
    return events


def test_a_message_in_tiny_fragments_costs_about_its_size() -> None:
    size = 2**16
    conn = server(max_message_size=size, max_fragments=None)
    tracemalloc.start()
    try:
        events = _feed_tiny_fragments(conn, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert events == [BytesMessage(data=b"ab" * (size // 2))]
    # The buffer, the message made from it, and a batch or two: not one object a fragment
    # (which cost about 27 MB for 1 MiB, 26 times its size).
    assert peak < 3 * size + 2**16


def test_refusing_a_big_message_in_tiny_fragments_stays_near_the_limit() -> None:
    limit = 2**16
    conn = server(max_message_size=limit, max_fragments=None)
    tracemalloc.start()
    try:
        events = _feed_tiny_fragments(conn, 4 * limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(events, conn, 1009)  # type: ignore[arg-type]
    assert peak < 2 * limit
