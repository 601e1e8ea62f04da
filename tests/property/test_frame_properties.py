"""Property tests of the frame layer: round trips over any split; no crash on any input."""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from trio_ws.sansio import Frame, FrameParser, Opcode, RemoteProtocolError, serialize_frame
from trio_ws.sansio._frames import apply_mask

SETTINGS = settings(max_examples=200, deadline=None)

payloads = st.one_of(
    st.binary(max_size=300),
    # Lengths around the 16-bit boundary, cheap to build.
    st.integers(min_value=65530, max_value=65540).map(lambda size: b"\xa5" * size),
)


@st.composite
def frames(draw: st.DrawFn) -> Frame:
    opcode = draw(st.integers(min_value=0, max_value=15))
    is_control = opcode >= 8
    payload = draw(st.binary(max_size=125) if is_control else payloads)
    return Frame(
        Opcode(opcode) if opcode in Opcode._value2member_map_ else opcode,  # type: ignore[arg-type]
        payload,
        fin=True if is_control else draw(st.booleans()),
        rsv1=draw(st.booleans()),
        rsv2=draw(st.booleans()),
        rsv3=draw(st.booleans()),
    )


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@SETTINGS
@given(
    st.lists(frames(), max_size=8),
    st.none() | st.binary(min_size=4, max_size=4),
    st.lists(st.integers(min_value=0), max_size=20),
)
def test_round_trip_over_any_split(
    sent: list[Frame], mask_key: bytes | None, cuts: list[int]
) -> None:
    wire = b"".join(serialize_frame(frame, mask_key=mask_key) for frame in sent)
    parser = FrameParser(
        require_mask=mask_key is not None,
        reserved_bits=(True, True, True),
        allow_reserved_opcodes=True,
    )
    received: list[Frame] = []
    for chunk in split(wire, cuts):
        received += parser.receive_data(chunk)
    assert received == sent
    # Serialising what was parsed gives the same bytes back.
    assert b"".join(serialize_frame(frame, mask_key=mask_key) for frame in received) == wire


@SETTINGS
@given(st.binary(max_size=2000), st.binary(min_size=4, max_size=4))
def test_masking_is_an_involution(data: bytes, key: bytes) -> None:
    masked = apply_mask(data, key)
    assert masked == bytes(byte ^ key[i % 4] for i, byte in enumerate(data))
    assert apply_mask(masked, key) == data


@SETTINGS
@given(
    st.lists(st.binary(max_size=40), max_size=10),
    st.none() | st.booleans(),
    st.none() | st.integers(min_value=0, max_value=100),
)
def test_parser_raises_only_protocol_errors(
    chunks: list[bytes], require_mask: bool | None, max_frame_size: int | None
) -> None:
    parser = FrameParser(require_mask=require_mask, max_frame_size=max_frame_size)
    error: RemoteProtocolError | None = None
    try:
        for chunk in chunks:
            for frame in parser.receive_data(chunk):
                assert isinstance(frame, Frame)
    except RemoteProtocolError as exc:
        error = exc
    assert error is None or error.code in (1002, 1009)
