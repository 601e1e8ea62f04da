"""The client follows HTTP redirects of the handshake, within limits and without leaking."""

from __future__ import annotations

import functools
import logging
import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from trio_ws import (
    ConnectionRejected,
    RedirectError,
    WebSocketRequest,
    connect_sync,
    open_websocket_url,
    serve_websocket,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

pytestmark = pytest.mark.anyio


class Seen:
    """What a server saw: the path and headers of each request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []


@asynccontextmanager
async def server(
    answer: Callable[[WebSocketRequest], Any], **options: Any
) -> AsyncIterator[tuple[str, Seen]]:
    """A server whose handler ``answer`` decides; yields its base URL (no path)."""
    seen = Seen()

    async def handler(request: WebSocketRequest) -> None:
        seen.requests.append((request.path, {n.lower(): v for n, v in request.headers}))
        await answer(request)

    async with anyio.create_task_group() as tg:
        running = await tg.start(
            functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
        )
        scheme = "wss" if options.get("ssl_context") else "ws"
        yield f"{scheme}://127.0.0.1:{running.port}", seen
        tg.cancel_scope.cancel()


def redirect_to(location: Callable[[], str], status: int = 302) -> Callable[..., Any]:
    async def answer(request: WebSocketRequest) -> None:
        await request.reject(status, headers=[("Location", location())])

    return answer


async def echo_path(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(request.path)
    await ws.get_message()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_each_redirect_status_is_followed(status: int) -> None:
    async with (
        server(echo_path) as (target, _),
        server(redirect_to(lambda: f"{target}/moved", status)) as (first, seen),
        open_websocket_url(f"{first}/old") as ws,
    ):
        assert await ws.get_message() == "/moved"
    assert [path for path, _ in seen.requests] == ["/old"]


async def test_relative_and_http_spelled_locations() -> None:
    async def answer(request: WebSocketRequest) -> None:
        if request.path == "/a/start":
            await request.reject(307, headers=[("Location", "next?x=1")])  # relative
        elif request.path == "/a/next":
            await request.reject(301, headers=[("Location", f"http://127.0.0.1:{port}/end")])
        else:
            await echo_path(request)

    async with server(answer) as (base, seen):
        port = int(base.rpartition(":")[2])
        async with open_websocket_url(f"{base}/a/start") as ws:
            assert await ws.get_message() == "/end"
    assert [path for path, _ in seen.requests] == ["/a/start", "/a/next", "/end"]


async def test_credentials_go_to_the_same_origin_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trio_ws.client")
    secret = [("Authorization", "Bearer secret"), ("Cookie", "session=1"), ("X-Keep", "yes")]

    async def answer(request: WebSocketRequest) -> None:
        if request.path == "/same":
            await request.reject(302, headers=[("Location", "/other-origin")])
        else:
            await request.reject(302, headers=[("Location", f"{target}/final")])

    async with server(echo_path) as (target, seen_there), server(answer) as (first, seen_here):
        url = first.replace("ws://", "ws://user:pw@") + "/same"
        async with open_websocket_url(url, extra_headers=secret) as ws:
            assert await ws.get_message() == "/final"
    same_origin = seen_here.requests[1][1]
    assert same_origin["authorization"] == "Bearer secret"  # the caller's wins over user:pw
    assert same_origin["cookie"] == "session=1"
    ((_, other_origin),) = seen_there.requests
    assert "authorization" not in other_origin
    assert "cookie" not in other_origin
    assert other_origin["x-keep"] == "yes"
    assert "redirected (HTTP 302)" in caplog.text


async def test_a_redirect_loop_ends_after_max_redirects() -> None:
    async def answer(request: WebSocketRequest) -> None:
        await request.reject(302, headers=[("Location", "/again")])

    async with server(answer) as (base, seen):
        with pytest.raises(RedirectError, match="more than 3 redirects") as caught:
            async with open_websocket_url(base, max_redirects=3):
                pytest.fail("connected")
        assert caught.value.location == "/again"
        assert caught.value.rejected.status_code == 302
        assert len(seen.requests) == 4
        with pytest.raises(ConnectionRejected) as rejected:
            async with open_websocket_url(base, max_redirects=0):
                pytest.fail("connected")
        assert rejected.value.status_code == 302
        assert not isinstance(rejected.value, RedirectError)


async def test_a_redirect_without_location_or_to_another_scheme() -> None:
    async def answer(request: WebSocketRequest) -> None:
        if request.path == "/nowhere":
            await request.reject(301)
        else:
            await request.reject(301, headers=[("Location", "ftp://127.0.0.1/file")])

    async with server(answer) as (base, _):
        with pytest.raises(ConnectionRejected) as caught:
            async with open_websocket_url(f"{base}/nowhere"):
                pytest.fail("connected")
        assert caught.value.status_code == 301
        with pytest.raises(RedirectError, match="not a WebSocket URL"):
            async with open_websocket_url(f"{base}/ftp"):
                pytest.fail("connected")


async def test_wss_to_ws_is_refused(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    async with server(echo_path) as (plain, seen_plain):
        answer = redirect_to(lambda: f"{plain}/downgraded")
        async with server(answer, ssl_context=server_ssl_context) as (secure, _):
            with pytest.raises(RedirectError, match="unencrypted"):
                async with open_websocket_url(secure, ssl_context=client_ssl_context):
                    pytest.fail("connected")
    assert seen_plain.requests == []


async def test_ws_to_wss_switches_to_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # A ws:// URL takes no ssl_context, so the upgrade uses the default context, which does
    # not trust the test CA: the failed verification shows that TLS was used.
    async with (
        server(echo_path, ssl_context=server_ssl_context) as (secure, _),
        server(redirect_to(lambda: f"{secure}/up")) as (plain, _),
    ):
        with pytest.raises(ssl.SSLCertVerificationError):
            async with open_websocket_url(plain):
                pytest.fail("connected")


async def test_invalid_max_redirects() -> None:
    with pytest.raises(ValueError, match="max_redirects"):
        async with open_websocket_url("ws://127.0.0.1:1/", max_redirects=-1):
            pytest.fail("connected")
    with pytest.raises(TypeError, match="max_redirects"):
        async with open_websocket_url("ws://127.0.0.1:1/", max_redirects=2.5):  # type: ignore[arg-type]
            pytest.fail("connected")


def test_the_blocking_client_follows_redirects_too() -> None:
    async def main() -> None:
        async with (
            server(echo_path) as (target, _),
            server(redirect_to(lambda: f"{target}/sync")) as (first, _),
        ):
            message = await anyio.to_thread.run_sync(_sync_receive, first)
        assert message == "/sync"

    anyio.run(main)


def _sync_receive(url: str) -> str | bytes:
    with connect_sync(url) as ws:
        return ws.recv(timeout=5)
