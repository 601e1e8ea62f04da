"""HTTP header fields of the opening handshake: a read-only multi-dict and the parsers.

h11 hands over headers as ``(bytes, bytes)`` pairs. :class:`Headers` keeps them in order,
decoded as latin-1 (which maps every byte to one character, so nothing is ever lost or
rejected here), and looks names up case-insensitively.

The parsers implement the header grammars of RFC 6455 section 4.3 and 9.1 on top of the
list rule of RFC 9110 section 5.6.1: elements separated by commas with optional whitespace,
empty elements tolerated, several header lines of the same name combined in order. Anything
else than a valid token where a token is due raises :exc:`InvalidHandshake` (with status
400, the answer a server should send).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, overload

from ._errors import InvalidHandshake, LocalProtocolError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "ExtensionOffer",
    "Headers",
    "format_extensions",
    "format_token_list",
    "parse_extensions",
    "parse_token_list",
    "parse_upgrade",
]

#: ``(name, [(param, value or None), ...])``: one extension offered or accepted.
ExtensionOffer = tuple[str, list[tuple[str, str | None]]]

# RFC 9110 section 5.6.2: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# An Upgrade element is a protocol name with an optional version (RFC 9110 section 7.8).
_PROTOCOL = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?")
# RFC 9110 section 5.6.4: quoted-string with quoted-pair escapes (obs-text included).
_QUOTED_STRING = re.compile(r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"')
_QUOTED_PAIR = re.compile(r"\\(.)")
_OWS = re.compile(r"[ \t]*")
# Between the names and values of compacted headers: h11 never lets a NUL into a field.
_SEPARATOR = "\x00"


def _is_token(text: str) -> bool:
    return _TOKEN.fullmatch(text) is not None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class Headers:
    """An immutable, case-insensitive multi-dict of HTTP header fields, in received order.

    ``headers[name]`` is the *first* value of that field (the convention of
    :class:`email.message.Message`, ``multidict`` and Starlette) and raises
    :exc:`KeyError` when the field is absent; :meth:`get_all` returns every value.
    Iterating yields ``(name, value)`` pairs in order, names spelled as received.
    ``len()`` counts the fields, repeated names included.

    Args:
        fields: ``(name, value)`` pairs, as ``str`` or as ``bytes`` (decoded as latin-1).
    """

    # The fields are held in one of two forms: ``_fields`` (pairs, plus the ``_index`` by
    # lowercased name that the first lookup builds), or, once a server has compacted the
    # headers of an open connection (see _compact), ``_packed`` alone, one string that
    # costs a tenth as much and is unpacked again on the next use.
    __slots__ = ("_fields", "_index", "_packed")

    def __init__(self, fields: Iterable[tuple[str | bytes, str | bytes]] = ()) -> None:
        self._fields: tuple[tuple[str, str], ...] | None = tuple(
            (_text(name), _text(value)) for name, value in fields
        )
        self._index: dict[str, list[str]] | None = None
        self._packed: str | None = None

    def _items(self) -> tuple[tuple[str, str], ...]:
        fields = self._fields
        if fields is None:
            assert self._packed is not None  # one of the two forms is always there
            parts = self._packed.split(_SEPARATOR)
            fields = self._fields = tuple(zip(parts[0::2], parts[1::2], strict=True))
        return fields

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = self._index = {}
            for name, value in self._items():
                index.setdefault(name.lower(), []).append(value)
        return index

    def _compact(self) -> Headers:
        """Keep the fields as one string until they are used again; returns ``self``.

        A server holds the request headers of every open connection, mostly never read
        again after the handshake: as pairs with their index they cost about 2 KiB. Fields
        that contain the separator (never the case for parsed HTTP headers) stay as they
        are.
        """
        if self._packed is None:
            fields = self._items()
            if not fields or any(
                _SEPARATOR in name or _SEPARATOR in value for name, value in fields
            ):
                return self
            self._packed = _SEPARATOR.join([text for field in fields for text in field])
        self._fields = None
        self._index = None
        return self

    def __getitem__(self, name: str) -> str:
        return self._lookup()[name.lower()][0]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    @overload
    def get(self, name: str, default: None) -> str | None: ...

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of the field ``name``, or ``default`` when it is absent."""
        values = self._lookup().get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of the field ``name``, in received order (``[]`` when absent)."""
        return list(self._lookup().get(name.lower(), ()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup()

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items())

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The fields as ``(bytes, bytes)`` pairs, exactly as received."""
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in self._items()]

    def _key(self) -> tuple[tuple[str, str], ...]:
        return tuple((name.lower(), value) for name, value in self._items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Headers({list(self._items())!r})"


# --- parsers -------------------------------------------------------------------------------


def _split_list(values: Iterable[str], header: str, element: re.Pattern[str]) -> list[str]:
    """Split comma-separated header lines into elements, each matching ``element``."""
    elements: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if not item:
                continue  # the list rule lets senders leave empty elements
            if element.fullmatch(item) is None:
                raise InvalidHandshake(f"invalid element {item!r} in the {header} header")
            elements.append(item)
    return elements


def parse_token_list(values: Iterable[str], header: str = "header") -> list[str]:
    """Parse comma-separated tokens, as in ``Connection`` or ``Sec-WebSocket-Protocol``.

    Tokens keep their case: compare ``Connection`` tokens with ``.lower()``, subprotocols
    exactly.

    Args:
        values: The header lines of one field (several lines are combined in order).
        header: The field's name, for error messages.

    Raises:
        InvalidHandshake: An element is not a token.
    """
    return _split_list(values, header, _TOKEN)


def parse_upgrade(values: Iterable[str]) -> list[str]:
    """Parse the ``Upgrade`` field: protocols such as ``websocket`` or ``HTTP/2.0``.

    Raises:
        InvalidHandshake: An element is not ``token`` or ``token/token``.
    """
    return _split_list(values, "Upgrade", _PROTOCOL)


def _syntax_error(text: str, pos: int, what: str) -> InvalidHandshake:
    found = repr(text[pos]) if pos < len(text) else "the end"
    return InvalidHandshake(
        f"expected {what} at position {pos} of Sec-WebSocket-Extensions {text!r}, found {found}"
    )


def _expect(pattern: re.Pattern[str], text: str, pos: int, what: str) -> tuple[str, int]:
    match = pattern.match(text, pos)
    if match is None:
        raise _syntax_error(text, pos, what)
    return match.group(), match.end()


def _skip_ows(text: str, pos: int) -> int:
    match = _OWS.match(text, pos)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _parse_param_value(text: str, pos: int) -> tuple[str, int]:
    if text.startswith('"', pos):
        quoted, pos = _expect(_QUOTED_STRING, text, pos, "a quoted string")
        value = _QUOTED_PAIR.sub(r"\1", quoted[1:-1])
        # RFC 6455 section 9.1: the unescaped value must still be a token.
        if not _is_token(value):
            raise InvalidHandshake(
                f"quoted extension parameter value {quoted} is not a token "
                f"in Sec-WebSocket-Extensions {text!r}"
            )
        return value, pos
    return _expect(_TOKEN, text, pos, "a parameter value")


def parse_extensions(values: Iterable[str]) -> list[ExtensionOffer]:
    """Parse ``Sec-WebSocket-Extensions`` (RFC 6455 section 9.1).

    The grammar is ``name *( ";" param [ "=" ( token / quoted-string ) ] )`` for each
    comma-separated extension, whitespace allowed around the separators. The same extension
    may appear several times (several offers, the client's preferred first).

    Args:
        values: The header lines (several lines are combined in order).

    Returns:
        ``(name, params)`` for each extension in order, ``params`` being ``(name, value)``
        pairs with ``value`` ``None`` for a parameter given without one. Quoted values are
        unquoted.

    Raises:
        InvalidHandshake: The header does not follow the grammar.
    """
    extensions: list[ExtensionOffer] = []
    for text in values:
        pos = 0
        while True:
            pos = _skip_ows(text, pos)
            if pos == len(text):
                break
            if text[pos] == ",":  # an empty list element
                pos += 1
                continue
            name, pos = _expect(_TOKEN, text, pos, "an extension name")
            params: list[tuple[str, str | None]] = []
            pos = _skip_ows(text, pos)
            while text.startswith(";", pos):
                pos = _skip_ows(text, pos + 1)
                param, pos = _expect(_TOKEN, text, pos, "a parameter name")
                pos = _skip_ows(text, pos)
                value: str | None = None
                if text.startswith("=", pos):
                    value, pos = _parse_param_value(text, _skip_ows(text, pos + 1))
                    pos = _skip_ows(text, pos)
                params.append((param, value))
            if pos < len(text) and text[pos] != ",":
                raise _syntax_error(text, pos, "',' or ';'")
            extensions.append((name, params))
    return extensions


# --- serialisers ---------------------------------------------------------------------------


def format_token_list(tokens: Sequence[str], header: str = "header") -> str:
    """Join tokens into one header value, as in ``Sec-WebSocket-Protocol: chat, superchat``.

    Raises:
        LocalProtocolError: A token is empty or contains a character not allowed in a token.
    """
    for token in tokens:
        if not _is_token(token):
            raise LocalProtocolError(f"{token!r} is not a valid token for the {header} header")
    return ", ".join(tokens)


def format_extensions(extensions: Iterable[tuple[str, Iterable[tuple[str, str | None]]]]) -> str:
    """Serialise extension offers or answers for ``Sec-WebSocket-Extensions``.

    Example: ``[("permessage-deflate", [("client_max_window_bits", None)])]`` becomes
    ``permessage-deflate; client_max_window_bits``.

    Raises:
        LocalProtocolError: A name or value is not a token (RFC 6455 section 9.1 requires
            tokens, even for values that a peer may send quoted).
    """
    parts: list[str] = []
    for name, params in extensions:
        items = [_checked_token(name)]
        for param, value in params:
            items.append(
                _checked_token(param)
                if value is None
                else f"{_checked_token(param)}={_checked_token(value)}"
            )
        parts.append("; ".join(items))
    return ", ".join(parts)


def _checked_token(token: str) -> str:
    if not _is_token(token):
        raise LocalProtocolError(
            f"{token!r} is not a valid token for the Sec-WebSocket-Extensions header"
        )
    return token
