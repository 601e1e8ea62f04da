"""The opening handshake (RFC 6455 section 4) over h11, for clients and servers.

h11 parses and writes the HTTP/1.1 messages; this module adds what makes them a WebSocket
handshake: the ``Sec-WebSocket-Key``/``Sec-WebSocket-Accept`` exchange, the ``Upgrade`` and
``Connection`` checks, subprotocol selection and extension negotiation.

Both sides are driven the sans-IO way. The client: send :meth:`ClientHandshake.data_to_send`,
feed what arrives to :meth:`ClientHandshake.receive_data` until it returns a
:class:`HandshakeAccepted`. The server: feed bytes to :meth:`ServerHandshake.receive_data`
until it returns a :class:`Request`, look at it, then send what :meth:`ServerHandshake.accept`
or :meth:`ServerHandshake.reject` returns. Bytes that follow the HTTP message (the first
WebSocket frames) are kept in ``extra_data`` for the frame-level :class:`Connection`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import ipaddress
import os
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import h11

from ._errors import ConnectionRejected, InternalError, InvalidHandshake, LocalProtocolError
from ._extensions import NegotiationError
from ._headers import (
    ExtensionOffer,
    Headers,
    format_extensions,
    format_token_list,
    parse_extensions,
    parse_token_list,
    parse_upgrade,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._extensions import ClientExtensionFactory, Extension, ServerExtensionFactory

__all__ = [
    "DEFAULT_MAX_REQUEST_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "ClientHandshake",
    "HandshakeAccepted",
    "HeaderInput",
    "Request",
    "ServerHandshake",
    "allowed_origins",
    "compute_accept_key",
]

#: Extra header fields, as a mapping or as ``(name, value)`` pairs (for repeated names).
HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]]

#: The default bound on the request head a server accepts (request line and headers).
DEFAULT_MAX_REQUEST_SIZE = 16 * 1024
#: The default bound on the response head a client accepts, and on a rejection's body.
DEFAULT_MAX_RESPONSE_SIZE = 64 * 1024

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 9110 section 5.5: a field value is visible characters (and obs-text) with single
# spaces or tabs between them; CR, LF and NUL would let a value inject header lines.
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The resource name of a ws:// URL: an absolute path and an optional query, no fragment
# (RFC 6455 section 3), already percent-encoded.
_RESOURCE = re.compile(r"/[\x21-\x22\x24-\x7e]*")
_REG_NAME = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=%]+")

# Header fields the handshake writes itself: letting extra headers repeat them would send
# contradictory answers (or, for the framing fields, a body that is never sent).
_CLIENT_RESERVED = frozenset(
    {
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "content-length",
        "transfer-encoding",
    }
)
_ACCEPT_RESERVED = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "content-length",
        "transfer-encoding",
    }
)
_REJECT_RESERVED = frozenset({"connection", "content-length", "transfer-encoding"})


def compute_accept_key(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value that answers the ``Sec-WebSocket-Key`` ``key``.

    ``base64(sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))`` (RFC 6455 section 4.2.2);
    ``compute_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="``.
    """
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return base64.b64encode(digest).decode("ascii")


def _is_valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        return False


def _encode_headers(
    headers: HeaderInput, reserved: frozenset[str], what: str
) -> list[tuple[bytes, bytes]]:
    """Validate extra header fields and encode them for h11 (latin-1)."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    encoded: list[tuple[bytes, bytes]] = []
    for name, value in pairs:
        if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
            raise LocalProtocolError(f"invalid header name {name!r}")
        if name.lower() in reserved:
            raise LocalProtocolError(f"the {name} header is set by {what}; do not pass it")
        if not isinstance(value, str) or _FIELD_VALUE.fullmatch(value) is None:
            raise LocalProtocolError(
                f"invalid value {value!r} for header {name}: only visible latin-1 characters "
                "with spaces or tabs between them (no CR, LF, NUL or other control character)"
            )
        encoded.append((name.encode("ascii"), value.encode("latin-1")))
    return encoded


def _host_header(host: str, port: int | None, secure: bool) -> str:
    """The ``Host`` value: the host (IPv6 in brackets), and the port unless the default."""
    address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        is_ipv6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        is_ipv6 = False
    if is_ipv6:
        authority = f"[{address}]"
    else:
        try:
            authority = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            raise LocalProtocolError(f"invalid host name {host!r}") from None
        if _REG_NAME.fullmatch(authority) is None:
            raise LocalProtocolError(f"invalid host name {host!r}")
    if port is None or port == (443 if secure else 80):
        return authority
    if not 0 < port < 65536:
        raise LocalProtocolError(f"invalid port {port!r}")
    return f"{authority}:{port}"


class _Phase(enum.Enum):
    """Where a handshake object stands; only the first phase accepts bytes."""

    RECEIVING = enum.auto()
    REQUEST_RECEIVED = enum.auto()  # server: waiting for accept() or reject()
    DONE = enum.auto()
    FAILED = enum.auto()


# --- client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeAccepted:
    """The server accepted the WebSocket upgrade (HTTP 101).

    Attributes:
        headers: The response headers.
        subprotocol: The subprotocol the server chose, ``None`` if none.
        extensions: The negotiated extensions, in the order the server listed them (the
            order in which they apply to outgoing frames).
        extra_data: Bytes that followed the response: the first WebSocket frames. Feed them
            to the frame-level connection before anything read later.
    """

    headers: Headers
    subprotocol: str | None
    extensions: list[Extension]
    extra_data: bytes


class ClientHandshake:
    """The client side of the opening handshake.

    Args:
        host: The server's host name or IP address (an IPv6 address with or without
            brackets); non-ASCII names are IDNA-encoded.
        resource: The resource name: the path and optional query of the URL, already
            percent-encoded, e.g. ``"/chat?room=1"``.
        port: The server's port; it is written in ``Host`` unless it is the scheme's
            default (80, or 443 when ``secure``).
        secure: Whether this is a ``wss://`` connection (only changes the default port).
        subprotocols: Subprotocols to offer, most preferred first.
        extensions: Extension factories whose offers go in ``Sec-WebSocket-Extensions``,
            in order.
        extra_headers: More request header fields (e.g. ``Authorization``, ``Cookie``,
            ``User-Agent``). They may not repeat a field the handshake writes itself.
        origin: The ``Origin`` header, if any.
        key: The ``Sec-WebSocket-Key`` (base64 of 16 bytes); random when ``None``. Only
            tests should pass one.
        max_response_size: The largest response head accepted, and how much of a
            rejection's body is kept.

    Raises:
        LocalProtocolError: An argument cannot be written in a valid request (a header
            with CR/LF, a reserved header in ``extra_headers``, a subprotocol that is not
            a token, a bad port, ...).
    """

    def __init__(
        self,
        host: str,
        resource: str = "/",
        *,
        port: int | None = None,
        secure: bool = False,
        subprotocols: Sequence[str] = (),
        extensions: Sequence[ClientExtensionFactory] = (),
        extra_headers: HeaderInput = (),
        origin: str | None = None,
        key: str | None = None,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    ) -> None:
        if _RESOURCE.fullmatch(resource) is None:
            raise LocalProtocolError(
                f"invalid resource name {resource!r}: it must start with '/', be "
                "percent-encoded ASCII without spaces, and have no fragment"
            )
        if key is None:
            key = base64.b64encode(os.urandom(16)).decode("ascii")
        elif not _is_valid_key(key):
            raise LocalProtocolError(f"Sec-WebSocket-Key {key!r} is not base64 of 16 bytes")
        if max_response_size <= 0:
            raise LocalProtocolError("max_response_size must be positive")
        self._key = key
        self._subprotocols = list(subprotocols)
        self._factories = list(extensions)
        self._max_response_size = max_response_size

        fields = [
            ("Host", _host_header(host, port, secure)),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
        ]
        if origin is not None:
            fields.append(("Origin", origin))
        if self._subprotocols:
            protocols = format_token_list(self._subprotocols, "Sec-WebSocket-Protocol")
            fields.append(("Sec-WebSocket-Protocol", protocols))
        fields.append(("Sec-WebSocket-Version", "13"))
        if self._factories:
            offers = format_extensions(
                (factory.name, factory.offer()) for factory in self._factories
            )
            fields.append(("Sec-WebSocket-Extensions", offers))
        # The fields above are either constants or validated, except Origin and Host, which
        # go through the same check as the caller's extra headers.
        reserved = _CLIENT_RESERVED if origin is None else _CLIENT_RESERVED | {"origin"}
        headers = _encode_headers(fields, frozenset(), "the handshake")
        headers += _encode_headers(extra_headers, reserved, "the handshake")

        self._request_headers = Headers(headers)
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_response_size)
        self._outgoing = self._h11.send(
            h11.Request(method="GET", target=resource.encode("ascii"), headers=headers)
        )
        self._outgoing += self._h11.send(h11.EndOfMessage())
        self._phase = _Phase.RECEIVING
        self._received = 0
        self._rejection: tuple[int, Headers] | None = None
        self._body = bytearray()

    @property
    def key(self) -> str:
        """The ``Sec-WebSocket-Key`` sent in the request."""
        return self._key

    @property
    def request_headers(self) -> Headers:
        """The header fields of the upgrade request, in the order they are sent."""
        return self._request_headers

    def data_to_send(self) -> bytes:
        """The bytes to send: the whole upgrade request the first time, then ``b""``."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> HandshakeAccepted | None:
        """Feed bytes received from the server.

        Returns:
            ``None`` until the response is complete, then a :class:`HandshakeAccepted`.

        Raises:
            ConnectionRejected: The server answered with another status than 101; raised
                once the response body is read (or ``max_response_size`` of it).
            InvalidHandshake: The response is malformed or does not accept this request.
            LocalProtocolError: The handshake already succeeded or failed.
        """
        self._check_receiving()
        if not data:
            return None  # to h11, b"" would mean the end of the stream
        self._received += len(data)
        self._h11.receive_data(bytes(data))
        return self._process()

    def receive_eof(self) -> NoReturn:
        """The server closed the connection before the handshake completed.

        Raises:
            ConnectionRejected: A rejection whose body was delimited by the end of the
                stream is now complete.
            InvalidHandshake: The response was missing or incomplete.
            LocalProtocolError: The handshake already succeeded or failed.
        """
        self._check_receiving()
        self._h11.receive_data(b"")
        self._process(eof=True)
        # h11 reports an event or an error once it knows the stream has ended.
        raise InternalError("h11 saw the end of the stream and went on")  # pragma: no cover

    def _check_receiving(self) -> None:
        if self._phase is not _Phase.RECEIVING:
            raise LocalProtocolError("the handshake is already over; feed the Connection instead")

    def _fail(self, error: Exception) -> Exception:
        self._phase = _Phase.FAILED
        return error

    def _reject(self) -> ConnectionRejected:
        assert self._rejection is not None
        status, headers = self._rejection
        self._phase = _Phase.FAILED
        return ConnectionRejected(status, list(headers), bytes(self._body))

    def _process(self, *, eof: bool = False) -> HandshakeAccepted | None:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                if not eof:
                    reason = f"malformed HTTP response: {exc}"
                elif self._received == 0:
                    reason = "the server closed the connection without answering"
                else:
                    reason = "the server closed the connection in the middle of its response"
                raise self._fail(InvalidHandshake(reason)) from exc
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, (h11.InformationalResponse, h11.Response)):
                consumed = self._received - len(self._h11.trailing_data[0])
                if consumed > self._max_response_size:
                    raise self._fail(
                        InvalidHandshake(
                            f"the response head exceeds max_response_size "
                            f"({self._max_response_size} bytes)"
                        )
                    )
                headers = Headers(event.headers.raw_items())
                if isinstance(event, h11.Response):
                    self._rejection = (event.status_code, headers)
                elif event.status_code == 101:
                    return self._check_switch(headers)
                # Any other 1xx (100 Continue, 103 Early Hints) precedes the real answer.
            elif isinstance(event, h11.Data):
                room = self._max_response_size - len(self._body)
                self._body += event.data[:room]
                if len(event.data) > room:
                    raise self._reject()
            else:
                # h11 never reports ConnectionClosed while the server owes a response: the
                # end of the stream is an error until the rejection's body is complete.
                assert isinstance(event, h11.EndOfMessage)
                raise self._reject()

    def _check_switch(self, headers: Headers) -> HandshakeAccepted:
        try:
            upgrade = parse_upgrade(headers.get_all("Upgrade"))
            if [protocol.lower() for protocol in upgrade] != ["websocket"]:
                raise InvalidHandshake(f"the 101 response upgrades to {upgrade!r}, not websocket")
            connection = parse_token_list(headers.get_all("Connection"), "Connection")
            if "upgrade" not in (token.lower() for token in connection):
                raise InvalidHandshake("the 101 response lacks Connection: Upgrade")
            accept = headers.get_all("Sec-WebSocket-Accept")
            if accept != [compute_accept_key(self._key)]:
                raise InvalidHandshake(
                    f"wrong Sec-WebSocket-Accept {accept!r} for Sec-WebSocket-Key {self._key!r}"
                )
            protocols = parse_token_list(
                headers.get_all("Sec-WebSocket-Protocol"), "Sec-WebSocket-Protocol"
            )
            if len(protocols) > 1:
                raise InvalidHandshake(f"the server chose several subprotocols: {protocols!r}")
            subprotocol = protocols[0] if protocols else None
            if subprotocol is not None and subprotocol not in self._subprotocols:
                raise InvalidHandshake(f"the server chose subprotocol {subprotocol!r}, not offered")
            extensions = self._negotiate(
                parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
            )
        except InvalidHandshake as exc:
            raise self._fail(exc) from None
        self._phase = _Phase.DONE
        return HandshakeAccepted(
            headers=headers,
            subprotocol=subprotocol,
            extensions=extensions,
            extra_data=self._h11.trailing_data[0],
        )

    def _negotiate(self, answers: list[ExtensionOffer]) -> list[Extension]:
        unused = list(self._factories)
        accepted: list[Extension] = []
        for name, params in answers:
            candidates = [factory for factory in unused if factory.name == name]
            if not candidates:
                raise InvalidHandshake(f"the server accepted extension {name!r}, not offered")
            # Several factories may offer the same extension (fallback offers): the first
            # one that takes the answer builds it.
            for factory in candidates:
                try:
                    extension = factory.accept_response(params, tuple(accepted))
                except NegotiationError as exc:
                    error = exc
                    continue
                unused.remove(factory)
                accepted.append(extension)
                break
            else:
                raise InvalidHandshake(f"invalid answer for extension {name!r}: {error}")
        return accepted


# --- server ------------------------------------------------------------------------------


def _split_target(target: str) -> tuple[str, str, str]:
    """Split a request target into (target, path, query), both parts still percent-encoded.

    h11 checked the target's characters (visible ASCII); the forms left to sort out are
    origin-form (``/path?query``) and absolute-form (``http://host/path?query``).
    """
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif "://" in target:
        try:
            parts = urlsplit(target)
        except ValueError as exc:  # a malformed authority, e.g. "http://[::1/"
            raise InvalidHandshake(f"invalid request target {target!r}: {exc}") from None
        path, query = parts.path or "/", parts.query
    else:
        raise InvalidHandshake(f"invalid request target {target!r}")
    return target, path, query


# An origin as browsers serialise it (RFC 6454 section 6.1): scheme "://" host [":" port],
# nothing after; or "null" (sandboxed frames, file: pages).
# Browsers send hosts in ASCII (IDNA), IPv6 addresses in brackets.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://([a-z0-9_.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?|null")


def allowed_origins(origins: Collection[str | None] | None) -> frozenset[str | None] | None:
    """Check an allow-list of origins and normalise it for :class:`ServerHandshake`.

    Each entry is an origin as browsers send it (``"https://example.com"``,
    ``"http://localhost:8000"``; scheme and host compare case-insensitively), the string
    ``"null"``, or ``None`` to allow requests that carry no ``Origin`` header (clients
    other than browsers). ``None`` instead of a collection allows every origin.

    Raises:
        TypeError: ``origins`` is a single string, or an entry is not a string or ``None``.
        ValueError: An entry is not an origin (a path, a trailing slash, a wildcard).
    """
    if origins is None:
        return None
    if isinstance(origins, (str, bytes)) or not isinstance(origins, Collection):
        raise TypeError(
            f"origins must be a collection of origins (or None), not {type(origins).__name__}"
        )
    allowed: set[str | None] = set()
    for origin in origins:
        if origin is None:
            allowed.add(None)
            continue
        if not isinstance(origin, str):
            raise TypeError(f"an origin must be a str or None, not {type(origin).__name__}")
        normalised = origin.lower()
        if not _ORIGIN.fullmatch(normalised):
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port], with no path "
                "and no trailing slash (e.g. 'https://example.com')"
            )
        allowed.add(normalised)
    return frozenset(allowed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A valid WebSocket upgrade request, for the server application to accept or reject.

    With ``ServerHandshake(allow_plain_http=True)``, a plain HTTP ``GET`` or ``HEAD``
    request (no ``Upgrade: websocket``, e.g. a load balancer's health check) is reported
    too, with ``is_websocket`` false: it can only be answered with
    :meth:`ServerHandshake.reject`.

    Attributes:
        method: ``"GET"`` (or ``"HEAD"`` for a plain HTTP request).
        target: The request target exactly as sent, e.g. ``"/chat?room=1"``.
        path: The path part of the target, still percent-encoded (``"/chat"``); for a
            target in absolute form (``http://host/chat``), the URL's path.
        query: The query after ``?``, still percent-encoded, ``""`` when there is none.
        headers: Every request header.
        subprotocols: The subprotocols the client offers, most preferred first.
        extensions: The client's extension offers, in order: ``(name, params)``.
        key: The ``Sec-WebSocket-Key`` (``""`` for a plain HTTP request).
        http_version: ``"1.1"`` (or a later 1.x).
        is_websocket: False for a plain HTTP request (see above).
    """

    method: str
    target: str
    path: str
    query: str
    headers: Headers
    subprotocols: list[str]
    extensions: list[ExtensionOffer]
    key: str
    http_version: str
    is_websocket: bool = True


class ServerHandshake:
    """The server side of the opening handshake.

    Args:
        extensions: The extension factories the server supports, in the order they are
            negotiated and applied.
        max_request_size: The largest request head accepted (request line and headers);
            larger requests fail with 431 (414 when the request line alone is larger).
        allow_plain_http: Report plain HTTP ``GET``/``HEAD`` requests (no ``Upgrade``)
            as a :class:`Request` with ``is_websocket`` false instead of failing them
            with 426, so that the application can answer them (health checks).
        origins: The origins a WebSocket request may come from (see
            :func:`allowed_origins`); others fail with 403. ``None`` allows any.
    """

    def __init__(
        self,
        *,
        extensions: Sequence[ServerExtensionFactory] = (),
        max_request_size: int = DEFAULT_MAX_REQUEST_SIZE,
        allow_plain_http: bool = False,
        origins: Collection[str | None] | None = None,
    ) -> None:
        if max_request_size <= 0:
            raise LocalProtocolError("max_request_size must be positive")
        self._allow_plain_http = allow_plain_http
        self._origins = allowed_origins(origins)
        self._factories = list(extensions)
        self._max_request_size = max_request_size
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_request_size)
        self._phase = _Phase.RECEIVING
        self._received = 0
        # Whether the request line is complete: a head too large before its end has a
        # request-target too long (414, RFC 9112 section 3), not too many headers (431).
        self._line_complete = False
        self._method = b""
        self._request: Request | None = None
        self._extra_data = b""

    @property
    def request(self) -> Request | None:
        """The request, once :meth:`receive_data` has returned it."""
        return self._request

    @property
    def extra_data(self) -> bytes:
        """Bytes that followed the request (``b""`` until it is complete)."""
        return self._extra_data

    def receive_data(self, data: bytes | bytearray | memoryview) -> Request | None:
        """Feed bytes received from the client.

        Returns:
            ``None`` until the request head is complete, then the :class:`Request`.

        Raises:
            InvalidHandshake: The request is not a valid WebSocket upgrade;
                ``status_code`` and ``headers`` say what to answer: 400 malformed, 403
                an origin not in ``origins``, 405 not GET, 414 request line too long, 426
                not an upgrade or not version 13 (with ``Sec-WebSocket-Version: 13``),
                431 head too large, 505 HTTP version below 1.1. Build the answer with
                :meth:`reject`.
            LocalProtocolError: The request was already received, or failed.
        """
        if self._phase is not _Phase.RECEIVING:
            raise LocalProtocolError("the request is already received (or failed)")
        if not data:
            return None  # to h11, b"" would mean the end of the stream
        self._received += len(data)
        if not self._line_complete:
            self._line_complete = b"\n" in data
        self._h11.receive_data(bytes(data))
        try:
            event = self._h11.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431 and not self._line_complete:
                error = InvalidHandshake(
                    f"the request line exceeds {self._max_request_size} bytes", status_code=414
                )
            else:
                error = InvalidHandshake(
                    f"malformed HTTP request: {exc}", status_code=exc.error_status_hint
                )
            raise self._fail(error) from exc
        if event is h11.NEED_DATA:
            return None
        # Before the request, h11 reports nothing else: closing is never fed to it.
        assert isinstance(event, h11.Request)
        self._method = event.method
        try:
            request = self._check_request(event)
        except InvalidHandshake as exc:
            raise self._fail(exc) from None
        # Without a body (checked above) the end of the message is already parsed.
        end = self._h11.next_event()
        assert isinstance(end, h11.EndOfMessage)
        self._extra_data = self._h11.trailing_data[0]
        self._request = request
        self._phase = _Phase.REQUEST_RECEIVED
        return request

    def _fail(self, error: InvalidHandshake) -> InvalidHandshake:
        self._phase = _Phase.FAILED
        return error

    def _check_request(self, event: h11.Request) -> Request:
        consumed = self._received - len(self._h11.trailing_data[0])
        if consumed > self._max_request_size:
            # The request line alone (method, target, version, CRLF) too large: 414.
            line = len(event.method) + len(event.target) + 12
            if line > self._max_request_size:
                raise InvalidHandshake(
                    f"the request line exceeds {self._max_request_size} bytes", status_code=414
                )
            raise InvalidHandshake(
                f"the request head exceeds {self._max_request_size} bytes", status_code=431
            )
        headers = Headers(event.headers.raw_items())
        upgrade = parse_upgrade(headers.get_all("Upgrade"))
        is_websocket = "websocket" in (protocol.lower() for protocol in upgrade)
        plain_http = self._allow_plain_http and not is_websocket
        if event.method != b"GET" and not (plain_http and event.method == b"HEAD"):
            raise InvalidHandshake(
                f"method {event.method.decode('ascii')} is not GET",
                status_code=405,
                headers=[("Allow", "GET, HEAD" if plain_http else "GET")],
            )
        # Tokens are ASCII by h11's grammar; the version is "digit.digit".
        version = event.http_version.decode("ascii")
        if not version.startswith("1.") or version < "1.1":
            raise InvalidHandshake(
                f"HTTP/{version} cannot carry a WebSocket handshake", status_code=505
            )
        if len(headers.get_all("Host")) != 1:
            raise InvalidHandshake("the request needs exactly one Host header")
        if "Transfer-Encoding" in headers or any(
            value != "0" for value in headers.get_all("Content-Length")
        ):
            raise InvalidHandshake("a WebSocket upgrade request has no body")

        target, path, query = _split_target(event.target.decode("ascii"))
        if plain_http:
            return Request(
                method=event.method.decode("ascii"),
                target=target,
                path=path,
                query=query,
                headers=headers,
                subprotocols=[],
                extensions=[],
                key="",
                http_version=version,
                is_websocket=False,
            )
        upgrade_required = [("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")]
        if not is_websocket:
            raise InvalidHandshake(
                "not a WebSocket upgrade: Upgrade: websocket is missing",
                status_code=426,
                headers=upgrade_required,
            )
        connection = parse_token_list(headers.get_all("Connection"), "Connection")
        if "upgrade" not in (token.lower() for token in connection):
            raise InvalidHandshake(
                "not a WebSocket upgrade: Connection: Upgrade is missing",
                status_code=426,
                headers=upgrade_required,
            )
        versions = headers.get_all("Sec-WebSocket-Version")
        if versions != ["13"]:
            raise InvalidHandshake(
                f"unsupported Sec-WebSocket-Version {versions!r}, only 13 is supported",
                status_code=426,
                headers=upgrade_required,
            )
        keys = headers.get_all("Sec-WebSocket-Key")
        if len(keys) != 1 or not _is_valid_key(keys[0]):
            raise InvalidHandshake(f"invalid Sec-WebSocket-Key {keys!r}")
        if self._origins is not None:
            self._check_origin(headers.get_all("Origin"))
        subprotocols = parse_token_list(
            headers.get_all("Sec-WebSocket-Protocol"), "Sec-WebSocket-Protocol"
        )
        extensions = parse_extensions(headers.get_all("Sec-WebSocket-Extensions"))
        return Request(
            method="GET",
            target=target,
            path=path,
            query=query,
            headers=headers,
            subprotocols=subprotocols,
            extensions=extensions,
            key=keys[0],
            http_version=version,
        )

    def _check_origin(self, values: list[str]) -> None:
        # Browsers always send Origin with a WebSocket request (RFC 6455 section 4.1), so
        # a page of another site cannot pass for one of ours (cross-site hijacking).
        if len(values) > 1:
            raise InvalidHandshake("more than one Origin header")
        origin = values[0].lower() if values else None
        assert self._origins is not None
        if origin not in self._origins:
            shown = "no Origin header" if origin is None else f"Origin {values[0]!r}"
            raise InvalidHandshake(f"{shown} is not allowed", status_code=403)

    def _received_request(self) -> Request:
        if self._phase is not _Phase.REQUEST_RECEIVED:
            raise LocalProtocolError("accept() needs a received request that was not answered yet")
        assert self._request is not None
        return self._request

    def accept(
        self, *, subprotocol: str | None = None, extra_headers: HeaderInput = ()
    ) -> tuple[bytes, list[Extension]]:
        """Accept the upgrade: build the 101 response and negotiate the extensions.

        Each server extension factory, in order, is tried against the client's offers of
        its name, in the client's order; the first offer it accepts wins, and a
        :exc:`NegotiationError` declines that offer.

        Args:
            subprotocol: The subprotocol to use; one the client offered, or ``None``.
            extra_headers: More response header fields (e.g. ``Set-Cookie``).

        Returns:
            The bytes of the 101 response, and the negotiated extensions in order (pass
            them to the frame-level connection).

        Raises:
            LocalProtocolError: No request is waiting for an answer, ``subprotocol`` was
                not offered, or an extra header is invalid or reserved.
        """
        request = self._received_request()
        if not request.is_websocket:
            raise LocalProtocolError(
                "a plain HTTP request cannot be accepted as a WebSocket: answer it with reject()"
            )
        if subprotocol is not None and subprotocol not in request.subprotocols:
            raise LocalProtocolError(
                f"subprotocol {subprotocol!r} was not offered; the client offered "
                f"{request.subprotocols!r}"
            )
        extra = _encode_headers(extra_headers, _ACCEPT_RESERVED, "accept()")
        extensions, answers = self._negotiate(request.extensions)
        fields = [
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"Sec-WebSocket-Accept", compute_accept_key(request.key).encode("ascii")),
        ]
        if subprotocol is not None:
            fields.append((b"Sec-WebSocket-Protocol", subprotocol.encode("ascii")))
        if answers:
            fields.append((b"Sec-WebSocket-Extensions", format_extensions(answers).encode("ascii")))
        response = h11.InformationalResponse(
            status_code=101, headers=fields + extra, reason=b"Switching Protocols"
        )
        data = self._h11.send(response)
        self._phase = _Phase.DONE
        return data, extensions

    def _negotiate(
        self, offers: list[ExtensionOffer]
    ) -> tuple[list[Extension], list[ExtensionOffer]]:
        extensions: list[Extension] = []
        answers: list[ExtensionOffer] = []
        for factory in self._factories:
            for name, params in offers:
                if name != factory.name:
                    continue
                try:
                    answer, extension = factory.accept_offer(params, tuple(extensions))
                except NegotiationError:
                    continue
                extensions.append(extension)
                answers.append((name, list(answer)))
                break
        return extensions, answers

    def reject(
        self,
        status_code: int,
        *,
        headers: HeaderInput = (),
        body: bytes | bytearray | memoryview = b"",
    ) -> bytes:
        """Answer with a complete HTTP response instead of upgrading, then close.

        Works after a :class:`Request` was received (a 401 with ``WWW-Authenticate``, 403,
        503, or a 200 for a health check) and after :exc:`InvalidHandshake` (pass its
        ``status_code`` and ``headers``). The response carries ``Content-Length`` and
        ``Connection: close`` (``Connection: Upgrade, close`` when ``headers`` has an
        ``Upgrade`` field, as for a 426). The body is left out for a ``HEAD`` request.

        Args:
            status_code: A final status, 200 to 599 (not 101: see :meth:`accept`).
            headers: Response header fields, e.g. ``Content-Type``.
            body: The response body; must be empty for 204 and 304.

        Returns:
            The bytes of the response. Close the connection after sending them.

        Raises:
            LocalProtocolError: The request is not complete yet, was already answered,
                or an argument is invalid.
        """
        if self._phase not in (_Phase.REQUEST_RECEIVED, _Phase.FAILED):
            raise LocalProtocolError(
                "reject() needs a received (or failed) request that was not answered yet"
            )
        if not 200 <= status_code <= 599:
            raise LocalProtocolError(f"cannot reject with status {status_code}: use 200-599")
        bodiless = status_code in (204, 304)
        if bodiless and body:
            raise LocalProtocolError(f"a {status_code} response has no body")
        fields = _encode_headers(headers, _REJECT_RESERVED, "reject()")
        if not bodiless:
            fields.append((b"Content-Length", str(len(body)).encode("ascii")))
        upgrade = any(name.lower() == b"upgrade" for name, _ in fields)
        fields.append((b"Connection", b"Upgrade, close" if upgrade else b"close"))
        try:
            reason = HTTPStatus(status_code).phrase.encode("ascii")
        except ValueError:
            reason = b""
        data = self._h11.send(h11.Response(status_code=status_code, headers=fields, reason=reason))
        if body and self._method != b"HEAD":
            data += self._h11.send(h11.Data(data=bytes(body)))
        data += self._h11.send(h11.EndOfMessage())
        self._phase = _Phase.DONE
        return data
