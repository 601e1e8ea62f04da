"""The frame-level state machine of one WebSocket connection (RFC 6455 sections 5 to 8).

Bytes in, events out; calls in, bytes out. :class:`Connection` starts after the opening
handshake and ends with the close handshake. It reassembles messages, answers pings and
close frames, enforces the size limit, masks or unmasks, runs the negotiated extensions,
and turns every peer violation into a close frame plus a :class:`ConnectionFailed` event.

Receiving is the hot path. It parses every complete frame of a call in one pass over one
``bytes`` object (no copy when nothing was buffered before), checks each header before its
payload is buffered, and builds no :class:`Frame` unless an extension is active.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    BytesMessage,
    CloseConnection,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
    new_event,
    set_bytes_data,
    set_text_data,
)
from ._frames import (
    FIN,
    MAX_CONTROL_PAYLOAD,
    RSV1,
    RSV2,
    RSV3,
    UINT16,
    UINT64,
    CloseCode,
    Opcode,
    first_byte,
    frame_bytes,
    frame_header,
    make_frame,
    rsv_bits,
)
from ._masking import apply_mask as mask_bytes, mask_parts, rotate_mask
from ._state import ConnectionState, Role, Transition, next_state
from ._utf8 import INVALID_UTF8, Utf8Decoder, decode_utf8

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._extensions import Extension

__all__ = ["Connection"]

_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED

_TEXT = Opcode.TEXT.value
_BINARY = Opcode.BINARY.value
_CLOSE = Opcode.CLOSE.value
_PING = Opcode.PING.value
_PONG = Opcode.PONG.value

#: A close reason fits in a control frame after the 2-byte code.
MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2

#: Data frames at least this long are received piece by piece (unmasked as they arrive,
#: joined once) instead of being buffered whole first.
_STREAM_FRAMES_FROM = 2**16

#: Frames with a payload at least this long are queued as their header and their payload,
#: not concatenated: the payload is written without a copy, and a client masks it only as
#: :meth:`Connection.next_data_to_send` takes it, piece by piece.
_SPLIT_FRAMES_FROM = 2**17

_PROTOCOL_ERROR = CloseCode.PROTOCOL_ERROR.value
_MESSAGE_TOO_BIG = CloseCode.MESSAGE_TOO_BIG.value
_INVALID_DATA = CloseCode.INVALID_FRAME_PAYLOAD_DATA.value
# The reason names the option, so that the log of a server says which limit a peer hit.
_TOO_BIG_REASON = "message too big (max_message_size)"
# Automatic pongs queued before the writer takes them: beyond this many, a new ping's pong
# replaces the last one queued instead of growing the queue, since only the most recent
# ping needs an answer (RFC 6455 section 5.5.3). A peer that pings and never reads then
# costs at most this many pongs (~2 KiB); an honest burst of pings (Autobahn 2.10 sends
# ten) is still answered ping by ping.
_MAX_PENDING_PONGS = 16


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4, IANA registry).

    1004, 1005, 1006 and 1015 are reserved for reporting, never sent; 1016-2999 are for
    future RFCs; 3000-3999 are registered by libraries and frameworks, 4000-4999 private.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _truncate_reason(reason: str) -> str:
    # A peer violation's reason (an extension's, say) may be long; a close frame has room
    # for 123 bytes. Cut on a character boundary.
    encoded = reason.encode()
    if len(encoded) <= MAX_CLOSE_REASON:
        return reason
    return encoded[:MAX_CLOSE_REASON].decode(errors="ignore")


class _RandomMaskKeys:
    """Fresh masking keys from :func:`os.urandom`, fetched 256 at a time.

    One system call per key costs more than masking a small frame; batching keeps every
    key just as unpredictable (section 10.3 asks for a strong source, not a syscall each).
    """

    __slots__ = ("_pool", "_pos")

    def __init__(self) -> None:
        self._pool = b""
        self._pos = 0

    def __call__(self) -> bytes:
        pos = self._pos
        if pos >= len(self._pool):
            self._pool = os.urandom(1024)
            pos = 0
        self._pos = pos + 4
        return self._pool[pos : pos + 4]


class _OutgoingPayload:
    """A large payload in the outgoing buffer, taken piece by piece (masked as it is taken).

    Masking a piece only when the I/O layer is about to write it lets the first pieces be
    on the wire, and the peer unmask them, while the next ones are still being masked.
    """

    __slots__ = ("_key", "_pos", "_view")

    def __init__(self, payload: bytes, mask_key: bytes | None) -> None:
        self._view = memoryview(payload)
        self._key = mask_key
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view) - self._pos

    def take(self, max_bytes: int) -> bytes | memoryview:
        """The next ``max_bytes`` of the payload (or what is left), masked if need be."""
        pos = self._pos
        end = pos + max_bytes
        piece = self._view[pos:end]
        self._pos = pos + len(piece)
        key = self._key
        if key is None:
            return piece
        return mask_bytes(piece, rotate_mask(key, pos))

    def take_all(self) -> list[bytes | memoryview]:
        """What is left of the payload, masked if need be, as pieces to join."""
        pos = self._pos
        piece = self._view[pos:]
        self._pos += len(piece)
        key = self._key
        if key is None:
            return [piece]
        return list(mask_parts(piece, rotate_mask(key, pos)))


class Connection:
    """The sans-IO WebSocket protocol for one connection, after the opening handshake.

    Args:
        role: :attr:`Role.CLIENT` (masks what it sends, rejects masked frames) or
            :attr:`Role.SERVER` (the reverse).
        max_message_size: The largest message accepted, in bytes after decompression;
            ``None`` for no limit. Enforced while reading, on each frame header before its
            payload is buffered (1009).
        max_fragments: The most frames one message may come in, its first frame and empty
            continuations included; ``None`` for no limit. Bounds the work and memory a
            message that never ends costs, which ``max_message_size`` cannot when its
            fragments are empty (1009).
        extensions: The extensions negotiated in the handshake, in the order of the
            ``Sec-WebSocket-Extensions`` answer. Outgoing frames go through their
            ``encode`` in this order, incoming frames through ``decode`` in reverse.
        decode_text: ``False`` to deliver text messages as validated UTF-8 ``bytes``.
        mask_key_source: Where a client gets the fresh 4-byte masking key of each frame
            (default: :func:`os.urandom`); tests inject a fixed one.
    """

    __slots__ = (
        "__weakref__",
        "_buffered",
        "_chunks",
        "_close_received",
        "_close_sent",
        "_decode_text",
        "_decoders",
        "_eof",
        "_expect_mask",
        "_extensions",
        "_forbidden_rsv",
        "_frame_first",
        "_frame_key",
        "_frame_limit",
        "_frame_parts",
        "_frame_remaining",
        "_frame_utf8",
        "_input_closed",
        "_is_client",
        "_last_pong_index",
        "_mask_key_source",
        "_max_fragments",
        "_max_size",
        "_message_data",
        "_message_fragments",
        "_message_opcode",
        "_message_size",
        "_needed",
        "_outgoing",
        "_outgoing_payloads",
        "_outgoing_size",
        "_pending_pongs",
        "_role",
        "_sending_opcode",
        "_state",
        "_utf8",
    )

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int | None = 2**20,
        max_fragments: int | None = 4096,
        extensions: Sequence[Extension] = (),
        decode_text: bool = True,
        mask_key_source: Callable[[], bytes] | None = None,
    ) -> None:
        if max_message_size is not None and max_message_size < 0:
            raise ValueError("max_message_size must be None or >= 0")
        if max_fragments is not None and max_fragments < 1:
            raise ValueError("max_fragments must be None or >= 1")
        self._role = role
        self._is_client = role is Role.CLIENT
        # A server requires masked frames, a client forbids them (section 5.1).
        self._expect_mask = not self._is_client
        self._mask_key_source = mask_key_source or _RandomMaskKeys()
        self._max_size = max_message_size
        self._max_fragments = max_fragments
        self._extensions = tuple(extensions)
        self._decoders = self._extensions[::-1]
        allowed_rsv = 0
        for extension in self._extensions:
            allowed_rsv |= rsv_bits(extension.reserved_bits)
        self._forbidden_rsv = (RSV1 | RSV2 | RSV3) & ~allowed_rsv
        self._decode_text = decode_text

        self._state = _OPEN
        self._close_sent: tuple[int, str] | None = None
        self._close_received: tuple[int, str] | None = None
        self._eof = False

        # The lists below are made with their first item and dropped (None) once taken: an
        # idle connection holds none (an empty list costs 56 bytes).

        # Receiving. Bytes of an incomplete frame wait in _chunks until _needed are there.
        self._input_closed = False
        self._chunks: list[bytes] | None = None
        self._buffered = 0
        self._needed = 2
        # A large data frame whose header was parsed is received piece by piece: each piece
        # is unmasked as it arrives and kept, and the pieces are joined once at the end.
        self._frame_remaining = 0  # payload bytes still to come (0: no such frame)
        self._frame_first = 0
        self._frame_limit: int | None = None
        self._frame_key: bytes | None = None  # the masking key, rotated to the next byte
        self._frame_parts: list[bytes] | None = None
        # Checks the text of a frame still arriving, so that invalid UTF-8 fails at the
        # piece that holds it rather than when the frame is complete (Autobahn 6.4.3/4).
        self._frame_utf8: Utf8Decoder | None = None
        # The fragmented message being received: opcode (0 = none), size, and its payload
        # so far in one buffer that each fragment extends (text too, as UTF-8): a message
        # in a million tiny or empty fragments costs its size, not a million objects.
        self._message_opcode = 0
        self._message_size = 0
        self._message_fragments = 0
        self._message_data: bytearray | None = None
        # Checks a fragmented text message across its fragments (made by _start_message).
        self._utf8: Utf8Decoder | None = None

        # Sending. Frames wait in _outgoing as bytes, except large payloads, which wait as
        # _OutgoingPayload entries after their header (_outgoing_payloads counts them).
        self._outgoing: list[bytes | _OutgoingPayload] | None = None
        self._outgoing_payloads = 0
        self._outgoing_size = 0
        self._sending_opcode = 0  # the fragmented message being sent (0 = none)
        # Automatic pongs queued since the writer last took data, and where the last one is.
        self._pending_pongs = 0
        self._last_pong_index = 0

    # ------------------------------------------------------------------ state

    @property
    def role(self) -> Role:
        """Whether this is the client or the server end."""
        return self._role

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The active extensions, in negotiation order."""
        return self._extensions

    @property
    def state(self) -> ConnectionState:
        """Where the connection is in its lifecycle."""
        return self._state

    @property
    def close_sent(self) -> tuple[int, str] | None:
        """The code and reason of the close frame this side sent (1005 for no code)."""
        return self._close_sent

    @property
    def close_received(self) -> tuple[int, str] | None:
        """The code and reason of the close frame the peer sent (1005 for no code)."""
        return self._close_received

    @property
    def close_code(self) -> int | None:
        """The peer's close code if it sent one, else ours, else 1006 after EOF, else None."""
        if self._close_received is not None:
            return self._close_received[0]
        if self._close_sent is not None:
            return self._close_sent[0]
        return CloseCode.ABNORMAL_CLOSURE.value if self._eof else None

    @property
    def close_reason(self) -> str | None:
        """The reason that goes with :attr:`close_code` (``""`` after EOF)."""
        if self._close_received is not None:
            return self._close_received[1]
        if self._close_sent is not None:
            return self._close_sent[1]
        return "" if self._eof else None

    @property
    def close_expected(self) -> bool:
        """Whether the transport should be closed now.

        True once the close handshake is complete, the connection failed, or EOF arrived. A
        server closes the TCP connection at once; a client waits a little for the server to
        close it first (RFC 6455 section 7.1.1).
        """
        return self._state is _CLOSED

    should_close_transport = close_expected

    # -------------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> list[Event]:
        """Feed bytes received from the peer; return the events they complete, in order.

        A peer violation never raises: the connection queues a close frame, the last event
        returned is :class:`ConnectionFailed`, and every later byte is ignored. Bytes that
        follow the peer's close frame are ignored too.
        """
        if self._input_closed or not data:
            return []
        events: list[Event] = []
        if self._frame_remaining:
            data = data if isinstance(data, bytes) else bytes(data)
            try:
                taken = self._continue_frame(data, events)
            except RemoteProtocolError as exc:
                return self._failed(exc, events)
            if taken == len(data) or self._input_closed:
                return events
            data = data[taken:]
        if self._chunks:
            chunk = bytes(data)
            self._chunks.append(chunk)
            self._buffered += len(chunk)
            if self._buffered < self._needed:
                return []
            src = b"".join(self._chunks)
        else:
            src = data if isinstance(data, bytes) else bytes(data)
            if len(src) < self._needed:
                self._chunks = [src]
                self._buffered = len(src)
                return events
        try:
            pos = self._parse(src, events)
        except RemoteProtocolError as exc:
            self._chunks = None
            self._buffered = 0
            return self._failed(exc, events)
        if self._input_closed or pos == len(src):
            self._chunks = None
            self._buffered = 0
        else:
            rest = src[pos:]
            self._chunks = [rest]
            self._buffered = len(rest)
        return events

    def _failed(self, exc: RemoteProtocolError, events: list[Event]) -> list[Event]:
        reason = _truncate_reason(exc.reason)
        events.append(ConnectionFailed(code=exc.code, reason=reason))
        self._fail(exc.code, reason)
        return events

    def _continue_frame(self, data: bytes, events: list[Event]) -> int:
        """Take the next piece of a large frame's payload; return how many bytes it used."""
        remaining = self._frame_remaining
        size = len(data)
        if size > remaining:
            size = remaining
            data = data[:remaining]
        frame_parts = self._frame_parts
        assert frame_parts is not None  # made with the frame's first piece (_parse)
        key = self._frame_key
        if key is not None:
            # The unmasked parts are kept as they are: one join at the end of the frame.
            parts = mask_parts(data, key)
            self._frame_key = rotate_mask(key, size)
            if self._frame_utf8 is not None:
                for part in parts:
                    self._frame_utf8.decode(part)
            frame_parts += parts
        else:
            if self._frame_utf8 is not None:
                self._frame_utf8.decode(data)
            frame_parts.append(data)
        remaining -= size
        self._frame_remaining = remaining
        if not remaining:
            payload = b"".join(frame_parts)
            self._frame_parts = None
            self._frame_key = None
            self._frame_utf8 = None
            self._data_frame(self._frame_first, payload, self._frame_limit, events)
        return size

    def _data_frame(
        self, first: int, payload: bytes, limit: int | None, events: list[Event]
    ) -> None:
        """Handle a complete text, binary or continuation frame that was streamed."""
        if self._decoders:
            payload = self._decode_extensions(first, payload, limit)
        opcode = first & 0x0F
        fin = first & FIN
        if opcode == _TEXT:
            if fin:
                text = decode_utf8(payload)
                events.append(TextMessage(data=text if self._decode_text else payload))
            else:
                self._start_message(opcode, payload)
        elif opcode == _BINARY:
            if fin:
                events.append(BytesMessage(data=payload))
            else:
                self._start_message(opcode, payload)
        else:
            self._continue_message(payload, fin, events)

    def receive_eof(self) -> list[Event]:
        """The transport reached end of file; nothing more will be received.

        Without a close frame from the peer this is an abnormal closure: the state becomes
        ``CLOSED`` and :attr:`close_code` 1006 (unless a close frame was sent).

        Returns:
            Always an empty list (kept for symmetry with :meth:`receive_data`).
        """
        self._state = next_state(self._state, Transition.RECEIVE_EOF)
        self._eof = True
        self._close_input()
        return []

    @property
    def bytes_wanted(self) -> int:
        """How many more bytes the frame being received needs: a hint for the next read.

        The rest of a large frame's payload while it arrives (the I/O layer may read more at
        once), what an incomplete header or small frame lacks, 2 between frames, and 0 once
        input is closed. Bytes beyond it are fine: they belong to the next frames.
        """
        if self._input_closed:
            return 0
        if self._frame_remaining:
            return self._frame_remaining
        return self._needed - self._buffered

    def _parse(self, src: bytes, events: list[Event]) -> int:
        """Handle every complete frame in ``src``; return where the unparsed rest starts.

        Sets ``_needed`` to the number of bytes the rest must reach before it is worth
        parsing again. Raises RemoteProtocolError on the first violation.
        """
        append = events.append
        end = len(src)
        pos = 0
        expect_mask = self._expect_mask
        forbidden_rsv = self._forbidden_rsv
        max_size = self._max_size
        decoders = self._decoders
        decode_text = self._decode_text
        unpack16 = UINT16.unpack_from
        unpack64 = UINT64.unpack_from
        while True:
            available = end - pos
            if available < 2:
                self._needed = 2
                return pos
            first = src[pos]
            second = src[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length > 125:
                if length == 126:
                    if available < 4:
                        self._needed = 4
                        return pos
                    length = unpack16(src, start)[0]
                    start += 2
                else:
                    if available < 10:
                        self._needed = 10
                        return pos
                    length = unpack64(src, start)[0]
                    start += 8
                    if length >> 63:
                        raise RemoteProtocolError(_PROTOCOL_ERROR, "invalid 64-bit length")
            masked = second & 0x80
            if masked:
                if not expect_mask:
                    raise RemoteProtocolError(_PROTOCOL_ERROR, "masked frame from server")
                start += 4
            elif expect_mask:
                raise RemoteProtocolError(_PROTOCOL_ERROR, "unmasked frame from client")
            if first & forbidden_rsv:
                raise RemoteProtocolError(_PROTOCOL_ERROR, "reserved bits set")
            opcode = first & 0x0F
            fin = first & FIN
            # Every check that needs only the header happens before the payload is awaited,
            # so a 2**60-byte length fails at once instead of being buffered.
            if opcode > _BINARY:
                if opcode > _PONG or opcode < _CLOSE:
                    raise RemoteProtocolError(_PROTOCOL_ERROR, f"reserved opcode {opcode}")
                if not fin:
                    raise RemoteProtocolError(_PROTOCOL_ERROR, "fragmented control frame")
                if length > MAX_CONTROL_PAYLOAD:
                    raise RemoteProtocolError(_PROTOCOL_ERROR, "control frame too long")
                limit = None
            else:
                if opcode:
                    if self._message_opcode:
                        raise RemoteProtocolError(_PROTOCOL_ERROR, "expected a continuation")
                    limit = max_size
                else:
                    if not self._message_opcode:
                        raise RemoteProtocolError(_PROTOCOL_ERROR, "unexpected continuation")
                    self._message_fragments += 1
                    max_fragments = self._max_fragments
                    if max_fragments is not None and self._message_fragments > max_fragments:
                        raise RemoteProtocolError(
                            _MESSAGE_TOO_BIG,
                            f"message in more than {max_fragments} fragments (max_fragments)",
                        )
                    limit = None if max_size is None else max_size - self._message_size
                # With an extension this bounds the wire size too: bytes held in memory
                # either way (a compressed frame's payload is rarely larger than its text).
                if limit is not None and length > limit:
                    raise RemoteProtocolError(_MESSAGE_TOO_BIG, _TOO_BIG_REASON)
            frame_end = start + length
            if frame_end > end:
                # Plain text is checked as it arrives (compressed text cannot be).
                plain_text = not decoders and (
                    opcode == _TEXT or (opcode == 0 and self._message_opcode == _TEXT)
                )
                if (
                    (length < _STREAM_FRAMES_FROM and not plain_text)
                    or opcode > _BINARY
                    or start > end
                ):
                    self._needed = frame_end - pos
                    return pos
                # A large data frame, or text: take its payload piece by piece from now on.
                key = src[start - 4 : start] if masked else None
                if key is not None:
                    parts = mask_parts(memoryview(src)[start:end], key)
                    key = rotate_mask(key, end - start)
                else:
                    parts = [src[start:end]]
                if plain_text:
                    # A continuation picks up where the message's previous fragment ended.
                    checker = Utf8Decoder() if opcode else self._utf8.copy()  # type: ignore[union-attr]
                    for part in parts:
                        checker.decode(part)
                    self._frame_utf8 = checker
                self._frame_first = first
                self._frame_limit = limit
                self._frame_key = key
                self._frame_parts = parts
                self._frame_remaining = frame_end - end
                self._needed = 2
                return end
            if masked:
                payload = mask_bytes(src[start:frame_end], src[start - 4 : start])
            else:
                payload = src[start:frame_end]
            pos = frame_end
            if decoders:
                payload = self._decode_extensions(first, payload, limit)

            # Messages built as TextMessage(data=...) and BytesMessage(data=...) are, at a
            # third of the cost (see _events); the text decoded as decode_utf8() does.
            if opcode == _TEXT:
                if fin:
                    try:
                        text = payload.decode()
                    except UnicodeDecodeError:
                        raise RemoteProtocolError(_INVALID_DATA, INVALID_UTF8) from None
                    text_event = new_event(TextMessage)
                    set_text_data(text_event, text if decode_text else payload)
                    append(text_event)
                else:
                    self._start_message(opcode, payload)
            elif opcode == _BINARY:
                if fin:
                    bytes_event = new_event(BytesMessage)
                    set_bytes_data(bytes_event, payload)
                    append(bytes_event)
                else:
                    self._start_message(opcode, payload)
            elif opcode == 0:
                self._continue_message(payload, fin, events)
            elif opcode == _PING:
                append(Ping(payload=payload))
                if self._state is _OPEN:
                    self._queue_automatic_pong(payload)
            elif opcode == _PONG:
                append(Pong(payload=payload))
            else:
                self._receive_close(payload, events)
                return pos

    def _decode_extensions(self, first: int, payload: bytes, limit: int | None) -> bytes:
        frame = make_frame(first, payload)
        for extension in self._decoders:
            frame = extension.decode(frame, max_size=limit)
        # Extensions should stop at max_size themselves; this catches those that do not.
        if limit is not None and len(frame.payload) > limit:
            raise RemoteProtocolError(_MESSAGE_TOO_BIG, _TOO_BIG_REASON)
        return frame.payload

    def _queue_automatic_pong(self, payload: bytes) -> None:
        self._send_frame(FIN | _PONG, payload, None)
        outgoing = self._outgoing
        assert outgoing is not None  # _send_frame just queued the pong (a short frame)
        if self._pending_pongs < _MAX_PENDING_PONGS:
            self._pending_pongs += 1
            self._last_pong_index = len(outgoing) - 1
            return
        # Too many unanswered: the new pong takes the place of the last one queued, so the
        # queue keeps its order and the latest ping is the one answered.
        pong = outgoing.pop()
        index = self._last_pong_index
        self._outgoing_size -= len(outgoing[index])
        outgoing[index] = pong

    def _start_message(self, opcode: int, payload: bytes) -> None:
        self._message_opcode = opcode
        self._message_size = len(payload)
        self._message_fragments = 1
        if opcode == _TEXT:
            # Checked fragment by fragment, so that invalid UTF-8 fails at once; the text
            # itself is decoded once, from the whole message, at the end.
            self._utf8 = Utf8Decoder()
            self._utf8.decode(payload)
        self._message_data = bytearray(payload)

    def _continue_message(self, payload: bytes, fin: int, events: list[Event]) -> None:
        # _start_message made the buffer and the decoder (a continuation with no message
        # being received is a protocol error, found by _parse): hence the ignores.
        self._message_size += len(payload)
        if self._message_opcode == _TEXT:
            self._utf8.decode(payload, final=bool(fin))  # type: ignore[union-attr]
        data = self._message_data
        assert data is not None  # see above
        data += payload
        if not fin:
            return
        whole = bytes(data)
        self._message_data = None
        event: Event
        if self._message_opcode == _BINARY:
            event = BytesMessage(data=whole)
        elif self._decode_text:
            event = TextMessage(data=whole.decode())  # valid: the decoder checked every byte
        else:
            event = TextMessage(data=whole)
        events.append(event)
        self._message_opcode = 0
        self._utf8 = None

    def _receive_close(self, payload: bytes, events: list[Event]) -> None:
        if not payload:
            code, reason = CloseCode.NO_STATUS_RCVD.value, ""
        elif len(payload) == 1:
            raise RemoteProtocolError(_PROTOCOL_ERROR, "close frame payload of 1 byte")
        else:
            code = UINT16.unpack_from(payload)[0]
            if not is_valid_close_code(code):
                raise RemoteProtocolError(_PROTOCOL_ERROR, f"invalid close code {code}")
            reason = decode_utf8(payload[2:])
        self._close_received = (code, reason)
        if self._state is _OPEN:
            # Echo the code (section 5.5.1); a close without a code gets an empty one.
            reply = None if code == CloseCode.NO_STATUS_RCVD else code
            self._queue_close(reply, "")
        self._state = next_state(self._state, Transition.RECEIVE_CLOSE)
        self._close_input()
        events.append(CloseConnection(code=code, reason=reason))

    def _close_input(self) -> None:
        self._input_closed = True
        self._chunks = None
        self._buffered = 0
        self._frame_remaining = 0
        self._frame_parts = None
        self._frame_utf8 = None
        self._message_opcode = 0
        self._message_data = None
        self._utf8 = None

    # ---------------------------------------------------------------- sending

    def _queue(self, data: bytes) -> None:
        outgoing = self._outgoing
        if outgoing is None:
            self._outgoing = [data]
        else:
            outgoing.append(data)
        self._outgoing_size += len(data)

    def _check_open(self) -> None:
        if self._state is not _OPEN:
            raise LocalProtocolError(f"cannot send in state {self._state.name}")

    def _send_frame(self, first: int, payload: bytes, compress: bool | None) -> None:
        if self._extensions:
            frame = make_frame(first, payload)
            for extension in self._extensions:
                frame = extension.encode(frame, compress=compress)
            first = first_byte(frame)
            payload = frame.payload
        mask_key = self._mask_key_source() if self._is_client else None
        if len(payload) < _SPLIT_FRAMES_FROM:
            data = frame_bytes(first, payload, mask_key)
            # _queue(data), inlined: this is the path of every message sent.
            outgoing = self._outgoing
            if outgoing is None:
                self._outgoing = [data]
            else:
                outgoing.append(data)
            self._outgoing_size += len(data)
            return
        header = frame_header(first, len(payload), mask_key)
        entries: list[bytes | _OutgoingPayload] = [header, _OutgoingPayload(payload, mask_key)]
        if self._outgoing is None:
            self._outgoing = entries
        else:
            self._outgoing += entries
        self._outgoing_payloads += 1
        self._outgoing_size += len(header) + len(payload)

    def _start_whole_message(self) -> None:
        self._check_open()
        if self._sending_opcode:
            raise LocalProtocolError("a fragmented message is being sent; finish it first")

    def send_text(self, data: str | bytes, *, compress: bool | None = None) -> None:
        """Send a text message.

        Args:
            data: The text; ``bytes`` are taken as already valid UTF-8 and not checked.
            compress: Ask a compression extension to compress (``True``) or not
                (``False``) this message; ``None`` lets it decide.

        Raises:
            LocalProtocolError: The close handshake started, a fragmented message is being
                sent, or ``data`` cannot be encoded as UTF-8 (lone surrogates).
        """
        # The checks of _start_whole_message() and _to_payload() inlined for the common
        # case (every message sent comes this way); they raise what is wrong.
        if self._state is not _OPEN or self._sending_opcode:
            self._start_whole_message()
        try:
            payload = data.encode() if type(data) is str else _to_payload(data)
        except UnicodeEncodeError:
            payload = _to_payload(data)
        self._send_frame(FIN | _TEXT, payload, compress)

    def send_binary(
        self, data: bytes | bytearray | memoryview | str, *, compress: bool | None = None
    ) -> None:
        """Send a binary message; a ``str`` is encoded as UTF-8.

        Raises:
            LocalProtocolError: The close handshake started or a fragmented message is
                being sent.
        """
        if self._state is not _OPEN or self._sending_opcode:
            self._start_whole_message()  # raises, as in send_text
        self._send_frame(FIN | _BINARY, _to_payload(data), compress)

    def send_fragment(
        self,
        data: str | bytes | bytearray | memoryview,
        *,
        text: bool,
        fin: bool,
        compress: bool | None = None,
    ) -> None:
        """Send one frame of a fragmented message.

        The first call of a message sends a text or binary frame, the next ones
        continuation frames; ``fin=True`` ends the message. Pings, pongs and a close may be
        sent between fragments; whole messages may not.

        Args:
            data: This fragment's payload (a ``str`` is encoded as UTF-8; ``bytes`` of a
                text message may split a character between fragments).
            text: Whether the message is text; must be the same for every fragment.
            fin: Whether this is the last fragment.
            compress: As for :meth:`send_text`, for the message's first fragment.

        Raises:
            LocalProtocolError: The close handshake started, or ``text`` differs from the
                message in progress.
        """
        self._check_open()
        opcode = _TEXT if text else _BINARY
        if self._sending_opcode and self._sending_opcode != opcode:
            raise LocalProtocolError("a fragment of another kind of message is in progress")
        payload = _to_payload(data)
        first = opcode if not self._sending_opcode else 0
        self._send_frame((FIN if fin else 0) | first, payload, compress)
        self._sending_opcode = 0 if fin else opcode

    def _send_control(self, opcode: int, payload: bytes | bytearray | memoryview) -> None:
        self._check_open()
        payload = bytes(payload)
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise LocalProtocolError("a control frame payload is at most 125 bytes")
        self._send_frame(FIN | opcode, payload, None)

    def send_ping(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send a ping (at most 125 bytes of payload).

        Raises:
            LocalProtocolError: The payload is too long or the close handshake started.
        """
        self._send_control(_PING, payload)

    def send_pong(self, payload: bytes | bytearray | memoryview = b"") -> None:
        """Send an unsolicited pong, e.g. as a unidirectional heartbeat (section 5.5.3).

        Raises:
            LocalProtocolError: The payload is too long or the close handshake started.
        """
        self._send_control(_PONG, payload)

    def send_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Start the close handshake: queue a close frame; no data may be sent after it.

        Args:
            code: The close code (1000-1003, 1007-1014, 3000-4999), or ``None`` for a close
                frame without a status code (then :attr:`close_sent` reports 1005).
            reason: A short explanation, at most 123 bytes once encoded as UTF-8.

        Raises:
            LocalProtocolError: The code or reason is invalid, or a close frame was already
                sent or received.
        """
        self._check_open()
        self._check_close(code, reason)
        self._queue_close(code, reason)
        self._state = next_state(self._state, Transition.SEND_CLOSE)

    def fail(self, code: int = CloseCode.INTERNAL_ERROR, reason: str = "") -> None:
        """Fail the connection from this side (e.g. 1011 when the application crashed).

        Queues a close frame with ``code`` unless one was already sent, moves to
        ``CLOSED`` and ignores every byte received from now on. Does nothing if the
        connection is already closed.

        Raises:
            LocalProtocolError: The code or reason is invalid.
        """
        self._check_close(code, reason)
        if self._state is not _CLOSED:
            self._fail(code, reason)

    def _fail(self, code: int, reason: str) -> None:
        if self._state is _OPEN:
            self._queue_close(code, reason)
        self._state = next_state(self._state, Transition.FAIL)
        self._close_input()

    @staticmethod
    def _check_close(code: int | None, reason: str) -> None:
        if code is None:
            if reason:
                raise LocalProtocolError("a close reason needs a close code")
            return
        if not is_valid_close_code(code):
            raise LocalProtocolError(f"invalid close code {code}")
        if len(reason.encode()) > MAX_CLOSE_REASON:
            raise LocalProtocolError("a close reason is at most 123 bytes of UTF-8")

    def _queue_close(self, code: int | None, reason: str) -> None:
        if code is None:
            self._send_frame(FIN | _CLOSE, b"", None)
            self._close_sent = (CloseCode.NO_STATUS_RCVD.value, "")
        else:
            self._send_frame(FIN | _CLOSE, UINT16.pack(code) + reason.encode(), None)
            self._close_sent = (int(code), reason)

    def encode_message(self, data: str | bytes, *, text: bool | None = None) -> bytes:
        """Encode one whole message as frame bytes, to send to many with :meth:`send_encoded`.

        Touches neither the outgoing buffer nor the state. The frame is a plain one: with
        permessage-deflate negotiated, the message goes out uncompressed (its frames would
        otherwise depend on each connection's compression context).

        Args:
            data: The message.
            text: Whether to send a text frame; ``None``: text for ``str``, binary for
                ``bytes``.

        Raises:
            LocalProtocolError: This is a client (each of its frames needs a fresh masking
                key) or an active extension does not allow plain messages.
        """
        self._check_encoded_frames_allowed()
        if text is None:
            text = isinstance(data, str)
        payload = _to_payload(data)
        return frame_bytes(FIN | (_TEXT if text else _BINARY), payload, None)

    def send_encoded(self, data: bytes) -> None:
        """Queue frame bytes made by :meth:`encode_message` (of any server connection).

        Raises:
            LocalProtocolError: As for :meth:`encode_message`, or the close handshake
                started, or a fragmented message is being sent.
        """
        self._check_encoded_frames_allowed()
        self._start_whole_message()
        self._queue(data)

    def _check_encoded_frames_allowed(self) -> None:
        if self._is_client:
            raise LocalProtocolError("a client masks each frame: it cannot reuse frames")
        for extension in self._extensions:
            if not extension.allows_plain_messages:
                raise LocalProtocolError(
                    f"cannot reuse frames while the {extension.name} extension is active"
                )

    def data_to_send(self) -> bytes:
        """Take everything queued to send (``b""`` if nothing is)."""
        outgoing = self._outgoing
        if not outgoing:
            return b""
        if self._outgoing_payloads:
            pieces: list[bytes | memoryview] = []
            for entry in outgoing:
                if isinstance(entry, _OutgoingPayload):
                    pieces += entry.take_all()
                else:
                    pieces.append(entry)
            data = b"".join(pieces)
            self._outgoing_payloads = 0
        else:
            # Only bytes are queued: no large payload is waiting.
            data = outgoing[0] if len(outgoing) == 1 else b"".join(outgoing)  # type: ignore[assignment, arg-type]
        self._outgoing = None
        self._outgoing_size = 0
        self._pending_pongs = 0
        return data

    def next_data_to_send(self, max_bytes: int) -> bytes | memoryview:
        """Take the next piece of what is queued to send (``b""`` if nothing is).

        For writing large frames piece by piece: the pieces, in order, are the same bytes as
        :meth:`data_to_send` would return at once. Whole frames come together, up to the
        next large payload (at least 128 KiB), which then comes in pieces of at most
        ``max_bytes``: a memoryview of the payload, not a copy, or on a client the piece
        just masked, so that it can be on the wire (and the peer unmasking it) while the
        next one is masked.

        Args:
            max_bytes: The most bytes of a large payload to take (at least 1).
        """
        outgoing = self._outgoing
        if not self._outgoing_payloads:
            # data_to_send(), inlined: this is the path of every small message.
            if not outgoing:
                return b""
            data = outgoing[0] if len(outgoing) == 1 else b"".join(outgoing)  # type: ignore[arg-type]
            self._outgoing = None
            self._outgoing_size = 0
            self._pending_pongs = 0
            return data  # type: ignore[return-value]
        assert outgoing is not None  # it holds the large payloads counted
        head = outgoing[0]
        if isinstance(head, _OutgoingPayload):
            piece = head.take(max_bytes)
            if not len(head):
                del outgoing[0]
                self._outgoing_payloads -= 1
        else:
            count = 1
            while not isinstance(outgoing[count], _OutgoingPayload):
                count += 1
            piece = head if count == 1 else b"".join(outgoing[:count])  # type: ignore[arg-type]
            del outgoing[:count]
        self._outgoing_size -= len(piece)
        # The queue's front moved: the index of the last pong is stale, so count afresh.
        self._pending_pongs = 0
        return piece

    @property
    def bytes_to_send(self) -> int:
        """How many bytes :meth:`data_to_send` would return now."""
        return self._outgoing_size


def _to_payload(data: str | bytes | bytearray | memoryview) -> bytes:
    if isinstance(data, str):
        try:
            return data.encode()
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"text cannot be encoded as UTF-8: {exc}") from None
    return bytes(data)
