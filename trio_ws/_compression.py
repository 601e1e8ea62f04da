"""The ``compression`` option of the server and client functions.

``compression="deflate"`` (the default) negotiates permessage-deflate (RFC 7692) with the
tuned defaults of :mod:`trio_ws.sansio.extensions.permessage_deflate`; ``None`` turns it
off; a :class:`Compression` object sets the level, windows, memory level, threshold and
context takeover. The same object works on both sides: "this side" is the side it is given
to, "the peer" the other one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, final

from .sansio.extensions.permessage_deflate import (
    ClientPerMessageDeflate,
    ServerPerMessageDeflate,
)

if TYPE_CHECKING:
    from .sansio import ClientExtensionFactory, ServerExtensionFactory

__all__ = ["Compression", "client_factories", "server_factories"]

# The server's default windows: a quarter of zlib's memory for 9-14 % larger output (see
# the permessage_deflate module for the measurements).
_SERVER_DEFAULT_WINDOW_BITS = 12


def _check_int(name: str, value: object, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value!r}")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Compression:
    """Settings of permessage-deflate (RFC 7692), for the ``compression`` option.

    Pass it to :func:`~trio_ws.serve_websocket` or to a client function in place of
    ``"deflate"``; every field left out keeps the default that ``"deflate"`` uses. Example::

        compression = Compression(level=6, max_window_bits=15, peer_max_window_bits=15)
        await nursery.start(partial(serve_websocket, compression=compression), handler, None, 8000)

    Whatever the settings, a connection that stays idle for a whole keepalive interval
    (``ping_interval``) frees its zlib state, keeping only the last window of data of each
    direction to rebuild it when messages resume (for the decompressor, only when the
    peer's window is at most 12 bits).

    Attributes:
        level: zlib compression level of sent messages, 0 (store only) to 9 (smallest),
            -1 for zlib's default (6). The default, 1, is the fastest.
        mem_level: zlib memory level of the compressor, 1 to 9: larger hash tables, a bit
            smaller output, more memory (default 5).
        min_size: Messages shorter than this many bytes are sent uncompressed unless
            ``send_message(..., compress=True)`` asks otherwise (default 64).
        max_window_bits: The window this side compresses with, as a power of two (8 to
            15). ``None``: 12 (4 KiB) on a server; on a client, 15 unless the server asks
            for less.
        peer_max_window_bits: The window to ask the peer to compress with (8 to 15); a
            smaller window saves this side's decompression memory. ``None``: a server asks
            for 12 when the client allows it; a client lets the server choose.
        no_context_takeover: Compress each sent message on its own (less memory between
            messages, larger output for similar messages), and announce it.
        peer_no_context_takeover: Ask the peer to compress each message on its own, so
            that this side can free its decompressor between messages. A server requires
            it; a client asks for it, and fails the handshake if the server refuses.

    Raises:
        ValueError: A setting is out of range.
        TypeError: A setting is not an int (or a bool for the flags).
    """

    level: int = 1
    mem_level: int = 5
    min_size: int = 64
    max_window_bits: int | None = None
    peer_max_window_bits: int | None = None
    no_context_takeover: bool = False
    peer_no_context_takeover: bool = False

    def __post_init__(self) -> None:
        _check_int("level", self.level, -1, 9)
        _check_int("mem_level", self.mem_level, 1, 9)
        _check_int("min_size", self.min_size, 0, None)
        for name in ("max_window_bits", "peer_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None:
                _check_int(name, bits, 8, 15)
        for name in ("no_context_takeover", "peer_no_context_takeover"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool")

    def server_factory(self) -> ServerPerMessageDeflate:
        """The sans-IO negotiation object a server uses for these settings."""
        return ServerPerMessageDeflate(
            server_no_context_takeover=self.no_context_takeover,
            client_no_context_takeover=self.peer_no_context_takeover,
            server_max_window_bits=(
                _SERVER_DEFAULT_WINDOW_BITS
                if self.max_window_bits is None
                else self.max_window_bits
            ),
            client_max_window_bits=(
                _SERVER_DEFAULT_WINDOW_BITS
                if self.peer_max_window_bits is None
                else self.peer_max_window_bits
            ),
            level=self.level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )

    def client_factory(self) -> ClientPerMessageDeflate:
        """The sans-IO negotiation object a client uses for these settings."""
        return ClientPerMessageDeflate(
            client_no_context_takeover=self.no_context_takeover,
            server_no_context_takeover=self.peer_no_context_takeover,
            # Without a number, offer the bare parameter: the server may then pick the
            # client's window (and a trio_ws server picks a small one).
            client_max_window_bits=True if self.max_window_bits is None else self.max_window_bits,
            server_max_window_bits=self.peer_max_window_bits,
            level=self.level,
            mem_level=self.mem_level,
            min_size=self.min_size,
        )


_DEFAULT = Compression()


def _resolve(compression: Compression | Literal["deflate"] | None) -> Compression | None:
    if compression is None or isinstance(compression, Compression):
        return compression
    if compression == "deflate":
        return _DEFAULT
    raise ValueError(
        f"compression must be 'deflate', None or a Compression object, not {compression!r}"
    )


def client_factories(
    compression: Compression | Literal["deflate"] | None,
) -> list[ClientExtensionFactory]:
    """The extension factories a client offers for its ``compression`` option.

    Raises:
        ValueError: ``compression`` is not ``"deflate"``, ``None`` or a :class:`Compression`.
    """
    settings = _resolve(compression)
    return [] if settings is None else [settings.client_factory()]


def server_factories(
    compression: Compression | Literal["deflate"] | None,
) -> list[ServerExtensionFactory]:
    """The extension factories a server accepts for its ``compression`` option.

    Raises:
        ValueError: ``compression`` is not ``"deflate"``, ``None`` or a :class:`Compression`.
    """
    settings = _resolve(compression)
    return [] if settings is None else [settings.server_factory()]
