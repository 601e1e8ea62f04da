"""One stream type inside trio_ws: ``anyio.abc.ByteStream``.

A connection runs over any byte stream: TCP, TLS, a Unix socket, an in-memory pipe.
anyio's own streams are used as they are; a ``trio.abc.Stream`` (``trio.SocketStream``,
``trio.SSLStream``, ``trio.testing`` streams...) is wrapped so that it behaves like one.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ByteStream, SocketAttribute

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import trio

__all__ = ["TrioStreamAdapter", "as_byte_stream"]


class TrioStreamAdapter(ByteStream):
    """A ``trio.abc.Stream`` seen as an ``anyio.abc.ByteStream``.

    trio signals end of stream with ``b""`` and raises trio's resource errors; anyio raises
    :exc:`anyio.EndOfStream` and its own resource errors. This adapter translates one into
    the other, and exposes the socket addresses of a ``trio.SocketStream`` (also under TLS)
    as anyio typed attributes.
    """

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.trio_stream = stream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive at most ``max_bytes``; raise :exc:`anyio.EndOfStream` at EOF."""
        import trio

        try:
            data = await self.trio_stream.receive_some(max_bytes)
        except trio.BrokenResourceError as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc
        except trio.ClosedResourceError as exc:
            raise anyio.ClosedResourceError(str(exc)) from exc
        except trio.BusyResourceError as exc:
            raise anyio.BusyResourceError("receiving") from exc
        if not data:
            raise anyio.EndOfStream
        return bytes(data)

    async def send(self, item: bytes) -> None:
        """Send all of ``item``."""
        import trio

        try:
            await self.trio_stream.send_all(item)
        except trio.BrokenResourceError as exc:
            raise anyio.BrokenResourceError(str(exc)) from exc
        except trio.ClosedResourceError as exc:
            raise anyio.ClosedResourceError(str(exc)) from exc
        except trio.BusyResourceError as exc:
            raise anyio.BusyResourceError("sending") from exc

    async def send_eof(self) -> None:
        """Half-close the stream if it supports it; otherwise do nothing."""
        import trio

        if isinstance(self.trio_stream, trio.abc.HalfCloseableStream):
            try:
                await self.trio_stream.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self.trio_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """``SocketAttribute.local_address`` / ``remote_address`` when there is a socket."""
        import trio

        inner: object = self.trio_stream
        while isinstance(inner, trio.SSLStream):
            inner = inner.transport_stream
        if not isinstance(inner, trio.SocketStream):
            return {}
        sock = inner.socket
        return {
            SocketAttribute.local_address: sock.getsockname,
            SocketAttribute.remote_address: sock.getpeername,
        }


def as_byte_stream(stream: object) -> ByteStream:
    """Return ``stream`` as an ``anyio.abc.ByteStream``, wrapping a trio stream if needed.

    Raises:
        TypeError: ``stream`` is neither an anyio byte stream nor a trio stream.
    """
    if isinstance(stream, ByteStream):
        return stream
    # Only look at trio if it is already in use: a trio stream cannot exist otherwise.
    trio_module = sys.modules.get("trio")
    if trio_module is not None and isinstance(stream, trio_module.abc.Stream):
        return TrioStreamAdapter(stream)
    raise TypeError(
        f"expected an anyio.abc.ByteStream or a trio.abc.Stream, got {type(stream).__name__}"
    )
