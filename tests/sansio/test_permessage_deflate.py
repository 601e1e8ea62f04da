"""Tests of permessage-deflate (RFC 7692): negotiation, frame transforms, limits, interop."""

from __future__ import annotations

import random
import tracemalloc
import zlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings, strategies as st
from websockets.extensions import permessage_deflate as ws_deflate
from websockets.frames import Frame as WsFrame, Opcode as WsOpcode

from trio_ws.sansio import (
    CloseCode,
    Extension,
    Frame,
    NegotiationError,
    Opcode,
    RemoteProtocolError,
)
from trio_ws.sansio.extensions import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
    client_extensions,
    server_extensions,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    Params = list[tuple[str, str | None]]

TAIL = b"\x00\x00\xff\xff"
HELLO = bytes.fromhex("f248cdc9c90700")  # RFC 7692 section 7.2.3.1


# Helpers ---------------------------------------------------------------------------------


def negotiate(
    client: ClientPerMessageDeflate, server: ServerPerMessageDeflate
) -> tuple[PerMessageDeflate, PerMessageDeflate]:
    """Run the handshake's extension negotiation; return (client side, server side)."""
    answer, server_side = server.accept_offer(client.offer(), [])
    return client.accept_response(answer, []), server_side


def encode_message(
    extension: PerMessageDeflate,
    data: bytes,
    *,
    cuts: Iterable[int] = (),
    compress: bool | None = None,
    opcode: Opcode = Opcode.BINARY,
) -> list[Frame]:
    """Send ``data`` as one message, split into frames at ``cuts``."""
    bounds = sorted({cut % (len(data) + 1) for cut in cuts})
    starts, ends = [0, *bounds], [*bounds, len(data)]
    frames = []
    for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
        frame = Frame(
            opcode if index == 0 else Opcode.CONTINUATION,
            data[start:end],
            fin=index == len(starts) - 1,
        )
        frames.append(extension.encode(frame, compress=compress))
    return frames


def decode_message(
    extension: PerMessageDeflate, frames: Sequence[Frame], *, max_size: int | None = None
) -> bytes:
    """Receive one message's frames the way the connection does."""
    data = b""
    for frame in frames:
        remaining = None if max_size is None else max_size - len(data)
        decoded = extension.decode(frame, max_size=remaining)
        assert not decoded.rsv1
        assert (decoded.opcode, decoded.fin) == (frame.opcode, frame.fin)
        data += decoded.payload
    return data


def raw_deflate(data: bytes, wbits: int = 15) -> bytes:
    """What a peer sends for one message: raw DEFLATE, sync-flushed, tail stripped."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    compressed = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert compressed.endswith(TAIL)
    return compressed[:-4]


def compressed(payload: bytes, *, fin: bool = True, opcode: Opcode = Opcode.TEXT) -> Frame:
    return Frame(opcode, payload, fin=fin, rsv1=True)


# The RFC 7692 section 7.2.3 examples, byte for byte ----------------------------------------


def test_rfc_hello_compressed() -> None:
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    frame = sender.encode(Frame(Opcode.TEXT, b"Hello"), compress=True)
    assert frame == Frame(Opcode.TEXT, HELLO, fin=True, rsv1=True)
    assert receiver.decode(frame, max_size=None) == Frame(Opcode.TEXT, b"Hello")


def test_rfc_hello_fragmented() -> None:
    receiver = PerMessageDeflate()
    first = receiver.decode(compressed(HELLO[:3], fin=False), max_size=None)
    second = receiver.decode(Frame(Opcode.CONTINUATION, HELLO[3:]), max_size=None)
    assert first.payload + second.payload == b"Hello"
    assert not first.rsv1
    assert second == Frame(Opcode.CONTINUATION, second.payload)


def test_rfc_sharing_the_window() -> None:
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    payloads = [sender.encode(Frame(Opcode.TEXT, b"Hello"), compress=True).payload for _ in "ab"]
    assert payloads == [HELLO, bytes.fromhex("f200110000")]
    for payload in payloads:
        assert receiver.decode(compressed(payload), max_size=None).payload == b"Hello"


def test_no_context_takeover_repeats_the_first_message() -> None:
    sender = PerMessageDeflate(local_no_context_takeover=True)
    payloads = {sender.encode(Frame(Opcode.TEXT, b"Hello"), compress=True).payload for _ in "ab"}
    assert payloads == {HELLO}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("000500faff48656c6c6f00", id="7.2.3.3-stored-block"),
        pytest.param("f348cdc9c9070000", id="7.2.3.4-bfinal"),
        pytest.param("f348cdc9c90700", id="bfinal-without-padding-block"),
        pytest.param("f248050000 00ffff cac9c90700", id="7.2.3.5-two-blocks"),
    ],
)
def test_rfc_other_encodings_of_hello(payload: str) -> None:
    receiver = PerMessageDeflate()
    for _ in range(2):  # the context survives a final block
        assert receiver.decode(compressed(bytes.fromhex(payload)), max_size=None).payload == (
            b"Hello"
        )
    assert receiver.decode(compressed(HELLO), max_size=None).payload == b"Hello"


def test_rfc_empty_message() -> None:
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    frame = sender.encode(Frame(Opcode.BINARY, b""), compress=True)
    assert frame == Frame(Opcode.BINARY, b"\x00", rsv1=True)
    assert receiver.decode(frame, max_size=0) == Frame(Opcode.BINARY, b"")


def test_empty_messages_and_fragments_between_others() -> None:
    # zlib skips a second Z_SYNC_FLUSH with no input in between: the encoder must not.
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    for data, cuts in [(b"x" * 100, ()), (b"", ()), (b"", ()), (b"y" * 100, (0, 0, 50, 100))]:
        frames = encode_message(sender, data, cuts=cuts, compress=True)
        assert decode_message(receiver, frames) == data


# Blocks may follow a final block (RFC 7692 section 7.2.1) ---------------------------------


def final_stream(data: bytes, zdict: bytes = b"") -> bytes:
    """A complete raw DEFLATE stream: its last block has BFINAL set."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=zdict)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH)


def test_streams_after_a_final_block() -> None:
    receiver = PerMessageDeflate()
    payload = final_stream(b"Hello") + final_stream(b", world") + raw_deflate(b"!")
    assert receiver.decode(compressed(payload), max_size=None).payload == b"Hello, world!"
    frames = [compressed(final_stream(b"Hello"), fin=False), Frame(Opcode.CONTINUATION, HELLO)]
    assert decode_message(receiver, frames) == b"HelloHello"


def test_no_history_across_a_final_block() -> None:
    # A documented limitation: copying the history for each final block would let a peer
    # make the receiver copy 32 KiB per 2 bytes received.
    text = b"the quick brown fox jumps over the lazy dog"
    payload = final_stream(text) + final_stream(text, zdict=text)
    with pytest.raises(RemoteProtocolError) as info:
        PerMessageDeflate().decode(compressed(payload), max_size=None)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_final_block_then_garbage() -> None:
    head = final_stream(b"Hello")
    with pytest.raises(RemoteProtocolError) as info:
        PerMessageDeflate().decode(compressed(head + b"\xff\xff"), max_size=None)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_many_final_blocks() -> None:
    # An empty fixed-Huffman block with BFINAL set takes 2 bytes: a new stream each time.
    # Unbounded, 500,000 of them in a 1 MB frame took 19 s (zlib copies the rest of the
    # input at each end of stream).
    receiver = PerMessageDeflate()
    assert receiver.decode(compressed(b"\x03\x00" * 16 + HELLO), max_size=5).payload == (b"Hello")
    with pytest.raises(RemoteProtocolError) as info:
        receiver.decode(compressed(b"\x03\x00" * 17 + HELLO), max_size=5)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_size_limit_after_a_final_block() -> None:
    head, tail = final_stream(b"a" * 100), raw_deflate(b"a" * 100)
    receiver = PerMessageDeflate()
    assert receiver.decode(compressed(head + tail), max_size=200).payload == b"a" * 200
    for limit in (99, 100, 150, 199):
        with pytest.raises(RemoteProtocolError) as info:
            PerMessageDeflate().decode(compressed(head + tail), max_size=limit)
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG


# Receiving: pass-through and protocol errors -----------------------------------------------


def test_uncompressed_message_passes_through() -> None:
    receiver = PerMessageDeflate()
    frames = [
        Frame(Opcode.TEXT, b"Hel", fin=False),
        Frame(Opcode.PING, b"ping"),
        Frame(Opcode.CONTINUATION, b"lo", rsv2=True),
    ]
    for frame in frames:
        assert receiver.decode(frame, max_size=0) is frame


def test_control_frames_between_compressed_fragments() -> None:
    receiver = PerMessageDeflate()
    first = receiver.decode(compressed(HELLO[:3], fin=False), max_size=None)
    pong = Frame(Opcode.PONG, b"pong")
    assert receiver.decode(pong, max_size=None) is pong
    second = receiver.decode(Frame(Opcode.CONTINUATION, HELLO[3:]), max_size=None)
    assert first.payload + second.payload == b"Hello"


@pytest.mark.parametrize("compressed_message", [False, True])
def test_rsv1_on_a_continuation_frame(compressed_message: bool) -> None:
    receiver = PerMessageDeflate()
    receiver.decode(
        Frame(Opcode.TEXT, HELLO[:3], fin=False, rsv1=compressed_message), max_size=None
    )
    with pytest.raises(RemoteProtocolError) as info:
        receiver.decode(Frame(Opcode.CONTINUATION, HELLO[3:], rsv1=True), max_size=None)
    assert info.value.code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize("opcode", [Opcode.CLOSE, Opcode.PING, Opcode.PONG])
def test_rsv1_on_a_control_frame(opcode: Opcode) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        PerMessageDeflate().decode(Frame(opcode, HELLO, rsv1=True), max_size=None)
    assert info.value.code == CloseCode.PROTOCOL_ERROR


@pytest.mark.parametrize(
    "payload",
    [b"\xff", bytes.fromhex("00 05 00 00 00"), bytes.fromhex("f2 00 11 00 00")],
    ids=["reserved-block-type", "bad-stored-length", "distance-too-far-back"],
)
def test_corrupt_data(payload: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        PerMessageDeflate().decode(compressed(payload), max_size=None)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_window_larger_than_negotiated_is_refused() -> None:
    # zlib checks distances against the window only across calls, i.e. across frames.
    block = bytes(range(256)) * 4 + b"0123456789abcdef" * 32  # 1.5 KiB
    sender = PerMessageDeflate()
    frames = [sender.encode(Frame(Opcode.BINARY, block)) for _ in "ab"]
    assert len(frames[1].payload) < 40  # refers back 1.5 KiB
    small_window = PerMessageDeflate(remote_max_window_bits=10)
    assert small_window.decode(frames[0], max_size=None).payload == block
    with pytest.raises(RemoteProtocolError) as info:
        small_window.decode(frames[1], max_size=None)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA
    large_enough = PerMessageDeflate(remote_max_window_bits=11)
    assert decode_message(large_enough, frames) == block + block


def test_remote_no_context_takeover_resets_the_decompressor() -> None:
    second_hello = bytes.fromhex("f200110000")  # refers to the first message
    shared = PerMessageDeflate()
    assert decode_message(shared, [compressed(HELLO), compressed(second_hello)]) == b"HelloHello"
    fresh = PerMessageDeflate(remote_no_context_takeover=True)
    assert fresh.decode(compressed(HELLO), max_size=None).payload == b"Hello"
    with pytest.raises(RemoteProtocolError) as info:
        fresh.decode(compressed(second_hello), max_size=None)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


# Receiving: the size limit holds while inflating ------------------------------------------


def deflated_zeros(size: int, chunk: int = 1 << 20) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [
        compressor.compress(bytes(min(chunk, size - start))) for start in range(0, size, chunk)
    ]
    return b"".join(parts) + compressor.flush(zlib.Z_SYNC_FLUSH)[:-4]


@pytest.mark.parametrize(
    ("inflated_size", "limit"),
    [(1 << 20, 64 << 10), (64 << 20, 1 << 20)],
    ids=["1KiB-to-1MiB", "64KiB-to-64MiB"],
)
def test_decompression_bomb(inflated_size: int, limit: int) -> None:
    payload = deflated_zeros(inflated_size)
    assert len(payload) < inflated_size // 1000
    receiver = PerMessageDeflate()
    tracemalloc.start()
    try:
        with pytest.raises(RemoteProtocolError) as info:
            receiver.decode(compressed(payload), max_size=limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG
    # The output so far, a copy of the payload (to append the tail), zlib's 32 KiB window
    # and state, and a few 64 KiB pieces of input and output in flight.
    assert peak < limit + len(payload) + (384 << 10)


@pytest.mark.parametrize("cuts", [(), (10,), (3, 7, 8)])
def test_size_limit_is_exact(cuts: tuple[int, ...]) -> None:
    data = bytes(range(100)) * 10
    sender = PerMessageDeflate()
    frames = encode_message(sender, data, cuts=cuts, compress=True)
    assert decode_message(PerMessageDeflate(), frames, max_size=len(data)) == data
    with pytest.raises(RemoteProtocolError) as info:
        decode_message(PerMessageDeflate(), frames, max_size=len(data) - 1)
    assert info.value.code == CloseCode.MESSAGE_TOO_BIG


def test_no_size_limit() -> None:
    payload = deflated_zeros(4 << 20)
    assert PerMessageDeflate().decode(compressed(payload), max_size=None).payload == bytes(4 << 20)


@pytest.mark.parametrize("max_size", [None, 500_000])
@pytest.mark.parametrize("cuts", [(), (150_000,), (1, 70_000, 140_000, 210_000)])
def test_large_messages(max_size: int | None, cuts: tuple[int, ...]) -> None:
    # Larger than the 64 KiB pieces zlib is given, compressible or not.
    data = random.Random(7).randbytes(250_000) + bytes(250_000)
    frames = encode_message(PerMessageDeflate(), data, cuts=cuts)
    assert sum(len(frame.payload) for frame in frames) > 250_000
    assert decode_message(PerMessageDeflate(), frames, max_size=max_size) == data


def test_final_block_after_a_large_stream() -> None:
    data = random.Random(8).randbytes(150_000)
    payload = final_stream(data) + raw_deflate(b"Hello")
    assert PerMessageDeflate().decode(compressed(payload), max_size=None).payload == (
        data + b"Hello"
    )


# Sending: when to compress ----------------------------------------------------------------


def test_control_frames_are_not_compressed() -> None:
    sender = PerMessageDeflate(min_size=0)
    ping = Frame(Opcode.PING, b"x" * 100)
    assert sender.encode(ping, compress=True) is ping


@pytest.mark.parametrize(
    ("size", "compress", "expected"),
    [
        (63, None, False),
        (64, None, True),
        (0, True, True),
        (5, True, True),
        (1000, False, False),
        (1000, None, True),
    ],
)
def test_compress_decision(size: int, compress: bool | None, expected: bool) -> None:
    sender = PerMessageDeflate()
    frame = Frame(Opcode.TEXT, b"a" * size)
    encoded = sender.encode(frame, compress=compress)
    assert encoded.rsv1 is expected
    if not expected:
        assert encoded is frame


@pytest.mark.parametrize("min_size", [0, 1, 1000])
def test_min_size_setting(min_size: int) -> None:
    sender = PerMessageDeflate(min_size=min_size)
    assert sender.encode(Frame(Opcode.TEXT, b"a" * 999)).rsv1 is (min_size <= 999)
    assert sender.encode(Frame(Opcode.TEXT, b"")).rsv1 is (min_size == 0)


@pytest.mark.parametrize(("first_size", "expected"), [(10, False), (100, True)])
def test_decision_is_taken_on_the_first_frame(first_size: int, expected: bool) -> None:
    data = b"z" * first_size + b"abc" * 1000
    sender = PerMessageDeflate()
    frames = encode_message(sender, data, cuts=(first_size, first_size + 5))
    pieces = [data[:first_size], data[first_size : first_size + 5], data[first_size + 5 :]]
    assert [frame.rsv1 for frame in frames] == [expected, False, False]
    assert ([frame.payload for frame in frames] == pieces) is not expected
    assert decode_message(PerMessageDeflate(), frames) == data


def test_continuation_frames_ignore_compress() -> None:
    sender = PerMessageDeflate()
    first = sender.encode(Frame(Opcode.TEXT, b"a" * 100, fin=False), compress=False)
    last = Frame(Opcode.CONTINUATION, b"b" * 100)
    assert sender.encode(last, compress=True) is last
    assert not first.rsv1


def test_uncompressed_message_leaves_the_context_alone() -> None:
    messages = [b"Hello, world! " * 10, b"something else entirely " * 10, b"Hello, world! " * 10]
    reference = PerMessageDeflate()
    expected = [reference.encode(Frame(Opcode.TEXT, data)) for data in messages[::2]]
    sender, receiver = PerMessageDeflate(), PerMessageDeflate()
    frames = [
        sender.encode(Frame(Opcode.TEXT, data), compress=choice)
        for data, choice in zip(messages, [None, False, True], strict=True)
    ]
    assert [frames[0], frames[2]] == expected
    assert frames[1] == Frame(Opcode.TEXT, messages[1])
    assert [receiver.decode(frame, max_size=None).payload for frame in frames] == messages


def test_local_no_context_takeover_with_fragments() -> None:
    sender = PerMessageDeflate(local_no_context_takeover=True)
    data = b"fragmented and compressed " * 20
    first = encode_message(sender, data, cuts=(100, 200), compress=True)
    second = encode_message(sender, data, cuts=(100, 200), compress=True)
    assert first == second
    assert decode_message(PerMessageDeflate(remote_no_context_takeover=True), first) == data


def test_window_of_8_bits_fits_a_256_byte_window() -> None:
    # zlib deflates with 9 bits instead, which never refers further back than 250 bytes.
    block = bytes(range(256)) + b"abc" * 20  # repeats every 316 bytes
    sender = PerMessageDeflate(local_max_window_bits=8, local_no_context_takeover=False)
    strict = zlib.decompressobj(-8)
    for data in [block * 10, b"abc" * 100, block * 3]:
        payload = sender.encode(Frame(Opcode.BINARY, data)).payload + TAIL
        # One byte at a time: only the 256-byte window carries history between calls.
        assert b"".join(strict.decompress(payload[i : i + 1]) for i in range(len(payload))) == (
            data
        )


# Round trips ------------------------------------------------------------------------------

payloads = st.one_of(
    st.binary(max_size=1500),
    st.text(alphabet="ab \n", max_size=3000).map(str.encode),
    st.builds(
        lambda unit, count: unit * count, st.binary(min_size=1, max_size=600), st.integers(1, 60)
    ),
)
messages = st.lists(
    st.tuples(
        payloads,
        st.lists(st.integers(min_value=0), max_size=4),
        st.sampled_from([None, True, False]),
        st.booleans(),  # from the client (True) or from the server
    ),
    max_size=6,
)


@pytest.mark.parametrize("window_bits", range(8, 16))
@pytest.mark.parametrize(
    ("client_no_context_takeover", "server_no_context_takeover"),
    [(False, False), (True, False), (False, True), (True, True)],
)
@settings(max_examples=20, deadline=None)
@given(exchange=messages)
def test_round_trips(
    window_bits: int,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
    exchange: list[tuple[bytes, list[int], bool | None, bool]],
) -> None:
    client, server = negotiate(
        ClientPerMessageDeflate(
            client_no_context_takeover=client_no_context_takeover,
            server_no_context_takeover=server_no_context_takeover,
            server_max_window_bits=window_bits,
            client_max_window_bits=window_bits,
        ),
        ServerPerMessageDeflate(server_max_window_bits=None, client_max_window_bits=None),
    )
    assert client.local_max_window_bits == server.remote_max_window_bits == window_bits
    assert server.local_max_window_bits == client.remote_max_window_bits == window_bits
    for data, cuts, compress, from_client in exchange:
        sender, receiver = (client, server) if from_client else (server, client)
        frames = encode_message(sender, data, cuts=cuts, compress=compress)
        assert decode_message(receiver, frames, max_size=len(data)) == data


# Interoperability -------------------------------------------------------------------------


def to_ws(frame: Frame) -> WsFrame:
    return WsFrame(WsOpcode(frame.opcode), frame.payload, frame.fin, frame.rsv1)


def from_ws(frame: WsFrame) -> Frame:
    return Frame(Opcode(frame.opcode), bytes(frame.data), frame.fin, frame.rsv1)


@pytest.mark.parametrize(
    ("client", "server"),
    [
        (ClientPerMessageDeflate(), ServerPerMessageDeflate()),
        (
            ClientPerMessageDeflate(
                server_no_context_takeover=True,
                client_no_context_takeover=True,
                server_max_window_bits=10,
                client_max_window_bits=9,
            ),
            ServerPerMessageDeflate(),
        ),
    ],
    ids=["defaults", "everything"],
)
@settings(max_examples=20, deadline=None)
@given(exchange=messages)
def test_interop_with_websockets(
    client: ClientPerMessageDeflate,
    server: ServerPerMessageDeflate,
    exchange: list[tuple[bytes, list[int], bool | None, bool]],
) -> None:
    """Our client against websockets' server, and websockets' client against our server."""
    ws_server_factory = ws_deflate.ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12, compress_settings={"memLevel": 5}
    )
    answer, ws_server = ws_server_factory.process_request_params(client.offer(), [])
    ours_client = client.accept_response(list(answer), [])

    ws_client_factory = ws_deflate.ClientPerMessageDeflateFactory(
        server_no_context_takeover=ours_client.remote_no_context_takeover,
        client_no_context_takeover=ours_client.local_no_context_takeover,
        compress_settings={"memLevel": 5},
    )
    answer, ours_server = server.accept_offer(list(ws_client_factory.get_request_params()), [])
    ws_client = ws_client_factory.process_response_params(answer, [])

    for data, cuts, compress, from_ours in exchange:
        for ours, theirs in [(ours_client, ws_server), (ours_server, ws_client)]:
            check_one_message(ours, theirs, data, cuts, compress=compress, from_ours=from_ours)


def check_one_message(
    ours: PerMessageDeflate,
    theirs: ws_deflate.PerMessageDeflate,
    data: bytes,
    cuts: list[int],
    *,
    compress: bool | None,
    from_ours: bool,
) -> None:
    """Send ``data`` from our extension to websockets' (or back) and check it arrives whole."""
    if from_ours:
        frames = encode_message(ours, data, cuts=cuts, compress=compress)
        received = b"".join(
            bytes(theirs.decode(to_ws(frame), max_size=None).data) for frame in frames
        )
    else:
        ws_frames = encode_message_with_websockets(theirs, data, cuts)
        received = decode_message(ours, [from_ws(frame) for frame in ws_frames])
    assert received == data


def encode_message_with_websockets(
    extension: ws_deflate.PerMessageDeflate, data: bytes, cuts: Iterable[int]
) -> list[WsFrame]:
    bounds = sorted({cut % (len(data) + 1) for cut in cuts})
    starts, ends = [0, *bounds], [*bounds, len(data)]
    return [
        extension.encode(
            WsFrame(
                WsOpcode.BINARY if index == 0 else WsOpcode.CONT,
                data[start:end],
                fin=index == len(starts) - 1,
            )
        )
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


@settings(max_examples=30, deadline=None)
@given(batch=st.lists(payloads, max_size=5), window_bits=st.integers(9, 15))
def test_interop_with_plain_zlib(batch: list[bytes], window_bits: int) -> None:
    sender = PerMessageDeflate(local_max_window_bits=window_bits, min_size=0)
    receiver = PerMessageDeflate(remote_max_window_bits=window_bits)
    zlib_compressor = zlib.compressobj(9, zlib.DEFLATED, -window_bits, 9)
    zlib_decompressor = zlib.decompressobj(-window_bits)
    for data in batch:
        payload = sender.encode(Frame(Opcode.BINARY, data)).payload
        assert zlib_decompressor.decompress(payload + TAIL) == data
        payload = zlib_compressor.compress(data) + zlib_compressor.flush(zlib.Z_SYNC_FLUSH)
        assert receiver.decode(compressed(payload[:-4]), max_size=None).payload == data


# Negotiation: the server's answer ---------------------------------------------------------

SERVER_CASES: list[tuple[dict[str, object], Params, Params, tuple[bool, bool, int, int]]] = [
    # (server settings, offer, answer, (local nct, remote nct, local bits, remote bits))
    ({}, [], [("server_max_window_bits", "12")], (False, False, 12, 15)),
    (
        {},
        [("client_max_window_bits", None)],
        [("server_max_window_bits", "12"), ("client_max_window_bits", "12")],
        (False, False, 12, 12),
    ),
    (
        {},
        [("client_max_window_bits", "10"), ("server_max_window_bits", "14")],
        [("server_max_window_bits", "12"), ("client_max_window_bits", "10")],
        (False, False, 12, 10),
    ),
    (
        {},
        [("server_max_window_bits", "8")],
        [("server_max_window_bits", "8")],
        (False, False, 8, 15),
    ),
    (
        {"server_max_window_bits": None, "client_max_window_bits": None},
        [],
        [],
        (False, False, 15, 15),
    ),
    (
        {"server_max_window_bits": None, "client_max_window_bits": None},
        [("client_max_window_bits", None)],
        [],
        (False, False, 15, 15),
    ),
    (
        {"server_max_window_bits": None, "client_max_window_bits": None},
        [("server_max_window_bits", "9"), ("client_max_window_bits", "11")],
        [("server_max_window_bits", "9"), ("client_max_window_bits", "11")],
        (False, False, 9, 11),
    ),
    (
        {"server_max_window_bits": None},
        [("server_no_context_takeover", None), ("client_no_context_takeover", None)],
        [("server_no_context_takeover", None), ("client_no_context_takeover", None)],
        (True, True, 15, 15),
    ),
    (
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        [("client_max_window_bits", "15")],
        [
            ("server_no_context_takeover", None),
            ("client_no_context_takeover", None),
            ("server_max_window_bits", "12"),
            ("client_max_window_bits", "12"),
        ],
        (True, True, 12, 12),
    ),
]


@pytest.mark.parametrize(("settings_", "offer", "answer", "expected"), SERVER_CASES)
def test_server_answers(
    settings_: dict[str, object],
    offer: Params,
    answer: Params,
    expected: tuple[bool, bool, int, int],
) -> None:
    factory = ServerPerMessageDeflate(**settings_)  # type: ignore[arg-type]
    params, extension = factory.accept_offer(offer, [])
    assert params == answer
    assert (
        extension.local_no_context_takeover,
        extension.remote_no_context_takeover,
        extension.local_max_window_bits,
        extension.remote_max_window_bits,
    ) == expected


def one(name: str, value: str | None) -> Params:
    return [(name, value)]


INVALID_PARAMS: list[Params] = [
    [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
    [("client_max_window_bits", None), ("client_max_window_bits", "10")],
    [("server_max_window_bits", "10"), ("server_max_window_bits", "10")],
    [("server_no_context_takeover", "")],
    [("client_no_context_takeover", "1")],
    [("server_max_window_bits", None)],
    *(one("server_max_window_bits", value) for value in ["7", "16", "08", "+9", " 9", "9.0", ""]),
    *(one("client_max_window_bits", value) for value in ["0", "99", "010", "-10", "ten"]),
    [("x_custom", None)],
    [("Server_No_Context_Takeover", None)],
]


@pytest.mark.parametrize("offer", INVALID_PARAMS)
def test_server_declines_invalid_offers(offer: Params) -> None:
    with pytest.raises(NegotiationError):
        ServerPerMessageDeflate().accept_offer(offer, [])


@pytest.mark.parametrize("answer", [*INVALID_PARAMS, [("client_max_window_bits", None)]])
def test_client_refuses_invalid_answers(answer: Params) -> None:
    with pytest.raises(NegotiationError):
        ClientPerMessageDeflate().accept_response(answer, [])


def test_rsv1_already_taken() -> None:
    taken: list[Extension] = [PerMessageDeflate()]
    with pytest.raises(NegotiationError):
        ServerPerMessageDeflate().accept_offer([], taken)
    with pytest.raises(NegotiationError):
        ClientPerMessageDeflate().accept_response([], taken)


class _Rsv2Extension(Extension):
    name = "x-rsv2"
    reserved_bits = (False, True, False)

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        return frame  # pragma: no cover

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame  # pragma: no cover


def test_other_reserved_bits_do_not_conflict() -> None:
    other: list[Extension] = [_Rsv2Extension()]
    assert ServerPerMessageDeflate().accept_offer([], other)[0] == [
        ("server_max_window_bits", "12")
    ]
    assert isinstance(ClientPerMessageDeflate().accept_response([], other), PerMessageDeflate)


# Negotiation: the client's offer and its check of the answer ------------------------------


@pytest.mark.parametrize(
    ("settings_", "offer"),
    [
        ({}, [("client_max_window_bits", None)]),
        ({"client_max_window_bits": None}, []),
        ({"client_max_window_bits": 9}, [("client_max_window_bits", "9")]),
        (
            {
                "server_no_context_takeover": True,
                "client_no_context_takeover": True,
                "server_max_window_bits": 8,
                "client_max_window_bits": 15,
            },
            [
                ("server_no_context_takeover", None),
                ("client_no_context_takeover", None),
                ("server_max_window_bits", "8"),
                ("client_max_window_bits", "15"),
            ],
        ),
    ],
)
def test_client_offers(settings_: dict[str, object], offer: Params) -> None:
    assert ClientPerMessageDeflate(**settings_).offer() == offer  # type: ignore[arg-type]


CLIENT_CASES: list[tuple[dict[str, object], Params, tuple[bool, bool, int, int] | None]] = [
    # (client settings, answer, (local nct, remote nct, local bits, remote bits) or None)
    ({}, [], (False, False, 15, 15)),
    ({}, [("client_max_window_bits", "8")], (False, False, 8, 15)),
    ({}, [("server_max_window_bits", "12")], (False, False, 15, 12)),
    ({}, [("server_no_context_takeover", None)], (False, True, 15, 15)),
    ({}, [("client_no_context_takeover", None)], (True, False, 15, 15)),
    ({"client_no_context_takeover": True}, [], (True, False, 15, 15)),
    ({"client_max_window_bits": 10}, [], (False, False, 10, 15)),
    ({"client_max_window_bits": 10}, [("client_max_window_bits", "9")], (False, False, 9, 15)),
    ({"client_max_window_bits": 10}, [("client_max_window_bits", "11")], None),
    ({"client_max_window_bits": None}, [("client_max_window_bits", "11")], None),
    ({"server_max_window_bits": 10}, [("server_max_window_bits", "10")], (False, False, 15, 10)),
    ({"server_max_window_bits": 10}, [("server_max_window_bits", "8")], (False, False, 15, 8)),
    ({"server_max_window_bits": 10}, [("server_max_window_bits", "11")], None),
    ({"server_max_window_bits": 10}, [], None),
    ({"server_no_context_takeover": True}, [], None),
    (
        {"server_no_context_takeover": True},
        [("server_no_context_takeover", None)],
        (False, True, 15, 15),
    ),
]


@pytest.mark.parametrize(("settings_", "answer", "expected"), CLIENT_CASES)
def test_client_checks_answers(
    settings_: dict[str, object], answer: Params, expected: tuple[bool, bool, int, int] | None
) -> None:
    factory = ClientPerMessageDeflate(**settings_)  # type: ignore[arg-type]
    if expected is None:
        with pytest.raises(NegotiationError):
            factory.accept_response(answer, [])
        return
    extension = factory.accept_response(answer, [])
    assert (
        extension.local_no_context_takeover,
        extension.remote_no_context_takeover,
        extension.local_max_window_bits,
        extension.remote_max_window_bits,
    ) == expected


def test_settings_reach_the_extension() -> None:
    client, server = negotiate(
        ClientPerMessageDeflate(level=9, mem_level=2, min_size=7),
        ServerPerMessageDeflate(level=9, mem_level=2, min_size=7),
    )
    for extension in (client, server):
        assert (extension.level, extension.mem_level, extension.min_size) == (9, 2, 7)
    assert "local_max_window_bits=12" in repr(client)
    assert "remote_max_window_bits=12" in repr(client)


@pytest.mark.parametrize(
    "settings_",
    [
        {"server_max_window_bits": 7},
        {"server_max_window_bits": 16},
        {"client_max_window_bits": 7},
        {"client_max_window_bits": 16},
        {"level": 10},
        {"level": -2},
        {"mem_level": 0},
        {"mem_level": 10},
        {"min_size": -1},
    ],
)
def test_invalid_settings(settings_: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(settings_))):
        ClientPerMessageDeflate(**settings_)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=next(iter(settings_))):
        ServerPerMessageDeflate(**settings_)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["local_max_window_bits", "remote_max_window_bits"])
def test_invalid_extension_settings(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        PerMessageDeflate(**{name: 16})  # type: ignore[arg-type]


# The convenience builders -----------------------------------------------------------------


def test_extension_builders() -> None:
    [client] = client_extensions()
    [server] = server_extensions("deflate", server_max_window_bits=15, min_size=0)
    assert isinstance(client, ClientPerMessageDeflate)
    assert isinstance(server, ServerPerMessageDeflate)
    assert (server.server_max_window_bits, server.min_size) == (15, 0)
    assert client_extensions(None) == []
    assert server_extensions(None) == []


@pytest.mark.parametrize("build", [client_extensions, server_extensions])
def test_extension_builders_misuse(build: object) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match="unsupported compression"):
        build("gzip")
    with pytest.raises(ValueError, match="without compression"):
        build(None, level=9)
    with pytest.raises(TypeError):
        build("deflate", levle=9)


# Memory ----------------------------------------------------------------------------------


def connection_memory(client: ClientPerMessageDeflate, server: ServerPerMessageDeflate) -> int:
    """zlib memory the server side holds after one message each way."""
    data = bytes(range(256)) * 200
    tracemalloc.start()
    try:
        client_side, server_side = negotiate(client, server)
        before, _ = tracemalloc.get_traced_memory()
        assert decode_message(server_side, encode_message(client_side, data)) == data
        assert decode_message(client_side, encode_message(server_side, data)) == data
        del client_side  # and its zlib objects
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return after - before


def test_memory_per_connection() -> None:
    defaults = connection_memory(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    largest = connection_memory(
        ClientPerMessageDeflate(mem_level=8),
        ServerPerMessageDeflate(server_max_window_bits=15, client_max_window_bits=15, mem_level=8),
    )
    assert 40 << 10 < defaults < 64 << 10
    assert 256 << 10 < largest < 384 << 10
    nothing_kept = connection_memory(
        ClientPerMessageDeflate(server_no_context_takeover=True, client_no_context_takeover=True),
        ServerPerMessageDeflate(),
    )
    assert nothing_kept < 4 << 10
