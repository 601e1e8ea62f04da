"""A client that reconnects: ``async with reconnecting(url) as attempts: async for ws in attempts``.

The ``async with`` owns the task group the connections run in, so no connection outlives
the block, and nothing is yielded from inside a task group by an async generator: the
iterator is an ordinary object whose ``__anext__`` closes the previous connection, waits
out the backoff, and connects again.

Which failures are worth another attempt: the network (refused, unreachable, reset, a
timed-out handshake) and the server saying "later" (5xx, 429). Everything else is a
mistake that another attempt would repeat (a 4xx answer, a certificate that does not
verify, a bad URL or option) and ends the loop with its error at once.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import ssl
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from ._client import connect_websocket_url
from ._config import resolve_options, with_options
from ._groups import open_task_group
from ._url import parse_url
from .sansio._errors import (
    ConnectionRejected,
    HandshakeTimeout,
    InvalidHandshake,
    ProxyError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anyio.abc import TaskGroup
    from typing_extensions import Self, Unpack

    from ._config import ClientOptions
    from ._connection import WebSocketConnection

__all__ = ["Backoff", "Reconnecting", "reconnecting"]

logger = logging.getLogger("trio_ws.client")

# SOCKS5 replies that describe the network, not a refusal by rule (RFC 1928 section 6):
# general failure, network or host unreachable, connection refused, TTL expired.
_TRANSIENT_SOCKS_REPLIES = frozenset({1, 3, 4, 5, 6})


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """How long :func:`reconnecting` waits between attempts: exponential, with jitter.

    After the n-th failure in a row the wait is ``initial_delay * factor ** (n - 1)``,
    capped at ``max_delay``, then shortened by a random fraction of at most ``jitter`` (so
    that many clients that lost the same server do not all come back at the same instant).
    A connection that stayed open ``reset_after`` seconds or more starts the count again:
    the next attempt is immediate.

    Attributes:
        initial_delay: Seconds before the first retry.
        factor: How much longer each further wait is.
        max_delay: The longest wait, also the cap on a server's ``Retry-After``.
        jitter: The largest fraction (0 to 1) taken off each wait at random.
        reset_after: Seconds a connection must live to count as a success.
    """

    initial_delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.5
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        for name in ("initial_delay", "factor", "max_delay", "jitter", "reset_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if math.isnan(value) or value < 0:
                raise ValueError(f"{name} must be zero or more, got {value!r}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1, got {self.factor!r}")
        if self.jitter > 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")
        if self.max_delay < self.initial_delay:
            raise ValueError("max_delay must not be smaller than initial_delay")

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (``0``: none), jitter included."""
        if failures <= 0:
            return 0.0
        # min() first: factor ** a large count overflows a float.
        exponent = min(failures - 1, 1024)
        try:
            base = min(self.max_delay, self.initial_delay * self.factor**exponent)
        except OverflowError:
            base = self.max_delay
        return base * (1.0 - self.jitter * random.random())


def _retry_after(rejected: ConnectionRejected) -> float | None:
    """The seconds a 429 or 503 answer asks the client to wait, if it says."""
    value = rejected.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_transient(exc: BaseException) -> bool:
    """Whether another attempt could succeed where ``exc`` failed."""
    if isinstance(exc, ConnectionRejected):
        return exc.status_code >= 500 or exc.status_code == 429
    if isinstance(exc, HandshakeTimeout):
        return True
    if isinstance(exc, InvalidHandshake):
        # The connection broke mid-handshake (a restarting server); a malformed answer
        # would be malformed again.
        return exc.__cause__ is not None
    if isinstance(exc, ProxyError):
        if exc.status_code is not None:
            return exc.status_code >= 500 or exc.status_code == 429
        return exc.reply is None or exc.reply in _TRANSIENT_SOCKS_REPLIES
    if isinstance(exc, ssl.SSLCertVerificationError):
        return False  # the same certificate would fail again
    return isinstance(exc, (OSError, anyio.BrokenResourceError, anyio.EndOfStream))


class Reconnecting:
    """The connections of :func:`reconnecting`, one after another, as an async iterator.

    Each step closes the previous connection if it is still open, waits as the
    :class:`Backoff` says, and connects again until it succeeds, raising the error of an
    attempt that cannot succeed by retrying (or of the last one, after ``max_attempts``).
    """

    def __init__(
        self,
        task_group: TaskGroup,
        url: str,
        backoff: Backoff,
        max_attempts: int | None,
        options: ClientOptions,
    ) -> None:
        self._task_group = task_group
        self._url = url
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._options = options
        self._connection: WebSocketConnection | None = None
        self._connected_at = 0.0
        self._failures = 0
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """How many connection attempts were made so far, successful or not."""
        return self._attempts

    @property
    def connection(self) -> WebSocketConnection | None:
        """The connection last handed out, while the iterator holds it."""
        return self._connection

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WebSocketConnection:
        delay = 0.0
        if self._connection is not None:
            lived = anyio.current_time() - self._connected_at
            code = self._connection.close_code
            await self._close_current(1000)
            if lived >= self._backoff.reset_after:
                self._failures = 0
            else:
                # Accepted, then dropped at once: count it, or a server that accepts and
                # closes would be hammered in a tight loop.
                self._failures += 1
                delay = self._backoff.delay(self._failures)
            logger.info(
                "connection to %s ended (code %s) after %.1f s; reconnecting in %.1f s",
                self._url,
                code,
                lived,
                delay,
            )
        while True:
            if delay > 0:
                await anyio.sleep(delay)
            else:
                await anyio.lowlevel.checkpoint()
            self._attempts += 1
            try:
                ws = await connect_websocket_url(self._task_group, self._url, **self._options)
            except Exception as exc:
                if not _is_transient(exc):
                    logger.warning(
                        "connection attempt %d to %s failed for good: %s",
                        self._attempts,
                        self._url,
                        exc,
                    )
                    raise
                self._failures += 1
                if self._max_attempts is not None and self._failures >= self._max_attempts:
                    logger.warning(
                        "connection attempt %d to %s failed: %s; giving up after %d in a row",
                        self._attempts,
                        self._url,
                        exc,
                        self._failures,
                    )
                    raise
                delay = self._backoff.delay(self._failures)
                if isinstance(exc, ConnectionRejected):
                    asked = _retry_after(exc)
                    if asked is not None:
                        delay = max(delay, min(asked, self._backoff.max_delay))
                logger.warning(
                    "connection attempt %d to %s failed: %s; retrying in %.1f s",
                    self._attempts,
                    self._url,
                    exc,
                    delay,
                )
                continue
            logger.info("connected to %s (attempt %d)", self._url, self._attempts)
            self._connection = ws
            self._connected_at = anyio.current_time()
            return ws

    async def _close_current(self, code: int) -> None:
        ws, self._connection = self._connection, None
        if ws is not None:
            await ws.aclose(code)


@with_options("client")
@asynccontextmanager
async def reconnecting(
    url: str,
    *,
    backoff: Backoff | None = None,
    max_attempts: int | None = None,
    **options: Unpack[ClientOptions],
) -> AsyncIterator[Reconnecting]:
    """Connect to ``url``, and connect again whenever the connection ends.

    ::

        async with reconnecting("wss://example.com/feed") as attempts:
            async for ws in attempts:
                try:
                    async for message in ws:
                        print(message)
                except ConnectionClosed:
                    pass  # dropped: the next step reconnects

    Each step of the loop gives a new open connection, after closing the previous one
    (with 1000) and waiting as ``backoff`` says. Leaving the block closes the current
    connection (1000, 1001 for a cancellation, 1011 for an error). Cancelling the block
    stops a wait or an attempt at once. Every attempt is logged on ``trio_ws.client``.

    Retried: network errors, handshake timeouts, a connection broken mid-handshake, and
    5xx and 429 answers (waiting at least their ``Retry-After``, up to
    ``backoff.max_delay``). Raised at once: other HTTP answers (401, 403, 404, ...), a
    redirect that is not followed, a TLS certificate that does not verify, and bad
    arguments.

    Args:
        url: A ``ws://`` or ``wss://`` URL.
        backoff: The waits between attempts; :class:`Backoff` ``()`` by default (1 s,
            doubling up to 60 s, with jitter).
        max_attempts: Give up after this many failed attempts in a row, raising the last
            error; ``None`` (the default) never gives up.
        **options: As for :func:`open_websocket_url`, for every attempt.

    Raises:
        InvalidURL: ``url`` is not a valid WebSocket URL.
        ValueError: An invalid option.
        HandshakeError: As for :func:`connect_websocket`, when retrying cannot help.
        OSError: As for :func:`connect_websocket`, once ``max_attempts`` is reached.
    """
    parse_url(url)  # a bad URL fails here, not on the first attempt
    resolve_options("client", options)  # so do bad options
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
    ):
        raise ValueError(f"max_attempts must be a positive int or None, got {max_attempts!r}")
    if backoff is not None and not isinstance(backoff, Backoff):
        raise TypeError(f"backoff must be a Backoff, not {type(backoff).__name__}")
    async with open_task_group() as task_group:
        attempts = Reconnecting(task_group, url, backoff or Backoff(), max_attempts, options)
        try:
            yield attempts
        except anyio.get_cancelled_exc_class():
            await attempts._close_current(1001)  # aclose() shields the close handshake
            raise
        except BaseException:
            await attempts._close_current(1011)
            raise
        await attempts._close_current(1000)
