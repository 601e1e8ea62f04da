"""One incoming connection, from ``accept()`` to close, and the request a handler decides on.

A :class:`WebSocketRequest` is what a server handler receives. It has read the client's
HTTP upgrade request (and nothing else has been sent yet), so the application can look at
the path, query, headers, cookies, peer address and offered subprotocols before deciding:

- :meth:`WebSocketRequest.accept` answers ``101 Switching Protocols`` and returns the
  :class:`~trio_ws.WebSocketConnection`, whose background tasks run in the server's task
  group;
- :meth:`WebSocketRequest.reject` answers any other HTTP status with headers and a body.

With ``allow_plain_http=True``, plain HTTP ``GET``/``HEAD`` requests (no ``Upgrade``)
reach the handler too, with ``is_websocket`` false; they can only be rejected (a health
check's 200, a redirect...).

:class:`Session` drives one accepted connection for the server: TLS and the request
(bounded by ``open_timeout``), the handler, then the outcome's answer (403 when the
handler gave none, 426 for a plain HTTP request it left unanswered, 500 when it crashed
first, 503 during shutdown) or close code (1000, 1011, 1001 during shutdown).
"""

from __future__ import annotations

import enum
import itertools
import logging
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, Protocol, final
from urllib.parse import parse_qsl

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSStream

from ._config import new_protocol
from ._connection import Address, ConnectionInfo, open_connection
from .sansio import Role
from .sansio._errors import (
    ConnectionClosed,
    ConnectionClosedError,
    InvalidHandshake,
    LocalProtocolError,
)
from .sansio._handshake import ServerHandshake
from .sansio._headers import Headers

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Sequence

    from anyio.abc import ByteStream, TaskGroup

    from ._config import ConnectionConfig
    from ._connection import ConnectionLink, WebSocketConnection
    from ._keepalive import KeepaliveScheduler
    from .sansio import ServerExtensionFactory
    from .sansio._handshake import HeaderInput, Request

__all__ = ["Session", "SessionHost", "WebSocketRequest", "format_address"]

logger = logging.getLogger("trio_ws.server")

# Errors that mean "the client went away or broke the transport".
_TRANSPORT_ERRORS = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,  # ssl.SSLError included
)

_SHUTDOWN_BODY = b"the server is shutting down\n"
_BUSY_BODY = b"the server has too many connections\n"
_UPGRADE_BODY = b"this is a WebSocket endpoint: upgrade required\n"
_TEXT_PLAIN = ("Content-Type", "text/plain; charset=utf-8")

_session_ids = itertools.count(1)


class _Answer(enum.Enum):
    PENDING = "pending"  # nothing sent yet
    ACCEPTING = "accepting"  # the 101 response is being written
    ACCEPTED = "accepted"  # the WebSocket connection exists
    REJECTED = "rejected"  # an HTTP response other than 101 was sent (or attempted)


@final
class WebSocketRequest:
    """An opening handshake waiting for the server application's decision.

    The server builds one per incoming connection and passes it to the handler; users
    never construct it. Call exactly one of :meth:`accept` or :meth:`reject`.

    Attributes:
        method: ``"GET"``; ``"HEAD"`` is possible for a plain HTTP request.
        is_websocket: ``True`` for a WebSocket upgrade request. ``False`` for a plain HTTP
            request, which reaches the handler only when the server runs with
            ``allow_plain_http=True``; it can only be answered with :meth:`reject`.
        path: The request path, percent-encoded as received (``/chat/room%201``).
        query: The query string without ``?`` (``""`` when absent).
        resource: The path plus ``?query`` when there is a query (RFC 6455's "resource
            name"), as :attr:`WebSocketConnection.resource <trio_ws.WebSocketConnection.resource>`.
        headers: The request headers (a case-insensitive, read-only multi-dict).
        subprotocols: The subprotocols the client offered, in its order of preference.
        extensions: The extensions the client offered, as ``(name, parameters)`` pairs.
        remote_address: The client's address as the socket reports it (``(host, port)``
            for TCP, a path for a Unix socket), or ``None`` when unknown.
        local_address: The server's address for this connection, or ``None``.
        is_secure: Whether the connection runs over TLS.
    """

    def __init__(
        self,
        *,
        stream: ByteStream,
        handshake: ServerHandshake,
        request: Request,
        config: ConnectionConfig,
        task_group: TaskGroup,
        remote_address: Any,
        local_address: Any,
        is_secure: bool,
        session_id: str,
        keepalive: KeepaliveScheduler | None = None,
    ) -> None:
        self._stream = stream
        # Dropped once the connection is open (an h11 connection and the request's parts).
        self._handshake: ServerHandshake | None = handshake
        self._config = config
        self._task_group = task_group
        self._session_id = session_id
        self._keepalive = keepalive
        self._answer = _Answer.PENDING
        self._connection: WebSocketConnection | None = None
        self._link: ConnectionLink | None = None  # the connection's, for the session
        self.method: str = request.method
        self.is_websocket: bool = request.is_websocket
        self.path: str = request.path
        self.query: str = request.query
        self.resource: str = f"{request.path}?{request.query}" if request.query else request.path
        self.headers: Headers = request.headers
        self.subprotocols: tuple[str, ...] = tuple(request.subprotocols)
        self.extensions: tuple[tuple[str, list[tuple[str, str | None]]], ...] = tuple(
            request.extensions
        )
        self.remote_address: Address | None = remote_address
        self.local_address: Address | None = local_address
        self.is_secure: bool = is_secure

    def __repr__(self) -> str:
        kind = "" if self.is_websocket else f" plain HTTP {self.method}"
        return f"<WebSocketRequest {self._session_id}{kind} {self.resource!r} {self._answer.value}>"

    @property
    def query_params(self) -> dict[str, str]:
        """The query parameters, decoded (the last value wins when a name repeats)."""
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies the client sent in its ``Cookie`` header(s), by name.

        Malformed cookie headers are ignored rather than failing the handshake.
        """
        cookies: dict[str, str] = {}
        for header in self.headers.get_all("Cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            cookies.update((name, morsel.value) for name, morsel in jar.items())
        return cookies

    @property
    def answered(self) -> bool:
        """Whether :meth:`accept` or :meth:`reject` was called."""
        return self._answer is not _Answer.PENDING

    @property
    def connection(self) -> WebSocketConnection | None:
        """The connection :meth:`accept` returned, or ``None`` before that."""
        return self._connection

    def _claim(self, new_answer: _Answer) -> None:
        if self._answer is not _Answer.PENDING:
            raise LocalProtocolError(f"this request was already answered ({self._answer.value})")
        self._answer = new_answer

    async def accept(
        self,
        *,
        subprotocol: str | None = None,
        extra_headers: HeaderInput = (),
    ) -> WebSocketConnection:
        """Accept the handshake: answer 101 and return the WebSocket connection.

        The connection's background tasks (the reader, and the writer when it is needed)
        start in the server's task group and end with the connection, and its keepalive
        pings come from the server's scheduler; it is closed with 1000 when the handler
        returns and with 1011 when it raises.

        The connection is listed in :attr:`WebSocketServer.connections
        <trio_ws.WebSocketServer.connections>` before the 101 response is written, so a
        client that completed its handshake always finds it there.

        Args:
            subprotocol: One of :attr:`subprotocols` to select, or ``None`` for none.
            extra_headers: Headers to add to the 101 response (``Set-Cookie``, ...), as a
                mapping or as ``(name, value)`` pairs.

        Returns:
            The open connection.

        Raises:
            LocalProtocolError: The request is a plain HTTP request (:attr:`is_websocket`
                is false: answer it with :meth:`reject`), it was already answered,
                ``subprotocol`` was not offered, or an extra header is invalid. Nothing
                was sent.
            ConnectionClosedError: The client went away before the answer was written
                (code 1006); like any peer close, the server does not log it as an error.

        Cancellation:
            Writing the 101 response is shielded (a few hundred bytes, bounded by
            ``close_timeout``), so a cancellation never leaves half a response on the
            wire: one that arrives during the write is delivered at the next checkpoint,
            when the connection exists (the server then closes it as usual).
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._answer is not _Answer.PENDING:
            raise LocalProtocolError(f"this request was already answered ({self._answer.value})")
        if not self.is_websocket:
            raise LocalProtocolError(
                f"a plain HTTP {self.method} request (no Upgrade: websocket) cannot be "
                "accepted as a WebSocket connection: answer it with reject()"
            )
        handshake = self._handshake
        assert handshake is not None  # dropped only once accepted
        response, extensions = handshake.accept(
            subprotocol=subprotocol, extra_headers=extra_headers
        )
        self._claim(_Answer.ACCEPTING)
        protocol = new_protocol(self._config, Role.SERVER, extensions)
        info = ConnectionInfo(
            path=self.path,
            query=self.query,
            request_headers=self.headers,
            response_headers=_response_headers(response),
            subprotocol=subprotocol,
            extensions=tuple(extensions),
            local_address=self.local_address,
            remote_address=self.remote_address,
        )
        connection, link = open_connection(self._stream, protocol, config=self._config, info=info)
        # Listed (through self.connection) before the 101 leaves: once the client sees the
        # 101, server.connections has it. The connection's writer sends the 101 first, so
        # a close from the shutdown can only follow it.
        self._connection = connection
        self._link = link
        link.write_first(response)
        link.start(
            self._task_group,
            initial_data=handshake.extra_data,
            keepalive=self._keepalive,
            held_open=True,  # the session's task holds the server's task group open
        )
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(self._config.close_timeout) as writing,
        ):
            await link.flush()
        # The 101 was written unless the write was cut short or failed; a client that
        # goes away right after it gets a connection that is closed already (1006).
        cause = link.close_cause
        if writing.cancelled_caught or not link.writer.has_written:
            with anyio.CancelScope(shield=True):
                await link.abort()
            self._connection = None
            self._link = None
            self._answer = _Answer.REJECTED
            if writing.cancelled_caught:
                raise ConnectionClosedError(1006, "the client does not read")
            raise ConnectionClosedError(1006, "the client went away") from cause
        self._answer = _Answer.ACCEPTED
        self._handshake = None
        # Read during the handshake, seldom after it: one string each while unused.
        self.headers._compact()
        logger.debug(
            "%s: connection opened [%s] resource %r subprotocol %r",
            self._session_id,
            connection.id,
            self.resource,
            subprotocol,
        )
        return connection

    async def reject(
        self,
        status_code: int,
        *,
        headers: HeaderInput = (),
        body: bytes | str = b"",
    ) -> None:
        """Answer with an HTTP response instead of upgrading, then close the connection.

        Any status is allowed: 401 with ``WWW-Authenticate``, 403, 404, a health check's
        ``200`` with a body, a redirect, ... This is also how a plain HTTP request
        (:attr:`is_websocket` false) is answered; for a ``HEAD`` request the body is left
        out (``Content-Length`` still gives its size).

        Args:
            status_code: The HTTP status, 200 to 599.
            headers: Response headers, as a mapping or as ``(name, value)`` pairs;
                ``Content-Length`` and ``Connection: close`` are added.
            body: The response body (a ``str`` is sent as UTF-8).

        Raises:
            LocalProtocolError: The request was already answered, or the status or a header
                is invalid.

        Cancellation:
            If cancelled while writing, the connection is closed without a complete answer.
            A client that went away is not an error: the answer is simply dropped.
        """
        await anyio.lowlevel.checkpoint_if_cancelled()
        if isinstance(body, str):
            body = body.encode()
        handshake = self._handshake
        if handshake is None:
            raise LocalProtocolError(f"this request was already answered ({self._answer.value})")
        response = handshake.reject(status_code, headers=headers, body=body)
        self._claim(_Answer.REJECTED)
        await _send_and_close(self._stream, response, within=self._config.close_timeout)
        logger.debug("%s: rejected with HTTP %d", self._session_id, status_code)

    async def _reject_with(
        self, status_code: int, body: bytes, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        # The server's own answers (403, 426, 500, 503) when the handler gave none.
        if self._answer is _Answer.PENDING:
            await self.reject(status_code, headers=[_TEXT_PLAIN, *headers], body=body)


def _response_headers(response: bytes) -> Headers:
    """The header fields of the 101 response the core built (for the connection's info)."""
    head = response.split(b"\r\n\r\n", 1)[0]
    fields = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.strip(), value.strip()))
    return Headers(fields)._compact()


async def _send_and_close(stream: ByteStream, data: bytes, *, within: float) -> None:
    """Write an HTTP answer and close the stream, giving up after ``within`` seconds."""
    with anyio.move_on_after(within):
        try:
            await stream.send(data)
        except _TRANSPORT_ERRORS:
            pass
    await anyio.aclose_forcefully(stream)


def format_address(address: Any) -> str:
    """A socket address for logs: ``host:port``, ``[v6]:port`` or a socket path."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, str):
        return address or "unix socket"
    return "unknown peer"


class SessionSettings(Protocol):
    """The server options a session reads (``trio_ws._server``'s validated settings)."""

    @property
    def config(self) -> ConnectionConfig: ...
    @property
    def extensions(self) -> Sequence[ServerExtensionFactory]: ...
    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...
    @property
    def max_request_size(self) -> int: ...
    @property
    def allow_plain_http(self) -> bool: ...
    @property
    def origins(self) -> frozenset[str | None] | None: ...


class SessionHost(Protocol):
    """What a session needs from its server (``trio_ws._server.ServerPort``)."""

    @property
    def handler(self) -> Callable[[WebSocketRequest], Awaitable[object]]: ...
    @property
    def settings(self) -> SessionSettings: ...

    @property
    def closing(self) -> bool: ...
    @property
    def connection_tasks(self) -> TaskGroup | None: ...
    @property
    def keepalive(self) -> KeepaliveScheduler | None: ...
    def session_started(self, session: Session) -> None: ...
    def session_ended(self, session: Session) -> None: ...
    def take_slot(self) -> bool: ...
    def release_slot(self) -> None: ...
    def handler_started(self, task_id: int) -> None: ...
    def handler_ended(self, task_id: int) -> None: ...


class Session:
    """One accepted transport connection of a server, from ``accept()`` until it is closed.

    The session's task runs the handshake and then the handler; the connection's
    background tasks (the reader, the writer when needed) run in the server's task group
    (``server.connection_tasks``), not in a task group of the session's own, and end when
    the session closes the connection.
    """

    __slots__ = (
        "aborted",
        "cancelled",
        "cleanup_scope",
        "failure",
        "id",
        "reading",
        "request",
        "scope",
        "server",
        "stream",
    )

    def __init__(self, server: SessionHost, stream: ByteStream) -> None:
        # The peer's address is added by run(): reading it may fail (a peer gone already).
        self.id = f"conn#{next(_session_ids)}"
        self.server = server
        self.stream = stream
        # Cancelled by the shutdown while the handshake is in flight, or to abort at the end.
        self.scope = anyio.CancelScope()
        # Shields the final answer / close handshake; made when that starts (see abort()).
        self.cleanup_scope: anyio.CancelScope | None = None
        self.aborted = False  # the end of the shutdown: the cleanup is cancelled too
        # True while the request is being read (after the TLS handshake, if any): a
        # shutdown then owes the client a 503.
        self.reading = False
        self.request: WebSocketRequest | None = None
        self.failure: Exception | None = None
        self.cancelled = False  # the handler was cancelled (serve_websocket_stream's caller)

    @property
    def connection(self) -> WebSocketConnection | None:
        return None if self.request is None else self.request.connection

    def abort(self) -> None:
        """Cancel everything the session still does, its shielded cleanup included."""
        self.aborted = True
        self.scope.cancel()
        if self.cleanup_scope is not None:
            self.cleanup_scope.cancel()

    def _cleanup(self) -> anyio.CancelScope:
        """A new shielded scope for the final answer or close (cancelled once aborted)."""
        scope = self.cleanup_scope = anyio.CancelScope(shield=True)
        if self.aborted:
            scope.cancel()
        return scope

    async def run(self) -> None:
        """Serve the connection until it is closed; never raises but cancellation."""
        server = self.server
        try:
            remote = self.stream.extra(SocketAttribute.remote_address, None)
        except OSError:
            remote = None
        self.id = f"{self.id} {format_address(remote)}"
        del remote  # this frame lasts as long as the connection
        server.session_started(self)
        try:
            with self.scope:
                # Few frames stay on the stack while the handler runs (they cost memory
                # per connection): the handshake's end with _open's, before the handler.
                request = await self._open()
                if request is not None:
                    try:
                        await self._run_handler(request)
                    finally:
                        server.release_slot()
        except Exception:
            # Handler errors are caught closer to the handler; this is a bug in trio_ws.
            logger.exception("%s: internal error", self.id)
        finally:
            try:
                if self.reading and server.closing:
                    with self._cleanup():
                        await self._refuse_unread()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.aclose_forcefully(self.stream)
                server.session_ended(self)

    async def _refuse_unread(self) -> None:
        """Answer 503 to a client whose request was not (completely) read."""
        response = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
            % (len(_SHUTDOWN_BODY), _SHUTDOWN_BODY)
        )
        await _send_and_close(
            self.stream, response, within=self.server.settings.config.close_timeout
        )

    async def _open(self) -> WebSocketRequest | None:
        """Read the request; the request for the handler, or ``None`` if it was answered.

        On ``None`` the client got its answer (or went away): there is nothing left to do
        but close the stream. Otherwise a slot of ``max_connections`` is taken.
        """
        server = self.server
        settings = server.settings
        if server.closing:
            # Accepted just before the listeners stopped: tell the client at once.
            self.reading = settings.ssl_context is None
            return None
        handshake = ServerHandshake(
            extensions=settings.extensions,
            max_request_size=settings.max_request_size,
            allow_plain_http=settings.allow_plain_http,
            origins=settings.origins,
        )
        with anyio.move_on_after(settings.config.open_timeout) as opening:
            try:
                request = await self._read_request(handshake)
            except InvalidHandshake as exc:
                self.reading = False
                # A refused origin is worth seeing in a default log (a page of another
                # site tried to connect); other bad requests are noise.
                level = logging.INFO if exc.status_code == 403 else logging.DEBUG
                logger.log(
                    level, "%s: invalid handshake (HTTP %d): %s", self.id, exc.status_code, exc
                )
                body = f"{exc.reason}\n".encode()
                response = handshake.reject(exc.status_code, headers=exc.headers, body=body)
                await _send_and_close(self.stream, response, within=settings.config.close_timeout)
                return None
            except _TRANSPORT_ERRORS as exc:
                self.reading = False
                logger.debug("%s: dropped during the opening handshake: %r", self.id, exc)
                return None
        # Only the shutdown's cancellation skips this line: then the 503 is due.
        self.reading = False
        if opening.cancelled_caught:
            logger.debug("%s: no complete request within open_timeout: dropped", self.id)
            return None
        if request is None:
            logger.debug("%s: closed by the client before its request was complete", self.id)
            return None
        if not server.take_slot():
            logger.debug("%s: over max_connections, answering 503", self.id)
            response = handshake.reject(503, headers=[_TEXT_PLAIN], body=_BUSY_BODY)
            await _send_and_close(self.stream, response, within=settings.config.close_timeout)
            return None
        stream = self.stream
        task_group = server.connection_tasks
        assert task_group is not None  # set before any session starts
        # The handshake (and its h11 connection) is kept by the request until it is
        # answered, and by nothing else: this frame is gone once the handler runs.
        return WebSocketRequest(
            stream=stream,
            handshake=handshake,
            request=request,
            config=settings.config,
            task_group=task_group,
            remote_address=stream.extra(SocketAttribute.remote_address, None),
            local_address=stream.extra(SocketAttribute.local_address, None),
            is_secure=stream.extra(TLSAttribute.ssl_object, None) is not None,
            session_id=self.id,
            keepalive=server.keepalive,
        )

    async def _read_request(self, handshake: ServerHandshake) -> Request | None:
        if self.server.settings.ssl_context is not None:
            self.stream = await TLSStream.wrap(
                self.stream,
                server_side=True,
                ssl_context=self.server.settings.ssl_context,
                # Clients commonly close without close_notify; that is not an error here.
                standard_compatible=False,
            )
        self.reading = True
        while True:
            try:
                data = await self.stream.receive()
            except anyio.EndOfStream:
                return None
            request = handshake.receive_data(data)
            if request is not None:
                return request

    async def _run_handler(self, request: WebSocketRequest) -> None:
        """Run the handler, then answer or close as its outcome says."""
        server = self.server
        self.request = request
        task_id = anyio.get_current_task().id
        server.handler_started(task_id)
        try:
            await server.handler(request)
        except ConnectionClosed as exc:
            # The handler let the peer's close (or the shutdown's 1001) propagate: normal.
            logger.debug("%s: handler ended by the closed connection: %s", self.id, exc)
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        except Exception as exc:
            self.failure = exc
            logger.error(
                "%s: handler for %s raised %s",
                self.id,
                request.resource,
                type(exc).__name__,
                exc_info=exc,
            )
        finally:
            server.handler_ended(task_id)
            try:
                with self._cleanup():
                    await self._finish(request)
            finally:
                # The reader, the writer and their scopes end with the connection, even
                # when the close above was cut short (aborted, or a bug).
                link = request._link
                if link is not None:
                    with anyio.CancelScope(shield=True):
                        await link.abort()

    async def _finish(self, request: WebSocketRequest) -> None:
        """Give the handshake its final answer or close the connection, as the outcome says."""
        connection = request.connection
        going_away = self.server.closing or self.cancelled
        if connection is not None:
            if self.failure is not None:
                code, reason = 1011, "internal server error"
            elif going_away:
                code, reason = 1001, "server shutting down"
            else:
                code, reason = 1000, ""
            await connection.aclose(code, reason)
            logger.debug(
                "%s: connection closed (code %s, reason %r)",
                self.id,
                connection.close_code,
                connection.close_reason,
            )
            return
        if request.answered:
            return
        if going_away:
            await request._reject_with(503, _SHUTDOWN_BODY)
        elif self.failure is not None:
            await request._reject_with(500, b"internal server error\n")
        elif not request.is_websocket:
            logger.debug("%s: plain HTTP request left unanswered: answering 426", self.id)
            await request._reject_with(426, _UPGRADE_BODY, [("Upgrade", "websocket")])
        else:
            logger.debug("%s: handler returned without accepting: answering 403", self.id)
            await request._reject_with(403, b"forbidden\n")
