"""Connection-wide policy: limits and timeouts, validated once, shared by client and server.

Per-operation calls (``send_message``, ``get_message``, ``ping``) take no ``timeout=``:
wrap them in a cancel scope (``trio.move_on_after``) instead. Only policies that belong to
the connection as a whole live here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_WRITE_HIGH_WATER",
    "ConnectionConfig",
    "ConnectionOptions",
    "connection_config",
]

# The defaults of the connection options, written once: ConnectionConfig and the explicit
# signatures of serve_websocket and connect_websocket refer to these names.
DEFAULT_MAX_MESSAGE_SIZE = 2**20
DEFAULT_MAX_QUEUE = 16
DEFAULT_WRITE_HIGH_WATER = 2**16
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
DEFAULT_CLOSE_TIMEOUT = 10.0
DEFAULT_OPEN_TIMEOUT = 10.0


def _check_positive(name: str, value: float | None, *, allow_none: bool) -> None:
    if value is None:
        if not allow_none:
            raise ValueError(f"{name} must not be None")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """The connection-wide policy of one WebSocket connection.

    Attributes:
        max_message_size: The largest incoming message, in bytes after decompression;
            a bigger one fails the connection with 1009. ``None`` for no limit.
        max_queue: How many received messages may wait for ``get_message()``; when the
            queue is full the connection stops reading the socket, so TCP pushes back.
        write_high_water: How many outgoing bytes may wait to be written before
            ``send_message()`` waits for the writer to catch up.
        ping_interval: Seconds between keepalive pings; ``None`` disables keepalive.
        ping_timeout: Seconds to wait for a keepalive pong (any received byte counts as a
            sign of life) before failing the connection with 1011; ``None`` waits forever.
        close_timeout: Seconds to wait for the closing handshake (and, on a client, for
            the server to close TCP) before aborting the connection.
        open_timeout: Seconds allowed for connecting and the opening handshake.
        decode_text: Whether text messages are returned as ``str`` (``True``) or as the
            raw UTF-8 ``bytes`` (still validated), for relays that never look inside.
    """

    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_queue: int = DEFAULT_MAX_QUEUE
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    open_timeout: float = DEFAULT_OPEN_TIMEOUT
    decode_text: bool = True

    def __post_init__(self) -> None:
        _check_positive("max_message_size", self.max_message_size, allow_none=True)
        _check_positive("max_queue", self.max_queue, allow_none=False)
        _check_positive("write_high_water", self.write_high_water, allow_none=False)
        _check_positive("ping_interval", self.ping_interval, allow_none=True)
        _check_positive("ping_timeout", self.ping_timeout, allow_none=True)
        _check_positive("close_timeout", self.close_timeout, allow_none=False)
        _check_positive("open_timeout", self.open_timeout, allow_none=False)
        for name in ("max_message_size", "max_queue", "write_high_water"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")


class ConnectionOptions(TypedDict, total=False):
    """The connection options that every client and server function accepts.

    One keyword argument per field of :class:`ConnectionConfig`, with the same meaning and
    default; :class:`~trio_ws.ClientOptions` and :class:`~trio_ws.ServerOptions` extend it.
    """

    max_message_size: int | None
    max_queue: int
    write_high_water: int
    ping_interval: float | None
    ping_timeout: float | None
    close_timeout: float
    open_timeout: float
    decode_text: bool


_CONFIG_FIELDS = frozenset(field.name for field in fields(ConnectionConfig))


def connection_config(options: Mapping[str, Any]) -> ConnectionConfig:
    """The :class:`ConnectionConfig` of the connection options a public function was given.

    Options left out take :class:`ConnectionConfig`'s defaults.

    Raises:
        TypeError: An unknown option, or an option of the wrong type.
        ValueError: An option out of range.
    """
    unknown = set(options).difference(_CONFIG_FIELDS)
    if unknown:
        names = ", ".join(repr(name) for name in sorted(unknown))
        raise TypeError(f"unexpected option(s): {names}")
    return ConnectionConfig(**options)
