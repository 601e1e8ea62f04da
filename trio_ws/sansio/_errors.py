"""The exception hierarchy of trio_ws.

Every exception that trio_ws raises on purpose derives from :exc:`WebSocketError`::

    WebSocketError
    ├── HandshakeError                the opening handshake did not produce a connection
    │   ├── InvalidHandshake          a malformed request or response (status_code: the answer)
    │   ├── ConnectionRejected        the server answered with something else than 101
    │   ├── RedirectError             a redirect the client does not follow (too many, wss -> ws)
    │   └── HandshakeTimeout          the handshake did not finish within open_timeout
    ├── ConnectionClosed              the connection is closed; carries code and reason
    │   ├── ConnectionClosedOK        ... normally (1000 or 1001, or no status code)
    │   └── ConnectionClosedError     ... abnormally (1006, a protocol error, 1011, ...)
    ├── ProtocolError                 a violation of RFC 6455 / RFC 7692
    │   ├── LocalProtocolError        this side's misuse (also a ValueError)
    │   └── RemoteProtocolError       the peer's violation; ``code`` is the close code to send
    ├── InvalidURL                    not a ws:// or wss:// URL (also a ValueError)
    ├── ProxyError                    the proxy refused or failed to open the tunnel
    ├── WouldBlock                    a ``*_nowait`` call would have had to wait
    ├── SubscriptionOverflow          a hub subscription fell behind its buffer and ended
    └── InternalError                 a bug in trio_ws: please report it

The hierarchy lives in the sans-IO core so that the core can raise its part of it without
importing anything from the I/O layer; :mod:`trio_ws` re-exports every name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._headers import Headers

__all__ = [
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "ConnectionRejected",
    "HandshakeError",
    "HandshakeTimeout",
    "HubUnavailable",
    "InternalError",
    "InvalidHandshake",
    "InvalidURL",
    "LocalProtocolError",
    "ProtocolError",
    "ProxyError",
    "RedirectError",
    "RemoteProtocolError",
    "SubscriptionOverflow",
    "WebSocketError",
    "WouldBlock",
]


class WebSocketError(Exception):
    """The root of every exception trio_ws raises on purpose."""


class HandshakeError(WebSocketError):
    """The opening handshake failed: no WebSocket connection was established."""


class InvalidHandshake(HandshakeError):
    """A handshake request or response broke RFC 6455 section 4.

    On the server, ``status_code`` and ``headers`` are the HTTP answer to send back
    (400 for a malformed request, 426 with ``Sec-WebSocket-Version: 13`` for an
    unsupported version, 431 for oversized headers, ...). On the client they describe
    nothing and keep their defaults.
    """

    def __init__(
        self,
        reason: str,
        *,
        status_code: int = 400,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.headers: tuple[tuple[str, str], ...] = tuple(headers)


class ConnectionRejected(HandshakeError):
    """The server answered the opening handshake with an HTTP response other than 101.

    Attributes:
        status_code: The HTTP status, e.g. 401 or 403.
        headers: The response headers, a :class:`~trio_ws.sansio.Headers` (case-insensitive:
            ``exc.headers.get("WWW-Authenticate")``), the same type as a request's headers.
        body: The response body (at most the handshake's ``max_response_size``, 64 KiB by
            default).
    """

    def __init__(
        self,
        status_code: int,
        headers: Iterable[tuple[str | bytes, str | bytes]] = (),
        body: bytes = b"",
    ) -> None:
        # Imported here because _headers imports this module for its own errors.
        from ._headers import Headers

        super().__init__(f"server rejected the WebSocket handshake with HTTP {status_code}")
        self.status_code = status_code
        self.headers: Headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = body


class RedirectError(HandshakeError):
    """The server redirected the handshake somewhere the client will not follow.

    Too many redirects in a row (the ``max_redirects`` option), a ``Location`` that is not
    a valid WebSocket URL, or a redirect from ``wss://`` to ``ws://`` (which would send the
    request unencrypted).

    Attributes:
        location: The ``Location`` the server answered with.
        rejected: The redirect itself, as a :exc:`ConnectionRejected` (status, headers, body).
    """

    def __init__(self, reason: str, *, location: str, rejected: ConnectionRejected) -> None:
        super().__init__(reason)
        self.reason = reason
        self.location = location
        self.rejected = rejected


class HandshakeTimeout(HandshakeError, TimeoutError):
    """The opening handshake did not complete within ``open_timeout``."""


class ConnectionClosed(WebSocketError):
    """The WebSocket connection is closed; no more messages can be sent or received.

    Attributes:
        code: The close code: the one the peer sent if it sent one, else the one this
            side sent, else 1006 (the connection dropped without a close frame).
        reason: The close reason that goes with ``code`` (may be empty).
    """

    def __init__(self, code: int, reason: str = "") -> None:
        detail = f"code {code}" + (f", reason {reason!r}" if reason else "")
        super().__init__(f"WebSocket connection closed ({detail})")
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection was closed normally (code 1000, 1001 or 1005)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection was closed abnormally (1006, a protocol error, 1011, ...)."""


class ProtocolError(WebSocketError):
    """A violation of the WebSocket protocol."""


class LocalProtocolError(ProtocolError, ValueError):
    """This side tried to do something the protocol or the connection's state forbids.

    Examples: sending after the close handshake started, a close code out of range, a
    control frame payload over 125 bytes. Raised at once, before anything is sent.
    """


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol.

    Attributes:
        code: The close code to answer with (1002 protocol error, 1007 invalid data,
            1009 message too big, ...).
        reason: A short human-readable explanation, sent as the close reason.
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{reason} (close code {code})")
        self.code = code
        self.reason = reason


class InvalidURL(WebSocketError, ValueError):
    """The URL is not a valid ``ws://`` or ``wss://`` URL."""


class ProxyError(WebSocketError):
    """The proxy refused, or failed, to open the tunnel to the WebSocket server.

    Attributes:
        reason: What went wrong, in words.
        status_code: The HTTP status of an HTTP proxy's refusal (407: the proxy wants
            credentials, or other ones; 403, 502, ...); ``None`` otherwise.
        reply: The reply code of a SOCKS5 proxy's refusal (2: not allowed by its rules,
            5: connection refused by the server, ...); ``None`` otherwise.
    """

    def __init__(
        self, reason: str, *, status_code: int | None = None, reply: int | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.reply = reply


class InternalError(WebSocketError):
    """An unexpected error inside trio_ws. This is a bug: please report it."""


class WouldBlock(WebSocketError):
    """A ``*_nowait`` call could not complete without waiting, so it did nothing.

    Raised by :meth:`~trio_ws.WebSocketConnection.send_message_nowait` and
    :meth:`~trio_ws.WebSocketConnection.send_encoded_nowait` when the write buffer is above
    its high-water mark or a fragmented message is being sent; the awaiting variant
    (:meth:`~trio_ws.WebSocketConnection.send_message`) would have waited.
    """


class HubUnavailable(WebSocketError):
    """A hub that spans processes cannot reach its broker (Redis): the message is lost.

    Raised by :meth:`~trio_ws.RedisHub.publish` while Redis is unreachable; the broker's
    own error is the ``__cause__``. Publish-subscribe is at-most-once: nothing is retried.
    """


class SubscriptionOverflow(WebSocketError):
    """A hub subscription with ``overflow="end"`` fell behind: its buffer was full.

    Raised by the subscription's iterator (and :meth:`~trio_ws.Subscription.receive`)
    instead of the next message; the subscription has already left its topic. A handler
    typically closes its connection with code 1013 (try again later)::

        except trio_ws.SubscriptionOverflow:
            await ws.aclose(1013, "too slow")
    """

    def __init__(self, topic: str, max_buffer: int) -> None:
        super().__init__(f"the subscription to {topic!r} fell more than {max_buffer} behind")
        #: The topic of the subscription that ended.
        self.topic = topic
        #: The subscription's buffer size.
        self.max_buffer = max_buffer
