"""trio_ws: a trio-first, structured-concurrency WebSocket library.

Each connection is owned by a nursery; the handler's (or the ``async with`` body's) lifetime
decides when the connection closes. The same code runs on asyncio through anyio.
"""

from __future__ import annotations

from ._version import __version__ as __version__
from .sansio._errors import (
    ConnectionClosed as ConnectionClosed,
    ConnectionClosedError as ConnectionClosedError,
    ConnectionClosedOK as ConnectionClosedOK,
    ConnectionRejected as ConnectionRejected,
    HandshakeError as HandshakeError,
    HandshakeTimeout as HandshakeTimeout,
    InternalError as InternalError,
    InvalidHandshake as InvalidHandshake,
    InvalidURL as InvalidURL,
    LocalProtocolError as LocalProtocolError,
    ProtocolError as ProtocolError,
    RemoteProtocolError as RemoteProtocolError,
    WebSocketError as WebSocketError,
)
from .sansio._frames import CloseCode as CloseCode

__all__ = [
    "CloseCode",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionRejected",
    "HandshakeError",
    "HandshakeTimeout",
    "InternalError",
    "InvalidHandshake",
    "InvalidURL",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "WebSocketError",
    "__version__",
]
