"""The sans-IO WebSocket protocol core: bytes in, events out; calls in, bytes out.

Nothing here imports an I/O library (trio, anyio, asyncio, sockets): the same state machines
serve the I/O layer of :mod:`trio_ws`, tests without sockets, and anyone who brings their
own transport.
"""

from __future__ import annotations

from ._errors import (
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
from ._events import (
    BytesMessage as BytesMessage,
    CloseConnection as CloseConnection,
    ConnectionFailed as ConnectionFailed,
    Event as Event,
    Ping as Ping,
    Pong as Pong,
    TextMessage as TextMessage,
)
from ._extensions import (
    ClientExtensionFactory as ClientExtensionFactory,
    Extension as Extension,
    ExtensionParameters as ExtensionParameters,
    NegotiationError as NegotiationError,
    ServerExtensionFactory as ServerExtensionFactory,
)
from ._frames import CloseCode as CloseCode, Frame as Frame, Opcode as Opcode

__all__ = [
    # errors
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
    # events
    "BytesMessage",
    "CloseConnection",
    "ConnectionFailed",
    "Event",
    "Ping",
    "Pong",
    "TextMessage",
    # extensions
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParameters",
    "NegotiationError",
    "ServerExtensionFactory",
    # frames
    "CloseCode",
    "Frame",
    "Opcode",
]
