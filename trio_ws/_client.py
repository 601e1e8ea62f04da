"""The client: connect, run the opening handshake, hand over a running connection.

``async with open_websocket_url(url) as ws:`` is the usual way: the block's lifetime is
the connection's lifetime. ``connect_websocket*`` run the connection in a task group the
caller owns, for connections that outlive one block.

TLS: ``wss://`` URLs (or ``use_ssl=True``) verify the server with
``ssl.create_default_context()``. Pass your own ``ssl_context`` to trust a private CA
(``ctx.load_verify_locations(...)``) or, for testing only, to disable verification::

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
"""

from __future__ import annotations

import logging
import ssl
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urljoin

import anyio
import anyio.abc
from anyio.streams.tls import TLSStream

from ._compression import client_factories
from ._config import (
    ClientOptions,
    ConnectionConfig,
    new_protocol,
    resolve_options,
    with_options,
)
from ._connection import ConnectionInfo, WebSocketConnection, open_connection
from ._groups import open_task_group
from ._proxy import open_transport
from ._reader import RECEIVE_SIZE
from ._streams import as_byte_stream
from ._url import WebSocketURL, parse_url
from .sansio import ClientHandshake, Headers, Role
from .sansio._errors import (
    ConnectionRejected,
    HandshakeTimeout,
    InvalidHandshake,
    InvalidURL,
    RedirectError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    import trio
    from anyio.abc import ByteStream, TaskGroup
    from typing_extensions import Unpack

    from .sansio import ClientExtensionFactory, HandshakeAccepted

__all__ = [
    "ClientOptions",
    "connect_websocket",
    "connect_websocket_stream",
    "connect_websocket_url",
    "open_websocket",
    "open_websocket_stream",
    "open_websocket_url",
]

logger = logging.getLogger("trio_ws.client")

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Sent to the first origin only: a redirect to another origin must not carry them.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie"})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
    """The client options, validated once."""

    config: ConnectionConfig
    ssl_context: ssl.SSLContext | None
    subprotocols: Sequence[str]
    extra_headers: Mapping[str, str] | Sequence[tuple[str, str]]
    origin: str | None
    extensions: Sequence[ClientExtensionFactory]
    proxy: str | Literal[True] | None
    proxy_ssl_context: ssl.SSLContext | None
    max_redirects: int


def _settings(options: Mapping[str, Any]) -> _Settings:
    config, own = resolve_options("client", options)
    return _Settings(
        config=config,
        ssl_context=own["ssl_context"],
        subprotocols=own["subprotocols"],
        extra_headers=own["extra_headers"],
        origin=own["origin"],
        extensions=client_factories(own["compression"]),
        proxy=own["proxy"],
        proxy_ssl_context=own["proxy_ssl_context"],
        max_redirects=own["max_redirects"],
    )


def _tls_context(
    use_ssl: bool | ssl.SSLContext, ssl_context: ssl.SSLContext | None
) -> ssl.SSLContext | None:
    """The TLS context of ``use_ssl`` and ``ssl_context``: one of them, or the default."""
    if isinstance(use_ssl, ssl.SSLContext):
        # trio-websocket's spelling: the context itself, never replaced by a default one.
        if ssl_context is not None and ssl_context is not use_ssl:
            raise TypeError("use_ssl= and ssl_context= are two different TLS contexts: pass one")
        return use_ssl
    if not isinstance(use_ssl, bool):
        raise TypeError(
            f"use_ssl must be a bool or an ssl.SSLContext, not {type(use_ssl).__name__}"
        )
    if ssl_context is None and use_ssl:
        return ssl.create_default_context()
    return ssl_context


def _request_headers(request: bytes) -> Headers:
    """The header fields of the request the handshake wrote (for ``request_headers``)."""
    lines = request.split(b"\r\n")[1:]
    fields: list[tuple[bytes, bytes]] = []
    for line in lines:
        if not line:
            break
        name, _, value = line.partition(b":")
        fields.append((name.strip(), value.strip()))
    return Headers(fields)


async def _handshake(
    stream: ByteStream, handshake: ClientHandshake
) -> tuple[HandshakeAccepted, Headers]:
    request = handshake.data_to_send()
    try:
        await stream.send(request)
        while True:
            try:
                data = await stream.receive(RECEIVE_SIZE)
            except anyio.EndOfStream:
                handshake.receive_eof()  # raises ConnectionRejected or InvalidHandshake
            accepted = handshake.receive_data(data)
            if accepted is not None:
                return accepted, _request_headers(request)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise InvalidHandshake(f"the connection broke during the handshake: {exc!r}") from exc


@with_options("client")
async def connect_websocket(
    task_group: TaskGroup,
    host: str,
    port: int,
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    **options: Unpack[ClientOptions],
) -> WebSocketConnection:
    """Connect to a WebSocket server; the connection's tasks run in ``task_group``.

    The caller owns the connection: ``await ws.aclose()`` when done. Its tasks end by
    themselves once it is closed, so ``task_group`` can then exit.

    Args:
        task_group: A trio nursery or anyio task group that outlives the connection.
        host: The server's host name or IP address (IPv6 without brackets).
        port: The server's port.
        resource: The request target: path and optional ``?query``, percent-encoded.
        use_ssl: ``True`` for TLS, verified with ``ssl.create_default_context()`` unless
            ``ssl_context`` is given; or the ``ssl.SSLContext`` to use itself.
        **options: The client options (:ref:`client-option-table`) and the connection options
            (:ref:`connection-option-table`).

    Returns:
        The open connection.

    Raises:
        HandshakeTimeout: Connecting and the handshake took more than ``open_timeout``.
        ConnectionRejected: The server answered with another HTTP status than 101 (with
            its status, headers and body).
        InvalidHandshake: The server's answer was invalid, or it closed the connection.
        OSError: The TCP connection (or the TLS handshake) failed.
        ProxyError: The proxy (the ``proxy`` option, or the environment's) refused or
            failed to open the tunnel.
        LocalProtocolError: An argument cannot be sent in a valid request.
        ValueError: An invalid option.

    Cancellation:
        Safe: if cancelled, nothing is left open.
    """
    return await _connect_with_redirects(
        task_group, _settings(options), host, port, resource, use_ssl, held_open=False
    )


async def _connect_with_redirects(
    task_group: TaskGroup,
    settings: _Settings,
    host: str,
    port: int,
    resource: str,
    use_ssl: bool | ssl.SSLContext,
    *,
    held_open: bool,
) -> WebSocketConnection:
    """:func:`connect_websocket`; ``held_open``: the caller keeps ``task_group`` open until
    the connection is closed (``open_websocket``), so the connection may run without a
    reader task of its own (on asyncio, see ``_reader.CallbackReader``)."""
    given_context = settings.ssl_context
    ssl_context = _tls_context(use_ssl, given_context)
    if ssl_context is not given_context:
        settings = replace(settings, ssl_context=ssl_context)
    deadline = anyio.current_time() + settings.config.open_timeout
    url = WebSocketURL(secure=ssl_context is not None, host=host, port=port, resource=resource)
    for redirects in range(settings.max_redirects + 1):
        try:
            return await _connect(
                task_group,
                settings,
                host=url.host,
                port=url.port,
                resource=url.resource,
                deadline=deadline,
                held_open=held_open,
            )
        except ConnectionRejected as rejected:
            location = rejected.headers.get("Location")
            if rejected.status_code not in _REDIRECT_STATUSES or location is None:
                raise
            if not settings.max_redirects:
                raise
            if redirects == settings.max_redirects:
                raise RedirectError(
                    f"more than {settings.max_redirects} redirects (max_redirects); "
                    f"the last one to {location!r}",
                    location=location,
                    rejected=rejected,
                ) from None
            target = _redirect_target(url, location, rejected)
            logger.info(
                "%s redirected (HTTP %d) to %s", _url_text(url), rejected.status_code, location
            )
            settings = _settings_for(
                target, settings, given_context, same_origin=_same_origin(url, target)
            )
            url = target
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _url_text(url: WebSocketURL) -> str:
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{'wss' if url.secure else 'ws'}://{host}:{url.port}{url.resource}"


def _same_origin(a: WebSocketURL, b: WebSocketURL) -> bool:
    return (a.secure, a.host.lower(), a.port) == (b.secure, b.host.lower(), b.port)


def _redirect_target(
    url: WebSocketURL, location: str, rejected: ConnectionRejected
) -> WebSocketURL:
    """Where a redirect from ``url`` to ``location`` (absolute or relative) leads."""
    absolute = urljoin(_url_text(url), location.strip())
    # Servers behind HTTP machinery often answer with their http(s):// spelling.
    scheme, colon, rest = absolute.partition(":")
    scheme = {"http": "ws", "https": "wss"}.get(scheme.lower(), scheme)
    try:
        target = parse_url(scheme + colon + rest)
    except InvalidURL as exc:
        raise RedirectError(
            f"redirected to {location!r}, which is not a WebSocket URL: {exc}",
            location=location,
            rejected=rejected,
        ) from None
    if url.secure and not target.secure:
        raise RedirectError(
            f"refusing a redirect from {_url_text(url)} to {location!r}: "
            "it would send the request unencrypted",
            location=location,
            rejected=rejected,
        )
    return target


def _settings_for(
    target: WebSocketURL,
    settings: _Settings,
    given_context: ssl.SSLContext | None,
    *,
    same_origin: bool,
) -> _Settings:
    """The settings of the request to ``target``: its TLS, and no credentials to others."""
    headers = _header_items(settings.extra_headers)
    if not same_origin:
        headers = [(n, v) for n, v in headers if n.lower() not in _CREDENTIAL_HEADERS]
    if target.authorization is not None:
        headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
        headers.append(("Authorization", target.authorization))
    if not target.secure:
        ssl_context = None
    elif settings.ssl_context is not None:
        ssl_context = settings.ssl_context
    else:
        ssl_context = given_context or ssl.create_default_context()
    return replace(settings, extra_headers=headers, ssl_context=ssl_context)


async def _connect(
    task_group: TaskGroup,
    settings: _Settings,
    *,
    host: str,
    port: int | None,
    resource: str,
    stream: ByteStream | None = None,
    deadline: float | None = None,
    held_open: bool = False,
) -> WebSocketConnection:
    """Open the transport unless ``stream`` is given, run the handshake, start the tasks.

    ``deadline`` (an ``anyio.current_time()``) bounds it, ``open_timeout`` from now without
    one: redirects share one deadline. ``held_open``: as for ``_connect_with_redirects``.
    """
    config = settings.config
    ssl_context = settings.ssl_context
    handshake = ClientHandshake(
        host,
        resource,
        port=port,
        secure=ssl_context is not None,
        subprotocols=settings.subprotocols,
        extensions=settings.extensions,
        extra_headers=settings.extra_headers,
        origin=settings.origin,
    )
    if deadline is None:
        deadline = anyio.current_time() + config.open_timeout
    with anyio.CancelScope(deadline=deadline) as timeout_scope:
        try:
            if stream is None:
                assert port is not None
                stream = await open_transport(
                    host,
                    port,
                    ssl_context,
                    proxy=settings.proxy,
                    proxy_ssl_context=settings.proxy_ssl_context,
                )
            elif ssl_context is not None:
                stream = await TLSStream.wrap(
                    stream, hostname=host, ssl_context=ssl_context, standard_compatible=False
                )
            accepted, request_headers = await _handshake(stream, handshake)
        except BaseException:
            if stream is not None:
                await anyio.aclose_forcefully(stream)
            raise
    if timeout_scope.cancelled_caught:
        where = host if port is None else f"{host}:{port}"
        raise HandshakeTimeout(
            f"connecting to {where} and the handshake took over {config.open_timeout} s"
        )
    assert stream is not None  # set above, or the handshake raised
    protocol = new_protocol(config, Role.CLIENT, accepted.extensions)
    path, _, query = resource.partition("?")
    info = ConnectionInfo(
        path=path,
        query=query,
        # Kept for the connection's life, seldom read: one string each until they are.
        request_headers=request_headers._compact(),
        response_headers=accepted.headers._compact(),
        subprotocol=accepted.subprotocol,
        extensions=tuple(accepted.extensions),
    )
    ws, link = open_connection(stream, protocol, config=config, info=info)
    link.start(task_group, accepted.extra_data, held_open=held_open)
    return ws


@with_options("client")
async def connect_websocket_stream(
    task_group: TaskGroup,
    stream: anyio.abc.ByteStream | trio.abc.Stream,
    *,
    host: str,
    resource: str = "/",
    port: int | None = None,
    **options: Unpack[ClientOptions],
) -> WebSocketConnection:
    """Run a WebSocket client over a byte stream the caller already has.

    For transports that :func:`connect_websocket` does not open itself: a tunnel through
    a proxy, a Unix socket, an in-memory stream in tests
    (:func:`trio_ws.testing.memory_stream_pair`)... The connection's tasks run in
    ``task_group``, as with :func:`connect_websocket`.

    Args:
        task_group: A trio nursery or anyio task group that outlives the connection.
        stream: An ``anyio.abc.ByteStream`` or a ``trio.abc.Stream``. The connection owns
            it from this call on: it is closed with the connection, or at once if the
            handshake fails.
        host: The server's name, for the ``Host`` header (and the TLS server name).
        resource: The request target: path and optional ``?query``, percent-encoded.
        port: The port to put in the ``Host`` header, if any.
        **options: As for :func:`connect_websocket`. With ``ssl_context``, TLS runs over
            ``stream`` (verified against ``host``); ``open_timeout`` bounds the TLS and
            WebSocket handshakes.

    Returns:
        The open connection.

    Raises:
        TypeError: ``stream`` is not a byte stream.
        HandshakeError: As for :func:`connect_websocket`.

    Cancellation:
        Safe: if cancelled, the stream is closed and nothing is left running.
    """
    settings = _settings(options)
    byte_stream = as_byte_stream(stream)
    return await _connect(
        task_group, settings, host=host, port=port, resource=resource, stream=byte_stream
    )


def _url_arguments(url: str, options: ClientOptions) -> tuple[str, int, str, bool, ClientOptions]:
    parsed = parse_url(url)
    if not parsed.secure and options.get("ssl_context") is not None:
        raise ValueError("ssl_context given for a ws:// URL; use wss://")
    authorization = parsed.authorization
    if authorization is not None:
        headers = [(n, v) for n, v in _header_items(options.get("extra_headers", ()))]
        if not any(name.lower() == "authorization" for name, _ in headers):
            headers.append(("Authorization", authorization))
        options = {**options, "extra_headers": headers}
    return parsed.host, parsed.port, parsed.resource, parsed.secure, options


def _header_items(
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
) -> list[tuple[str, str]]:
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(name), str(value)) for name, value in items]


@with_options("client")
async def connect_websocket_url(
    task_group: TaskGroup, url: str, **options: Unpack[ClientOptions]
) -> WebSocketConnection:
    """Like :func:`connect_websocket`, from a ``ws://`` or ``wss://`` URL.

    User information in the URL (``wss://user:pass@host/``) becomes an
    ``Authorization: Basic`` header unless ``extra_headers`` has one.

    Raises:
        InvalidURL: ``url`` is not a valid WebSocket URL.
        ValueError: ``ssl_context`` was given for a ``ws://`` URL.
        HandshakeError: As for :func:`connect_websocket`.
    """
    host, port, resource, secure, options = _url_arguments(url, options)
    return await connect_websocket(task_group, host, port, resource, use_ssl=secure, **options)


@with_options("client")
@asynccontextmanager
async def open_websocket(
    host: str,
    port: int,
    resource: str = "/",
    *,
    use_ssl: bool | ssl.SSLContext = False,
    **options: Unpack[ClientOptions],
) -> AsyncIterator[WebSocketConnection]:
    """Open a WebSocket connection for the duration of an ``async with`` block.

    Leaving the block normally closes the connection with 1000 and waits for the
    closing handshake (at most ``close_timeout``). An exception raised in the block
    closes it with 1011 (1001 for a cancellation) and propagates as itself, never
    wrapped in an ExceptionGroup; failures of the connection's own tasks surface as
    :exc:`ConnectionClosed` from the next call on the connection.

    Args and Raises: as :func:`connect_websocket`.

    Example::

        async with open_websocket("example.com", 443, "/feed", use_ssl=True) as ws:
            await ws.send_message("hello")
            print(await ws.get_message())
    """
    async with open_task_group() as task_group:
        # This block holds the task group open until the connection is closed.
        ws = await _connect_with_redirects(
            task_group, _settings(options), host, port, resource, use_ssl, held_open=True
        )
        async with _closing(ws):
            yield ws


@asynccontextmanager
async def _closing(ws: WebSocketConnection) -> AsyncIterator[None]:
    """Close ``ws`` when the block ends: 1000, 1001 for a cancellation, 1011 for an error."""
    try:
        yield
    except anyio.get_cancelled_exc_class():
        await ws.aclose(1001)
        raise
    except BaseException:
        await ws.aclose(1011)
        raise
    await ws.aclose(1000)


@with_options("client")
@asynccontextmanager
async def open_websocket_stream(
    stream: anyio.abc.ByteStream | trio.abc.Stream,
    *,
    host: str,
    resource: str = "/",
    port: int | None = None,
    **options: Unpack[ClientOptions],
) -> AsyncIterator[WebSocketConnection]:
    """Run a WebSocket client over ``stream`` for the duration of an ``async with`` block.

    The stream-based twin of :func:`open_websocket` (same lifetime and exceptions); the
    arguments are those of :func:`connect_websocket_stream`.

    Example::

        left, right = trio_ws.testing.memory_stream_pair()
        ...  # serve the other end: trio_ws.serve_websocket_stream(handler, right)
        async with open_websocket_stream(left, host="test") as ws:
            await ws.send_message("hello")
    """
    async with open_task_group() as task_group:
        ws = await _connect(
            task_group,
            _settings(options),
            host=host,
            port=port,
            resource=resource,
            stream=as_byte_stream(stream),
            held_open=True,  # as in open_websocket
        )
        async with _closing(ws):
            yield ws


@with_options("client")
@asynccontextmanager
async def open_websocket_url(
    url: str, **options: Unpack[ClientOptions]
) -> AsyncIterator[WebSocketConnection]:
    """Open a WebSocket connection to ``url`` for the duration of an ``async with`` block.

    Example::

        async with open_websocket_url("wss://example.com/feed") as ws:
            async for message in ws:
                print(message)

    See :func:`open_websocket` (lifetime, exceptions) and :func:`connect_websocket`
    (options). User information in the URL becomes an ``Authorization: Basic`` header.

    Raises:
        InvalidURL: ``url`` is not a valid WebSocket URL.
        HandshakeError: As for :func:`connect_websocket`.
    """
    host, port, resource, secure, options = _url_arguments(url, options)
    async with open_websocket(host, port, resource, use_ssl=secure, **options) as ws:
        yield ws
