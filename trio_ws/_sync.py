"""A blocking client for scripts and threads: the async client in an event-loop thread.

``connect_sync()`` starts an event loop (trio by default) in a background thread through
anyio's blocking portal, opens the connection there with :func:`open_websocket_url`, and
hands back a :class:`SyncConnection` whose methods block the calling thread until the
loop has done the work. The connection's lifetime is the ``with`` block's, as with the
async client.
"""

from __future__ import annotations

import collections
import sys
import threading
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from anyio.from_thread import start_blocking_portal

from ._client import open_websocket_url
from ._config import with_options
from .sansio._errors import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from contextlib import AbstractContextManager
    from types import TracebackType

    from anyio.from_thread import BlockingPortal
    from typing_extensions import Self, Unpack

    from ._config import ClientOptions
    from ._connection import WebSocketConnection

__all__ = ["SyncConnection", "connect_sync"]

_T = TypeVar("_T")

#: How long an interrupted call waits for its cancelled task to end (it ends at once
#: unless the event loop is blocked).
_CANCEL_WAIT = 5.0


async def _get_with_timeout(ws: WebSocketConnection, seconds: float | None) -> str | bytes:
    # The blocking API takes a timeout argument (there are no cancel scopes in threads).
    with anyio.fail_after(seconds):  # None: no deadline
        return await ws.get_message()


class SyncConnection:
    """A WebSocket connection used from ordinary (non-async) code. Made by :func:`connect_sync`.

    One thread may send while another receives; each call blocks only its own thread.
    Closed by :meth:`close` or by leaving the ``with`` block, on an exception too
    (``KeyboardInterrupt`` included): the close handshake runs (bounded by
    ``close_timeout``), then the event-loop thread ends.
    """

    def __init__(
        self,
        portal_manager: AbstractContextManager[BlockingPortal],
        portal: BlockingPortal,
        connection_manager: AbstractContextManager[WebSocketConnection],
        ws: WebSocketConnection,
    ) -> None:
        self._portal_manager = portal_manager
        self._portal: BlockingPortal | None = portal
        self._connection_manager = connection_manager
        self._ws = ws
        self._close_lock = threading.Lock()
        # Messages a receive got just as the caller was interrupted (see _call).
        self._late: collections.deque[str | bytes] = collections.deque()

    def _call(self, func: Callable[..., Awaitable[_T]], *args: Any, keep_late: bool = False) -> _T:
        portal = self._portal
        if portal is None:
            raise self._closed_error()
        finished = threading.Event()

        async def run() -> _T:
            try:
                return await func(*args)
            finally:
                finished.set()

        try:
            future = portal.start_task_soon(run)
        except RuntimeError:  # the loop stopped meanwhile (closed from another thread)
            raise self._closed_error() from None
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt (or any exception) in this thread while the loop works:
            # the task is cancelled, not left running behind the caller's back, and the
            # next call starts only once it has ended.
            if not future.cancel() and keep_late and future.exception() is None:
                # It finished just before it could be cancelled: keep what it got.
                self._late.append(future.result())  # type: ignore[arg-type]
            finished.wait(_CANCEL_WAIT)
            raise

    def _closed_error(self) -> ConnectionClosed:
        code = self._ws.close_code or 1006
        reason = self._ws.close_reason or ""
        kind = ConnectionClosedOK if code in (1000, 1001, 1005) else ConnectionClosedError
        return kind(code, reason)

    def send(self, message: str | bytes, *, text: bool | None = None) -> None:
        """Send a message; see :meth:`WebSocketConnection.send_message`.

        Blocks while the connection's write buffer is above its high-water mark.

        Raises:
            ConnectionClosed: The connection is closed.
        """
        if text is None:
            self._call(self._ws.send_message, message)
        else:
            self._call(lambda: self._ws.send_message(message, text=text))

    def recv(self, timeout: float | None = None) -> str | bytes:
        """Wait for the next message, at most ``timeout`` seconds (``None``: no limit).

        Raises:
            TimeoutError: No message came in time (nothing is lost: the next call gets it).
            ConnectionClosed: The connection is closed.
        """
        if self._late:
            return self._late.popleft()
        return self._call(_get_with_timeout, self._ws, timeout, keep_late=True)

    def ping(self, payload: bytes = b"") -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds."""
        return self._call(self._ws.ping, payload)

    def __iter__(self) -> Iterator[str | bytes]:
        """Each message until the connection closes normally (an abnormal close raises)."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (the close handshake, bounded by ``close_timeout``) and end
        the event-loop thread. Idempotent; safe to call from any thread."""
        with self._close_lock:
            portal = self._portal
            if portal is None:
                return
            try:
                self._call(self._ws.aclose, code, reason)
            finally:
                self._portal = None
                try:
                    self._connection_manager.__exit__(None, None, None)
                finally:
                    self._portal_manager.__exit__(None, None, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # 1000 after a normal exit, 1011 ("internal error") when an exception leaves the
        # block, 1001 ("going away") on KeyboardInterrupt.
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(1001, "interrupted")
        else:
            self.close(1011, "")

    @property
    def closed(self) -> bool:
        """Whether the connection is closed."""
        return self._portal is None or self._ws.closed

    @property
    def close_code(self) -> int | None:
        """The close code, once closed; see :attr:`WebSocketConnection.close_code`."""
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        """The close reason, once closed."""
        return self._ws.close_reason

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose, if any."""
        return self._ws.subprotocol

    @property
    def connection(self) -> WebSocketConnection:
        """The async connection underneath (only to be used from the event-loop thread)."""
        return self._ws


@with_options("client")
def connect_sync(
    url: str, *, backend: str = "trio", **options: Unpack[ClientOptions]
) -> SyncConnection:
    """Connect to ``url`` from ordinary code; the connection runs in a background thread.

    ::

        with connect_sync("wss://example.com/feed") as ws:
            ws.send("hello")
            print(ws.recv(timeout=10))

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        backend: The event loop of the background thread: ``"trio"`` or ``"asyncio"``.
        **options: As for :func:`open_websocket_url` (``open_timeout`` bounds the
            connection and the handshake).

    Raises:
        The errors of :func:`open_websocket_url` (``OSError``, :exc:`ConnectionRejected`,
        :exc:`HandshakeTimeout`, :exc:`InvalidURL`, ...).
    """
    portal_manager = start_blocking_portal(backend)
    portal = portal_manager.__enter__()
    try:
        connection_manager = portal.wrap_async_context_manager(open_websocket_url(url, **options))
        ws = connection_manager.__enter__()
    except BaseException:
        portal_manager.__exit__(*sys.exc_info())
        raise
    return SyncConnection(portal_manager, portal, connection_manager, ws)
