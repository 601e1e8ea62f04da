"""Two connected WebSocket connections over an in-memory pipe (for trio_ws's own tests).

Private for now: the public test helper comes later. The opening handshake is skipped:
both ends are built directly from the core's ``Connection``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._config import ConnectionConfig, new_protocol
from .._connection import ConnectionInfo, ConnectionLink, WebSocketConnection, open_connection
from .._groups import open_task_group
from ..sansio import Connection, Role
from ._memory import MemoryByteStream, memory_stream_pair

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import ByteStream

    from ..sansio import Extension

__all__ = ["build_connection", "build_linked", "open_connection_pair", "open_raw_peer"]


@asynccontextmanager
async def open_connection_pair(
    *,
    client_config: ConnectionConfig | None = None,
    server_config: ConnectionConfig | None = None,
    capacity: int = 65536,
    client_extensions: tuple[Extension, ...] = (),
    server_extensions: tuple[Extension, ...] = (),
) -> AsyncIterator[tuple[WebSocketConnection, WebSocketConnection]]:
    """Yield ``(client, server)`` connected connections; both are closed on exit."""
    client_config = client_config or ConnectionConfig(ping_interval=None)
    server_config = server_config or ConnectionConfig(ping_interval=None)
    client_stream, server_stream = memory_stream_pair(capacity)
    async with open_task_group() as task_group:
        client, client_link = build_linked(
            client_stream, Role.CLIENT, client_config, client_extensions
        )
        server, server_link = build_linked(
            server_stream, Role.SERVER, server_config, server_extensions
        )
        client_link.start(task_group)
        server_link.start(task_group)
        try:
            yield client, server
        finally:
            await client.aclose()
            await server.aclose()


def build_connection(
    stream: ByteStream,
    role: Role,
    config: ConnectionConfig,
    extensions: tuple[Extension, ...] = (),
) -> WebSocketConnection:
    """A connection over ``stream``, as if the handshake had negotiated ``extensions``."""
    return build_linked(stream, role, config, extensions)[0]


def build_linked(
    stream: ByteStream,
    role: Role,
    config: ConnectionConfig,
    extensions: tuple[Extension, ...] = (),
) -> tuple[WebSocketConnection, ConnectionLink]:
    """As :func:`build_connection`, with the link that starts and aborts the connection."""
    protocol = new_protocol(config, role, extensions)
    info = ConnectionInfo(path="/", extensions=extensions)
    return open_connection(stream, protocol, config=config, info=info)


@asynccontextmanager
async def open_raw_peer(
    config: ConnectionConfig | None = None, *, capacity: int = 65536, role: Role = Role.CLIENT
) -> AsyncIterator[tuple[WebSocketConnection, Connection, MemoryByteStream]]:
    """Yield ``(ws, peer, peer_stream)``: a connection and a bare core driven by the test.

    The test plays the peer by hand: ``peer.send_*`` then
    ``await peer_stream.send(peer.data_to_send())``, and ``peer.receive_data(await
    peer_stream.receive())``. ``ws`` is closed on exit.
    """
    config = config or ConnectionConfig(ping_interval=None, close_timeout=1)
    ws_stream, peer_stream = memory_stream_pair(capacity)
    peer_role = Role.SERVER if role is Role.CLIENT else Role.CLIENT
    async with open_task_group() as task_group:
        ws, link = build_linked(ws_stream, role, config)
        link.start(task_group)
        try:
            yield ws, Connection(peer_role, max_message_size=None), peer_stream
        finally:
            await link.abort()
