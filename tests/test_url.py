"""ws:// and wss:// URL parsing."""

from __future__ import annotations

import pytest

from trio_ws import InvalidURL
from trio_ws._url import WebSocketURL, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://example.com", WebSocketURL(secure=False, host="example.com", port=80)),
        ("wss://example.com/", WebSocketURL(secure=True, host="example.com", port=443)),
        (
            "WS://Example.COM:8080/chat?room=1&x=%20",
            WebSocketURL(
                secure=False, host="example.com", port=8080, resource="/chat?room=1&x=%20"
            ),
        ),
        ("ws://[::1]:9000/", WebSocketURL(secure=False, host="::1", port=9000)),
        (
            "wss://[2001:db8::1]/a",
            WebSocketURL(secure=True, host="2001:db8::1", port=443, resource="/a"),
        ),
        ("ws://127.0.0.1:1/?", WebSocketURL(secure=False, host="127.0.0.1", port=1)),
    ],
)
def test_valid_urls(url: str, expected: WebSocketURL) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "example.com",
        "ws:///path",
        "ws://example.com:99999/",
        "ws://example.com:port/",
        "ws://example.com/#fragment",
        "ws://example.com/#",
        "ws://example.com/a b",
        "ws://example.com/\n",
        "ws://exämple.com/",
        "ws://[::1/",
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(InvalidURL):
        parse_url(url)


def test_not_a_string() -> None:
    with pytest.raises(InvalidURL):
        parse_url(b"ws://example.com/")  # type: ignore[arg-type]


def test_invalid_url_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a ws"):
        parse_url("https://example.com/")


def test_userinfo_becomes_basic_authorization() -> None:
    url = parse_url("wss://alice:s%3Acret@example.com/feed")
    assert (url.username, url.password) == ("alice", "s:cret")
    # base64("alice:s:cret")
    assert url.authorization == "Basic YWxpY2U6czpjcmV0"
    assert parse_url("ws://bob@example.com/").authorization == "Basic Ym9iOg=="
    assert parse_url("ws://example.com/").authorization is None
