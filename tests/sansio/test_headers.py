"""Headers and the Sec-WebSocket-* header parsers and serialisers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from trio_ws.sansio import InvalidHandshake, LocalProtocolError
from trio_ws.sansio._headers import (
    Headers,
    format_extensions,
    format_token_list,
    parse_extensions,
    parse_token_list,
    parse_upgrade,
)

SAMPLE = Headers(
    [
        (b"Host", b"example.com"),
        (b"Cookie", b"a=1"),
        (b"X-Thing", b"caf\xe9"),
        (b"cookie", b"b=2"),
    ]
)


# --- Headers ---------------------------------------------------------------------------------


def test_lookup_is_case_insensitive() -> None:
    assert SAMPLE["host"] == "example.com"
    assert SAMPLE["HOST"] == "example.com"
    assert "hOsT" in SAMPLE


def test_getitem_returns_the_first_of_several_values() -> None:
    assert SAMPLE["Cookie"] == "a=1"
    assert SAMPLE.get_all("COOKIE") == ["a=1", "b=2"]


def test_missing_field() -> None:
    with pytest.raises(KeyError):
        SAMPLE["Origin"]
    assert SAMPLE.get("Origin") is None
    assert SAMPLE.get("Origin", "none") == "none"
    assert SAMPLE.get_all("Origin") == []
    assert "Origin" not in SAMPLE
    assert 42 not in SAMPLE


def test_get_returns_the_first_value() -> None:
    assert SAMPLE.get("cookie", "none") == "a=1"


def test_bytes_are_decoded_as_latin1_and_kept_raw() -> None:
    assert SAMPLE["x-thing"] == "café"
    assert SAMPLE.raw == [
        (b"Host", b"example.com"),
        (b"Cookie", b"a=1"),
        (b"X-Thing", b"caf\xe9"),
        (b"cookie", b"b=2"),
    ]


def test_len_and_iteration_keep_order_and_spelling() -> None:
    assert len(SAMPLE) == 4
    assert list(SAMPLE) == [
        ("Host", "example.com"),
        ("Cookie", "a=1"),
        ("X-Thing", "café"),
        ("cookie", "b=2"),
    ]
    assert len(Headers()) == 0


def test_equality_ignores_name_case_but_not_order_or_value_case() -> None:
    assert Headers([("A", "x"), ("B", "y")]) == Headers([(b"a", b"x"), (b"b", b"y")])
    assert Headers([("A", "x"), ("B", "y")]) != Headers([("B", "y"), ("A", "x")])
    assert Headers([("A", "x")]) != Headers([("A", "X")])
    assert Headers([("A", "x")]) != [("A", "x")]
    assert hash(Headers([("A", "x")])) == hash(Headers([("a", "x")]))


def test_repr_shows_the_pairs() -> None:
    assert repr(Headers([("Host", "a")])) == "Headers([('Host', 'a')])"


def _compacted(fields: list[tuple[str, str]]) -> Headers:
    headers = Headers(fields)
    headers.get("X")  # builds the index, which compacting drops
    assert headers._index is not None
    assert headers._compact() is headers
    return headers


def test_compacted_headers_keep_one_string_and_behave_the_same() -> None:
    fields = [("Host", "example.com"), ("Cookie", "a=1"), ("X-Thing", "café"), ("cookie", "")]
    headers = _compacted(fields)
    assert headers._fields is None
    assert headers._index is None
    assert isinstance(headers._packed, str)
    # Every reading unpacks them as they were.
    assert headers == Headers(fields)
    assert hash(headers) == hash(Headers(fields))
    assert list(headers) == fields
    assert headers.get_all("COOKIE") == ["a=1", ""]
    assert headers["x-thing"] == "café"
    assert repr(headers) == repr(Headers(fields))
    # A second compaction needs no new string.
    packed = headers._packed
    headers._compact()
    assert headers._packed is packed
    assert headers._fields is None
    assert len(headers) == 4
    assert headers.raw == Headers(fields).raw


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [("X-Odd", "a\x00b")],
        [("X\x00Name", "value")],
    ],
    ids=["empty", "nul-in-value", "nul-in-name"],
)
def test_headers_that_cannot_be_packed_stay_as_they_are(fields: list[tuple[str, str]]) -> None:
    headers = Headers(fields)
    assert headers._compact() is headers
    assert headers._packed is None
    assert list(headers) == fields
    assert headers == Headers(fields)


@given(
    st.lists(
        st.tuples(
            st.text(st.characters(min_codepoint=0, max_codepoint=255), min_size=1),
            st.text(st.characters(min_codepoint=0, max_codepoint=255)),
        ),
        max_size=8,
    )
)
@settings(max_examples=200)
def test_compacting_never_changes_the_headers(fields: list[tuple[str, str]]) -> None:
    headers = Headers(fields)
    headers._compact()
    assert list(headers) == fields
    assert headers == Headers(fields)
    for name, _ in fields:
        assert headers.get_all(name) == [v for n, v in fields if n.lower() == name.lower()]


# --- token lists -------------------------------------------------------------------------------


def test_token_lists_combine_lines_and_skip_empty_elements() -> None:
    assert parse_token_list(["keep-alive, Upgrade", " ,, close ,"]) == [
        "keep-alive",
        "Upgrade",
        "close",
    ]
    assert parse_token_list([]) == []
    assert parse_token_list([""]) == []


@pytest.mark.parametrize("value", ["a b", "chat, super chat", "a;b", '"chat"', "ché"])
def test_token_list_rejects_non_tokens(value: str) -> None:
    with pytest.raises(InvalidHandshake, match="Sec-WebSocket-Protocol") as info:
        parse_token_list([value], "Sec-WebSocket-Protocol")
    assert info.value.status_code == 400


def test_upgrade_allows_protocol_versions() -> None:
    assert parse_upgrade(["WebSocket, HTTP/2.0", "h2c"]) == ["WebSocket", "HTTP/2.0", "h2c"]
    with pytest.raises(InvalidHandshake, match="Upgrade"):
        parse_upgrade(["a/b/c"])
    with pytest.raises(InvalidHandshake):
        parse_upgrade(["websocket/"])


def test_format_token_list() -> None:
    assert format_token_list(["chat", "superchat"]) == "chat, superchat"
    assert format_token_list([]) == ""
    for bad in ["", "a b", "a,b", "a\r\nX: y"]:
        with pytest.raises(LocalProtocolError):
            format_token_list([bad])


# --- Sec-WebSocket-Extensions ------------------------------------------------------------------


def test_extensions_rfc7692_examples() -> None:
    assert parse_extensions(["permessage-deflate; client_max_window_bits, permessage-deflate"]) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", []),
    ]
    assert parse_extensions(["permessage-deflate; server_max_window_bits=10"]) == [
        ("permessage-deflate", [("server_max_window_bits", "10")])
    ]


def test_extensions_quoted_values_are_unquoted() -> None:
    assert parse_extensions(['x; a="10"; b="\\1\\0"; c=token']) == [
        ("x", [("a", "10"), ("b", "10"), ("c", "token")])
    ]


def test_extensions_tolerate_whitespace_and_empty_elements() -> None:
    assert parse_extensions(["  foo ;a = 1 ;\tb , ,bar  ", "", ",", "baz"]) == [
        ("foo", [("a", "1"), ("b", None)]),
        ("bar", []),
        ("baz", []),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("foo bar", "',' or ';'"),
        ("foo;", "a parameter name"),
        ("foo; =1", "a parameter name"),
        ("foo; a=", "a parameter value"),
        ("foo; a=,", "a parameter value"),
        ("foo; a=1 2", "',' or ';'"),
        ("; a", "an extension name"),
        ('foo; a="1', "a quoted string"),
        ('foo; a="1 0"', "not a token"),
        ('foo; a=""', "not a token"),
        ("föo", "',' or ';'"),
        ("é", "an extension name"),
        ("foo; a=b=c", "',' or ';'"),
    ],
)
def test_extensions_reject_invalid_syntax(value: str, expected: str) -> None:
    with pytest.raises(InvalidHandshake, match=expected) as info:
        parse_extensions([value])
    assert info.value.status_code == 400


def test_format_extensions() -> None:
    offers = [
        (
            "permessage-deflate",
            [("client_max_window_bits", None), ("server_max_window_bits", "10")],
        ),
        ("x-other", []),
    ]
    assert format_extensions(offers) == (
        "permessage-deflate; client_max_window_bits; server_max_window_bits=10, x-other"
    )
    assert format_extensions([]) == ""


@pytest.mark.parametrize(
    "offer",
    [
        ("bad name", []),
        ("a=b", []),
        ("x", [("bad param", None)]),
        ("x", [("p", "two words")]),
        ("x", [("p", "")]),
        ("x", [("p=q", "1")]),
    ],
)
def test_format_extensions_rejects_non_tokens(
    offer: tuple[str, list[tuple[str, str | None]]],
) -> None:
    with pytest.raises(LocalProtocolError, match="Sec-WebSocket-Extensions"):
        format_extensions([offer])


tokens = st.text(alphabet="!#$%&'*+-.^_`|~0123456789abcXYZ", min_size=1, max_size=8)
offers = st.lists(
    st.tuples(tokens, st.lists(st.tuples(tokens, st.none() | tokens), max_size=3)), max_size=4
)


@settings(max_examples=200, deadline=None)
@given(offers)
def test_extensions_round_trip(extensions: list[tuple[str, list[tuple[str, str | None]]]]) -> None:
    assert parse_extensions([format_extensions(extensions)]) == extensions


@settings(max_examples=200, deadline=None)
@given(st.lists(tokens, max_size=5))
def test_token_list_round_trip(items: list[str]) -> None:
    assert parse_token_list([format_token_list(items)]) == items


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=255), max_size=40))
def test_parsers_raise_only_invalid_handshake(text: str) -> None:
    for parse in (parse_extensions, parse_token_list, parse_upgrade):
        try:
            parse([text])
        except InvalidHandshake:
            pass
