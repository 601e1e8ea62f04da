"""The WebSocket server over real loopback sockets, on trio and asyncio.

Clients are trio_ws's own client, raw sockets (for what a well-behaved client never does)
and, for Unix sockets, the ``websockets`` package's synchronous client in a thread.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import trio_ws
from trio_ws import (
    ConnectionClosed,
    ConnectionRejected,
    LocalProtocolError,
    WebSocketRequest,
    WebSocketServer,
    open_websocket_stream,
    open_websocket_url,
    serve_websocket,
    serve_websocket_listeners,
    serve_websocket_unix,
)
from trio_ws._private_apis import FAST_PATHS
from trio_ws.testing import memory_stream_pair

FAST_PATHS_ONLY = pytest.mark.skipif(
    not FAST_PATHS, reason="checks a fast path itself (TRIO_WS_FAST_PATHS=0)"
)

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

UPGRADE = (
    b"GET /raw HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
)


async def start_server(tg: TaskGroup, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


def url(server: WebSocketServer, resource: str = "/") -> str:
    return f"ws://127.0.0.1:{server.port}{resource}"


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def read_until_eof(stream: anyio.abc.ByteStream) -> bytes:
    data = b""
    while True:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return data


async def raw_exchange(server: WebSocketServer, request: bytes) -> bytes:
    """Send ``request`` on a fresh TCP connection; return everything until EOF."""
    async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
        await stream.send(request)
        return await read_until_eof(stream)


# --- the handler's lifetime --------------------------------------------------------------


@pytest.mark.anyio
async def test_echo_round_trip() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.send_message(b"\x00\x01")
                assert await ws.get_message() == b"\x00\x01"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_handler_returning_closes_with_1000() -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.accept()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(url(server)) as ws:
                with pytest.raises(ConnectionClosed) as caught:
                    await ws.get_message()
                assert caught.value.code == 1000
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_handler_raising_closes_with_1011_logs_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        if request.path == "/boom":
            raise ValueError("handler bug")
        await echo_messages(ws)

    caplog.set_level(logging.ERROR, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(url(server, "/stays")) as bystander:
                async with open_websocket_url(url(server, "/boom")) as ws:
                    with pytest.raises(ConnectionClosed) as caught:
                        await ws.get_message()
                    assert caught.value.code == 1011
                # The other connection and the server are unaffected.
                await bystander.send_message("still here")
                assert await bystander.get_message() == "still here"
            async with open_websocket_url(url(server, "/later")) as ws:
                await ws.send_message("ping")
                assert await ws.get_message() == "ping"
            tg.cancel_scope.cancel()

    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    record = errors[0]
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ValueError)
    assert "/boom" in record.getMessage()
    assert "127.0.0.1" in record.getMessage()


async def echo_messages(ws: trio_ws.WebSocketConnection) -> None:
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_handler_raising_before_accept_answers_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(request: WebSocketRequest) -> None:
        raise KeyError("no such user")

    caplog.set_level(logging.ERROR, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
            assert caught.value.status_code == 500
            tg.cancel_scope.cancel()
    assert any(isinstance(r.exc_info[1], KeyError) for r in caplog.records if r.exc_info)


@pytest.mark.anyio
async def test_handler_returning_without_answer_gets_403() -> None:
    async def handler(request: WebSocketRequest) -> None:
        return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
            assert caught.value.status_code == 403
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_peer_close_ends_async_for_without_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    received: list[str | bytes] = []
    handler_done = anyio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        received.extend([message async for message in ws])
        assert ws.close_code == 1000
        handler_done.set()

    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("one")
                await ws.send_message("two")
            await handler_done.wait()
            tg.cancel_scope.cancel()
    assert received == ["one", "two"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.anyio
async def test_peer_close_raises_connection_closed_in_get_message() -> None:
    outcome: list[int] = []
    handler_done = anyio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            outcome.append(exc.code)
            raise  # letting it escape is not an error either
        finally:
            handler_done.set()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(url(server)) as ws:
                await ws.aclose(4000, "bye")
            await handler_done.wait()
            tg.cancel_scope.cancel()
    assert outcome == [4000]


@pytest.mark.anyio
async def test_peer_vanishing_mid_message_is_1006_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcome: list[int] = []
    handler_done = anyio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            outcome.append(exc.code)
            raise
        finally:
            handler_done.set()

    caplog.set_level(logging.WARNING, logger="trio_ws")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, compression=None)
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(UPGRADE + b"\r\n")
                response = b""
                while b"\r\n\r\n" not in response:
                    response += await stream.receive()
                # A masked text frame announcing 100 bytes, cut after 10 of them.
                await stream.send(b"\x81\xe4" + b"\x00\x00\x00\x00" + b"x" * 10)
            await handler_done.wait()
            tg.cancel_scope.cancel()
    assert outcome == [1006]
    assert not caplog.records


# --- accept / reject --------------------------------------------------------------------


@pytest.mark.anyio
async def test_reject_with_status_headers_and_body() -> None:
    async def handler(request: WebSocketRequest) -> None:
        if request.headers.get("Authorization") != "Bearer sesame":
            await request.reject(
                401, headers=[("WWW-Authenticate", 'Bearer realm="ws"')], body=b"who are you?"
            )
            return
        await request.accept()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
            rejected = caught.value
            assert rejected.status_code == 401
            assert rejected.headers["WWW-Authenticate"] == 'Bearer realm="ws"'
            assert rejected.body == b"who are you?"
            async with open_websocket_url(
                url(server), extra_headers=[("Authorization", "Bearer sesame")]
            ) as ws:
                assert not ws.closed
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("status", [403, 404, 503])
async def test_reject_any_status(status: int) -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(status, body="nope")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server)):
                    pass  # pragma: no cover
            assert caught.value.status_code == status
            assert caught.value.body == b"nope"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_health_check_200_with_body() -> None:
    async def handler(request: WebSocketRequest) -> None:
        if request.path == "/healthz":
            await request.reject(200, headers=[("Content-Type", "text/plain")], body=b"OK\n")
        else:
            await echo(request)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            # A plain HTTP client (a load balancer's probe) sends no upgrade headers: the
            # server answers 426 itself. A WebSocket probe reaches the handler.
            answer = await raw_exchange(server, UPGRADE.replace(b"/raw", b"/healthz") + b"\r\n")
            assert answer.startswith(b"HTTP/1.1 200 ")
            assert answer.endswith(b"\r\n\r\nOK\n")
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_url(url(server, "/healthz")):
                    pass  # pragma: no cover
            assert caught.value.status_code == 200
            assert caught.value.body == b"OK\n"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_request_inspection_and_subprotocol_choice() -> None:
    seen: dict[str, Any] = {}

    async def handler(request: WebSocketRequest) -> None:
        seen.update(
            path=request.path,
            query=request.query,
            query_params=request.query_params,
            resource=request.resource,
            agent=request.headers.get("X-Agent"),
            cookies=request.cookies,
            remote=request.remote_address,
            local=request.local_address,
            subprotocols=request.subprotocols,
            secure=request.is_secure,
        )
        chosen = next(p for p in ("chat.v2", "chat.v1") if p in request.subprotocols)
        ws = await request.accept(subprotocol=chosen, extra_headers=[("X-Server", "trio_ws")])
        await ws.send_message(f"{ws.subprotocol} {ws.path} {ws.query} {ws.resource}")
        await ws.get_message()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(
                url(server, "/rooms/a%20b?user=ann&x=1"),
                subprotocols=["chat.v1", "chat.v2"],
                extra_headers=[("X-Agent", "tests"), ("Cookie", "session=abc; theme=dark")],
            ) as ws:
                assert ws.subprotocol == "chat.v2"
                assert ws.response_headers.get("X-Server") == "trio_ws"
                assert await ws.get_message() == (
                    "chat.v2 /rooms/a%20b user=ann&x=1 /rooms/a%20b?user=ann&x=1"
                )
                assert (ws.path, ws.query) == ("/rooms/a%20b", "user=ann&x=1")
                assert ws.resource == "/rooms/a%20b?user=ann&x=1"
                client_address = ws.local_address
                await ws.send_message("done")
            tg.cancel_scope.cancel()

    assert seen["path"] == "/rooms/a%20b"
    assert seen["query"] == "user=ann&x=1"
    assert seen["query_params"] == {"user": "ann", "x": "1"}
    assert seen["resource"] == "/rooms/a%20b?user=ann&x=1"
    assert seen["agent"] == "tests"
    assert seen["cookies"] == {"session": "abc", "theme": "dark"}
    assert seen["subprotocols"] == ("chat.v1", "chat.v2")
    assert isinstance(client_address, tuple)
    assert tuple(seen["remote"][:2]) == tuple(client_address[:2])
    assert seen["local"][1] == server.port
    assert seen["secure"] is False


@pytest.mark.anyio
async def test_accept_misuse_raises_local_protocol_error() -> None:
    errors: list[BaseException] = []

    async def handler(request: WebSocketRequest) -> None:
        try:
            await request.accept(subprotocol="never-offered")
        except LocalProtocolError as exc:
            errors.append(exc)
        assert not request.answered
        ws = await request.accept()
        assert request.connection is ws
        for second in (request.accept(), request.reject(400)):
            try:
                await second
            except LocalProtocolError as exc:
                errors.append(exc)
        await ws.send_message("accepted once")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with open_websocket_url(url(server)) as ws:
                assert await ws.get_message() == "accepted once"
            tg.cancel_scope.cancel()
    assert len(errors) == 3


# --- invalid and slow clients --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"426"),
        (UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n", b"426"),
        (UPGRADE.replace(b"GET", b"POST") + b"\r\n", b"405"),
        (
            UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"") + b"\r\n",
            b"400",
        ),
        (b"this is not http\r\n\r\n", b"400"),
    ],
)
@pytest.mark.anyio
async def test_invalid_handshake_gets_the_core_status(request_bytes: bytes, status: bytes) -> None:
    called = False

    async def handler(request: WebSocketRequest) -> None:  # pragma: no cover
        nonlocal called
        called = True

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            answer = await raw_exchange(server, request_bytes)
            assert answer.split(b" ", 2)[1] == status
            tg.cancel_scope.cancel()
    assert not called


@pytest.mark.anyio
async def test_request_too_large_gets_431() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo, max_request_size=2048)
            huge = UPGRADE + b"X-Padding: " + b"a" * 4096 + b"\r\n\r\n"
            answer = await raw_exchange(server, huge)
            assert answer.startswith(b"HTTP/1.1 431 ")
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("sent", [b"", UPGRADE[:40]])
async def test_silent_or_slow_client_is_dropped_after_open_timeout(sent: bytes) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo, open_timeout=0.3)
            async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
                await stream.send(sent or b"G")  # at least one byte, then nothing more
                with anyio.fail_after(3):
                    assert await read_until_eof(stream) == b""
            assert server.connections == []
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_client_vanishing_during_handshake_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            for _ in range(3):
                stream = await anyio.connect_tcp("127.0.0.1", server.port)
                await stream.send(UPGRADE[:30])
                await stream.aclose()
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("fine")
                assert await ws.get_message() == "fine"
            tg.cancel_scope.cancel()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- scale and limits ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.slow
async def test_500_concurrent_connections() -> None:
    count = 500
    all_connected = anyio.Event()
    connected = 0

    async def client(server: WebSocketServer, index: int) -> None:
        nonlocal connected
        async with open_websocket_url(url(server), compression=None) as ws:
            connected += 1
            if connected == count:
                all_connected.set()
            await all_connected.wait()
            await ws.send_message(f"m{index}")
            assert await ws.get_message() == f"m{index}"

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo, compression=None, backlog=1024)
            peak = 0
            async with anyio.create_task_group() as clients:
                for index in range(count):
                    clients.start_soon(client, server, index)
                await all_connected.wait()
                peak = len(server.connections)
            assert peak == count
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_max_connections_answers_503_above_the_limit() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo, max_connections=2)
            async with open_websocket_url(url(server)) as one, open_websocket_url(url(server)):
                with pytest.raises(ConnectionRejected) as caught:
                    async with open_websocket_url(url(server)):
                        pass  # pragma: no cover
                assert caught.value.status_code == 503
                await one.send_message("first still works")
                assert await one.get_message() == "first still works"
            # Slots are released when connections end.
            for _ in range(100):
                if not server.connections:
                    break
                await anyio.sleep(0.01)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("room again")
                assert await ws.get_message() == "room again"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_connections_lists_open_connections() -> None:
    handler_connections: list[trio_ws.WebSocketConnection] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        handler_connections.append(ws)
        await echo_messages(ws)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            assert server.connections == []
            async with open_websocket_url(url(server)) as a, open_websocket_url(url(server)) as b:
                for ws in (a, b):
                    await ws.send_message("sync")
                    await ws.get_message()
                assert sorted(map(id, server.connections)) == sorted(map(id, handler_connections))
            for _ in range(100):
                if not server.connections:
                    break
                await anyio.sleep(0.01)
            assert server.connections == []
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_debug_logs_open_and_close(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            async with open_websocket_url(url(server, "/logged")) as ws:
                await ws.send_message("x")
                await ws.get_message()
            for _ in range(100):
                if any("closed" in r.getMessage() for r in caplog.records):
                    break
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    messages = [r.getMessage() for r in caplog.records if r.name == "trio_ws.server"]
    assert any("opened" in m and "/logged" in m and "127.0.0.1" in m for m in messages)
    assert any("closed" in m and "1000" in m for m in messages)


# --- where the server listens --------------------------------------------------------------


@pytest.mark.anyio
async def test_bind_failure_raises_oserror_not_a_group() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            with pytest.raises(OSError, match=r"(?i)address already in use") as caught:
                await serve_websocket(echo, "127.0.0.1", server.port)
            assert caught.value.errno == errno.EADDRINUSE  # itself, not in a group
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_port_zero_and_addresses() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            assert server.port > 0
            assert server.ports == [server.port]
            assert server.addresses[0][:2] == ("127.0.0.1", server.port)
            assert server.sockets[0].getsockname()[1] == server.port
            assert "127.0.0.1" in repr(server)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_all_interfaces_when_host_is_none_or_empty() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for host in (None, ""):
                server: WebSocketServer = await tg.start(serve_websocket, echo, host, 0)
                async with open_websocket_url(f"ws://127.0.0.1:{server.port}/") as ws:
                    await ws.send_message(repr(host))
                    assert await ws.get_message() == repr(host)
                await server.aclose()
            tg.cancel_scope.cancel()


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.anyio
@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6() -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(serve_websocket, echo, "::1", 0)
            async with open_websocket_url(f"ws://[::1]:{server.port}/v6") as ws:
                await ws.send_message("over IPv6")
                assert await ws.get_message() == "over IPv6"
                assert isinstance(ws.remote_address, tuple)
                assert ws.remote_address[0] == "::1"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets")
async def test_unix_socket(tmp_path: Any) -> None:
    from websockets.sync.client import unix_connect

    path = str(tmp_path / "ws.sock")
    seen: list[Any] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append((request.path, request.remote_address))
        await echo(request)

    def client() -> str | bytes:
        with unix_connect(path, uri="ws://localhost/unix") as ws:
            ws.send("through a Unix socket")
            return ws.recv(timeout=5)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                functools.partial(serve_websocket_unix, handler, path, mode=0o600)
            )
            assert server.ports == []
            assert server.addresses == [path]
            assert os.stat(path).st_mode & 0o777 == 0o600
            assert await anyio.to_thread.run_sync(client) == "through a Unix socket"
            tg.cancel_scope.cancel()
    assert seen[0][0] == "/unix"
    assert isinstance(seen[0][1], str)


@pytest.mark.anyio
async def test_prebound_socket_and_anyio_listener() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                serve_websocket_listeners, echo, [sock, listener]
            )
            assert len(server.ports) == 2
            for port in server.ports:
                async with open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
                    await ws.send_message(str(port))
                    assert await ws.get_message() == str(port)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_prebound_listeners_reject_other_objects() -> None:
    with anyio.fail_after(10), pytest.raises(TypeError):
        await serve_websocket_listeners(echo, [object()])  # type: ignore[list-item]


class ScriptedListener(anyio.abc.Listener[anyio.abc.ByteStream]):
    """A listener whose accept() raises the given errors, then waits forever."""

    def __init__(self, errors: list[OSError]) -> None:
        self.errors = errors
        self.closed = False

    async def accept(self) -> anyio.abc.ByteStream:
        await anyio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async def serve(self, handler: Any, task_group: Any = None) -> None:  # pragma: no cover
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Any:
        return {}


@pytest.mark.anyio
async def test_accept_out_of_file_descriptors_is_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted = ScriptedListener([OSError(errno.EMFILE, "Too many open files")])
    real = await anyio.create_tcp_listener(local_host="127.0.0.1")
    caplog.set_level(logging.ERROR, logger="trio_ws.server")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                serve_websocket_listeners, echo, [scripted, real]
            )
            while scripted.errors:  # noqa: ASYNC110 (the listener has no event to wait on)
                await anyio.sleep(0.01)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("still serving")
                assert await ws.get_message() == "still serving"
            tg.cancel_scope.cancel()
    assert scripted.closed
    assert any("retrying" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_broken_listener_stops_the_server_with_its_error() -> None:
    scripted = ScriptedListener([OSError(errno.EBADF, "Bad file descriptor")])
    with anyio.fail_after(10):
        with pytest.raises(OSError, match="Bad file descriptor") as caught:
            await serve_websocket_listeners(echo, [scripted])
    assert caught.value.errno == errno.EBADF  # itself, not in an ExceptionGroup
    assert scripted.closed


# --- trio itself -------------------------------------------------------------------------


@pytest.mark.trio
async def test_trio_nursery_start() -> None:
    import trio

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0)
            assert isinstance(server, WebSocketServer)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("trio")
                assert await ws.get_message() == "trio"
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_trio_listeners() -> None:
    import trio

    with trio.fail_after(10):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket_listeners, echo, listeners)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("trio listener")
                assert await ws.get_message() == "trio listener"
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_trio_cancelling_the_nursery_closes_the_port() -> None:
    import trio

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, echo, "127.0.0.1", 0)
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("before")
                assert await ws.get_message() == "before"
            nursery.cancel_scope.cancel()
        with pytest.raises(OSError, match=r"(?i)connect"):
            await trio.open_tcp_stream("127.0.0.1", server.port)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_demo_example_runs(backend: str) -> None:
    demo = Path(__file__).parent.parent / "examples" / "demo.py"
    done = subprocess.run(
        [sys.executable, str(demo), "--backend", backend],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # The trio_ws of this checkout, whatever the installed one is.
        env={**os.environ, "PYTHONPATH": str(demo.parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "alice: hello bob!" in done.stdout
    assert "closed by the server: 1001 'server shutting down'" in done.stdout
    assert "stopped cleanly" in done.stdout


# --- server.connections -------------------------------------------------------------------


class _HeldStream(anyio.abc.ByteStream):
    """A server-side stream whose first send (the 101) delivers its bytes, then waits."""

    def __init__(self, inner: anyio.abc.ByteStream) -> None:
        self.inner = inner
        self.release = anyio.Event()
        self.sends = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        self.sends += 1
        await self.inner.send(item)
        if self.sends == 1:
            await self.release.wait()

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _OneStreamListener(anyio.abc.Listener[anyio.abc.ByteStream]):
    """Hands out one prepared stream, then waits until closed."""

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream: anyio.abc.ByteStream | None = stream
        self.closed = anyio.Event()

    async def accept(self) -> anyio.abc.ByteStream:
        stream, self.stream = self.stream, None
        if stream is not None:
            return stream
        await self.closed.wait()
        raise anyio.ClosedResourceError

    async def serve(self, handler: Any, task_group: TaskGroup | None = None) -> None:
        raise NotImplementedError  # pragma: no cover (the server calls accept())

    async def aclose(self) -> None:
        self.closed.set()


@pytest.mark.anyio
async def test_connection_is_listed_before_the_client_sees_the_101() -> None:
    client_stream, server_stream = memory_stream_pair()
    held = _HeldStream(server_stream)

    async def handler(request: WebSocketRequest) -> None:
        await echo(request)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                serve_websocket_listeners, handler, [_OneStreamListener(held)]
            )
            async with open_websocket_stream(client_stream, host="h") as ws:
                # The client has the 101 while the server's write of it has not returned.
                assert held.sends == 1
                assert not held.release.is_set()
                assert len(server.connections) == 1
                listed = server.connections[0]
                assert not listed.closed
                assert not listed.is_client
                held.release.set()
                await ws.send_message("after")
                assert await ws.get_message() == "after"
                assert server.connections == [listed]
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_connections_lists_each_open_connection_over_tcp() -> None:
    async def handler(request: WebSocketRequest) -> None:
        await echo(request)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler)
            async with contextlib.AsyncExitStack() as stack:
                for count in range(1, 21):
                    ws = await stack.enter_async_context(open_websocket_url(url(server)))
                    assert len(server.connections) == count
                await ws.send_message("x")
                assert await ws.get_message() == "x"
            tg.cancel_scope.cancel()


async def _until(condition: Any) -> None:
    # Polling: the server has no event for "N connections are open", on purpose.
    while not condition():  # noqa: ASYNC110
        await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_open_connections_keep_their_headers_compact_and_readable() -> None:
    opened: list[trio_ws.WebSocketConnection] = []

    async def handler(request: WebSocketRequest) -> None:
        assert request.headers["Upgrade"] == "websocket"  # the index exists while deciding
        ws = await request.accept(extra_headers=[("X-Answer", "42")])
        opened.append(ws)
        await ws.get_message()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, handler, compression=None)
            async with open_websocket_url(url(server), extra_headers=[("X-Asked", "1")]):
                await _until(lambda: opened)
                ws = opened[0]
                request_headers, response_headers = ws.request_headers, ws.response_headers
                # Held as one string each while the connection is open and idle...
                assert request_headers._fields is None
                assert response_headers._fields is None
                # ...and as readable as ever.
                assert request_headers["x-asked"] == "1"
                assert response_headers["X-Answer"] == "42"
                assert dict(response_headers)["Upgrade"] == "websocket"
                assert server.connections[0].request_headers is request_headers
            tg.cancel_scope.cancel()


@FAST_PATHS_ONLY
@pytest.mark.trio
async def test_an_idle_server_connection_costs_two_tasks_and_no_task_group() -> None:
    import trio

    held: list[trio_ws.WebSocketConnection] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        held.append(ws)
        async for _ in ws:
            pass

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: WebSocketServer = await nursery.start(
                functools.partial(serve_websocket, handler, "127.0.0.1", 0, compression=None)
            )
            sessions = server._connection_tasks._nursery  # type: ignore[union-attr]
            async with open_websocket_url(url(server)), open_websocket_url(url(server)):
                await _until(lambda: len(held) == 2)
                await trio.testing.wait_all_tasks_blocked()
                tasks = [task for task in sessions.child_tasks if "keepalive" not in task.name]
                # Per connection, its session and its reader side by side: no nursery of
                # their own, no anyio task handle around them.
                assert len(tasks) == 4
                assert sum(task.name.endswith(" reader") for task in tasks) == 2
                assert all(not task.child_nurseries for task in tasks)
                assert all("_run_coro" not in task.coro.__qualname__ for task in tasks)
            # Closed by the clients: the readers are gone with their sessions.
            await _until(lambda: len(sessions.child_tasks) == 1)
            assert all(not ws._task_scopes for ws in held)
            nursery.cancel_scope.cancel()


# --- The listen backlog ---------------------------------------------------------------------


def _listen_backlog(sock: socket.socket) -> int:
    """The backlog the kernel keeps for a listening TCP socket (Linux: TCP_INFO).

    For a listener, ``tcpi_sacked`` holds the accept queue's limit, ``listen()``'s argument
    after the kernel lowered it to ``net.core.somaxconn``.
    """
    import struct

    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("8B6I", info)[13])


def _somaxconn() -> int:
    return int(Path("/proc/sys/net/core/somaxconn").read_text())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads TCP_INFO (Linux only)")
@pytest.mark.anyio
@pytest.mark.parametrize("backlog", [None, 7])
async def test_listen_backlog_defaults_to_what_the_system_allows(backlog: int | None) -> None:
    # The old default (128) dropped the SYNs of a burst of clients: they came back 1 s later.
    expected = min(0xFFFF, _somaxconn()) if backlog is None else backlog
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            server: WebSocketServer = await tg.start(
                functools.partial(serve_websocket, echo, "127.0.0.1", 0, backlog=backlog)
            )
            assert [_listen_backlog(sock) for sock in server.sockets] == [expected]
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("function", [serve_websocket, serve_websocket_unix])
def test_backlog_default_is_none(function: Any) -> None:
    assert inspect.signature(function).parameters["backlog"].default is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("backlog", "error"), [(0, ValueError), (-1, ValueError), ("5", TypeError), (True, TypeError)]
)
async def test_invalid_backlog(tmp_path: Path, backlog: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="backlog"):
        await serve_websocket(echo, "127.0.0.1", 0, backlog=backlog)
    with pytest.raises(error, match="backlog"):
        await serve_websocket_unix(echo, str(tmp_path / "s"), backlog=backlog)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET http://[::1/ HTTP/1.1\r\n", b"400"),
        (b"GET http://[x]/echo HTTP/1.1\r\n", b"400"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n", b"414"),
    ],
)
async def test_bad_request_lines_get_their_status_and_no_error_log(
    request_line: bytes, status: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_ws")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await start_server(tg, echo)
            answer = await raw_exchange(
                server, request_line + UPGRADE.split(b"\r\n", 1)[1] + b"\r\n"
            )
            assert answer.startswith(b"HTTP/1.1 " + status + b" ")
            # The server still serves.
            async with open_websocket_url(url(server)) as ws:
                await ws.send_message("still here")
                assert await ws.get_message() == "still here"
            tg.cancel_scope.cancel()
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
