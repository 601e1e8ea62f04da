"""The server over TLS (``wss://``), with test certificates from trustme."""

from __future__ import annotations

import functools
import logging
import ssl
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from trio_ws import (
    ConnectionClosed,
    WebSocketRequest,
    WebSocketServer,
    connect_websocket,
    open_websocket,
    open_websocket_url,
    serve_websocket,
    serve_websocket_listeners,
)

if TYPE_CHECKING:
    from anyio.abc import ByteStream, TaskGroup


async def start_tls_server(
    tg: TaskGroup, handler: Any, context: ssl.SSLContext, **options: Any
) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, ssl_context=context, **options)
    )
    return server


async def drain_until_closed(stream: ByteStream) -> None:
    while True:
        try:
            await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return


async def secure_echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    await ws.send_message(f"secure={request.is_secure}")
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_wss_echo(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            async with open_websocket_url(
                f"wss://127.0.0.1:{server.port}/tls", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
                await ws.send_message("x" * 100_000)
                assert await ws.get_message() == "x" * 100_000
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_tls_handshake_counts_against_open_timeout(
    server_ssl_context: ssl.SSLContext,
) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context, open_timeout=0.3)
            # TCP only: the TLS ClientHello never comes.
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                with (
                    anyio.fail_after(3),
                    pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)),
                ):
                    await stream.receive()
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_plaintext_client_on_tls_port_is_not_an_error(
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="trio_ws")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                with anyio.fail_after(3):
                    await drain_until_closed(stream)
            async with open_websocket_url(
                f"wss://127.0.0.1:{server.port}/", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
            tg.cancel_scope.cancel()
    assert not caplog.records


@pytest.mark.anyio
async def test_graceful_shutdown_over_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            async with open_websocket_url(
                f"wss://127.0.0.1:{server.port}/", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
                tg.start_soon(server.aclose)
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.code == 1001


@pytest.mark.anyio
async def test_websockets_sync_client_over_tls(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    from websockets.sync.client import connect

    def client(port: int) -> list[str | bytes]:
        with connect(f"wss://127.0.0.1:{port}/", ssl=client_ssl_context) as ws:
            first = ws.recv(timeout=5)
            ws.send("interop over TLS")
            return [first, ws.recv(timeout=5)]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            received = await anyio.to_thread.run_sync(client, server.port)
            assert received == ["secure=True", "interop over TLS"]
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_prebound_anyio_tls_listener(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # A listener with serve() only (no accept()): the server delegates accepting to it.
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    tls = TLSListener(tcp, server_ssl_context, standard_compatible=False)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(serve_websocket_listeners, secure_echo, [tls])
            async with open_websocket_url(
                f"wss://127.0.0.1:{port}/", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
            tg.cancel_scope.cancel()


@pytest.mark.trio
async def test_trio_nursery_wss(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    import trio

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                functools.partial(
                    serve_websocket, secure_echo, "127.0.0.1", 0, ssl_context=server_ssl_context
                )
            )
            async with open_websocket_url(
                f"wss://localhost:{server.port}/", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
            nursery.cancel_scope.cancel()


# --- use_ssl= given a context (trio-websocket's spelling) ---------------------------------


@pytest.mark.anyio
async def test_use_ssl_given_a_context_uses_that_context(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    # Only client_ssl_context trusts the test CA: a default context in its place would fail
    # the certificate check.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            async with open_websocket(
                "127.0.0.1", server.port, "/", use_ssl=client_ssl_context
            ) as ws:
                assert await ws.get_message() == "secure=True"
            ws2 = await connect_websocket(tg, "localhost", server.port, use_ssl=client_ssl_context)
            assert await ws2.get_message() == "secure=True"
            await ws2.aclose()
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_use_ssl_true_verifies_with_the_default_context(
    server_ssl_context: ssl.SSLContext,
) -> None:
    # The counterpart of the test above: the default context does not trust the test CA.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            with pytest.raises(ssl.SSLCertVerificationError):
                async with open_websocket("127.0.0.1", server.port, use_ssl=True):
                    raise AssertionError("never reached")
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("use_ssl", "match"),
    [
        ("yes", "use_ssl must be a bool or an ssl.SSLContext, not str"),
        (1, "use_ssl must be a bool or an ssl.SSLContext, not int"),
        ("other context", "two different TLS contexts"),
    ],
)
async def test_use_ssl_rejects_what_it_cannot_use(
    client_ssl_context: ssl.SSLContext, use_ssl: Any, match: str
) -> None:
    if use_ssl == "other context":
        use_ssl = ssl.create_default_context()
    # Rejected before any connection is tried: nothing listens on port 1.
    with pytest.raises(TypeError, match=match):
        async with open_websocket("127.0.0.1", 1, use_ssl=use_ssl, ssl_context=client_ssl_context):
            raise AssertionError("never reached")


@pytest.mark.anyio
async def test_use_ssl_and_ssl_context_may_name_the_same_context(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, secure_echo, server_ssl_context)
            async with open_websocket(
                "127.0.0.1",
                server.port,
                use_ssl=client_ssl_context,
                ssl_context=client_ssl_context,
            ) as ws:
                assert await ws.get_message() == "secure=True"
            tg.cancel_scope.cancel()
