"""WebSocket frames (RFC 6455 section 5): opcodes, close codes, parsing, serialising, masking.

The wire format, for reference::

    byte 0   FIN | RSV1 | RSV2 | RSV3 | opcode (4 bits)
    byte 1   MASK | payload length (7 bits: 0-125, or 126 -> 16-bit length, 127 -> 64-bit)
    then     the extended length (0, 2 or 8 bytes, network order), the masking key (0 or 4
             bytes), the payload.

Length encoding policy: frames are always *sent* with the minimal length encoding, as
section 5.2 requires. On *receipt* a non-minimal encoding (a 5-byte payload announced with a
16-bit length) is accepted, as most implementations do: it is harmless and rejecting it buys
nothing. A 64-bit length with its most significant bit set is invalid (1002).

:class:`FrameParser` is a standalone incremental parser for tools, tests and fuzzing. The
:class:`~trio_ws.sansio.Connection` has its own receive loop (same rules, plus the
message-level ones) because it interleaves the message checks with header decoding and must
not build a :class:`Frame` per frame on its fast path.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from ._errors import RemoteProtocolError
from ._masking import (
    MASK_CHUNK as MASK_CHUNK,
    apply_mask as mask_bytes,
    mask_parts as mask_parts,
    rotate_mask as rotate_mask,
)

__all__ = ["CloseCode", "Frame", "FrameParser", "Opcode", "apply_mask", "serialize_frame"]


class Opcode(enum.IntEnum):
    """Frame opcodes (RFC 6455 section 5.2)."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA

    @property
    def is_control(self) -> bool:
        """Whether this is a control frame opcode (close, ping, pong)."""
        return self >= 0x8


class CloseCode(enum.IntEnum):
    """Close status codes (RFC 6455 section 7.4.1 and the IANA registry)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


class Frame(NamedTuple):
    """One WebSocket frame, unmasked: an immutable value.

    Used at the edges of the core: extensions transform frames, tests and tools build and
    inspect them. The connection's fast path does not create one per frame. A named tuple
    rather than a frozen dataclass because it is built several times per message when an
    extension is active, and a tuple is built three times faster.
    """

    opcode: Opcode
    payload: bytes = b""
    fin: bool = True
    rsv1: bool = False
    rsv2: bool = False
    rsv3: bool = False


# A dict lookup instead of Opcode(value), which goes through the enum machinery.
_OPCODES = {opcode.value: opcode for opcode in Opcode}

# Bits of the first two header bytes.
FIN = 0x80
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
RSV_MASK = 0x70
OPCODE_MASK = 0x0F
MASK_BIT = 0x80
LENGTH_MASK = 0x7F

#: The largest payload of a control frame (section 5.5).
MAX_CONTROL_PAYLOAD = 125

#: Opcodes RFC 6455 defines; the others (3-7, 0xB-0xF) are reserved.
KNOWN_OPCODES = frozenset(int(opcode) for opcode in Opcode)

# Precompiled structs: header without extended length, with a 16-bit one, with a 64-bit one.
HEADER_7 = struct.Struct("!BB")
HEADER_16 = struct.Struct("!BBH")
HEADER_64 = struct.Struct("!BBQ")
UINT16 = struct.Struct("!H")
UINT64 = struct.Struct("!Q")

_pack_7 = HEADER_7.pack
_pack_16 = HEADER_16.pack
_pack_64 = HEADER_64.pack


def apply_mask(data: bytes | bytearray | memoryview, mask_key: bytes) -> bytes:
    """Mask or unmask ``data`` with a 4-byte masking key (RFC 6455 section 5.3).

    Masking is its own inverse: applying the same key twice gives back the data. The
    compiled accelerator does the work when it is in use (:data:`trio_ws.sansio.SPEEDUPS`).

    Args:
        data: The payload (any bytes-like object; it is not modified).
        mask_key: The 4-byte masking key.

    Returns:
        The masked (or unmasked) payload.

    Raises:
        ValueError: ``mask_key`` is not 4 bytes long.
    """
    if len(mask_key) != 4:
        raise ValueError("a masking key is exactly 4 bytes")
    return mask_bytes(data, mask_key)


def frame_header(first_byte: int, size: int, mask_key: bytes | None) -> bytes:
    """The header of a frame whose payload is ``size`` bytes long, masking key included."""
    second = 0 if mask_key is None else MASK_BIT
    if size < 126:
        header = _pack_7(first_byte, second | size)
    elif size < 65536:
        header = _pack_16(first_byte, second | 126, size)
    else:
        header = _pack_64(first_byte, second | 127, size)
    return header if mask_key is None else header + mask_key


def frame_bytes(first_byte: int, payload: bytes, mask_key: bytes | None) -> bytes:
    """Serialise one frame from its first header byte (FIN, RSV, opcode) and payload.

    The connection's send path: one ``struct.pack`` and one concatenation for a small
    unmasked frame; a masked frame's pieces are joined once with its header.
    """
    size = len(payload)
    if mask_key is None:
        if size < 126:
            return _pack_7(first_byte, size) + payload
        if size < 65536:
            return _pack_16(first_byte, 126, size) + payload
        return _pack_64(first_byte, 127, size) + payload
    if size < 126:  # frame_header(), inlined for the small frames of a client
        return _pack_7(first_byte, MASK_BIT | size) + mask_key + mask_bytes(payload, mask_key)
    header = frame_header(first_byte, size, mask_key)
    if size <= MASK_CHUNK:
        return header + mask_bytes(payload, mask_key)
    return b"".join([header, *mask_parts(payload, mask_key)])


def serialize_frame(frame: Frame, *, mask_key: bytes | None = None) -> bytes:
    """Serialise a frame to its wire format, with the minimal length encoding.

    Args:
        frame: The frame to send. It is not validated: tests use this to build invalid
            frames on purpose.
        mask_key: A 4-byte masking key (clients must mask every frame), or ``None`` to
            send the payload unmasked (servers).

    Returns:
        The frame's bytes.

    Raises:
        ValueError: ``mask_key`` is not 4 bytes long.
    """
    if mask_key is not None and len(mask_key) != 4:
        raise ValueError("a masking key is exactly 4 bytes")
    return frame_bytes(first_byte(frame), bytes(frame.payload), mask_key)


def first_byte(frame: Frame) -> int:
    """The first header byte of ``frame``: FIN, RSV1-3 and the opcode."""
    return (
        (FIN if frame.fin else 0)
        | (RSV1 if frame.rsv1 else 0)
        | (RSV2 if frame.rsv2 else 0)
        | (RSV3 if frame.rsv3 else 0)
        | frame.opcode
    )


def make_frame(first: int, payload: bytes) -> Frame:
    """The :class:`Frame` of a first header byte (with a known opcode) and a payload."""
    return Frame(
        _OPCODES[first & OPCODE_MASK],
        payload,
        bool(first & FIN),
        bool(first & RSV1),
        bool(first & RSV2),
        bool(first & RSV3),
    )


def rsv_bits(reserved_bits: tuple[bool, bool, bool]) -> int:
    """The RSV bits of the first header byte that ``reserved_bits`` (RSV1-3) allows."""
    rsv1, rsv2, rsv3 = reserved_bits
    return (RSV1 if rsv1 else 0) | (RSV2 if rsv2 else 0) | (RSV3 if rsv3 else 0)


class FrameParser:
    """An incremental parser of a stream of frames, for tools, tests and fuzzing.

    It checks the frame-level rules of RFC 6455 section 5 (reserved bits and opcodes,
    masking, control frame size and fragmentation, 64-bit lengths) but not the
    message-level ones (fragmentation order, UTF-8, close payloads): that is
    :class:`~trio_ws.sansio.Connection`'s job.

    Args:
        require_mask: ``True`` to require masked frames (a server reading a client),
            ``False`` to forbid them (a client reading a server), ``None`` to accept both.
        reserved_bits: Which of RSV1, RSV2, RSV3 may be set (claimed by extensions).
        allow_reserved_opcodes: Accept opcodes 3-7 and 0xB-0xF (``Frame.opcode`` is then a
            plain ``int`` for them).
        max_frame_size: The largest payload accepted (checked on the header, before the
            payload is buffered; 1009), or ``None`` for no limit.
    """

    def __init__(
        self,
        *,
        require_mask: bool | None = None,
        reserved_bits: tuple[bool, bool, bool] = (False, False, False),
        allow_reserved_opcodes: bool = False,
        max_frame_size: int | None = None,
    ) -> None:
        self._require_mask = require_mask
        self._forbidden_rsv = RSV_MASK & ~rsv_bits(reserved_bits)
        self._allow_reserved_opcodes = allow_reserved_opcodes
        self._max_frame_size = max_frame_size
        self._buffer = bytearray()
        self._failed = False

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Add bytes from the stream and return every frame they complete, in order.

        Raises:
            RemoteProtocolError: The stream breaks a frame-level rule. The parser is then
                broken: every later call raises the same way.
        """
        if self._failed:
            raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "parser already failed")
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        pos = 0
        try:
            while True:
                parsed = self._parse_one(buffer, pos)
                if parsed is None:
                    break
                frame, pos = parsed
                frames.append(frame)
        except RemoteProtocolError:
            self._failed = True
            raise
        finally:
            del buffer[:pos]
        return frames

    def _parse_one(self, buffer: bytearray, pos: int) -> tuple[Frame, int] | None:
        """Parse the frame at ``pos``: the frame and where the next one starts, or None."""
        available = len(buffer) - pos
        if available < 2:
            return None
        first, second = buffer[pos], buffer[pos + 1]
        length = second & LENGTH_MASK
        header_size = 2
        if length == 126:
            header_size = 4
            if available < header_size:
                return None
            (length,) = UINT16.unpack_from(buffer, pos + 2)
        elif length == 127:
            header_size = 10
            if available < header_size:
                return None
            (length,) = UINT64.unpack_from(buffer, pos + 2)
            if length >> 63:
                raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "invalid 64-bit length")
        masked = bool(second & MASK_BIT)
        if masked:
            header_size += 4
        self._check_header(first, masked, length)
        end = pos + header_size + length
        if len(buffer) < end:
            return None
        payload = bytes(buffer[pos + header_size : end])
        if masked:
            payload = mask_bytes(payload, bytes(buffer[pos + header_size - 4 : pos + header_size]))
        opcode = first & OPCODE_MASK
        frame = Frame(
            Opcode(opcode) if opcode in KNOWN_OPCODES else opcode,  # type: ignore[arg-type]
            payload,
            fin=bool(first & FIN),
            rsv1=bool(first & RSV1),
            rsv2=bool(first & RSV2),
            rsv3=bool(first & RSV3),
        )
        return frame, end

    def _check_header(self, first: int, masked: bool, length: int) -> None:
        if first & self._forbidden_rsv:
            raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set")
        opcode = first & OPCODE_MASK
        if opcode not in KNOWN_OPCODES and not self._allow_reserved_opcodes:
            raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
        if opcode >= 0x8:
            if not first & FIN:
                raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
            if length > MAX_CONTROL_PAYLOAD:
                raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "control frame too long")
        if self._require_mask is not None and masked != self._require_mask:
            reason = "unmasked frame" if self._require_mask else "masked frame"
            raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, reason)
        if self._max_frame_size is not None and length > self._max_frame_size:
            raise RemoteProtocolError(CloseCode.MESSAGE_TOO_BIG, "frame too big")
