"""Every use trio_ws makes of private APIs of anyio (and its backends), in one place.

The fast paths of the I/O layer need a few things that anyio does not expose publicly.
They are all read here, each one checked for the shape trio_ws relies on, and each one
answers ``None`` when the shape is not there (a newer anyio, another stream class): the
caller then takes the generic path, built on public APIs only. ``tests/test_private_apis.py``
checks the installed versions against this contract.

Setting the environment variable ``TRIO_WS_FAST_PATHS=0`` turns every fast path off (read
once, at import): the whole suite runs that way in the ``tests_generic`` nox session.

What is used, and why:

- which class a stream is (``anyio._backends._trio.SocketStream`` and its Unix twin): on
  trio such a stream holds nothing but its socket, so trio_ws may call the socket directly
  (``SocketAttribute.raw_socket`` is public, the guarantee that nothing else is buffered
  is not);
- on asyncio, the stream's ``_transport`` and ``_protocol`` (with the protocol's
  ``read_queue``, ``read_event`` and ``is_at_eof``), to write to the transport and take the
  received chunks without the per-call pause/resume of ``SocketStream.receive``; and, for
  a server connection, to put ``_reader.CallbackReader`` in the protocol's place (with the
  transport's public ``set_protocol``) while the connection is open, passing the writing
  callbacks on to anyio's protocol and giving it back its place afterwards;
- ``anyio._core._eventloop.get_async_backend``, for the backend's own
  ``checkpoint_if_cancelled`` and ``checkpoint`` bound once (anyio's public functions find
  the backend on every call);
- the memory BIOs of anyio's ``TLSStream`` (``_read_bio``, ``_write_bio``; the
  ``ssl.SSLObject`` itself is public, as ``TLSAttribute.ssl_object``), so that TLS over
  anyio's socket streams takes the same direct path as plain TCP (see
  ``_transport.TLSSocketIO`` and ``_transport.TransportTLSIO``);
- the ``_nursery`` of anyio's trio task group, to start background tasks without anyio's
  per-task handle (about a KiB per task).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

from anyio.abc import ByteStream
from anyio.streams.tls import TLSAttribute, TLSStream

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "FAST_PATHS",
    "anyio_tls_parts",
    "asyncio_stream_parts",
    "backend_checkpoint",
    "backend_checkpoint_if_cancelled",
    "is_anyio_trio_socket_stream",
    "trio_nursery",
]

#: Whether the fast paths are on (``TRIO_WS_FAST_PATHS=0`` turns them off).
FAST_PATHS = os.environ.get("TRIO_WS_FAST_PATHS", "1").strip() not in {"0", "false", "no"}

_ANYIO_SOCKET_STREAMS = frozenset({"SocketStream", "UNIXSocketStream"})


def _anyio_socket_stream_backend(stream: object) -> str | None:
    cls = type(stream)
    if cls.__name__ not in _ANYIO_SOCKET_STREAMS:
        return None
    module = cls.__module__
    if module == "anyio._backends._trio":
        return "trio"
    if module == "anyio._backends._asyncio":
        return "asyncio"
    return None


def is_anyio_trio_socket_stream(stream: ByteStream) -> bool:
    """Whether ``stream`` is anyio's own socket stream on trio (nothing but its socket)."""
    return FAST_PATHS and _anyio_socket_stream_backend(stream) == "trio"


def asyncio_stream_parts(stream: ByteStream) -> tuple[asyncio.WriteTransport, Any] | None:
    """The asyncio transport of anyio's socket stream, and its protocol when its reading
    shape is the one ``_reader`` knows (``None`` in the pair otherwise); ``None`` when
    ``stream`` is not such a stream."""
    if not FAST_PATHS or _anyio_socket_stream_backend(stream) != "asyncio":
        return None
    transport = getattr(stream, "_transport", None)
    if not isinstance(transport, asyncio.WriteTransport):
        return None
    protocol = getattr(stream, "_protocol", None)
    if not (
        isinstance(transport, asyncio.Transport)
        and isinstance(getattr(protocol, "read_queue", None), deque)
        and isinstance(getattr(protocol, "read_event", None), asyncio.Event)
        and hasattr(protocol, "is_at_eof")
    ):
        protocol = None
    return transport, protocol


def anyio_tls_parts(
    stream: ByteStream,
) -> tuple[ByteStream, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO, bool] | None:
    """The wrapped stream, the ``SSLObject``, its incoming and outgoing BIOs and the
    ``standard_compatible`` flag of anyio's ``TLSStream``; ``None`` when ``stream`` is not
    one of that shape."""
    if not FAST_PATHS:
        return None
    if type(stream) is not TLSStream:
        return None
    ssl_object = getattr(stream, "_ssl_object", None)
    incoming = getattr(stream, "_read_bio", None)
    outgoing = getattr(stream, "_write_bio", None)
    if not (
        isinstance(ssl_object, ssl.SSLObject)
        and isinstance(incoming, ssl.MemoryBIO)
        and isinstance(outgoing, ssl.MemoryBIO)
        and ssl_object is stream.extra(TLSAttribute.ssl_object, None)
        and not getattr(stream, "_broken", False)
    ):
        return None
    transport = stream.transport_stream
    if not isinstance(transport, ByteStream):
        return None
    return transport, ssl_object, incoming, outgoing, bool(stream.standard_compatible)


def backend_checkpoint_if_cancelled() -> Callable[[], Awaitable[None]] | None:
    """anyio's running backend's own ``checkpoint_if_cancelled``, or ``None``."""
    return _backend_method("checkpoint_if_cancelled")


def backend_checkpoint() -> Callable[[], Awaitable[None]] | None:
    """anyio's running backend's own ``checkpoint``, or ``None``."""
    return _backend_method("checkpoint")


def _backend_method(name: str) -> Callable[[], Awaitable[None]] | None:
    if not FAST_PATHS:
        return None
    try:
        from anyio._core._eventloop import get_async_backend

        method: Callable[[], Awaitable[None]] = getattr(get_async_backend(), name)
    except Exception:  # another anyio layout, or no loop running
        return None
    return method


def trio_nursery(task_group: object) -> Any:
    """The trio nursery inside anyio's trio task group, or ``None``."""
    if not FAST_PATHS or type(task_group).__module__ != "anyio._backends._trio":
        return None
    nursery = getattr(task_group, "_nursery", None)
    start_soon = getattr(nursery, "start_soon", None)
    return nursery if callable(start_soon) else None
