"""trio_ws's server against another implementation: the ``websockets`` package as client.

On the asyncio backend, websockets' asyncio client runs in the same event loop; on both
backends, its synchronous client runs in a worker thread. Both compression modes are
covered (permessage-deflate negotiated or not).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import pytest
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed, InvalidStatus
from websockets.sync.client import connect as sync_connect

from trio_ws import WebSocketRequest, WebSocketServer, serve_websocket

if TYPE_CHECKING:
    from anyio.abc import TaskGroup
    from websockets.typing import Subprotocol

COMPRESSIBLE = "trio_ws and websockets talk " * 2000  # ~56 KB, compresses well
BINARY = bytes(range(256)) * 64


async def handler(request: WebSocketRequest) -> None:
    if request.path == "/private":
        await request.reject(401, headers=[("WWW-Authenticate", "Basic")], body=b"no entry")
        return
    ws = await request.accept(subprotocol="echo" if "echo" in request.subprotocols else None)
    if request.path == "/bye":
        return  # closes with 1000
    if request.path == "/crash":
        raise RuntimeError("deliberate crash")  # closes with 1011
    compressed = any(ext.name == "permessage-deflate" for ext in ws.extensions)
    await ws.send_message(f"compressed={compressed}")
    async for message in ws:
        await ws.send_message(message)


async def start(tg: TaskGroup, compression: Literal["deflate"] | None) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, compression=compression)
    )
    return server


def expected_compression(server_side: str | None, client_side: str | None) -> str:
    return f"compressed={server_side == 'deflate' and client_side == 'deflate'}"


def sync_client_session(port: int, compression: str | None) -> dict[str, Any]:
    """Everything one test needs from websockets' sync client, run in a worker thread."""
    base = f"ws://127.0.0.1:{port}"
    out: dict[str, Any] = {}
    echo_protocol = cast("Subprotocol", "echo")
    with sync_connect(
        f"{base}/echo", compression=compression, subprotocols=[echo_protocol], proxy=None
    ) as ws:
        out["subprotocol"] = ws.subprotocol
        out["greeting"] = ws.recv(timeout=5)
        out["echoes"] = []
        for message in ("hi", COMPRESSIBLE, BINARY, b""):
            ws.send(message)
            out["echoes"].append(ws.recv(timeout=5) == message)
    for path in ("/bye", "/crash"):
        with sync_connect(f"{base}{path}", compression=compression, proxy=None) as ws:
            try:
                ws.recv(timeout=5)
            except WsConnectionClosed as exc:
                out[path] = None if exc.rcvd is None else exc.rcvd.code
    try:
        sync_connect(f"{base}/private", compression=compression, proxy=None)
    except InvalidStatus as exc:
        out["rejected"] = (exc.response.status_code, exc.response.body)
    return out


@pytest.mark.anyio
@pytest.mark.parametrize("server_compression", ["deflate", None])
@pytest.mark.parametrize("client_compression", ["deflate", None])
async def test_websockets_sync_client(
    server_compression: Literal["deflate"] | None, client_compression: str | None
) -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start(tg, server_compression)
            out = await anyio.to_thread.run_sync(
                sync_client_session, server.port, client_compression
            )
            tg.cancel_scope.cancel()
    assert out["subprotocol"] == "echo"
    assert out["greeting"] == expected_compression(server_compression, client_compression)
    assert out["echoes"] == [True, True, True, True]
    assert out["/bye"] == 1000
    assert out["/crash"] == 1011
    assert out["rejected"] == (401, b"no entry")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("compression", ["deflate", None])
async def test_websockets_asyncio_client(compression: str | None) -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start(tg, "deflate")
            base = f"ws://127.0.0.1:{server.port}"
            async with async_connect(f"{base}/", compression=compression, proxy=None) as ws:
                assert await ws.recv() == expected_compression("deflate", compression)
                for _ in range(20):
                    await ws.send(COMPRESSIBLE)
                for _ in range(20):
                    assert await ws.recv() == COMPRESSIBLE
                await ws.send(BINARY)
                assert await ws.recv() == BINARY
                pong_waiter = await ws.ping()
                await pong_waiter  # trio_ws answers pings
            async with async_connect(f"{base}/crash", proxy=None) as ws:
                with pytest.raises(WsConnectionClosed) as caught:
                    await ws.recv()
                assert caught.value.rcvd is not None
                assert caught.value.rcvd.code == 1011
            with pytest.raises(InvalidStatus) as rejected:
                async with async_connect(f"{base}/private", proxy=None):
                    pass  # pragma: no cover
            assert rejected.value.response.status_code == 401
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_websockets_client_sees_1001_on_shutdown() -> None:
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await start(tg, "deflate")
            async with async_connect(f"ws://127.0.0.1:{server.port}/", proxy=None) as ws:
                await ws.recv()
                tg.start_soon(server.aclose)
                with pytest.raises(WsConnectionClosed) as caught:
                    await ws.recv()
                assert caught.value.rcvd is not None
                assert caught.value.rcvd.code == 1001
