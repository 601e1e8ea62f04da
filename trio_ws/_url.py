"""Parsing ``ws://`` and ``wss://`` URLs (RFC 6455 section 3).

User information (``ws://user:secret@host/``) is accepted and turned into an
``Authorization: Basic`` header by the client (unless the caller passes its own
``Authorization``): it is what browsers did and what servers behind HTTP auth expect.
Fragments are refused: RFC 6455 forbids them in WebSocket URIs.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .sansio._errors import InvalidURL

__all__ = ["WebSocketURL", "parse_url"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketURL:
    """The parts of a WebSocket URL the client needs.

    Attributes:
        secure: ``True`` for ``wss://`` (TLS).
        host: The host name or IP address, without brackets for IPv6 literals.
        port: The port; 80 or 443 when the URL gives none.
        resource: The request target: the path (``/`` if empty) plus ``?query``.
        username: The percent-decoded user name, or ``None``.
        password: The percent-decoded password, or ``None``.
    """

    secure: bool
    host: str
    port: int
    resource: str = "/"
    username: str | None = None
    password: str | None = None

    @property
    def authorization(self) -> str | None:
        """An ``Authorization: Basic`` value built from the user information, if any."""
        if self.username is None:
            return None
        credentials = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(credentials).decode("ascii")


def parse_url(url: str) -> WebSocketURL:
    """Parse a ``ws://`` or ``wss://`` URL.

    Args:
        url: For example ``"wss://example.com/feed?x=1"`` or ``"ws://[::1]:8000/"``.

    Returns:
        The parsed URL.

    Raises:
        InvalidURL: Not a string, another scheme, no host, a bad port, a fragment, or
            characters that cannot appear in an HTTP request line.
    """
    if not isinstance(url, str):
        raise InvalidURL(f"expected a URL string, got {type(url).__name__}")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise InvalidURL(f"{url!r} contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"{url!r} is not a ws:// or wss:// URL")
    host = parts.hostname
    if not host:
        raise InvalidURL(f"{url!r} has no host")
    if parts.fragment or url.endswith("#"):
        raise InvalidURL(f"{url!r} has a fragment, which WebSocket URLs cannot have")
    if not url.isascii():
        raise InvalidURL(f"{url!r} contains non-ASCII characters; percent-encode them")
    resource = parts.path or "/"
    if parts.query:
        resource += "?" + parts.query
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return WebSocketURL(
        secure=scheme == "wss",
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        resource=resource,
        username=username,
        password=password,
    )
