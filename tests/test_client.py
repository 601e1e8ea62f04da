"""The client over real loopback sockets (and TLS), against a tiny server built from the core."""

from __future__ import annotations

import socket
import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
import pytest
import trustme
from anyio.streams.tls import TLSListener

from trio_ws import (
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectionConfig,
    ConnectionRejected,
    HandshakeTimeout,
    WebSocketRequest,
    connect_websocket,
    connect_websocket_url,
    open_websocket,
    open_websocket_url,
)
from trio_ws._connection import ConnectionInfo, WebSocketConnection, open_connection
from trio_ws._groups import open_task_group
from trio_ws.sansio import Connection, Role, ServerHandshake
from trio_ws.sansio.extensions.permessage_deflate import server_extensions

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import ByteStream

pytestmark = pytest.mark.anyio


class TinyServer:
    """An echo server made of the core and WebSocketConnection; records what it saw."""

    def __init__(self, mode: str = "echo") -> None:
        self.mode = mode
        self.port = 0
        self.close_codes: list[int | None] = []
        self.request_headers: list[dict[str, str]] = []
        self.closed = anyio.Event()

    async def handle(self, stream: ByteStream) -> None:
        async with stream:
            await self._handle(stream)

    async def _handle(self, stream: ByteStream) -> None:
        handshake = ServerHandshake(extensions=server_extensions("deflate"))
        request = None
        try:
            while request is None:
                request = handshake.receive_data(await stream.receive())
        except anyio.EndOfStream:
            return
        self.request_headers.append({name.lower(): value for name, value in request.headers})
        if self.mode == "silent":
            await anyio.sleep_forever()
        if self.mode == "reject":
            response = handshake.reject(403, headers=[("X-Why", "test")], body=b"nope")
            await stream.send(response)
            await stream.aclose()
            return
        response, extensions = handshake.accept()
        await stream.send(response)
        protocol = Connection(Role.SERVER, extensions=extensions)
        config = ConnectionConfig(ping_interval=None, close_timeout=2)
        info = ConnectionInfo(path=request.path, query=request.query, extensions=extensions)
        async with open_task_group() as tg:
            ws, link = open_connection(stream, protocol, config=config, info=info)
            link.start(tg, handshake.extra_data)
            try:
                async for message in ws:
                    await ws.send_message(message)
            except ConnectionClosed:
                pass
            self.close_codes.append(ws.close_code)
            await ws.aclose()
        self.closed.set()


@asynccontextmanager
async def serve(
    server: TinyServer, *, ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1"
) -> AsyncIterator[TinyServer]:
    listener = await anyio.create_tcp_listener(local_host=host, local_port=0)
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        if ssl_context is not None:
            tls = TLSListener(listener, ssl_context, standard_compatible=False)
            tg.start_soon(tls.serve, server.handle)
        else:
            tg.start_soon(listener.serve, server.handle)
        yield server
        tg.cancel_scope.cancel()


async def test_echo_over_tcp_with_compression() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer()) as server:
            url = f"ws://127.0.0.1:{server.port}/chat?room=1"
            async with open_websocket_url(url, ping_interval=None) as ws:
                assert ws.is_client
                assert (ws.path, ws.query, ws.resource) == ("/chat", "room=1", "/chat?room=1")
                assert ws.extensions
                assert ws.extensions[0].name == "permessage-deflate"
                assert ws.response_headers["Upgrade"].lower() == "websocket"
                assert ws.request_headers["Host"] == f"127.0.0.1:{server.port}"
                assert ws.remote_address == ("127.0.0.1", server.port)
                assert ws.local_address is not None
                await ws.send_message("hello " * 1000)
                assert await ws.get_message() == "hello " * 1000
                await ws.send_message(b"\x00" * 10)
                assert await ws.get_message() == b"\x00" * 10
            assert ws.close_code == 1000
            await server.closed.wait()
            assert server.close_codes == [1000]


async def test_wss_with_a_custom_ssl_context() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with anyio.fail_after(10):
        async with serve(TinyServer(), ssl_context=server_context) as server:
            url = f"wss://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, ssl_context=client_context) as ws:
                await ws.send_message("secret")
                assert await ws.get_message() == "secret"
            # The default context does not trust the test CA.
            with pytest.raises(ssl.SSLError):
                async with open_websocket("127.0.0.1", server.port, "/", use_ssl=True):
                    pass


async def test_ipv6_literal() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        listener = await anyio.create_tcp_listener(local_host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    await listener.aclose()
    with anyio.fail_after(10):
        async with (
            serve(TinyServer(), host="::1") as server,
            open_websocket_url(f"ws://[::1]:{server.port}/v6") as ws,
        ):
            assert ws.request_headers["Host"] == f"[::1]:{server.port}"
            await ws.send_message("six")
            assert await ws.get_message() == "six"


async def test_rejected_handshake_carries_status_headers_and_body() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer("reject")) as server:
            with pytest.raises(ConnectionRejected) as info:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/"):
                    pytest.fail("the body must not run")
            assert info.value.status_code == 403
            assert info.value.body == b"nope"
            assert info.value.headers.get_all("x-why") == ["test"]


async def test_handshake_timeout() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer("silent")) as server:
            with pytest.raises(HandshakeTimeout):
                async with open_websocket("127.0.0.1", server.port, open_timeout=0.2):
                    pytest.fail("the body must not run")


async def test_exception_in_the_body_comes_out_as_itself_and_closes_with_1011() -> None:
    class AppError(Exception):
        pass

    error = AppError("boom")
    with anyio.fail_after(10):
        async with serve(TinyServer()) as server:

            async def body() -> None:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.send_message("before")
                    raise error

            with pytest.raises(AppError) as info:
                await body()
            assert info.value is error
            assert type(info.value) is AppError  # not an ExceptionGroup
            await server.closed.wait()
            assert server.close_codes == [1011]


async def test_cancelled_body_closes_with_1001() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer()) as server:
            with anyio.move_on_after(0.1) as scope:
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.get_message()
            assert scope.cancelled_caught
            await server.closed.wait()
            assert server.close_codes == [1001]


async def test_connect_in_a_task_group_the_caller_owns() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer()) as server:
            async with anyio.create_task_group() as tg:
                ws = await connect_websocket(tg, "127.0.0.1", server.port, "/owned")
                await ws.send_message("mine")
                assert await ws.get_message() == "mine"
                await ws.aclose()
                # The task group exits by itself: the connection's tasks ended.
            ws2: WebSocketConnection
            async with anyio.create_task_group() as tg:
                url = f"ws://127.0.0.1:{server.port}/"
                ws2 = await connect_websocket_url(tg, url, compression=None)
                assert ws2.extensions == ()
                await ws2.aclose(1001)
            assert ws2.close_code == 1001


async def test_peer_close_ends_iteration_and_userinfo_sends_authorization() -> None:
    with anyio.fail_after(10):
        async with serve(TinyServer()) as server:
            url = f"ws://user:pw@127.0.0.1:{server.port}/"
            async with open_websocket_url(url) as ws:
                await ws.send_message("x")
                assert await ws.get_message() == "x"
            assert server.request_headers[0]["authorization"] == "Basic dXNlcjpwdw=="
            with pytest.raises(ConnectionClosedOK):
                await ws.get_message()


async def test_ssl_context_for_a_ws_url_is_refused() -> None:
    with pytest.raises(ValueError, match="wss"):
        async with open_websocket_url(
            "ws://127.0.0.1:1/", ssl_context=ssl.create_default_context()
        ):
            pass


@pytest.mark.anyio
async def test_client_connections_keep_their_headers_compact_and_readable() -> None:
    from trio_ws.testing import open_websocket_in_memory

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept(extra_headers=[("X-Answer", "42")])
        await ws.get_message()

    with anyio.fail_after(10):
        async with open_websocket_in_memory(handler, extra_headers=[("X-Asked", "1")]) as ws:
            request_headers, response_headers = ws.request_headers, ws.response_headers
            # Held as one string each while the connection is open and idle...
            assert request_headers._fields is None
            assert response_headers._fields is None
            # ...and as readable as ever.
            assert request_headers["x-asked"] == "1"
            assert response_headers["X-Answer"] == "42"
            assert dict(response_headers)["Upgrade"] == "websocket"
            await ws.send_message("done")
