"""``origins=``: only pages of the sites listed may open a WebSocket (no cross-site hijacking)."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import ConnectionRejected, WebSocketRequest, open_websocket_url, serve_websocket
from trio_ws.sansio import InvalidHandshake, ServerHandshake, allowed_origins

if TYPE_CHECKING:
    from collections.abc import Collection

    from trio_ws import WebSocketServer


def upgrade(origin_lines: str = "", method: str = "GET") -> bytes:
    return (
        f"{method} /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        f"Sec-WebSocket-Version: 13\r\n{origin_lines}\r\n"
    ).encode()


# --- the sans-IO check --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origins", "origin_lines", "allowed"),
    [
        (None, "Origin: https://evil.example\r\n", True),
        (None, "", True),
        ({"https://example.com"}, "Origin: https://example.com\r\n", True),
        ({"https://example.com"}, "Origin: HTTPS://Example.COM\r\n", True),
        ({"https://Example.com"}, "Origin: https://example.com\r\n", True),
        ({"https://example.com"}, "Origin: https://evil.example\r\n", False),
        ({"https://example.com"}, "Origin: https://example.com:8443\r\n", False),
        ({"https://example.com"}, "Origin: http://example.com\r\n", False),
        ({"https://example.com"}, "Origin: null\r\n", False),
        ({"https://example.com", "null"}, "Origin: null\r\n", True),
        ({"https://example.com"}, "", False),
        ({"https://example.com", None}, "", True),
        ({None}, "Origin: https://example.com\r\n", False),
        (set(), "", False),
    ],
)
def test_an_origin_is_allowed_only_if_listed(
    origins: Collection[str | None] | None, origin_lines: str, allowed: bool
) -> None:
    handshake = ServerHandshake(origins=origins)
    if allowed:
        assert handshake.receive_data(upgrade(origin_lines)) is not None
    else:
        with pytest.raises(InvalidHandshake) as info:
            handshake.receive_data(upgrade(origin_lines))
        assert info.value.status_code == 403
        assert "not allowed" in info.value.reason
        assert handshake.reject(403).startswith(b"HTTP/1.1 403 ")


def test_two_origin_headers_are_a_bad_request() -> None:
    handshake = ServerHandshake(origins={"https://example.com"})
    lines = "Origin: https://example.com\r\nOrigin: https://evil.example\r\n"
    with pytest.raises(InvalidHandshake, match="more than one Origin") as info:
        handshake.receive_data(upgrade(lines))
    assert info.value.status_code == 400


def test_a_malformed_request_gets_its_own_status_before_the_origin_check() -> None:
    handshake = ServerHandshake(origins={"https://example.com"})
    with pytest.raises(InvalidHandshake) as info:
        handshake.receive_data(upgrade("Origin: https://evil.example\r\n", method="POST"))
    assert info.value.status_code == 405


def test_plain_http_requests_are_not_checked() -> None:
    # A plain GET (a health check, a page) cannot hijack a WebSocket: it is the handler's.
    handshake = ServerHandshake(origins={"https://example.com"}, allow_plain_http=True)
    request = b"GET /healthz HTTP/1.1\r\nHost: example.com\r\nOrigin: https://evil.example\r\n\r\n"
    received = handshake.receive_data(request)
    assert received is not None
    assert not received.is_websocket


@pytest.mark.parametrize(
    ("origins", "error", "match"),
    [
        ("https://example.com", TypeError, "collection of origins"),
        (42, TypeError, "collection of origins"),
        ([b"https://example.com"], TypeError, "str or None, not bytes"),
        (["https://example.com/"], ValueError, "no trailing slash"),
        (["https://example.com/app"], ValueError, "is not an origin"),
        (["example.com"], ValueError, "is not an origin"),
        (["https://*.example.com/"], ValueError, "is not an origin"),
        (["https://*.example.com"], ValueError, "is not an origin"),
        (["https://user@example.com"], ValueError, "is not an origin"),
        ([""], ValueError, "is not an origin"),
    ],
)
def test_a_bad_allow_list_is_refused_at_once(origins: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        allowed_origins(origins)
    with pytest.raises(error, match=match):
        ServerHandshake(origins=origins)


def test_the_allow_list_is_normalised() -> None:
    assert allowed_origins(None) is None
    assert allowed_origins(["HTTPS://Example.com:443", None, "null", "http://[::1]:8000"]) == (
        frozenset({"https://example.com:443", None, "null", "http://[::1]:8000"})
    )


# --- through a real server ------------------------------------------------------------------


async def start(tg: Any, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


@pytest.mark.anyio
async def test_the_server_answers_403_to_an_origin_not_listed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: list[str | None] = []

    async def echo(request: WebSocketRequest) -> None:
        handled.append(request.headers.get("Origin"))
        ws = await request.accept()
        await ws.send_message(await ws.get_message())

    caplog.set_level(logging.INFO, logger="trio_ws")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            origins = {"https://chat.example", None}
            server = await start(tg, echo, origins=origins)
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, origin="https://chat.example") as ws:
                await ws.send_message("from the site")
                assert await ws.get_message() == "from the site"
            async with open_websocket_url(url) as ws:  # no Origin: a script, allowed
                await ws.send_message("from a script")
                assert await ws.get_message() == "from a script"
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(url, origin="https://evil.example"):
                    pass
            assert info.value.status_code == 403
            assert b"not allowed" in info.value.body
            tg.cancel_scope.cancel()
    assert handled == ["https://chat.example", None]  # the refused one never reached it
    refused = [r for r in caplog.records if "evil.example" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.anyio
async def test_without_none_a_client_without_origin_is_refused() -> None:
    async def accept(request: WebSocketRequest) -> None:
        await request.accept()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start(tg, accept, origins=["https://chat.example"])
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pass
            assert info.value.status_code == 403
            assert b"no Origin header" in info.value.body
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_a_bad_allow_list_fails_serve_websocket_before_it_listens() -> None:
    async def never(request: WebSocketRequest) -> None:
        raise AssertionError("not reached")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            with pytest.raises(TypeError, match="collection of origins"):
                await start(tg, never, origins="https://chat.example")
