"""The sans-IO WebSocket protocol core: bytes in, events out; calls in, bytes out.

Nothing here imports an I/O library (trio, anyio, asyncio, sockets): the same state machines
serve the I/O layer of :mod:`trio_ws`, tests without sockets, and anyone who brings their
own transport.
"""

from __future__ import annotations

from ._connection import Connection as Connection
from ._errors import (
    ConnectionClosed as ConnectionClosed,
    ConnectionClosedError as ConnectionClosedError,
    ConnectionClosedOK as ConnectionClosedOK,
    ConnectionRejected as ConnectionRejected,
    HandshakeError as HandshakeError,
    HandshakeTimeout as HandshakeTimeout,
    HubUnavailable as HubUnavailable,
    InternalError as InternalError,
    InvalidHandshake as InvalidHandshake,
    InvalidURL as InvalidURL,
    LocalProtocolError as LocalProtocolError,
    ProtocolError as ProtocolError,
    ProxyError as ProxyError,
    RedirectError as RedirectError,
    RemoteProtocolError as RemoteProtocolError,
    SubscriptionOverflow as SubscriptionOverflow,
    WebSocketError as WebSocketError,
    WouldBlock as WouldBlock,
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
from ._frames import (
    CloseCode as CloseCode,
    Frame as Frame,
    FrameParser as FrameParser,
    Opcode as Opcode,
    apply_mask as apply_mask,
    serialize_frame as serialize_frame,
)
from ._handshake import (
    ClientHandshake as ClientHandshake,
    HandshakeAccepted as HandshakeAccepted,
    HeaderInput as HeaderInput,
    Request as Request,
    ServerHandshake as ServerHandshake,
    allowed_origins as allowed_origins,
    compute_accept_key as compute_accept_key,
)
from ._headers import (
    ExtensionOffer as ExtensionOffer,
    Headers as Headers,
    format_extensions as format_extensions,
    format_token_list as format_token_list,
    parse_extensions as parse_extensions,
    parse_token_list as parse_token_list,
    parse_upgrade as parse_upgrade,
)
from ._masking import SPEEDUPS as SPEEDUPS
from ._state import ConnectionState as ConnectionState, Role as Role

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
    "ProxyError",
    "RedirectError",
    "RemoteProtocolError",
    "HubUnavailable",
    "SubscriptionOverflow",
    "WebSocketError",
    "WouldBlock",
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
    "FrameParser",
    "Opcode",
    "apply_mask",
    "serialize_frame",
    "SPEEDUPS",
    # connection
    "Connection",
    "ConnectionState",
    "Role",
    # handshake
    "ClientHandshake",
    "ExtensionOffer",
    "HandshakeAccepted",
    "HeaderInput",
    "Headers",
    "Request",
    "ServerHandshake",
    "allowed_origins",
    "compute_accept_key",
    "format_extensions",
    "format_token_list",
    "parse_extensions",
    "parse_token_list",
    "parse_upgrade",
]
