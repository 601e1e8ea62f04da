"""permessage-deflate on idle connections: releasing zlib state and rebuilding it from the window.

``PerMessageDeflate.release_idle_memory`` drops the zlib objects of the directions that
carried no message since its previous call; the next message rebuilds them with the last
window of plaintext as a preset dictionary. The stream must go on exactly as if nothing had
been released, for any peer: one that releases too, one that never does, websockets.
"""

from __future__ import annotations

import random
import tracemalloc
import zlib
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings, strategies as st
from websockets.extensions import permessage_deflate as ws_deflate

from tests.sansio.test_permessage_deflate import (
    check_one_message,
    compressed,
    decode_message,
    encode_message,
    final_stream,
    negotiate,
    payloads,
    raw_deflate,
)
from trio_ws.sansio import (
    CloseCode,
    Connection,
    Extension,
    Frame,
    Opcode,
    RemoteProtocolError,
    Role,
    TextMessage,
)
from trio_ws.sansio.extensions import (
    ClientPerMessageDeflate,
    PerMessageDeflate,
    ServerPerMessageDeflate,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

#: Random-looking bytes: they compress only by reference to an earlier copy of themselves.
NOISE = random.Random(7692).randbytes(3000)


def idle_release(*extensions: PerMessageDeflate) -> None:
    """Two calls in a row: the second one finds each extension idle since the first."""
    for _ in range(2):
        for extension in extensions:
            extension.release_idle_memory()


def holds(extension: PerMessageDeflate) -> tuple[bool, bool]:
    """Whether the extension holds a (compressor, decompressor) right now."""
    return extension._compressor is not None, extension._decompressor is not None


def sent_window(extension: PerMessageDeflate) -> bytes:
    """The last window of what the extension sent compressed, as kept to rebuild its state."""
    return window(extension._sent_history, extension._sent_window_size)


def received_window(extension: PerMessageDeflate) -> bytes:
    """The last window of what the extension received compressed, as kept."""
    return window(extension._received_history, extension._received_window_size)


def window(history: bytearray, size: int) -> bytes:
    assert len(history) < 2 * size or not history  # bounded
    return bytes(history[-size:]) if size else bytes(history)


def send(sender: PerMessageDeflate, receiver: PerMessageDeflate, data: bytes) -> bytes:
    """One compressed message through both; returns its compressed payload."""
    frames = encode_message(sender, data, compress=True)
    assert decode_message(receiver, frames) == data
    return frames[0].payload


# Releasing and rebuilding ------------------------------------------------------------------


def test_idle_directions_are_released_after_a_quiet_interval() -> None:
    client, server = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    send(client, server, NOISE)
    send(server, client, NOISE)
    assert holds(server) == (True, True)
    server.release_idle_memory()  # the messages went through since the start: keep
    assert holds(server) == (True, True)
    server.release_idle_memory()  # nothing since the previous call: release
    assert holds(server) == (False, False)
    kept = server._sent_history, server._received_history
    server.release_idle_memory()  # nothing left to release, nothing copied again
    assert holds(server) == (False, False)
    assert (server._sent_history, server._received_history) == kept
    assert server._sent_history is kept[0]
    assert server._received_history is kept[1]


def test_each_direction_is_released_on_its_own() -> None:
    client, server = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    send(client, server, NOISE)
    send(server, client, NOISE)
    server.release_idle_memory()
    send(client, server, NOISE)  # the server keeps receiving, and sends nothing
    server.release_idle_memory()
    assert holds(server) == (False, True)
    server.release_idle_memory()
    assert holds(server) == (False, False)


def test_a_fresh_connection_has_nothing_to_release() -> None:
    extension = PerMessageDeflate(local_max_window_bits=12, remote_max_window_bits=12)
    idle_release(extension)
    assert holds(extension) == (False, False)
    assert (sent_window(extension), received_window(extension)) == (b"", b"")


def test_the_rebuilt_compressor_refers_to_messages_sent_before() -> None:
    client, server = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    first = send(server, client, NOISE)
    assert len(first) > len(NOISE)  # noise does not compress on its own
    idle_release(server)
    assert holds(server)[0] is False
    # The copy refers back to the window: as small as with the compressor kept.
    again = send(server, client, NOISE)
    reference = PerMessageDeflate(local_max_window_bits=12)
    reference.encode(Frame(Opcode.BINARY, NOISE), compress=True)
    unreleased = reference.encode(Frame(Opcode.BINARY, NOISE), compress=True).payload
    assert len(again) < 100
    assert abs(len(again) - len(unreleased)) < 20
    # And an unreleased peer that only knows the stream inflates it.
    assert decode_message(client, [compressed(unreleased, opcode=Opcode.BINARY)]) == NOISE


def test_the_rebuilt_decompressor_knows_the_messages_received_before() -> None:
    client, server = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    send(client, server, NOISE)
    idle_release(server)
    assert holds(server)[1] is False
    # The client's second copy is a reference into the window: it inflates only with it.
    frames = encode_message(client, NOISE, compress=True)
    assert len(frames[0].payload) < 100
    assert decode_message(server, frames) == NOISE
    with pytest.raises(RemoteProtocolError) as info:
        decode_message(PerMessageDeflate(remote_max_window_bits=12), frames)
    assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


@pytest.mark.parametrize("window_bits", range(8, 16))
def test_the_window_kept_is_the_negotiated_one(window_bits: int) -> None:
    sender = PerMessageDeflate(local_max_window_bits=window_bits)
    receiver = PerMessageDeflate(remote_max_window_bits=window_bits)
    send(sender, receiver, b"x" * 10)
    send(sender, receiver, NOISE * 20)
    # zlib deflates with at least 9 bits (see the class docstring).
    assert sent_window(sender) == (NOISE * 20)[-(1 << max(window_bits, 9)) :]
    if window_bits <= 12:
        assert received_window(receiver) == (NOISE * 20)[-(1 << window_bits) :]
    else:  # the copy would cost about as much as it frees: no copy, no release
        assert received_window(receiver) == b""
    idle_release(sender, receiver)
    assert holds(sender)[0] is False
    assert holds(receiver)[1] is (window_bits > 12)
    send(sender, receiver, NOISE * 2)


@pytest.mark.parametrize("window_bits", [10, 15])
def test_the_window_slides_over_small_messages(window_bits: int) -> None:
    sender = PerMessageDeflate(local_max_window_bits=window_bits)
    receiver = PerMessageDeflate(remote_max_window_bits=window_bits)
    sent = b""
    for index in range(40):
        data = bytes([65 + index % 26]) * (index * 7) + NOISE[: index * 30]
        send(sender, receiver, data)
        sent += data
        assert sent_window(sender) == sent[-(1 << window_bits) :]
        # A 32 KiB window costs about as much as the decompressor: not kept.
        assert received_window(receiver) == (sent[-1024:] if window_bits == 10 else b"")


def test_uncompressed_and_control_frames_leave_the_window_alone() -> None:
    sender = PerMessageDeflate(local_max_window_bits=12)
    receiver = PerMessageDeflate(remote_max_window_bits=12)
    send(sender, receiver, NOISE)
    idle_release(sender, receiver)
    send(sender, receiver, NOISE[:100])
    sender.release_idle_memory()
    receiver.release_idle_memory()
    for frame in [Frame(Opcode.BINARY, b"plain " * 20), Frame(Opcode.PING, b"p")]:
        assert receiver.decode(sender.encode(frame, compress=False), max_size=None) == frame
    assert sent_window(sender) == received_window(receiver) == (NOISE + NOISE[:100])[-4096:]
    # Plain messages and control frames are no traffic for zlib: the sides were idle.
    sender.release_idle_memory()
    receiver.release_idle_memory()
    assert holds(sender) == holds(receiver) == (False, False)


@pytest.mark.parametrize("direction", ["sending", "receiving"])
def test_never_released_in_the_middle_of_a_message(direction: str) -> None:
    sender = PerMessageDeflate(local_max_window_bits=12)
    receiver = PerMessageDeflate(remote_max_window_bits=12)
    send(sender, receiver, NOISE)
    frames = encode_message(sender, NOISE, cuts=[1000, 2000], compress=True)
    if direction == "sending":
        first = sender.encode(Frame(Opcode.BINARY, NOISE[:1000], fin=False), compress=True)
        idle_release(sender)
        assert holds(sender)[0] is True
        rest = [sender.encode(Frame(Opcode.CONTINUATION, NOISE[1000:], fin=True), compress=True)]
        assert decode_message(receiver, [*frames, first, *rest]) == NOISE * 2
    else:
        assert receiver.decode(frames[0], max_size=None).payload == NOISE[:1000]
        idle_release(receiver)
        assert holds(receiver)[1] is True
        assert decode_message(receiver, frames[1:]) == NOISE[1000:]
        idle_release(receiver)
        assert holds(receiver)[1] is False


def test_nothing_kept_without_context_takeover() -> None:
    sender = PerMessageDeflate(local_no_context_takeover=True, local_max_window_bits=12)
    receiver = PerMessageDeflate(remote_no_context_takeover=True, remote_max_window_bits=12)
    for _ in range(3):
        send(sender, receiver, NOISE)
        assert sent_window(sender) == received_window(receiver) == b""
        assert holds(sender) == holds(receiver) == (False, False)
    # The state lives for one message only, and is never released in its middle.
    first = sender.encode(Frame(Opcode.BINARY, NOISE[:100], fin=False), compress=True)
    assert receiver.decode(first, max_size=None).payload == NOISE[:100]
    idle_release(sender, receiver)
    assert holds(sender) == (True, False)
    assert holds(receiver) == (False, True)
    last = sender.encode(Frame(Opcode.CONTINUATION, NOISE[100:]), compress=True)
    assert receiver.decode(last, max_size=None).payload == NOISE[100:]
    assert holds(sender) == holds(receiver) == (False, False)


# Final blocks: the history starts again where a new stream starts ----------------------------


def test_after_a_final_block_the_window_is_the_new_stream() -> None:
    text = b"the quick brown fox jumps over the lazy dog " * 3
    other = b"pack my box with five dozen liquor jugs " * 3
    for release in (False, True):
        receiver = PerMessageDeflate(remote_max_window_bits=12)
        follower = zlib.compressobj(6, zlib.DEFLATED, -12)
        head = follower.compress(other) + follower.flush(zlib.Z_SYNC_FLUSH)
        payload = final_stream(text) + head[:-4]
        assert decode_message(receiver, [compressed(payload)]) == text + other
        assert received_window(receiver) == other
        if release:
            idle_release(receiver)
            assert holds(receiver)[1] is False
        # The follower's stream refers back to its own beginning: that is the history.
        again = follower.compress(other) + follower.flush(zlib.Z_SYNC_FLUSH)
        assert decode_message(receiver, [compressed(again[:-4])]) == other
        # And not to what came before the final block, released or not.
        behind = zlib.compressobj(6, zlib.DEFLATED, -12, zdict=text + other + other)
        stale = behind.compress(text) + behind.flush(zlib.Z_SYNC_FLUSH)
        with pytest.raises(RemoteProtocolError) as info:
            decode_message(receiver, [compressed(stale[:-4])])
        assert info.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


def test_a_final_block_at_the_end_leaves_an_empty_history() -> None:
    receiver = PerMessageDeflate(remote_max_window_bits=12)
    send(PerMessageDeflate(local_max_window_bits=12), receiver, NOISE)
    assert decode_message(receiver, [compressed(final_stream(b"Hello"))]) == b"Hello"
    assert received_window(receiver) == b""
    idle_release(receiver)
    assert decode_message(receiver, [compressed(raw_deflate(b"Hello", 12))]) == b"Hello"


@pytest.mark.parametrize("split", [False, True])
def test_a_large_message_after_a_final_block_keeps_one_window(split: bool) -> None:
    receiver = PerMessageDeflate(remote_max_window_bits=12)
    big = NOISE * 30
    if split:
        frames = [
            compressed(final_stream(b"Hello"), fin=False, opcode=Opcode.BINARY),
            Frame(Opcode.CONTINUATION, raw_deflate(big, 12)),
        ]
    else:
        frames = [compressed(final_stream(b"Hello") + raw_deflate(big, 12))]
    assert decode_message(receiver, frames) == b"Hello" + big
    assert received_window(receiver) == big[-4096:]
    idle_release(receiver)
    assert decode_message(receiver, [compressed(raw_deflate(big[-1000:], 12))]) == big[-1000:]


@pytest.mark.parametrize("direction", ["sent", "received"])
def test_the_history_holds_one_to_two_windows(direction: str) -> None:
    sender = PerMessageDeflate(local_max_window_bits=9)
    receiver = PerMessageDeflate(remote_max_window_bits=9)
    extension = sender if direction == "sent" else receiver

    def history() -> bytes:
        return bytes(getattr(extension, f"_{direction}_history"))

    send(sender, receiver, NOISE[:300])
    send(sender, receiver, NOISE[300:700])
    assert history() == NOISE[:700]  # below twice the window: nothing cut
    send(sender, receiver, NOISE[700:1100])
    assert history() == NOISE[1100 - 512 : 1100]  # twice the window: cut to one
    send(sender, receiver, b"")
    assert history() == NOISE[1100 - 512 : 1100]
    send(sender, receiver, NOISE[:2000])
    assert history() == NOISE[2000 - 512 : 2000]  # only the end of a long message
    send(sender, receiver, NOISE[:100])
    assert history() == NOISE[2000 - 512 : 2000] + NOISE[:100]


def test_compact_keeps_one_window_in_a_buffer_of_its_size() -> None:
    from trio_ws.sansio.extensions.permessage_deflate import _compact

    history = bytearray(b"abcdef")
    compact = _compact(history, 4)
    assert compact == b"cdef"
    assert type(compact) is bytearray
    assert compact is not history


def test_memory_kept_by_an_idle_connection() -> None:
    """With the defaults, the server keeps two windows of 4 KiB instead of ~50 KiB of zlib."""
    data = bytes(range(256)) * 200
    tracemalloc.start()
    try:
        client, server = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
        before, _ = tracemalloc.get_traced_memory()
        assert decode_message(server, encode_message(client, data)) == data
        assert decode_message(client, encode_message(server, data)) == data
        del client
        used, _ = tracemalloc.get_traced_memory()
        idle_release(server)
        idle, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert used - before > 48 << 10
    assert idle - before < 9 << 10
    assert len(server._sent_history) == len(server._received_history) == 4096


# The default hook of the base class ----------------------------------------------------------


class _PassThrough(Extension):
    name = "x-pass-through"

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        return frame

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame


def test_the_base_class_hook_does_nothing() -> None:
    extension = _PassThrough()
    frame = Frame(Opcode.TEXT, b"hi")
    for _ in range(2):
        extension.release_idle_memory()
    assert extension.encode(frame) is frame
    assert extension.decode(frame, max_size=None) is frame


# Round trips with releases at random points --------------------------------------------------

Step = tuple[tuple[bytes, list[int], bool | None, bool] | None, list[str], list[str]]

sides_ = st.lists(st.sampled_from(["client", "server"]), max_size=4)
steps = st.lists(
    st.tuples(
        # A message: its data, where to cut it into frames, compress, from the client?
        st.none()
        | st.tuples(
            payloads,
            st.lists(st.integers(min_value=0), max_size=3),
            st.sampled_from([None, True, False]),
            st.booleans(),
        ),
        # Calls of release_idle_memory() after its first frame, then after it, in order:
        # two calls in a row on one side find that side idle.
        sides_,
        sides_,
    ),
    max_size=10,
)


def frames_of(data: bytes, cuts: Iterable[int]) -> list[Frame]:
    bounds = sorted({cut % (len(data) + 1) for cut in cuts})
    starts, ends = [0, *bounds], [*bounds, len(data)]
    return [
        Frame(
            Opcode.BINARY if index == 0 else Opcode.CONTINUATION,
            data[start:end],
            fin=index == len(starts) - 1,
        )
        for index, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


@pytest.mark.parametrize("window_bits", range(8, 16))
@pytest.mark.parametrize(
    ("client_no_context_takeover", "server_no_context_takeover"),
    [(False, False), (True, False), (False, True), (True, True)],
)
@settings(max_examples=15, deadline=None)
@given(script=steps, client_window_bits=st.integers(8, 15))
def test_round_trips_with_releases(
    window_bits: int,
    client_no_context_takeover: bool,
    server_no_context_takeover: bool,
    script: list[Step],
    client_window_bits: int,
) -> None:
    """Both sides release at random points, also between the frames of a message; a
    releasing side talks with a peer that releases too or never does (the script picks
    which side releases)."""
    client, server = negotiate(
        ClientPerMessageDeflate(
            client_no_context_takeover=client_no_context_takeover,
            server_no_context_takeover=server_no_context_takeover,
            server_max_window_bits=window_bits,
            client_max_window_bits=client_window_bits,
        ),
        ServerPerMessageDeflate(server_max_window_bits=None, client_max_window_bits=None),
    )
    assert (server.local_max_window_bits, client.local_max_window_bits) == (
        window_bits,
        client_window_bits,
    )
    sides = {"client": client, "server": server}
    for message, midway, after in script:
        if message is not None:
            data, cuts, compress, from_client = message
            sender, receiver = (client, server) if from_client else (server, client)
            received = b""
            for index, frame in enumerate(frames_of(data, cuts)):
                encoded = sender.encode(frame, compress=compress)
                received += receiver.decode(encoded, max_size=None).payload
                if index == 0:
                    for side in midway:
                        sides[side].release_idle_memory()
            assert received == data
        for side in after:
            sides[side].release_idle_memory()


# Against websockets, which never releases ----------------------------------------------------


@pytest.mark.parametrize(
    ("client", "ws_window_bits"),
    [
        (ClientPerMessageDeflate(), 12),
        (ClientPerMessageDeflate(server_max_window_bits=9, client_max_window_bits=10), 12),
        (ClientPerMessageDeflate(server_no_context_takeover=True), 12),
        (ClientPerMessageDeflate(client_no_context_takeover=True), 12),
        (ClientPerMessageDeflate(), None),
    ],
    ids=["defaults", "small-windows", "server-no-takeover", "client-no-takeover", "window-15"],
)
@settings(max_examples=20, deadline=None)
@given(
    exchange=st.lists(
        st.tuples(payloads, st.lists(st.integers(min_value=0), max_size=3), st.booleans()),
        max_size=6,
    ),
    releases=st.lists(st.integers(0, 2), min_size=6, max_size=6),
)
def test_interop_with_websockets_with_releases(
    client: ClientPerMessageDeflate,
    ws_window_bits: int | None,
    exchange: list[tuple[bytes, list[int], bool]],
    releases: list[int],
) -> None:
    """Our client and our server release between messages; websockets' peers never do."""
    ws_server_factory = ws_deflate.ServerPerMessageDeflateFactory(
        server_max_window_bits=ws_window_bits,
        client_max_window_bits=ws_window_bits,
        compress_settings={"memLevel": 5},
    )
    answer, ws_server = ws_server_factory.process_request_params(client.offer(), [])
    ours_client = client.accept_response(list(answer), [])

    ws_client_factory = ws_deflate.ClientPerMessageDeflateFactory(
        server_no_context_takeover=ours_client.remote_no_context_takeover,
        client_no_context_takeover=ours_client.local_no_context_takeover,
        server_max_window_bits=ours_client.remote_max_window_bits,
        client_max_window_bits=ours_client.local_max_window_bits,
        compress_settings={"memLevel": 5},
    )
    answer, ours_server = ServerPerMessageDeflate(
        server_max_window_bits=None, client_max_window_bits=None
    ).accept_offer(list(ws_client_factory.get_request_params()), [])
    ws_client = ws_client_factory.process_response_params(answer, [])

    for (data, cuts, from_ours), times in zip(exchange, releases, strict=False):
        for ours, theirs in [(ours_client, ws_server), (ours_server, ws_client)]:
            check_one_message(ours, theirs, data, cuts, compress=True, from_ours=from_ours)
            for _ in range(times):
                ours.release_idle_memory()


# Through the connection ----------------------------------------------------------------------


def test_connections_stay_in_step_across_releases() -> None:
    client_side, server_side = negotiate(ClientPerMessageDeflate(), ServerPerMessageDeflate())
    client = Connection(Role.CLIENT, extensions=[client_side])
    server = Connection(Role.SERVER, extensions=[server_side])
    text = NOISE.hex()[:600]
    wire = []
    for round_ in range(6):
        client.send_text(text)
        data = client.data_to_send()
        wire.append(len(data))
        assert server.receive_data(data) == [TextMessage(data=text)]
        server.send_text(text)
        assert client.receive_data(server.data_to_send()) == [TextMessage(data=text)]
        if round_ % 2:
            for extension in (*client.extensions, *server.extensions):
                assert isinstance(extension, PerMessageDeflate)
                idle_release(extension)
                assert holds(extension) == (False, False)
    # Every message after the first is a reference to the window, released or not.
    assert max(wire[1:]) < wire[0] // 4
