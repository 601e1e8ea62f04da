"""permessage-deflate (RFC 7692): per-message DEFLATE compression of data messages.

:class:`PerMessageDeflate` is the negotiated extension: it inflates received messages whose
first frame has RSV1 set and deflates sent messages. :class:`ClientPerMessageDeflate` and
:class:`ServerPerMessageDeflate` negotiate it in the opening handshake (RFC 7692 section 7.1);
:func:`client_extensions` and :func:`server_extensions` build them from a simple setting.

Memory per connection. zlib needs about ``(1 << (window_bits + 2)) + (1 << (mem_level + 9))``
bytes plus ~6 KiB of state for a compressor, and ``1 << window_bits`` bytes plus ~7 KiB of
state for a decompressor (the window is allocated on first use). Measured with tracemalloc
(CPython 3.11, zlib 1.2.13) on the server's side after one message each way:

====================================================  ===========  =============  ==========
settings                                              compressor   decompressor   total
====================================================  ===========  =============  ==========
server defaults (window 12 both ways, mem_level 5)    38,984 B     11,520 B       50,176 B
window 15, mem_level 8 (zlib's defaults)              268,360 B    40,192 B       308,128 B
window 15, mem_level 9                                399,432 B    40,192 B       439,216 B
====================================================  ===========  =============  ==========

Hence the server's defaults: it answers ``server_max_window_bits=12`` (and
``client_max_window_bits=12`` when the client allows it) and compresses with
``mem_level=5``. On a corpus of JSON messages (1.3 KB on average) the window of 12 makes
the output 9 to 14 % larger than the window of 15 with six times less memory. A side that does not
take over its context frees its compressor (or decompressor) between messages, so an idle
connection then holds nothing.

Idle connections. With context takeover the zlib objects must outlive each message, yet all
that the next message needs from them is the last window of plaintext: a new zlib object
given that window as its preset dictionary (``zdict``) produces or accepts the same
continuation of the stream. So each direction keeps the last ``1 << window_bits`` bytes of
plaintext it carried (in a buffer of up to twice that size: a message costs about two
copies of its own bytes, never a copy of the whole window), and
:meth:`PerMessageDeflate.release_idle_memory` drops the zlib objects of each direction that
carried no message since the previous call; the next message rebuilds them from the window.
With the server's defaults a connection then keeps at most 4 KiB per direction instead of
about 50 KiB. The decompressor is released only when the peer's window is at most 4 KiB
(12 bits): its state is about 7 KiB plus the window, so with a larger window the copy would
cost about as much as it frees.

Compression level 1 is the default: on the same corpus it deflates about 1.6 times faster
than zlib's default level 6 for output about 9 % larger (gorilla/websocket makes the same
choice). Messages under ``min_size`` = 64 bytes are sent uncompressed: short JSON messages
of 15 to 46 bytes came out of zlib 0 to 5 bytes smaller (often larger on a fresh context),
not worth a few microseconds of CPU on each side.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .._errors import RemoteProtocolError
from .._extensions import (
    ClientExtensionFactory,
    Extension,
    ExtensionParameters,
    NegotiationError,
    ServerExtensionFactory,
)
from .._frames import CloseCode, Frame, Opcode

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from zlib import _Compress, _Decompress

__all__ = [
    "ClientPerMessageDeflate",
    "PerMessageDeflate",
    "ServerPerMessageDeflate",
    "client_extensions",
    "server_extensions",
]

_NAME = "permessage-deflate"

#: An empty stored block: what Z_SYNC_FLUSH ends with. The sender strips it from the end of
#: each message and the receiver appends it back (RFC 7692 section 7.2.1 and 7.2.2).
_EMPTY_STORED_BLOCK = b"\x00\x00\xff\xff"

#: How much input zlib gets, and how much output it may produce, in one call: the memory a
#: bomb costs over the limit.
_INFLATE_PIECE = 64 * 1024

#: Each stream that follows a final block costs a copy of the rest of the frame and a new
#: decompressor: unbounded, a 1 MB frame of 2-byte final blocks took 19 s. Peers that use
#: final blocks put one at the end of a frame or of a message. The new stream does not see
#: the earlier output as its history either: copying up to 32 KiB of it per final block
#: would be another amplification, and no known peer refers back across a final block
#: (such a reference fails with 1007).
_MAX_FINAL_BLOCKS_PER_FRAME = 16

_DEFAULT_LEVEL = 1
_DEFAULT_MEM_LEVEL = 5
_DEFAULT_MIN_SIZE = 64
_SERVER_DEFAULT_WINDOW_BITS = 12

#: zlib's inflate state besides its window, in bytes (7,328 measured with tracemalloc). A
#: decompressor is released when idle only if the window kept to rebuild it costs at most
#: half of what it frees, that is when the window is no larger than this.
_INFLATE_STATE_SIZE = 7 * 1024

#: The only spellings RFC 7692 allows: decimal, no leading zero, 8 to 15.
_WINDOW_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}


def _check_window_bits(name: str, bits: int | None) -> None:
    if bits is not None and not 8 <= bits <= 15:
        raise ValueError(f"{name} must be between 8 and 15, not {bits!r}")


def _check_zlib_settings(level: int, mem_level: int, min_size: int) -> None:
    if not -1 <= level <= 9:
        raise ValueError(f"level must be between -1 and 9, not {level!r}")
    if not 1 <= mem_level <= 9:
        raise ValueError(f"mem_level must be between 1 and 9, not {mem_level!r}")
    if min_size < 0:
        raise ValueError(f"min_size must not be negative, not {min_size!r}")


class PerMessageDeflate(Extension):
    """The permessage-deflate extension, negotiated for one connection.

    "Local" is this side (what it sends), "remote" the peer (what it sends).

    :meth:`release_idle_memory` frees the zlib state of the directions that were idle since
    its previous call; it is rebuilt on the next message (see the module docstring).

    Args:
        local_no_context_takeover: Start each sent message with an empty LZ77 window.
        remote_no_context_takeover: The peer starts each message with an empty window.
        local_max_window_bits: The base-2 logarithm of the window this side compresses
            with (8 to 15; zlib cannot deflate with 8, so 9 is used, which never emits a
            distance over 250 and therefore fits a 256-byte window).
        remote_max_window_bits: The window the peer compresses with (8 to 15).
        level: zlib compression level (-1 to 9).
        mem_level: zlib memory level (1 to 9): the size of the compressor's hash tables.
        min_size: Messages shorter than this (in bytes) are sent uncompressed unless the
            sender asks otherwise.

    Raises:
        ValueError: A setting is out of range.
    """

    name = _NAME
    reserved_bits = (True, False, False)
    # A message without RSV1 is an uncompressed one (RFC 7692 section 6), and sending one
    # leaves the compression context as it was.
    allows_plain_messages = True

    def __init__(
        self,
        *,
        local_no_context_takeover: bool = False,
        remote_no_context_takeover: bool = False,
        local_max_window_bits: int = 15,
        remote_max_window_bits: int = 15,
        level: int = _DEFAULT_LEVEL,
        mem_level: int = _DEFAULT_MEM_LEVEL,
        min_size: int = _DEFAULT_MIN_SIZE,
    ) -> None:
        _check_window_bits("local_max_window_bits", local_max_window_bits)
        _check_window_bits("remote_max_window_bits", remote_max_window_bits)
        _check_zlib_settings(level, mem_level, min_size)
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_max_window_bits = local_max_window_bits
        self.remote_max_window_bits = remote_max_window_bits
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size
        # zlib refuses a raw deflate window of 8 bits; see the class docstring.
        self._deflate_wbits = -max(local_max_window_bits, 9)
        self._inflate_wbits = -remote_max_window_bits
        # Both are created on first use and dropped after each message when there is no
        # context to take over, so an idle connection holds no zlib memory in that case.
        self._compressor: _Compress | None = None
        self._decompressor: _Decompress | None = None
        # The last plaintext of each direction, enough to rebuild its zlib object after
        # release_idle_memory() dropped it; a size of 0 keeps nothing and never releases
        # (no context to take over, or a window too large to be worth copying).
        self._sent_window_size = 0 if local_no_context_takeover else 1 << -self._deflate_wbits
        received_window_size = 1 << remote_max_window_bits
        self._received_window_size = (
            0
            if remote_no_context_takeover or received_window_size > _INFLATE_STATE_SIZE
            else received_window_size
        )
        self._sent_history = bytearray()
        self._received_history = bytearray()
        # Whether a message went through since the last release_idle_memory().
        self._sent_recently = False
        self._received_recently = False
        # Where the last stream began in the output of the frame being inflated, when a
        # final block ended the previous one (None: no such restart).
        self._stream_restarted_at: int | None = None
        # Whether the message being received / sent is compressed: decided by its first
        # frame, applied to its continuation frames.
        self._inflating = False
        self._deflating = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}("
            f"local_no_context_takeover={self.local_no_context_takeover}, "
            f"remote_no_context_takeover={self.remote_no_context_takeover}, "
            f"local_max_window_bits={self.local_max_window_bits}, "
            f"remote_max_window_bits={self.remote_max_window_bits})"
        )

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        """Inflate a received frame of a compressed message; pass other frames through.

        Args:
            frame: A frame received from the peer.
            max_size: How many bytes the current message may still grow by (``None``: no
                limit). Inflating stops as soon as the output passes it.

        Returns:
            The frame with its payload inflated and RSV1 cleared.

        Raises:
            RemoteProtocolError: 1002 for RSV1 on a control or continuation frame, 1007 for
                data that does not inflate, 1009 when the output exceeds ``max_size``.
        """
        opcode = frame.opcode
        if opcode.is_control:
            if frame.rsv1:
                raise RemoteProtocolError(CloseCode.PROTOCOL_ERROR, "RSV1 set on a control frame")
            return frame
        if opcode is Opcode.CONTINUATION:
            # RFC 7692 section 6.1: only the first frame of a message carries the bit.
            if frame.rsv1:
                raise RemoteProtocolError(
                    CloseCode.PROTOCOL_ERROR, "RSV1 set on a continuation frame"
                )
            if not self._inflating:
                return frame
        else:
            self._inflating = frame.rsv1
            if not frame.rsv1:
                return frame
        if frame.fin:
            self._inflating = False
            # Appending copies the payload, which costs far less than inflating it.
            payload = self._inflate(frame.payload + _EMPTY_STORED_BLOCK, max_size)
            if self.remote_no_context_takeover:
                self._decompressor = None
        else:
            payload = self._inflate(frame.payload, max_size)
        size = self._received_window_size
        if size:
            self._received_recently = True
            history = self._received_history
            kept: bytes | memoryview = payload
            restart = self._stream_restarted_at
            if restart is not None:
                # The new stream's history starts at its own first byte.
                self._stream_restarted_at = None
                history.clear()
                kept = memoryview(payload)[restart:]
            # As in encode(): see there.
            if len(kept) >= size:
                history[:] = kept[-size:]
            else:
                history += kept
                if len(history) >= 2 * size:
                    del history[:-size]
        return Frame(opcode, payload, frame.fin, False, frame.rsv2, frame.rsv3)

    def _inflate(self, data: bytes, limit: int | None) -> bytes:
        """Inflate ``data``; raise 1009 as soon as the output passes ``limit`` bytes."""
        # zlib gets bounded pieces of input and may return bounded pieces of output: a bomb
        # costs `limit` bytes plus one piece before it is caught, and the input zlib copies
        # back when the output piece is full (unconsumed_tail) stays small, which keeps the
        # work linear. One byte over the limit tells "at the limit" from "over it".
        decompressor = self._decompressor
        if decompressor is None:
            if self._received_history:
                # Released while idle: the last messages are the history (zlib uses the
                # dictionary's last window).
                decompressor = zlib.decompressobj(self._inflate_wbits, self._received_history)
            else:
                decompressor = zlib.decompressobj(self._inflate_wbits)
            self._decompressor = decompressor
        budget = _INFLATE_PIECE if limit is None else min(_INFLATE_PIECE, limit + 1)
        try:
            piece = decompressor.decompress(data[:_INFLATE_PIECE], budget)
            if len(piece) < budget and len(data) <= _INFLATE_PIECE and not decompressor.eof:
                return piece  # all input consumed and no output held back: the usual case
            return self._inflate_more(decompressor, data, piece, budget, limit)
        except zlib.error as exc:
            # 1007 rather than 1002: the framing is sound, the payload is not valid data
            # for the message's (compressed) type, like invalid UTF-8 in a text message.
            raise RemoteProtocolError(
                CloseCode.INVALID_FRAME_PAYLOAD_DATA, f"invalid compressed data: {exc}"
            ) from exc

    def _inflate_more(
        self,
        decompressor: _Decompress,
        data: bytes,
        piece: bytes,
        budget: int,
        limit: int | None,
    ) -> bytes:
        """Go on after the first piece, up to the end of ``data``."""
        pieces: list[bytes] = []
        size = restarts = 0
        offset = min(len(data), _INFLATE_PIECE)  # what the first call was given
        while True:
            pieces.append(piece)
            size += len(piece)
            if limit is not None and size > limit:
                raise RemoteProtocolError(
                    CloseCode.MESSAGE_TOO_BIG, "decompressed message too big (max_message_size)"
                )
            if decompressor.eof:
                # A block with BFINAL set ends zlib's stream, but RFC 7692 section 7.2.1 lets
                # more blocks follow it (section 7.2.3.4): they go to a new stream.
                data = decompressor.unused_data + data[offset:]
                offset, pending = 0, b""
                decompressor = self._decompressor = zlib.decompressobj(self._inflate_wbits)
                self._stream_restarted_at = size
                # Some peers end a message with a final block and without the empty block
                # header that section 7.2.3.4 adds: only our own tail is left. (As an empty
                # stored block it would inflate to nothing anyway.)
                if data in (b"", _EMPTY_STORED_BLOCK):
                    break
                restarts += 1
                if restarts > _MAX_FINAL_BLOCKS_PER_FRAME:
                    raise RemoteProtocolError(
                        CloseCode.INVALID_FRAME_PAYLOAD_DATA,
                        "too many final DEFLATE blocks in one frame",
                    )
            else:
                pending = decompressor.unconsumed_tail
                # A full output piece may leave output inside zlib: then ask again.
                if not pending and offset == len(data) and len(piece) < budget:
                    break
            if not pending:
                pending = data[offset : offset + _INFLATE_PIECE]
                offset += len(pending)
            budget = _INFLATE_PIECE if limit is None else min(_INFLATE_PIECE, limit + 1 - size)
            piece = decompressor.decompress(pending, budget)
        return b"".join(pieces)

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Deflate a data frame of a compressed message; pass other frames through.

        Args:
            frame: A frame about to be sent.
            compress: For the first frame of a message: ``True`` compresses the message,
                ``False`` sends it as is, ``None`` compresses it if the first frame's
                payload is at least ``min_size`` bytes. Ignored on continuation frames,
                which follow the first frame's choice.

        Returns:
            The frame to send: deflated, with RSV1 set on the first frame of a compressed
            message.
        """
        opcode = frame.opcode
        if opcode.is_control:
            return frame
        if opcode is not Opcode.CONTINUATION:
            if compress is None:
                compress = len(frame.payload) >= self.min_size
            self._deflating = compress
        if not self._deflating:
            return frame
        compressor = self._compressor
        if compressor is None:
            if self._sent_history:
                # Released while idle: the last messages are the history.
                compressor = zlib.compressobj(
                    self.level,
                    zlib.DEFLATED,
                    self._deflate_wbits,
                    self.mem_level,
                    zlib.Z_DEFAULT_STRATEGY,
                    self._sent_history,
                )
            else:
                compressor = zlib.compressobj(
                    self.level, zlib.DEFLATED, self._deflate_wbits, self.mem_level
                )
            self._compressor = compressor
        # compress() must run even for an empty payload: it resets zlib's memory of the last
        # flush, without which a second Z_SYNC_FLUSH in a row would produce nothing.
        data = frame.payload
        payload = compressor.compress(data)
        flushed = compressor.flush(zlib.Z_SYNC_FLUSH)
        size = self._sent_window_size
        if size:
            self._sent_recently = True
            # Keep at least the last window: the front is cut off only when the history
            # reaches twice the window, so that a message costs about two copies of its own
            # bytes rather than a copy of the whole window, and of a message at least as
            # long as the window only the end is copied. (Inline: a function call would
            # cost a third of this bookkeeping.)
            history = self._sent_history
            if len(data) >= size:
                history[:] = data[-size:]
            else:
                history += data
                if len(history) >= 2 * size:
                    del history[:-size]
        if frame.fin:
            self._deflating = False  # between messages: release_idle_memory() may act
            payload += flushed[:-4]
            if self.local_no_context_takeover:
                self._compressor = None
        else:
            # A message's inner fragments keep the empty block: only the end is stripped.
            payload += flushed
        return Frame(
            opcode, payload, frame.fin, opcode is not Opcode.CONTINUATION, frame.rsv2, frame.rsv3
        )

    def release_idle_memory(self) -> None:
        """Free the zlib state of each direction that carried no message since the last call.

        A direction is released between messages only, and only where the window kept to
        rebuild its state is worth it: this side's compressor with context takeover, the
        decompressor with context takeover and a peer's window of at most 12 bits. The next
        message in that direction rebuilds the state from the window (a preset dictionary),
        so the compressed stream goes on exactly as if nothing had been released.
        """
        if self._sent_recently:
            self._sent_recently = False
        elif self._compressor is not None and self._sent_window_size and not self._deflating:
            self._compressor = None
            self._sent_history = _compact(self._sent_history, self._sent_window_size)
        if self._received_recently:
            self._received_recently = False
        elif self._decompressor is not None and self._received_window_size and not self._inflating:
            self._decompressor = None
            self._received_history = _compact(self._received_history, self._received_window_size)


def _compact(history: bytearray, size: int) -> bytearray:
    """The last ``size`` bytes of ``history`` in a buffer of their own size."""
    return history[-size:]


@dataclass(frozen=True)
class _Parameters:
    """The parameters of one offer or answer, validated."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    #: Present without a value (allowed in an offer only).
    client_max_window_bits_bare: bool = False
    client_max_window_bits: int | None = None


def _parse(params: ExtensionParameters, *, answer: bool) -> _Parameters:
    """Validate the parameters of an offer (``answer=False``) or of an answer."""
    seen: set[str] = set()
    flags: dict[str, bool] = {}
    bits: dict[str, int] = {}
    client_bits_bare = False
    for name, value in params:
        if name in seen:
            raise NegotiationError(f"duplicate {_NAME} parameter {name}")
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                raise NegotiationError(f"{_NAME} parameter {name} takes no value")
            flags[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None:
                # RFC 7692 section 7.1.2.2: only a client's offer may leave it bare.
                if name == "server_max_window_bits" or answer:
                    raise NegotiationError(f"{_NAME} parameter {name} needs a value")
                client_bits_bare = True
            elif value in _WINDOW_BITS_VALUES:
                bits[name] = _WINDOW_BITS_VALUES[value]
            else:
                raise NegotiationError(
                    f"{_NAME} parameter {name}={value!r} is not a whole number from 8 to 15"
                )
        else:
            raise NegotiationError(f"unknown {_NAME} parameter {name}")
    return _Parameters(
        server_no_context_takeover=flags.get("server_no_context_takeover", False),
        client_no_context_takeover=flags.get("client_no_context_takeover", False),
        server_max_window_bits=bits.get("server_max_window_bits"),
        client_max_window_bits_bare=client_bits_bare,
        client_max_window_bits=bits.get("client_max_window_bits"),
    )


def _check_rsv1_free(accepted: Sequence[Extension]) -> None:
    for extension in accepted:
        if extension.reserved_bits[0]:
            raise NegotiationError(f"RSV1 is already used by {extension.name}")


def _smallest(*values: int | None) -> int | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _serialize(parameters: _Parameters) -> list[tuple[str, str | None]]:
    params: list[tuple[str, str | None]] = []
    if parameters.server_no_context_takeover:
        params.append(("server_no_context_takeover", None))
    if parameters.client_no_context_takeover:
        params.append(("client_no_context_takeover", None))
    if parameters.server_max_window_bits is not None:
        params.append(("server_max_window_bits", str(parameters.server_max_window_bits)))
    if parameters.client_max_window_bits is not None:
        params.append(("client_max_window_bits", str(parameters.client_max_window_bits)))
    elif parameters.client_max_window_bits_bare:
        params.append(("client_max_window_bits", None))
    return params


class ClientPerMessageDeflate(ClientExtensionFactory):
    """Offers permessage-deflate in a client's handshake and checks the server's answer.

    The defaults offer ``permessage-deflate; client_max_window_bits``: the server may then
    choose both windows.

    Args:
        server_no_context_takeover: Ask the server to start each message afresh (it then
            cannot refuse without declining the extension).
        client_no_context_takeover: Start each message this client sends afresh, and say so.
        server_max_window_bits: Ask the server to use at most this window (8 to 15);
            ``None`` lets it choose.
        client_max_window_bits: ``True`` lets the server limit the client's window,
            a number (8 to 15) also promises that limit, ``None`` offers neither.
        level: zlib compression level for sent messages.
        mem_level: zlib memory level for sent messages.
        min_size: Sent messages shorter than this are not compressed by default.

    Raises:
        ValueError: A setting is out of range.
    """

    name = _NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = None,
        client_max_window_bits: int | Literal[True] | None = True,
        level: int = _DEFAULT_LEVEL,
        mem_level: int = _DEFAULT_MEM_LEVEL,
        min_size: int = _DEFAULT_MIN_SIZE,
    ) -> None:
        _check_window_bits("server_max_window_bits", server_max_window_bits)
        bare = client_max_window_bits is True
        client_bits = None if client_max_window_bits is True else client_max_window_bits
        _check_window_bits("client_max_window_bits", client_bits)
        _check_zlib_settings(level, mem_level, min_size)
        self._offer = _Parameters(
            server_no_context_takeover=server_no_context_takeover,
            client_no_context_takeover=client_no_context_takeover,
            server_max_window_bits=server_max_window_bits,
            client_max_window_bits_bare=bare,
            client_max_window_bits=client_bits,
        )
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size

    def offer(self) -> list[tuple[str, str | None]]:
        """The offer's parameters, e.g. ``[("client_max_window_bits", None)]``."""
        return _serialize(self._offer)

    def accept_response(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> PerMessageDeflate:
        """Check the server's answer against the offer (RFC 7692 section 7.1).

        Args:
            params: The answer's parameters.
            accepted: The extensions negotiated before this one.

        Returns:
            The extension, configured by the answer.

        Raises:
            NegotiationError: The answer is malformed or does not fit the offer, or another
                extension already uses RSV1.
        """
        _check_rsv1_free(accepted)
        offer = self._offer
        answer = _parse(params, answer=True)
        if offer.server_no_context_takeover and not answer.server_no_context_takeover:
            raise NegotiationError("the server did not accept server_no_context_takeover")
        if offer.server_max_window_bits is not None and (
            answer.server_max_window_bits is None
            or answer.server_max_window_bits > offer.server_max_window_bits
        ):
            raise NegotiationError(
                f"the server did not accept server_max_window_bits={offer.server_max_window_bits}"
            )
        if answer.client_max_window_bits is not None:
            if not offer.client_max_window_bits_bare and offer.client_max_window_bits is None:
                raise NegotiationError("client_max_window_bits was not offered")
            if (
                offer.client_max_window_bits is not None
                and answer.client_max_window_bits > offer.client_max_window_bits
            ):
                raise NegotiationError("client_max_window_bits is larger than offered")
        return PerMessageDeflate(
            local_no_context_takeover=(
                answer.client_no_context_takeover or offer.client_no_context_takeover
            ),
            remote_no_context_takeover=answer.server_no_context_takeover,
            local_max_window_bits=(
                _smallest(answer.client_max_window_bits, offer.client_max_window_bits) or 15
            ),
            remote_max_window_bits=answer.server_max_window_bits or 15,
            level=self.level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )


class ServerPerMessageDeflate(ServerExtensionFactory):
    """Answers a client's offer of permessage-deflate.

    Any valid offer is accepted: the server grants what the client asks for and adds its
    own limits (RFC 7692 section 7.1). The defaults keep the server's memory low (see the
    module docstring).

    Args:
        server_no_context_takeover: Start each message the server sends afresh.
        client_no_context_takeover: Require the client to start each message afresh.
        server_max_window_bits: The server's window (8 to 15), announced in the answer;
            ``None``: 15, or what the client asks for.
        client_max_window_bits: Limit the client's window (8 to 15) when the client's
            offer allows it; ``None`` leaves it to the client.
        level: zlib compression level for sent messages.
        mem_level: zlib memory level for sent messages.
        min_size: Sent messages shorter than this are not compressed by default.

    Raises:
        ValueError: A setting is out of range.
    """

    name = _NAME

    def __init__(
        self,
        *,
        server_no_context_takeover: bool = False,
        client_no_context_takeover: bool = False,
        server_max_window_bits: int | None = _SERVER_DEFAULT_WINDOW_BITS,
        client_max_window_bits: int | None = _SERVER_DEFAULT_WINDOW_BITS,
        level: int = _DEFAULT_LEVEL,
        mem_level: int = _DEFAULT_MEM_LEVEL,
        min_size: int = _DEFAULT_MIN_SIZE,
    ) -> None:
        _check_window_bits("server_max_window_bits", server_max_window_bits)
        _check_window_bits("client_max_window_bits", client_max_window_bits)
        _check_zlib_settings(level, mem_level, min_size)
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.level = level
        self.mem_level = mem_level
        self.min_size = min_size

    def accept_offer(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], PerMessageDeflate]:
        """Accept one offer (RFC 7692 section 7.1).

        Args:
            params: The offer's parameters.
            accepted: The extensions negotiated before this one.

        Returns:
            The answer's parameters and the extension.

        Raises:
            NegotiationError: The offer is malformed or another extension already uses
                RSV1: decline it.
        """
        _check_rsv1_free(accepted)
        offer = _parse(params, answer=False)
        client_bits_allowed = offer.client_max_window_bits_bare or (
            offer.client_max_window_bits is not None
        )
        answer = _Parameters(
            # Section 7.1.1.1: a requested server_no_context_takeover must be accepted.
            server_no_context_takeover=(
                offer.server_no_context_takeover or self.server_no_context_takeover
            ),
            # Echoing the client's own promise makes it binding, so the server can drop its
            # decompressor between messages.
            client_no_context_takeover=(
                offer.client_no_context_takeover or self.client_no_context_takeover
            ),
            # Section 7.1.2.1: the same or a smaller value than asked, or any value if the
            # client did not ask.
            server_max_window_bits=_smallest(
                offer.server_max_window_bits, self.server_max_window_bits
            ),
            # Section 7.1.2.2: only if the client offered the parameter, and then no larger
            # than the client's value.
            client_max_window_bits=(
                _smallest(offer.client_max_window_bits, self.client_max_window_bits)
                if client_bits_allowed
                else None
            ),
        )
        extension = PerMessageDeflate(
            local_no_context_takeover=answer.server_no_context_takeover,
            remote_no_context_takeover=answer.client_no_context_takeover,
            local_max_window_bits=answer.server_max_window_bits or 15,
            remote_max_window_bits=answer.client_max_window_bits or 15,
            level=self.level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )
        return _serialize(answer), extension


def _check_compression(compression: str | None, options: Collection[str]) -> bool:
    if compression == "deflate":
        return True
    if compression is not None:
        raise ValueError(f"unsupported compression {compression!r}: use 'deflate' or None")
    if options:
        raise ValueError(f"compression options {sorted(options)} given without compression")
    return False


def client_extensions(
    compression: str | None = "deflate", **options: Any
) -> list[ClientExtensionFactory]:
    """The extension factories for a client's ``compression`` setting.

    Args:
        compression: ``"deflate"`` for permessage-deflate, ``None`` for no compression.
        **options: Keyword arguments of :class:`ClientPerMessageDeflate`.

    Returns:
        The factories to pass to the client handshake.

    Raises:
        ValueError: An unknown compression, or options without compression.
        TypeError: An unknown option.
    """
    if _check_compression(compression, options):
        return [ClientPerMessageDeflate(**options)]
    return []


def server_extensions(
    compression: str | None = "deflate", **options: Any
) -> list[ServerExtensionFactory]:
    """The extension factories for a server's ``compression`` setting.

    Args:
        compression: ``"deflate"`` for permessage-deflate, ``None`` for no compression.
        **options: Keyword arguments of :class:`ServerPerMessageDeflate`.

    Returns:
        The factories to pass to the server handshake.

    Raises:
        ValueError: An unknown compression, or options without compression.
        TypeError: An unknown option.
    """
    if _check_compression(compression, options):
        return [ServerPerMessageDeflate(**options)]
    return []
