"""The sans-IO proxy exchanges, proxy URLs and the environment's proxy selection."""

from __future__ import annotations

import base64

import pytest

from trio_ws import InvalidURL, LocalProtocolError, ProxyError
from trio_ws.sansio._proxy import (
    HttpConnect,
    ProxyURL,
    Socks5Connect,
    bypass_proxy,
    parse_proxy_url,
    proxy_from_environment,
)

# --- Proxy URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy:3128", ProxyURL("http", "proxy", 3128)),
        ("proxy:3128", ProxyURL("http", "proxy", 3128)),
        ("http://proxy/", ProxyURL("http", "proxy", 80)),
        ("HTTPS://proxy", ProxyURL("https", "proxy", 443)),
        ("socks5://[::1]", ProxyURL("socks5", "::1", 1080)),
        ("socks5h://u%40x:p%3Aw@p:1", ProxyURL("socks5h", "p", 1, "u@x", "p:w")),
        ("http://user@p:1", ProxyURL("http", "p", 1, "user", None)),
    ],
)
def test_parse_proxy_url(url: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://proxy", "unsupported proxy scheme"),
        ("http://:8080", "no host"),
        ("http://proxy:99999", "invalid proxy URL"),
        ("http://proxy/path", "no path"),
        ("http://proxy?q", "no path"),
    ],
)
def test_parse_invalid_proxy_url(url: str, message: str) -> None:
    with pytest.raises(InvalidURL, match=message):
        parse_proxy_url(url)


def test_proxy_url_kinds() -> None:
    assert not parse_proxy_url("socks5://p").resolves_remotely
    assert parse_proxy_url("socks5h://p").resolves_remotely
    assert parse_proxy_url("socks5h://p").is_socks
    assert not parse_proxy_url("http://p").is_socks
    assert parse_proxy_url("http://p").resolves_remotely


# --- The environment ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "anything", 1, True),
        ("example.com", "example.com", 1, True),
        ("example.com", "www.EXAMPLE.com.", 1, True),
        (".example.com", "www.example.com", 1, True),
        ("*.example.com", "example.com", 1, True),
        ("example.com", "badexample.com", 1, False),
        ("a.org, example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 443, False),
        ("example.com:x", "example.com", 1, False),
        ("10.0.0.0/8", "10.1.2.3", 1, True),
        ("10.0.0.1", "10.0.0.2", 1, False),
        ("example.com", "10.0.0.2", 1, False),
        ("[::1]:80", "::1", 80, True),
        ("[::1]:80", "[::1]", 81, False),
        ("[::1]", "::1", 80, True),
        ("::1", "::1", 80, True),
        (",, ,", "example.com", 1, False),
        ("*.", "example.com", 1, False),
    ],
)
def test_bypass_proxy(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    assert bypass_proxy(no_proxy, host, port) is bypass


def test_proxy_from_environment_by_scheme() -> None:
    environ = {"http_proxy": "http://h:1", "https_proxy": "http://s:2", "all_proxy": "socks5://a"}
    assert proxy_from_environment(environ, secure=False, host="x", port=80) == "http://h:1"
    assert proxy_from_environment(environ, secure=True, host="x", port=443) == "http://s:2"
    only_all = {"ALL_PROXY": "socks5://a"}
    assert proxy_from_environment(only_all, secure=True, host="x", port=443) == "socks5://a"
    assert proxy_from_environment({}, secure=True, host="x", port=443) is None
    empty = {"https_proxy": "", "HTTPS_PROXY": "http://upper"}
    assert proxy_from_environment(empty, secure=True, host="x", port=443) is None


def test_proxy_from_environment_lower_case_wins_and_no_proxy() -> None:
    environ = {"https_proxy": "http://lower", "HTTPS_PROXY": "http://upper", "NO_PROXY": "x"}
    assert proxy_from_environment(environ, secure=True, host="y", port=1) == "http://lower"
    assert proxy_from_environment(environ, secure=True, host="x", port=1) is None


def test_upper_case_http_proxy_is_ignored_in_cgi() -> None:
    environ = {"HTTP_PROXY": "http://from-a-header", "REQUEST_METHOD": "GET"}
    assert proxy_from_environment(environ, secure=False, host="x", port=80) is None
    environ["http_proxy"] = "http://set"
    assert proxy_from_environment(environ, secure=False, host="x", port=80) == "http://set"


# --- HTTP CONNECT ---------------------------------------------------------------------------


def test_connect_request_and_success() -> None:
    exchange = HttpConnect("example.com", 443)
    request = exchange.data_to_send()
    assert request.startswith(b"CONNECT example.com:443 HTTP/1.1\r\n")
    assert b"host: example.com:443\r\n" in request.lower()
    assert b"proxy-authorization" not in request.lower()
    assert exchange.data_to_send() == b""
    assert exchange.receive_data(b"") is None
    assert exchange.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n") is None
    assert exchange.receive_data(b"\r\nearly") == b"early"
    with pytest.raises(LocalProtocolError):
        exchange.receive_data(b"more")
    with pytest.raises(LocalProtocolError):
        exchange.receive_eof()


def test_connect_ipv6_target_and_credentials() -> None:
    request = HttpConnect("::1", 8080, username="alice", password="s3cret").data_to_send()
    assert request.startswith(b"CONNECT [::1]:8080 HTTP/1.1\r\n")
    token = base64.b64encode(b"alice:s3cret")
    assert b"proxy-authorization: Basic " + token + b"\r\n" in request.lower().replace(
        b"basic", b"Basic"
    ).replace(token.lower(), token)
    no_password = HttpConnect("h", 1, username="bob").data_to_send()
    assert base64.b64encode(b"bob:") in no_password


@pytest.mark.parametrize(
    ("username", "status", "message"),
    [
        (None, 407, "requires authentication"),
        ("alice", 407, "rejected the username and password"),
        (None, 403, r"refused to connect to h:1 \(HTTP 403 Forbidden\)"),
    ],
)
def test_connect_refusals(username: str | None, status: int, message: str) -> None:
    exchange = HttpConnect("h", 1, username=username, password="x")
    reason = {403: "Forbidden", 407: "Proxy Authentication Required"}[status]
    with pytest.raises(ProxyError, match=message) as info:
        exchange.receive_data(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
    assert info.value.status_code == status
    assert info.value.reply is None


def test_connect_malformed_answer() -> None:
    with pytest.raises(ProxyError, match="malformed"):
        HttpConnect("h", 1).receive_data(b"SSH-2.0-OpenSSH\r\n\r\n")


def test_connect_oversized_answer_is_malformed() -> None:
    exchange = HttpConnect("h", 1, max_response_size=100)
    with pytest.raises(ProxyError, match="malformed"):
        exchange.receive_data(b"HTTP/1.1 200 OK\r\nX: " + b"y" * 200)


@pytest.mark.parametrize(
    ("received", "message"), [(b"", "without answering"), (b"HTTP/1.1 2", "middle")]
)
def test_connect_eof(received: bytes, message: str) -> None:
    exchange = HttpConnect("h", 1)
    exchange.receive_data(received)
    with pytest.raises(ProxyError, match=message):
        exchange.receive_eof()


@pytest.mark.parametrize(("host", "port"), [("", 1), ("a b", 1), ("h\r\n", 1), ("h", 0)])
def test_invalid_targets(host: str, port: int) -> None:
    with pytest.raises(LocalProtocolError):
        HttpConnect(host, port)
    with pytest.raises(LocalProtocolError):
        Socks5Connect(host, port)


# --- SOCKS5 ---------------------------------------------------------------------------------


def test_socks5_without_auth_by_name() -> None:
    exchange = Socks5Connect("example.com", 443)
    assert exchange.data_to_send() == b"\x05\x01\x00"
    assert exchange.receive_data(b"\x05") is None
    assert exchange.receive_data(b"\x00") is None
    assert exchange.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    # The bound address comes in pieces: a name of 3 bytes, then the port.
    assert exchange.receive_data(b"\x05\x00\x00\x03\x03ab") is None
    assert exchange.receive_data(b"c\x00\x01rest") == b"rest"
    with pytest.raises(LocalProtocolError):
        exchange.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        exchange.receive_eof()


@pytest.mark.parametrize(
    ("host", "destination", "bound"),
    [
        ("127.0.0.1", b"\x01\x7f\x00\x00\x01", b"\x01" + bytes(4)),
        ("::1", b"\x04" + bytes(15) + b"\x01", b"\x04" + bytes(16)),
    ],
)
def test_socks5_with_auth_by_address(host: str, destination: bytes, bound: bytes) -> None:
    exchange = Socks5Connect(host, 80, username="alice", password="pw")
    assert exchange.data_to_send() == b"\x05\x02\x00\x02"
    assert exchange.receive_data(b"\x05\x02\x01") is None
    assert exchange.data_to_send() == b"\x01\x05alice\x02pw"
    assert exchange.receive_data(b"\x00") is None  # the auth reply is complete now
    assert exchange.data_to_send() == b"\x05\x01\x00" + destination + b"\x00\x50"
    assert exchange.receive_data(b"\x05\x00\x00" + bound + b"\x00\x00") == b""


def test_socks5_credentials_offered_but_not_needed() -> None:
    exchange = Socks5Connect("h", 1, username="alice")
    assert exchange.data_to_send() == b"\x05\x02\x00\x02"
    assert exchange.receive_data(b"\x05\x00") is None
    assert exchange.data_to_send().startswith(b"\x05\x01\x00\x03")


@pytest.mark.parametrize(
    ("username", "answer", "message"),
    [
        (None, b"\x04\x00", "does not speak SOCKS5"),
        (None, b"\x05\xff", "requires authentication"),
        ("alice", b"\x05\xff", "accepts none"),
        ("alice", b"\x05\x02\x01\x01", "rejected the username"),
        (None, b"\x05\x00\x04\x00\x00\x01\x00", "does not speak SOCKS5"),
        (None, b"\x05\x00\x05\x00\x00\x05\x00", "unknown address type 5"),
    ],
)
def test_socks5_failures(username: str | None, answer: bytes, message: str) -> None:
    exchange = Socks5Connect("h", 1, username=username)
    with pytest.raises(ProxyError, match=message):
        exchange.receive_data(answer)
    with pytest.raises(LocalProtocolError):
        exchange.receive_data(b"")


@pytest.mark.parametrize(
    ("reply", "message"),
    [(2, "not allowed by the proxy's rules"), (5, "connection refused"), (42, "unknown reply 42")],
)
def test_socks5_refusal_replies(reply: int, message: str) -> None:
    exchange = Socks5Connect("h", 1)
    with pytest.raises(ProxyError, match=message) as info:
        exchange.receive_data(b"\x05\x00\x05" + bytes([reply]) + b"\x00\x01\x00")
    assert info.value.reply == reply
    assert info.value.status_code is None


@pytest.mark.parametrize(
    ("username", "answer", "message"),
    [
        (None, b"", "check the credentials"),
        ("alice", b"", "before connecting to h:1"),
        ("alice", b"\x05\x02", "check the credentials"),
        (None, b"\x05\x00", "before connecting"),
    ],
)
def test_socks5_eof(username: str | None, answer: bytes, message: str) -> None:
    exchange = Socks5Connect("h", 1, username=username)
    exchange.receive_data(answer)
    with pytest.raises(ProxyError, match=message):
        exchange.receive_eof()


def test_socks5_limits() -> None:
    with pytest.raises(LocalProtocolError, match="too long"):
        Socks5Connect(".".join(["a"] * 130), 1)
    with pytest.raises(LocalProtocolError, match="invalid host name"):
        Socks5Connect("a..b", 1)
    with pytest.raises(LocalProtocolError, match="255 bytes"):
        Socks5Connect("h", 1, username="u" * 256)
