"""Incremental UTF-8 validation of text messages (1007 on invalid data)."""

from __future__ import annotations

import pytest

from trio_ws.sansio import RemoteProtocolError
from trio_ws.sansio._utf8 import Utf8Decoder, decode_utf8

TEXT = "κόσμε €𝄞 a"
ENCODED = TEXT.encode()


def test_decode_utf8_valid() -> None:
    assert decode_utf8(ENCODED) == TEXT
    assert decode_utf8(memoryview(ENCODED)) == TEXT
    assert decode_utf8(b"") == ""


@pytest.mark.parametrize(
    "data",
    [b"\xff", b"a\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"],
)
def test_decode_utf8_invalid(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_utf8(data)
    assert info.value.code == 1007


@pytest.mark.parametrize("split", range(len(ENCODED) + 1))
def test_every_split_between_two_fragments(split: int) -> None:
    decoder = Utf8Decoder()
    text = decoder.decode(ENCODED[:split]) + decoder.decode(ENCODED[split:], final=True)
    assert text == TEXT


def test_byte_by_byte() -> None:
    decoder = Utf8Decoder()
    parts = [decoder.decode(ENCODED[i : i + 1]) for i in range(len(ENCODED))]
    assert "".join(parts) + decoder.decode(b"", final=True) == TEXT


@pytest.mark.parametrize(
    "fragment",
    [
        b"ok\xff",  # invalid start byte
        b"\xce\xba\xf4\x90",  # beyond U+10FFFF: caught on its second byte
        b"ok\xed\xa0",  # a surrogate: caught on its second byte, not its third
        b"\xe0\x80",  # overlong
    ],
)
def test_fails_on_the_fragment_holding_the_first_invalid_byte(fragment: bytes) -> None:
    decoder = Utf8Decoder()
    with pytest.raises(RemoteProtocolError) as info:
        decoder.decode(fragment)
    assert info.value.code == 1007


def test_an_incomplete_prefix_is_fine_until_the_end() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"ok\xe2\x82") == "ok"
    with pytest.raises(RemoteProtocolError) as info:
        decoder.decode(b"", final=True)
    assert info.value.code == 1007


def test_a_one_byte_surrogate_prefix_waits_for_more() -> None:
    decoder = Utf8Decoder()
    assert decoder.decode(b"\xed") == ""
    assert decoder.decode(b"\x9f\xbf", final=True) == "\ud7ff"
