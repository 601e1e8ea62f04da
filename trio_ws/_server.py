"""The WebSocket server: ``await nursery.start(serve_websocket, handler, host, port)``.

Shape of a running server (each level owns the one below it)::

    serve_websocket task ── host group ─┬─ accepting group (one task per listener)
                                        └─ session holder ── sessions group (shielded)
                                                               ├─ keepalive scheduler: one
                                                               │  task for all connections
                                                               ├─ one task per connection:
                                                               │  handshake, then handler
                                                               └─ its reader, its writer
                                                                  (on demand)

A connection's reader and writer run in the sessions group beside its session task rather
than in a task group of their own (a task group costs about 1.5 KiB per connection): each
runs under a cancel scope of its own, which the connection cancels when it closes, and the
session task closes its connection (or aborts it) before it ends.

Graceful shutdown is driven by cancellation. The sessions group sits under a shielded
cancel scope, so cancelling the scope that runs the server reaches the accepting tasks and
the ``serve_websocket`` task itself, but not the connections. That task then runs the
shutdown in a ``finally`` block (shielded, bounded by ``close_timeout``): stop accepting,
cancel the handshakes in flight (their tasks answer 503), close every open connection with
1001 concurrently, wait for the connection tasks to finish, and only then cancel the
sessions group, which aborts whatever is left. :meth:`WebSocketServer.aclose` runs the
same shutdown without any cancellation.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias, final

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from ._compression import server_factories
from ._config import ConnectionConfig, ServerOptions, resolve_options, with_options
from ._groups import open_task_group, raise_unwrapped, spawner
from ._keepalive import KeepaliveScheduler
from ._request import Session, WebSocketRequest, format_address
from ._streams import as_byte_stream
from .sansio._handshake import allowed_origins

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Mapping, Sequence

    import trio
    from anyio.abc import TaskGroup, TaskStatus
    from typing_extensions import Unpack

    from ._connection import WebSocketConnection
    from .sansio import ServerExtensionFactory

__all__ = [
    "Handler",
    "ServerOptions",
    "WebSocketServer",
    "serve_websocket",
    "serve_websocket_listeners",
    "serve_websocket_stream",
    "serve_websocket_unix",
]

logger = logging.getLogger("trio_ws.server")

#: The type of a server handler: ``async def handler(request: WebSocketRequest) -> None``.
#: Its return value is ignored; its lifetime is the connection's lifetime.
Handler: TypeAlias = Callable[[WebSocketRequest], Awaitable[object]]

# accept() errors that mean "out of resources right now": keep serving and retry a little
# later (connections closing free what is missing), as trio.serve_listeners does.
_ACCEPT_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_RETRY_DELAY = 0.1
# accept() errors about one connection that died in the backlog: just accept the next one.
_ACCEPT_SKIP_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
    """The server options, validated once."""

    config: ConnectionConfig
    extensions: Sequence[ServerExtensionFactory]
    ssl_context: ssl.SSLContext | None
    max_connections: int | None
    max_request_size: int
    origins: frozenset[str | None] | None
    allow_plain_http: bool


def _settings(options: Mapping[str, Any]) -> _Settings:
    config, own = resolve_options("server", options)
    return _Settings(
        config=config,
        extensions=tuple(server_factories(own["compression"])),
        ssl_context=own["ssl_context"],
        max_connections=own["max_connections"],
        max_request_size=own["max_request_size"],
        origins=allowed_origins(own["origins"]),
        allow_plain_http=own["allow_plain_http"],
    )


def _backlog(backlog: int | None) -> int:
    """The ``listen()`` backlog to ask for: ``None`` is as large as the system allows.

    0xFFFF, as trio's listeners: the kernel lowers it to its own limit (``somaxconn`` on
    Linux), and some systems keep it in 16 bits, where 65536 would wrap around to 0.
    """
    if backlog is None:
        return 0xFFFF
    if isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError(f"backlog must be an int or None, not {type(backlog).__name__}")
    if backlog < 1:
        raise ValueError(f"backlog must be positive, got {backlog!r}")
    return min(backlog, 0xFFFF)


@final
class WebSocketServer:
    """A running WebSocket server, as reported by ``nursery.start(serve_websocket, ...)``.

    Users never construct it: :func:`serve_websocket` and its siblings do.

    Attributes:
        listeners: The listeners the server accepts connections from.
    """

    def __init__(
        self,
        handler: Handler,
        listeners: Sequence[anyio.abc.Listener[Any]],
        settings: _Settings,
    ) -> None:
        self._handler = handler
        self.listeners: tuple[anyio.abc.Listener[Any], ...] = tuple(listeners)
        self._settings = settings
        self._sessions: set[Session] = set()
        self._port = ServerPort(self)
        self._slots_taken = 0  # sessions running their handler (for max_connections)
        self._handler_tasks: set[int] = set()  # tasks running a handler (see aclose)
        self._closing = False
        self._shutdown_requested = anyio.Event()
        self._closed = anyio.Event()
        self._idle = anyio.Event()
        self._accept_scope = anyio.CancelScope()
        # One keepalive task for every connection, while the server serves (see _keepalive).
        self._keepalive: KeepaliveScheduler | None = None
        # Where the connections' background tasks run: the sessions group.
        self._connection_tasks: TaskGroup | None = None
        self._listener_failure: BaseException | None = None
        # Read once: the answers stay meaningful (for logs, for tests) after the sockets close.
        addresses = (listener.extra(SocketAttribute.local_address, None) for listener in listeners)
        self._addresses = [address for address in addresses if address is not None]
        ports = (listener.extra(SocketAttribute.local_port, None) for listener in listeners)
        self._ports = [port for port in ports if port is not None]

    def __repr__(self) -> str:
        addresses = ", ".join(format_address(address) for address in self.addresses)
        state = "closing" if self._closing else "serving"
        return f"<WebSocketServer {state} on {addresses}, {len(self._sessions)} connections>"

    @property
    def addresses(self) -> list[Any]:
        """The local address of every listener: ``(host, port, ...)`` or a socket path."""
        return list(self._addresses)

    @property
    def sockets(self) -> list[socket.socket]:
        """The listening sockets, for listeners that have one (closed after shutdown)."""
        found = (listener.extra(SocketAttribute.raw_socket, None) for listener in self.listeners)
        return [sock for sock in found if sock is not None]

    @property
    def ports(self) -> list[int]:
        """The TCP port of every TCP listener (the real ports when 0 was asked for)."""
        return list(self._ports)

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the first one if there are several).

        Raises:
            RuntimeError: No listener is a TCP listener (a Unix socket, for example).
        """
        ports = self.ports
        if not ports:
            raise RuntimeError("this server has no TCP listener")
        return ports[0]

    @property
    def connections(self) -> list[WebSocketConnection]:
        """The WebSocket connections that are currently open (accepted and not closed).

        A connection is listed from the moment its handler calls ``request.accept()``,
        before the 101 response is written: a client whose handshake succeeded always
        finds its connection here.
        """
        found = (session.connection for session in self._sessions)
        return [
            connection for connection in found if connection is not None and not connection.closed
        ]

    @property
    def closing(self) -> bool:
        """Whether the server stopped accepting (shutting down or shut down)."""
        return self._closing

    async def aclose(self) -> None:
        """Shut the server down gracefully and wait until it is done.

        Stops accepting, answers handshakes in flight with 503, closes every open
        connection with 1001 (going away), waits at most ``close_timeout`` for the
        connections to close and their handlers to return, then aborts what is left.
        ``serve_websocket`` then returns. Idempotent.

        Called from a handler of this server (an "admin" command, say), it starts the
        shutdown and returns at once, since the shutdown waits for that very handler; the
        handler's own connection is then closed with 1001 like the others.

        Cancellation:
            Cancelling the caller stops the waiting, not the shutdown, which goes on.
        """
        self._shutdown_requested.set()
        if anyio.get_current_task().id in self._handler_tasks:
            # Waiting here would wait for this very handler to end: start the shutdown only.
            await anyio.lowlevel.checkpoint()
            return
        await self._closed.wait()

    # --- serving ------------------------------------------------------------------------

    async def _serve(self, task_status: TaskStatus[WebSocketServer]) -> None:
        try:
            async with open_task_group() as host:
                sessions: TaskGroup = await host.start(self._hold_sessions)
                host.start_soon(self._accept_all, sessions)
                task_status.started(self)
                try:
                    await self._shutdown_requested.wait()
                finally:
                    # Reached on cancellation and on aclose() alike: the one shutdown path.
                    with anyio.CancelScope(shield=True):
                        await self._shutdown(sessions)
        finally:
            with anyio.CancelScope(shield=True):
                await self._close_listeners()
            self._closed.set()
        if self._listener_failure is not None:
            raise self._listener_failure

    async def _hold_sessions(self, *, task_status: TaskStatus[TaskGroup]) -> None:
        # The shield keeps the caller's cancellation away from the connections, so that
        # _shutdown can close them with 1001; _shutdown cancels this group when it is done.
        with anyio.CancelScope(shield=True):
            async with open_task_group() as sessions:
                self._connection_tasks = sessions
                config = self._settings.config
                if config.ping_interval is not None:
                    self._keepalive = KeepaliveScheduler(config.ping_interval, config.ping_timeout)
                    sessions.start_soon(self._keepalive.run, name="trio_ws keepalive")
                task_status.started(sessions)
                await anyio.sleep_forever()

    async def _accept_all(self, sessions: TaskGroup) -> None:
        with self._accept_scope:
            async with open_task_group() as accepting:
                for listener in self.listeners:
                    accepting.start_soon(self._accept_loop, listener, sessions)

    async def _accept_loop(self, listener: anyio.abc.Listener[Any], sessions: TaskGroup) -> None:
        try:
            if hasattr(listener, "accept"):
                await self._accept_until_closed(listener, sessions)
            else:
                # A generic anyio listener (a TLSListener, ...) only has serve().
                await _serve_unwrapped(listener, self._start_session, sessions)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # closed by the shutdown, possibly before its cancellation arrived
        except OSError as exc:
            # A listener that cannot accept any more fails the whole server, after the
            # graceful shutdown of the connections it already has.
            logger.error("accept() failed, shutting the server down: %s", exc)
            if self._listener_failure is None:
                self._listener_failure = exc
            self._shutdown_requested.set()

    async def _accept_until_closed(self, listener: Any, sessions: TaskGroup) -> None:
        start_soon = spawner(sessions)
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno in _ACCEPT_SKIP_ERRNOS:
                    logger.debug("accept() skipped an aborted connection: %s", exc)
                    continue
                if exc.errno not in _ACCEPT_RESOURCE_ERRNOS:
                    raise
                logger.error("accept() failed, retrying in %ss: %s", _ACCEPT_RETRY_DELAY, exc)
                await anyio.sleep(_ACCEPT_RETRY_DELAY)
                continue
            # The session's own run() is the task: no wrapper frame stays on its stack.
            start_soon(Session(self._port, as_byte_stream(stream)).run)

    async def _close_listeners(self) -> None:
        for listener in self.listeners:
            await anyio.aclose_forcefully(listener)

    async def _start_session(self, stream: Any) -> None:
        # For listeners that only have serve().
        await Session(self._port, as_byte_stream(stream)).run()

    def _session_ended(self, session: Session) -> None:
        self._sessions.discard(session)
        if self._closing and not self._sessions:
            self._idle.set()

    def _take_slot(self) -> bool:
        limit = self._settings.max_connections
        if limit is not None and self._slots_taken >= limit:
            return False
        self._slots_taken += 1
        return True

    # --- shutdown -----------------------------------------------------------------------

    async def _shutdown(self, sessions: TaskGroup) -> None:
        """Stop accepting, close everything gracefully within close_timeout, abort the rest.

        Runs shielded, in the serve_websocket task.
        """
        if self._closing:
            return
        self._closing = True
        logger.debug("shutting down: %d connections", len(self._sessions))
        self._accept_scope.cancel()
        await self._close_listeners()
        with anyio.move_on_after(self._settings.config.close_timeout):
            async with open_task_group() as closing:
                for session in list(self._sessions):
                    connection = session.connection
                    if connection is None:
                        # A handshake in flight: cancelling it makes its task answer 503.
                        session.scope.cancel()
                    else:
                        closing.start_soon(self._going_away, session, connection)
                if self._sessions:
                    await self._idle.wait()
        for session in list(self._sessions):
            logger.debug("%s: aborted at the end of the shutdown", session.id)
            session.abort()
        sessions.cancel_scope.cancel()

    @staticmethod
    async def _going_away(session: Session, connection: WebSocketConnection) -> None:
        try:
            await connection.aclose(1001, "server shutting down")
        except Exception:  # aclose never raises by contract: this is a bug, keep going
            logger.exception("%s: closing with 1001 failed", session.id)


class ServerPort:
    """What a server's sessions (``trio_ws._request.Session``) need from it, by name."""

    __slots__ = ("_server", "handler", "settings")

    def __init__(self, server: WebSocketServer) -> None:
        self._server = server
        self.handler = server._handler
        self.settings = server._settings

    @property
    def closing(self) -> bool:
        """Whether the server stopped accepting."""
        return self._server._closing

    @property
    def connection_tasks(self) -> TaskGroup | None:
        """Where the connections' background tasks run (set before any session starts)."""
        return self._server._connection_tasks

    @property
    def keepalive(self) -> KeepaliveScheduler | None:
        """The server's keepalive scheduler, if pings are enabled."""
        return self._server._keepalive

    def session_started(self, session: Session) -> None:
        """List ``session`` (for ``connections`` and the shutdown)."""
        self._server._sessions.add(session)

    def session_ended(self, session: Session) -> None:
        """Unlist ``session``; the shutdown may be waiting for the last one."""
        self._server._session_ended(session)

    def take_slot(self) -> bool:
        """Take one of ``max_connections``; ``False`` when none is free."""
        return self._server._take_slot()

    def release_slot(self) -> None:
        """Give back a slot taken with :meth:`take_slot`."""
        self._server._slots_taken -= 1

    def handler_started(self, task_id: int) -> None:
        """The task ``task_id`` runs a handler (``aclose()`` from it must not wait)."""
        self._server._handler_tasks.add(task_id)

    def handler_ended(self, task_id: int) -> None:
        """The handler of task ``task_id`` ended."""
        self._server._handler_tasks.discard(task_id)


@with_options("server")
async def serve_websocket(
    handler: Handler,
    host: str | None,
    port: int,
    *,
    backlog: int | None = None,
    task_status: TaskStatus[WebSocketServer] = anyio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve WebSocket connections on a TCP port until cancelled.

    Use it with ``server = await nursery.start(serve_websocket, handler, host, port)``
    (a trio nursery or an anyio task group): it binds, reports the
    :class:`WebSocketServer` (whose ``port`` is the real one when ``port`` is 0), then
    serves. For each connection, ``await handler(request)`` runs in a task of its own with
    a :class:`WebSocketRequest`; the handler inspects it and calls ``request.accept()``
    (getting the :class:`WebSocketConnection`) or ``request.reject(status, ...)``.

    The handler's lifetime is the connection's lifetime:

    - when it returns, the connection is closed with 1000;
    - when it raises, the connection is closed with 1011 (or, before it accepted, the
      client gets HTTP 500) and the error is logged on the ``"trio_ws.server"`` logger
      with the connection's identity. It never reaches the server or the other
      connections. A :exc:`ConnectionClosed` that escapes the handler is the peer's
      close, not an error: it is only logged at debug level;
    - when it returns without calling ``accept()`` or ``reject()``, the client gets
      HTTP 403 Forbidden (declining is a refusal; a crash is a 500), or 426 Upgrade
      Required for a plain HTTP request (see ``allow_plain_http``).

    Shutdown is graceful and bounded: cancelling the scope that runs ``serve_websocket``
    (or ``await server.aclose()``) stops accepting, answers handshakes in flight with 503,
    closes every open connection with 1001 (handlers see :exc:`ConnectionClosed` on their
    next receive), waits at most ``close_timeout`` for the connections to close and the
    handlers to return, then cancels what is left. Then ``serve_websocket`` returns (or
    raises the cancellation).

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        host: The interface to bind: a name, an IPv4 or IPv6 address; ``None`` or ``""``
            for all interfaces (IPv4 and IPv6).
        port: The TCP port; 0 picks a free one (read it from ``server.port``).
        backlog: The listen backlog of the sockets; ``None`` (the default) for as large
            as the system allows, as trio's listeners do.
        task_status: For ``nursery.start``; receives the :class:`WebSocketServer`.
        **options: The server options (:ref:`server-option-table`) and the connection options
            (:ref:`connection-option-table`).

    Raises:
        OSError: Binding failed (before ``task_status.started``), or a listener failed
            for good while serving (raised after the graceful shutdown).
        ValueError: An invalid option.

    Cancellation:
        Cancellation is the normal way to stop the server; it triggers the graceful
        shutdown described above, which is shielded and bounded by ``close_timeout``.
        No ``ExceptionGroup`` ever leaves this function.
    """
    settings = _settings(options)
    multi = await anyio.create_tcp_listener(
        local_host=host or None, local_port=port, backlog=_backlog(backlog)
    )
    await WebSocketServer(handler, multi.listeners, settings)._serve(task_status)


@with_options("server")
async def serve_websocket_unix(
    handler: Handler,
    path: str | bytes,
    *,
    mode: int | None = None,
    backlog: int | None = None,
    task_status: TaskStatus[WebSocketServer] = anyio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve WebSocket connections on a Unix domain socket until cancelled.

    Everything works as in :func:`serve_websocket` (the handler, the shutdown, the
    ``options``). The ``remote_address`` of requests is the peer's socket name, usually
    ``""``.

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        path: The socket path to create (an existing socket file there is replaced).
        mode: Permissions to set on the socket file, e.g. ``0o600``; ``None`` keeps the
            umask's.
        backlog: The listen backlog of the socket; ``None`` for as large as the system
            allows.
        task_status: For ``nursery.start``; receives the :class:`WebSocketServer`.
        **options: As for :func:`serve_websocket`.

    Raises:
        OSError: Binding failed.
    """
    settings = _settings(options)
    listener = await anyio.create_unix_listener(path, mode=mode, backlog=_backlog(backlog))
    await WebSocketServer(handler, [listener], settings)._serve(task_status)


@with_options("server")
async def serve_websocket_listeners(
    handler: Handler,
    listeners: Iterable[anyio.abc.Listener[Any] | socket.socket | trio.abc.Listener[Any]],
    *,
    task_status: TaskStatus[WebSocketServer] = anyio.TASK_STATUS_IGNORED,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve WebSocket connections on listeners or sockets the caller already bound.

    Everything works as in :func:`serve_websocket` (the handler, the shutdown, the
    ``options``). The server owns the listeners from the call on and closes them when it
    stops (or when this call fails).

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        listeners: anyio listeners (``anyio.create_tcp_listener(...)``; a
            ``MultiListener`` is flattened), trio listeners (``trio.open_tcp_listeners``),
            or bound and listening ``socket.socket`` objects (systemd socket activation,
            a socket shared with another process...).
        task_status: For ``nursery.start``; receives the :class:`WebSocketServer`.
        **options: As for :func:`serve_websocket`.

    Raises:
        TypeError: An element of ``listeners`` is none of the above.
    """
    given = list(listeners)
    resolved: list[anyio.abc.Listener[Any]] = []
    try:
        settings = _settings(options)
        for listener in given:
            resolved.extend(await _as_listeners(listener))
    except BaseException:
        for listener in given:
            if isinstance(listener, socket.socket):
                listener.close()
            elif hasattr(listener, "aclose"):
                with anyio.CancelScope(shield=True), anyio.move_on_after(0):
                    await listener.aclose()  # forcefully: cancelled at its first checkpoint
        raise
    await WebSocketServer(handler, resolved, settings)._serve(task_status)


async def _serve_unwrapped(
    listener: anyio.abc.Listener[Any], handler: Callable[[Any], Awaitable[None]], group: TaskGroup
) -> None:
    """``listener.serve(handler, group)``, with its errors as themselves.

    A listener made of several (a ``MultiListener``, maybe under a ``TLSListener``) serves
    them in a task group of its own, so closing it raises a group of ``ClosedResourceError``.
    """
    try:
        await listener.serve(handler, group)
    except BaseExceptionGroup as errors:
        _, rest = errors.split((anyio.ClosedResourceError, anyio.BrokenResourceError))
        if rest is None:
            raise anyio.ClosedResourceError from errors
        raise_unwrapped(rest)


async def _as_listeners(listener: object) -> list[anyio.abc.Listener[Any]]:
    if isinstance(listener, socket.socket):
        return [await anyio.abc.SocketListener.from_socket(listener)]
    if isinstance(listener, MultiListener):
        return list(listener.listeners)
    if isinstance(listener, anyio.abc.Listener):
        return [listener]
    trio_module = sys.modules.get("trio")
    if trio_module is not None and isinstance(listener, trio_module.abc.Listener):
        return [_TrioListener(listener)]
    raise TypeError(
        "expected an anyio Listener, a trio Listener or a listening socket, "
        f"got {type(listener).__name__}"
    )


class _TrioListener(anyio.abc.Listener[anyio.abc.ByteStream]):
    """A ``trio.abc.Listener`` seen as an anyio listener with ``accept()``."""

    def __init__(self, listener: Any) -> None:
        self._listener = listener

    async def accept(self) -> anyio.abc.ByteStream:
        import trio

        try:
            stream = await self._listener.accept()
        except trio.ClosedResourceError as exc:
            raise anyio.ClosedResourceError from exc
        return as_byte_stream(stream)

    async def serve(self, handler: Any, task_group: TaskGroup | None = None) -> None:
        raise NotImplementedError  # the server only calls accept()

    async def aclose(self) -> None:
        await self._listener.aclose()

    @property
    def extra_attributes(self) -> Any:
        sock = getattr(self._listener, "socket", None)
        if sock is None:
            return {}
        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.raw_socket: lambda: sock,
            SocketAttribute.local_address: sock.getsockname,
            SocketAttribute.family: lambda: sock.family,
        }
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attributes[SocketAttribute.local_port] = lambda: sock.getsockname()[1]
        return attributes


@with_options("server")
async def serve_websocket_stream(
    handler: Handler,
    stream: anyio.abc.ByteStream | trio.abc.Stream,
    **options: Unpack[ServerOptions],
) -> None:
    """Serve one WebSocket connection over a byte stream the caller already accepted.

    The server side of one connection, without a listener: read the request from
    ``stream``, run ``await handler(request)``, close the connection. Everything works as
    for one connection of :func:`serve_websocket` (the handler's answer, the close codes,
    errors logged and never raised). Returns once the connection is closed. Useful for a
    transport trio_ws does not listen on itself (a stream handed over by another server,
    a proxy, an in-memory stream in tests: see :func:`trio_ws.testing.memory_stream_pair`).

    Args:
        handler: ``async def handler(request: WebSocketRequest)``.
        stream: An ``anyio.abc.ByteStream`` or a ``trio.abc.Stream``, owned and closed by
            this call. With ``ssl_context``, the server side of TLS runs over it.
        **options: As for :func:`serve_websocket` (``max_connections`` has no use here).

    Raises:
        TypeError: ``stream`` is not a byte stream.
        ValueError: An invalid option.

    Cancellation:
        Cancelling the call closes the connection with 1001 (going away), or answers 503
        if the handler has not answered the request yet, bounded by ``close_timeout``;
        then the cancellation propagates.
    """
    byte_stream = as_byte_stream(stream)
    try:
        settings = _settings(options)
    except BaseException:
        await anyio.aclose_forcefully(byte_stream)
        raise
    server = WebSocketServer(handler, [], settings)
    session = Session(server._port, byte_stream)
    # The connection's reader and writer run beside the session, as in a server.
    async with open_task_group() as server._connection_tasks:
        await session.run()
