"""UTF-8 validation of text messages (RFC 6455 section 8.1): invalid text fails with 1007.

A text message that arrives in one frame is decoded in one call (:func:`decode_utf8`). A
fragmented one is validated fragment by fragment (:class:`Utf8Decoder`), so that the
connection fails on the first fragment that holds an invalid byte rather than after
buffering the whole message.
"""

from __future__ import annotations

import codecs

from ._errors import RemoteProtocolError
from ._frames import CloseCode

__all__ = ["Utf8Decoder", "decode_utf8"]

_utf8_decode = codecs.utf_8_decode
_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")

# One reason whatever the position: how a frame was split must not change the event.
INVALID_UTF8 = "invalid UTF-8"


def decode_utf8(data: bytes | bytearray | memoryview) -> str:
    """Decode a complete UTF-8 text.

    Raises:
        RemoteProtocolError: ``data`` is not valid UTF-8 (code 1007).
    """
    try:
        return _utf8_decode(data, "strict", True)[0]
    except UnicodeDecodeError:
        raise RemoteProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, INVALID_UTF8) from None


def _is_surrogate_prefix(pending: bytes) -> bool:
    # 0xED 0xA0-0xBF starts a UTF-16 surrogate (U+D800-U+DFFF), which UTF-8 forbids.
    # Python's incremental decoder only rejects it once the third byte arrives; checking
    # here makes a fragment that ends right after the invalid byte fail at once.
    return len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0


class Utf8Decoder:
    """Incremental, strict UTF-8 decoder for the fragments of one text message.

    A sequence cut between two fragments is held back until the next fragment completes
    it; an invalid byte raises as soon as the fragment that contains it is fed.
    """

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def decode(self, data: bytes | bytearray | memoryview, *, final: bool = False) -> str:
        """Decode the next fragment; ``final=True`` for the message's last one.

        Returns:
            The text of every complete character so far not returned before.

        Raises:
            RemoteProtocolError: The bytes so far are not a valid UTF-8 prefix, or (with
                ``final``) end in the middle of a character (code 1007).
        """
        decoder = self._decoder
        try:
            text: str = decoder.decode(data, final)
        except UnicodeDecodeError:
            raise RemoteProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, INVALID_UTF8) from None
        if not final and _is_surrogate_prefix(decoder.getstate()[0]):
            raise RemoteProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, INVALID_UTF8)
        return text

    def copy(self) -> Utf8Decoder:
        """A new decoder in the same state (to check bytes ahead without consuming them)."""
        twin = Utf8Decoder()
        twin._decoder.setstate(self._decoder.getstate())
        return twin
