"""trio_ws: a trio-first, structured-concurrency WebSocket library.

Each connection is owned by a nursery; the handler's (or the ``async with`` body's) lifetime
decides when the connection closes. The same code runs on asyncio through anyio.
"""

from __future__ import annotations

from ._broadcast import (
    BroadcastResult as BroadcastResult,
    SlowPolicy as SlowPolicy,
    broadcast as broadcast,
)
from ._client import (
    ClientOptions as ClientOptions,
    connect_websocket as connect_websocket,
    connect_websocket_stream as connect_websocket_stream,
    connect_websocket_url as connect_websocket_url,
    open_websocket as open_websocket,
    open_websocket_stream as open_websocket_stream,
    open_websocket_url as open_websocket_url,
)
from ._compression import Compression as Compression
from ._config import ConnectionConfig as ConnectionConfig, ConnectionOptions as ConnectionOptions
from ._connection import (
    Address as Address,
    ConnectionTaskGroup as ConnectionTaskGroup,
    WebSocketConnection as WebSocketConnection,
)
from ._hub import (
    BaseHub as BaseHub,
    Hub as Hub,
    Message as Message,
    Overflow as Overflow,
    Subscription as Subscription,
)
from ._reconnect import (
    Backoff as Backoff,
    Reconnecting as Reconnecting,
    reconnecting as reconnecting,
)
from ._redis_hub import RedisHub as RedisHub
from ._request import WebSocketRequest as WebSocketRequest
from ._server import (
    Handler as Handler,
    ServerOptions as ServerOptions,
    WebSocketServer as WebSocketServer,
    serve_websocket as serve_websocket,
    serve_websocket_listeners as serve_websocket_listeners,
    serve_websocket_stream as serve_websocket_stream,
    serve_websocket_unix as serve_websocket_unix,
)
from ._sync import SyncConnection as SyncConnection, connect_sync as connect_sync
from ._version import __version__ as __version__
from .sansio._errors import (
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
from .sansio._frames import CloseCode as CloseCode

__all__ = [
    "Address",
    "Backoff",
    "BaseHub",
    "BroadcastResult",
    "ClientOptions",
    "CloseCode",
    "Compression",
    "ConnectionConfig",
    "ConnectionOptions",
    "ConnectionTaskGroup",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionRejected",
    "HandshakeError",
    "Handler",
    "HandshakeTimeout",
    "Hub",
    "InternalError",
    "InvalidHandshake",
    "InvalidURL",
    "LocalProtocolError",
    "Message",
    "Overflow",
    "ProtocolError",
    "ProxyError",
    "RedisHub",
    "RedirectError",
    "Reconnecting",
    "RemoteProtocolError",
    "ServerOptions",
    "SlowPolicy",
    "Subscription",
    "HubUnavailable",
    "SubscriptionOverflow",
    "SyncConnection",
    "WebSocketConnection",
    "WebSocketError",
    "WouldBlock",
    "WebSocketRequest",
    "WebSocketServer",
    "__version__",
    "broadcast",
    "connect_sync",
    "connect_websocket",
    "connect_websocket_stream",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_stream",
    "open_websocket_url",
    "reconnecting",
    "serve_websocket",
    "serve_websocket_listeners",
    "serve_websocket_stream",
    "serve_websocket_unix",
]
