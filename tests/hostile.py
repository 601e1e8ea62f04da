"""Raw peers over real loopback sockets, for the hostile-peer and load tests.

A raw peer does what trio_ws's own client never does: stalls, resets the TCP connection,
floods, never reads. It speaks the protocol through a client-side sans-IO core, so that
what it sends is exactly what the test chose.
"""

from __future__ import annotations

import functools
import logging
import socket
import struct
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from trio_ws import WebSocketServer, serve_websocket
from trio_ws.sansio import Connection, Event, Role

if TYPE_CHECKING:
    from collections.abc import Callable

    import pytest
    from anyio.abc import TaskGroup

UPGRADE = (
    b"GET /raw HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)


async def start_server(tg: TaskGroup, handler: Any, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, handler, "127.0.0.1", 0, **options)
    )
    return server


def small_buffers(stream: anyio.abc.SocketStream, size: int = 65536) -> None:
    """Shrink the kernel's buffers of ``stream``, so that a peer that never reads stalls
    its sender after kilobytes rather than megabytes (loopback buffers grow to MBs)."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def reset(stream: anyio.abc.SocketStream) -> None:
    """Make closing ``stream`` send a TCP RST instead of a FIN (SO_LINGER with 0 seconds)."""
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RawPeer:
    """A client on a raw socket, with a sans-IO core to encode and decode frames."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.core = Connection(Role.CLIENT, max_message_size=None)
        self.pending: list[Event] = []

    @classmethod
    async def connect(cls, port: int, *, handshake: bool = True) -> RawPeer:
        peer = cls(await anyio.connect_tcp("127.0.0.1", port))
        if handshake:
            await peer.handshake()
        return peer

    async def handshake(self) -> None:
        await self.stream.send(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            head += await self.stream.receive()
        status, _, rest = head.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101 "), status
        if rest:
            self.pending += self.core.receive_data(rest)

    async def flush(self) -> None:
        data = self.core.data_to_send()
        if data:
            await self.stream.send(data)

    async def next_event(self) -> Event:
        """The next event from the server (EndOfStream when the server closed TCP)."""
        while not self.pending:
            self.pending += self.core.receive_data(await self.stream.receive())
        return self.pending.pop(0)

    async def abort(self) -> None:
        """Reset the TCP connection."""
        reset(self.stream)
        await self.stream.aclose()


async def read_until_eof(stream: anyio.abc.ByteStream) -> bytes:
    data = b""
    while True:
        try:
            data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return data


async def wait_until(predicate: Callable[[], object], seconds: float = 5) -> None:
    """Wait (boundedly) until ``predicate()`` is true: for state that has no event."""
    with anyio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 (the server's state has no event to wait on)
            await anyio.sleep(0.01)


async def wait_until_empty(server: WebSocketServer, seconds: float = 5) -> None:
    """Wait (boundedly) until the server holds no connection any more."""
    await wait_until(lambda: not server.connections, seconds)


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]
