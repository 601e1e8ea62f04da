"""The extension interface of the core (RFC 6455 section 9).

An extension is negotiated in the opening handshake by a *factory* (one class for the
client's offer, one for the server's answer) and then transforms frames: ``decode`` on the
way in, ``encode`` on the way out. permessage-deflate (RFC 7692) is built on it.

Header parameters are ``(name, value)`` pairs where ``value`` is ``None`` for a parameter
given without a value (``client_max_window_bits``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ._frames import Frame

__all__ = [
    "ClientExtensionFactory",
    "Extension",
    "ExtensionParameters",
    "NegotiationError",
    "ServerExtensionFactory",
]

ExtensionParameters = Sequence[tuple[str, str | None]]


class NegotiationError(Exception):
    """An extension offer or answer cannot be accepted.

    Raised by factories. On the server it means "decline this offer" (the next offer, if any,
    is tried); on the client it fails the handshake with :exc:`InvalidHandshake`.
    """


class Extension(abc.ABC):
    """A negotiated extension, active for the lifetime of one connection."""

    #: The extension token, as in ``Sec-WebSocket-Extensions``.
    name: ClassVar[str]
    #: Which reserved bits (RSV1, RSV2, RSV3) this extension gives a meaning to; frames with
    #: other reserved bits set are a protocol error (1002).
    reserved_bits: ClassVar[tuple[bool, bool, bool]] = (False, False, False)
    #: Whether a plain message (no reserved bit, payload as is) is valid on a connection
    #: where this extension is active, and leaves its state alone. permessage-deflate is such
    #: an extension: a message without RSV1 is simply not compressed. It lets a server queue
    #: one pre-encoded frame on many connections (``Connection.encode_message``).
    allows_plain_messages: ClassVar[bool] = False

    @abc.abstractmethod
    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        """Transform a frame received from the peer (data and control frames alike).

        ``max_size`` is how many payload bytes the current message may still grow by
        (``None`` for no limit); an extension that expands data must raise
        :exc:`RemoteProtocolError` with code 1009 *before* producing more than that.
        Raise :exc:`RemoteProtocolError` for any other violation.
        """

    @abc.abstractmethod
    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        """Transform a frame before it is sent.

        ``compress`` is the application's per-message wish (``None``: the extension
        decides); extensions that do not compress ignore it.
        """

    def release_idle_memory(self) -> None:  # noqa: B027 (optional hook, empty by design)
        """Free state that can be rebuilt, if the extension was idle since the last call.

        The I/O layer calls it at each keepalive ping, so a connection idle for one
        keepalive interval sheds such state. Calls never change what goes on the wire.
        The default does nothing.
        """


class ClientExtensionFactory(abc.ABC):
    """Offers an extension in a client's handshake and checks the server's answer."""

    name: ClassVar[str]

    @abc.abstractmethod
    def offer(self) -> list[tuple[str, str | None]]:
        """The parameters of this extension's offer in the request."""

    @abc.abstractmethod
    def accept_response(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> Extension:
        """Build the extension from the server's answer; raise NegotiationError if invalid.

        ``accepted`` are the extensions already negotiated before this one, in order.
        """


class ServerExtensionFactory(abc.ABC):
    """Answers a client's offer of an extension in the server's handshake."""

    name: ClassVar[str]

    @abc.abstractmethod
    def accept_offer(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], Extension]:
        """Accept one offer: return the answer's parameters and the extension.

        Raise NegotiationError to decline this offer (the server then tries the client's
        next offer of the same extension, if any). ``accepted`` are the extensions already
        negotiated before this one.
        """
