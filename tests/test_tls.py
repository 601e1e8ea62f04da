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

from tests.hostile import UPGRADE
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
from trio_ws.sansio import Connection, Event, Role, TextMessage

if TYPE_CHECKING:
    from collections.abc import Callable

    import trustme
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


def _tls12_only(ca: trustme.CA) -> ssl.SSLContext:
    # A context of its own: the session's shared one must stay as it is.
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ca.configure_trust(context)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["TLSv1.3", "TLSv1.2"])
async def test_wss_carries_every_size_in_order_while_the_peer_reads_slowly(
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
    tls_ca: trustme.CA,
    version: str,
) -> None:
    # TLS 1.3 takes the direct path on trio (records the socket refuses wait in order),
    # TLS 1.2 the generic one; both must carry everything, whole and in order, while the
    # client falls behind (the server's socket fills up) and then catches up.
    if version == "TLSv1.2":
        client_ssl_context = _tls12_only(tls_ca)
    sizes = [0, 1, 125, 126, 16_383, 16_384, 16_385, 65_535, 65_536, 1_000_000, 3, 4_200_000]
    messages = [bytes([n % 251]) * size for n, size in enumerate(sizes)]

    async def blast(request: WebSocketRequest) -> None:
        ws = await request.accept()
        for message in messages:
            await ws.send_message(message)
        assert await ws.get_message() == "done"

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, blast, server_ssl_context)
            async with open_websocket_url(
                f"wss://127.0.0.1:{server.port}/",
                ssl_context=client_ssl_context,
                max_message_size=None,
                compression=None,  # the bytes themselves go through TLS, not their deflate
            ) as ws:
                await anyio.sleep(0.2)  # the server writes into a socket nobody reads
                for expected in messages:
                    assert await ws.get_message() == expected
                await ws.send_message("done")
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_wss_ping_pong_and_close_codes(
    server_ssl_context: ssl.SSLContext, client_ssl_context: ssl.SSLContext
) -> None:
    async def close_with_4000(request: WebSocketRequest) -> None:
        ws = await request.accept()
        assert await ws.get_message() == "bye"
        await ws.aclose(4000, "see you")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, close_with_4000, server_ssl_context)
            async with open_websocket_url(
                f"wss://127.0.0.1:{server.port}/", ssl_context=client_ssl_context
            ) as ws:
                assert await ws.ping(b"over tls") >= 0
                await ws.send_message("bye")
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert (caught.value.code, caught.value.reason) == (4000, "see you")
            tg.cancel_scope.cancel()


class _RecordCuttingClient:
    """A TLS client over a bare TCP stream whose ciphertext the test sends as it chooses:
    records cut into pieces smaller than a header, or many records in one write."""

    def __init__(self, stream: ByteStream, context: ssl.SSLContext) -> None:
        self.stream = stream
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.core = Connection(Role.CLIENT, max_message_size=None)

    async def handshake(self) -> None:
        for _ in range(20):  # TLS 1.3 needs two flights; the bound only stops a hang
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self.stream.send(self.outgoing.read())
                self.incoming.write(await self.stream.receive())
            else:
                await self.stream.send(self.outgoing.read())
                return
        raise AssertionError("the TLS handshake did not finish")

    async def upgrade(self) -> list[Event]:
        """The WebSocket handshake; the events of what came with the answer."""
        await self.stream.send(self.records(UPGRADE))
        head = b""
        while b"\r\n\r\n" not in head:
            head += await self.receive()
        status, _, rest = head.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101 "), status
        return self.core.receive_data(rest)

    def records(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.outgoing.read()

    async def receive(self) -> bytes:
        while True:
            try:
                return self.tls.read(65_536)
            except ssl.SSLWantReadError:
                self.incoming.write(await self.stream.receive())


@pytest.mark.anyio
async def test_wss_server_reads_records_cut_anywhere_and_records_in_bulk(
    client_ssl_context: ssl.SSLContext, server_ssl_context: ssl.SSLContext
) -> None:
    # The server decrypts what each read brings: half a record header, the end of one
    # record and the start of the next, or fifty records at once. Each must come out
    # whole and in order, and a read that ends inside a record must wait for the rest.
    async def echo(request: WebSocketRequest) -> None:
        ws = await request.accept()
        async for message in ws:
            await ws.send_message(message)

    cut = [f"cut {n}" * (n + 1) for n in range(6)]
    bulk = [f"bulk {n}" for n in range(50)]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, echo, server_ssl_context)
            client = _RecordCuttingClient(
                await anyio.connect_tcp("127.0.0.1", server.port), client_ssl_context
            )
            await client.handshake()
            events = await client.upgrade()

            # One record per message, sent in 3-byte pieces (a record header is 5 bytes).
            ciphertext = b""
            for message in cut:
                client.core.send_text(message)
                ciphertext += client.records(client.core.data_to_send())
            for start in range(0, len(ciphertext), 3):
                await client.stream.send(ciphertext[start : start + 3])
                await anyio.sleep(0.001)  # one piece per server read, most of the time
            # Fifty records in one write.
            ciphertext = b""
            for message in bulk:
                client.core.send_text(message)
                ciphertext += client.records(client.core.data_to_send())
            await client.stream.send(ciphertext)

            received: list[str | bytes] = []
            while len(received) < len(cut) + len(bulk):
                events += client.core.receive_data(await client.receive())
                received += [event.data for event in events if isinstance(event, TextMessage)]
                events = []
            assert received == cut + bulk
            await client.stream.aclose()
            tg.cancel_scope.cancel()


async def _connection_ended_by(
    client_ssl_context: ssl.SSLContext,
    server_ssl_context: ssl.SSLContext,
    ending: Callable[[_RecordCuttingClient], bytes],
) -> tuple[str | bytes, ConnectionClosed]:
    """What a wss server's handler received, then the error that ended its connection,
    after the client sent one message and then the bytes of ``ending``."""
    seen: list[str | bytes] = []
    ended: list[ConnectionClosed] = []
    done = anyio.Event()

    async def record(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                seen.append(await ws.get_message())
        except ConnectionClosed as exc:
            ended.append(exc)
        finally:
            done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_tls_server(tg, record, server_ssl_context)
            client = _RecordCuttingClient(
                await anyio.connect_tcp("127.0.0.1", server.port), client_ssl_context
            )
            await client.handshake()
            await client.upgrade()
            client.core.send_text("before the end")
            await client.stream.send(client.records(client.core.data_to_send()) + ending(client))
            await done.wait()
            await client.stream.aclose()
            tg.cancel_scope.cancel()
    assert len(seen) == 1
    assert len(ended) == 1
    return seen[0], ended[0]


@pytest.mark.anyio
async def test_wss_close_notify_without_a_close_frame_ends_the_connection_with_1006(
    client_ssl_context: ssl.SSLContext, server_ssl_context: ssl.SSLContext
) -> None:
    def close_notify(client: _RecordCuttingClient) -> bytes:
        with pytest.raises(ssl.SSLWantReadError):  # the peer's close_notify is not there
            client.tls.unwrap()
        return client.outgoing.read()

    message, error = await _connection_ended_by(
        client_ssl_context, server_ssl_context, close_notify
    )
    assert message == "before the end"
    assert error.code == 1006


@pytest.mark.anyio
async def test_wss_forged_record_is_a_broken_transport_not_an_internal_error(
    client_ssl_context: ssl.SSLContext,
    server_ssl_context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def forged(client: _RecordCuttingClient) -> bytes:
        # An application-data record whose authentication tag cannot be right.
        return b"\x17\x03\x03\x00\x30" + bytes(range(48))

    with caplog.at_level(logging.DEBUG, logger="trio_ws"):
        message, error = await _connection_ended_by(client_ssl_context, server_ssl_context, forged)
    assert message == "before the end"
    assert error.code == 1006
    assert isinstance(error.__cause__, ssl.SSLError)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
