"""A client connected to a server handler in memory: the whole stack, without sockets."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio

from .._client import open_websocket_stream
from .._config import with_options
from .._groups import open_task_group
from .._server import serve_websocket_stream
from ..sansio._errors import ConnectionClosed
from ._memory import memory_stream_pair

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from typing_extensions import Unpack

    from .._client import ClientOptions
    from .._connection import WebSocketConnection
    from .._request import WebSocketRequest
    from .._server import Handler, ServerOptions

__all__ = ["open_websocket_in_memory"]


@with_options("client")
@asynccontextmanager
async def open_websocket_in_memory(
    handler: Handler,
    resource: str = "/",
    *,
    host: str = "testserver",
    server_options: ServerOptions | None = None,
    capacity: int = 65536,
    **options: Unpack[ClientOptions],
) -> AsyncIterator[WebSocketConnection]:
    """Connect a client to ``handler`` through an in-memory stream, for tests.

    The handler runs exactly as under :func:`~trio_ws.serve_websocket`: it gets a
    :class:`~trio_ws.WebSocketRequest` (the opening handshake is real, compression
    included), and the block gets the client's connection. No socket, no port, any
    backend (trio or asyncio).

    Leaving the block closes the client as :func:`~trio_ws.open_websocket` does, then waits
    for the handler to return (at most the server's ``close_timeout``; then it is
    cancelled). An exception the handler raised (other than :exc:`~trio_ws.ConnectionClosed`)
    is raised again when the block ends, so that a failing handler fails the test; one
    raised by the block itself wins over it.

    Example::

        async def test_echo():
            async with open_websocket_in_memory(echo_handler) as ws:
                await ws.send_message("hi")
                assert await ws.get_message() == "hi"

    Args:
        handler: The server handler under test: ``async def handler(request)``.
        resource: The request target (path and ``?query``) the client asks for.
        host: The ``Host`` header of the request.
        server_options: Options of :func:`~trio_ws.serve_websocket` for the server side.
        capacity: The bytes each direction of the in-memory stream holds before its
            sender waits (as a TCP window would).
        **options: Client options, as for :func:`~trio_ws.connect_websocket`.

    Raises:
        ConnectionRejected: The handler rejected the request.
        Exception: What the handler raised, when the block ends.
    """
    server_options = server_options or {}
    failures: list[Exception] = []

    async def watched_handler(request: WebSocketRequest) -> None:
        try:
            await handler(request)
        except ConnectionClosed:
            raise
        except Exception as exc:
            failures.append(exc)
            raise

    client_stream, server_stream = memory_stream_pair(capacity)
    async with open_task_group() as task_group:
        serving = anyio.Event()

        async def serve() -> None:
            try:
                await serve_websocket_stream(watched_handler, server_stream, **server_options)
            finally:
                serving.set()

        task_group.start_soon(serve)
        try:
            async with open_websocket_stream(
                client_stream, host=host, resource=resource, **options
            ) as ws:
                yield ws
        finally:
            with anyio.move_on_after(server_options.get("close_timeout", 10.0), shield=True):
                await serving.wait()
            task_group.cancel_scope.cancel()
    if failures:
        raise failures[0]
