"""The options of the public functions: one table, and what is built from it.

:data:`OPTIONS` lists every keyword option of the client and server functions once: its
name, its annotation, its default, its documentation, which side takes it and how it is
validated. From that table come :class:`ConnectionConfig`'s defaults and validation, the
runtime signature of every public function (``help()``, ``inspect.signature``, autodoc),
the checks of :func:`resolve_options` and the option tables of the reference docs
(``docs/_ext/trio_ws_docs.py``). Type checkers cannot read a table, so the TypedDicts
below spell the names and annotations once more; ``tests/test_options.py`` fails when
they, :class:`ConnectionConfig` or a public signature drift from the table.

Per-operation calls (``send_message``, ``get_message``, ``ping``) take no ``timeout=``:
wrap them in a cancel scope (``trio.move_on_after``) instead. Only policies that belong to
the connection as a whole are options.
"""

from __future__ import annotations

import difflib
import inspect
import math
import ssl
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar

from .sansio import Connection
from .sansio._handshake import DEFAULT_MAX_REQUEST_SIZE, allowed_origins

if TYPE_CHECKING:
    from ._compression import Compression
    from .sansio import Extension, Role

__all__ = [
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_FRAGMENTS",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_PING_INTERVAL",
    "DEFAULT_PING_TIMEOUT",
    "DEFAULT_WRITE_HIGH_WATER",
    "OPTIONS",
    "ClientOptions",
    "ConnectionConfig",
    "ConnectionOptions",
    "Option",
    "ServerOptions",
    "new_protocol",
    "Side",
    "connection_config",
    "option_rows",
    "options_of",
    "resolve_options",
    "with_options",
]

DEFAULT_MAX_MESSAGE_SIZE = 2**20
DEFAULT_MAX_FRAGMENTS = 4096
DEFAULT_MAX_QUEUE = 16
DEFAULT_WRITE_HIGH_WATER = 2**16
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_PING_TIMEOUT = 20.0
DEFAULT_CLOSE_TIMEOUT = 10.0
DEFAULT_OPEN_TIMEOUT = 10.0
DEFAULT_MAX_REDIRECTS = 10

#: Which functions take an option: ``"connection"`` options are the fields of
#: :class:`ConnectionConfig`, taken by every client and server function.
Side = Literal["connection", "client", "server"]

Check = Callable[[str, Any], None]


def _number(*, integer: bool = False, allow_none: bool = False) -> Check:
    """A check for a positive number (an ``int`` if ``integer``), or ``None`` if allowed."""

    def check(name: str, value: Any) -> None:
        if value is None:
            if not allow_none:
                raise ValueError(f"{name} must not be None")
            return
        kind = "an int" if integer else "a number"
        expected = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, expected):
            raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
        if math.isnan(value) or value <= 0:
            raise ValueError(f"{name} must be positive, got {value!r}")

    return check


def _count(name: str, value: Any) -> None:
    """A check for a count: an ``int``, zero or more."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be zero or more, got {value!r}")


def _instance(expected: type, *, allow_none: bool = False) -> Check:
    def check(name: str, value: Any) -> None:
        if not (isinstance(value, expected) or (allow_none and value is None)):
            what = f"{expected.__name__}{' or None' if allow_none else ''}"
            raise TypeError(f"{name} must be {what}, not {type(value).__name__}")

    return check


def _not_a_string(name: str, value: Any) -> None:
    # A str is a Sequence[str] too: "chat" would offer "c", "h", "a", "t".
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of strings, not a single string")


def _ssl_context(name: str, value: Any) -> None:
    _instance(ssl.SSLContext, allow_none=True)(name, value)


def _proxy(name: str, value: Any) -> None:
    if not (value is True or value is None or isinstance(value, str)):
        raise TypeError(f"{name} must be a proxy URL, True or None, not {value!r}")


def _origins(name: str, value: Any) -> None:
    allowed_origins(value)  # raises TypeError or ValueError, naming the bad entry


def _config(name: str, value: Any) -> None:
    _instance(ConnectionConfig, allow_none=True)(name, value)


@dataclass(frozen=True, slots=True)
class Option:
    """One keyword option of the public functions (a row of :data:`OPTIONS`)."""

    name: str
    #: As written in the signatures and in the TypedDicts (a string: it is shown, not run).
    annotation: str
    default: Any
    sides: frozenset[Side]
    #: reST, rendered in the option tables of the reference docs.
    doc: str
    check: Check | None = None


_CONNECTION: frozenset[Side] = frozenset({"connection"})
_CLIENT: frozenset[Side] = frozenset({"client"})
_SERVER: frozenset[Side] = frozenset({"server"})
_BOTH: frozenset[Side] = frozenset({"client", "server"})

# THE table. Adding an option is one entry here (the order is the signatures' order), plus,
# because type checkers cannot read this table, its key in ClientOptions or ServerOptions
# below (or, for a connection option, in ConnectionOptions and a field of ConnectionConfig);
# tests/test_options.py names what is missing. Then the code that uses it reads it from
# the dict that resolve_options returns.
OPTIONS: tuple[Option, ...] = (
    # The client's own options.
    Option("ssl_context", "ssl.SSLContext | None", None, _CLIENT, """
        The TLS context that verifies the server (implies TLS); ``wss://`` URLs and
        ``use_ssl=True`` use ``ssl.create_default_context()`` without it.""", _ssl_context),
    Option("subprotocols", "Sequence[str]", (), _CLIENT, """
        Subprotocols to offer, most preferred first.""", _not_a_string),
    Option("extra_headers", "Mapping[str, str] | Sequence[tuple[str, str]]", (), _CLIENT, """
        More request headers (``Authorization``, ``Cookie``, ...)."""),
    Option("origin", "str | None", None, _CLIENT, """
        The ``Origin`` header, if any."""),
    Option("compression", "Compression | Literal['deflate'] | None", "deflate", _CLIENT, """
        ``"deflate"`` offers permessage-deflate with the default settings, a
        :class:`~trio_ws.Compression` chooses them, ``None`` turns compression off."""),
    Option("proxy", "str | Literal[True] | None", True, _CLIENT, """
        The proxy to connect through: an ``http://``, ``https://``, ``socks5://`` or
        ``socks5h://`` URL (``http://user:password@host:port`` for credentials); ``True``
        takes it from the environment (``https_proxy``/``http_proxy``, ``all_proxy``,
        ``no_proxy``); ``None`` connects directly. Not used by the ``*_stream``
        functions.""", _proxy),
    Option("proxy_ssl_context", "ssl.SSLContext | None", None, _CLIENT, """
        The TLS context that verifies an ``https://`` proxy;
        ``ssl.create_default_context()`` without it.""", _ssl_context),
    Option("max_redirects", "int", DEFAULT_MAX_REDIRECTS, _CLIENT, """
        How many HTTP redirects (301, 302, 303, 307, 308) to follow in a row before giving
        up with :exc:`~trio_ws.RedirectError`; ``0`` follows none (the redirect raises
        :exc:`~trio_ws.ConnectionRejected`). Not followed by the ``*_stream`` functions.""",
        _count),
    # The server's own options.
    Option("ssl_context", "ssl.SSLContext | None", None, _SERVER, """
        A server-side TLS context, to serve ``wss://``; ``None`` for plain TCP. The TLS
        handshake counts against ``open_timeout``.""", _ssl_context),
    Option("reuse_port", "bool", False, _SERVER, """
        Set ``SO_REUSEPORT`` on the sockets :func:`~trio_ws.serve_websocket` binds, so
        that several processes (or servers) listen on the same port and the kernel
        spreads the connections between them (see :doc:`/howto/scaling`). Raises
        :exc:`OSError` where the system has no ``SO_REUSEPORT`` (Windows), and
        :exc:`ValueError` in the functions that bind nothing themselves.""",
        _instance(bool)),
    Option("compression", "Compression | Literal['deflate'] | None", "deflate", _SERVER, """
        ``"deflate"`` accepts permessage-deflate offers with the default settings, a
        :class:`~trio_ws.Compression` chooses them, ``None`` never compresses."""),
    Option("max_connections", "int | None", None, _SERVER, """
        At most this many connections are handled at once (handshakes being decided plus
        open connections); above it clients get HTTP 503 right after their request is
        read. ``None`` for no limit.""", _number(integer=True, allow_none=True)),
    Option("max_request_size", "int", DEFAULT_MAX_REQUEST_SIZE, _SERVER, """
        The largest request head in bytes; larger requests get HTTP 431.""",
        _number(integer=True)),
    Option("origins", "Collection[str | None] | None", None, _SERVER, """
        The origins browsers may connect from, exactly as they send them
        (``{"https://example.com", "http://localhost:8000"}``); a WebSocket request with
        another ``Origin`` gets HTTP 403, which stops cross-site WebSocket hijacking.
        Add ``None`` to accept requests without ``Origin`` (clients other than
        browsers). ``None``, the default, accepts every origin.""", _origins),
    Option("allow_plain_http", "bool", False, _SERVER, """
        Pass plain HTTP ``GET`` and ``HEAD`` requests (without ``Upgrade: websocket``:
        health checks, a status page) to the handler too, as requests whose
        ``is_websocket`` is false, for it to answer with ``request.reject(200, body=...)``.
        Off: trio_ws answers them with 426 Upgrade Required itself.""", _instance(bool)),
    # The connection options: the fields of ConnectionConfig, on both sides.
    Option("max_message_size", "int | None", DEFAULT_MAX_MESSAGE_SIZE, _CONNECTION, """
        The largest incoming message, in bytes after decompression; a bigger one fails the
        connection with 1009. ``None`` for no limit.""", _number(integer=True, allow_none=True)),
    Option("max_queue", "int", DEFAULT_MAX_QUEUE, _CONNECTION, """
        How many received messages may wait for ``get_message()``; when the queue is full
        the connection stops reading the socket, so TCP pushes back.""",
        _number(integer=True)),
    Option("max_fragments", "int | None", DEFAULT_MAX_FRAGMENTS, _CONNECTION, """
        The most frames one incoming message may come in (empty continuation frames count);
        more fail the connection with 1009. ``None`` for no limit.""",
        _number(integer=True, allow_none=True)),
    Option("write_high_water", "int", DEFAULT_WRITE_HIGH_WATER, _CONNECTION, """
        How many outgoing bytes may wait to be written before ``send_message()`` waits for
        the writer to catch up.""", _number(integer=True)),
    Option("ping_interval", "float | None", DEFAULT_PING_INTERVAL, _CONNECTION, """
        Seconds between keepalive pings; ``None`` disables keepalive.""",
        _number(allow_none=True)),
    Option("ping_timeout", "float | None", DEFAULT_PING_TIMEOUT, _CONNECTION, """
        Seconds to wait for a keepalive pong (any received byte counts as a sign of life)
        before failing the connection with 1011; ``None`` waits forever.""",
        _number(allow_none=True)),
    Option("open_timeout", "float", DEFAULT_OPEN_TIMEOUT, _CONNECTION, """
        Seconds for the opening handshake. A client's covers connecting, TLS and the
        handshake; a server's is the time a client has to complete TLS and send its whole
        request (the handler's decision is not counted: bound it yourself).""", _number()),
    Option("close_timeout", "float", DEFAULT_CLOSE_TIMEOUT, _CONNECTION, """
        Seconds to wait for the closing handshake (and, on a client, for the server to
        close TCP) before aborting the connection; on a server, also the bound of the
        whole graceful shutdown.""", _number()),
    Option("decode_text", "bool", True, _CONNECTION, """
        Whether text messages are returned as ``str`` (``True``) or as the raw UTF-8
        ``bytes`` (still validated), for relays that never look inside.""", _instance(bool)),
    # All the connection options at once.
    Option("config", "ConnectionConfig | None", None, _BOTH, """
        Every connection option at once, as a :class:`~trio_ws.ConnectionConfig` (one
        policy shared by many calls). Giving a connection option as a keyword too is a
        ``TypeError``: derive a variant with ``dataclasses.replace(config, ...)``.""",
        _config),
)  # fmt: skip


def options_of(side: Side) -> tuple[Option, ...]:
    """The options a function of ``side`` takes, in signature order.

    A client or server function takes its side's own options and the connection options.
    """
    return tuple(
        o for o in OPTIONS if side in o.sides or (side != "connection" and "connection" in o.sides)
    )


_CONNECTION_OPTIONS = options_of("connection")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """The connection-wide policy of one WebSocket connection, validated once.

    Its fields are the connection options, with their defaults: see the table in
    :ref:`connection-option-table`. Every client and server function takes them as keywords,
    or all at once as ``config=ConnectionConfig(...)``, so that one policy can be shared.

    Raises:
        TypeError: A field of the wrong type.
        ValueError: A field out of range.
    """

    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_queue: int = DEFAULT_MAX_QUEUE
    max_fragments: int | None = DEFAULT_MAX_FRAGMENTS
    write_high_water: int = DEFAULT_WRITE_HIGH_WATER
    ping_interval: float | None = DEFAULT_PING_INTERVAL
    ping_timeout: float | None = DEFAULT_PING_TIMEOUT
    open_timeout: float = DEFAULT_OPEN_TIMEOUT
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT
    decode_text: bool = True

    def __post_init__(self) -> None:
        for option in _CONNECTION_OPTIONS:
            if option.check is not None:
                option.check(option.name, getattr(self, option.name))


def new_protocol(
    config: ConnectionConfig, role: Role, extensions: Sequence[Extension] = ()
) -> Connection:
    """The sans-IO core of one connection, with the parts of ``config`` the core enforces.

    The one place that turns a policy into a core, for the client, the server's request
    and the in-memory pairs alike.
    """
    return Connection(
        role,
        max_message_size=config.max_message_size,
        max_fragments=config.max_fragments,
        extensions=extensions,
        decode_text=config.decode_text,
    )


class ConnectionOptions(TypedDict, total=False):
    """The connection options, as keyword arguments (see :ref:`connection-option-table`).

    Every client and server function takes them; :class:`~trio_ws.ClientOptions` and
    :class:`~trio_ws.ServerOptions` extend this dict type, for a dict of options built
    once and passed around.
    """

    max_message_size: int | None
    max_queue: int
    max_fragments: int | None
    write_high_water: int
    ping_interval: float | None
    ping_timeout: float | None
    open_timeout: float
    close_timeout: float
    decode_text: bool


class ClientOptions(ConnectionOptions, total=False):
    """The keyword options every client function takes (see :ref:`client-option-table`).

    For type checkers, so that a dict of options can be built and passed around::

        options: ClientOptions = {"compression": None, "ping_interval": None}
        async with open_websocket_url(url, **options) as ws:
            ...
    """

    ssl_context: ssl.SSLContext | None
    subprotocols: Sequence[str]
    extra_headers: Mapping[str, str] | Sequence[tuple[str, str]]
    origin: str | None
    compression: Compression | Literal["deflate"] | None
    proxy: str | Literal[True] | None
    proxy_ssl_context: ssl.SSLContext | None
    max_redirects: int
    config: ConnectionConfig | None


class ServerOptions(ConnectionOptions, total=False):
    """The keyword options every server function takes (see :ref:`server-option-table`).

    For type checkers, so that a dict of options can be built and passed around::

        options: ServerOptions = {"compression": None, "allow_plain_http": True}
        await nursery.start(partial(serve_websocket, **options), handler, None, 8000)
    """

    ssl_context: ssl.SSLContext | None
    reuse_port: bool
    compression: Compression | Literal["deflate"] | None
    max_connections: int | None
    max_request_size: int
    origins: Collection[str | None] | None
    allow_plain_http: bool
    config: ConnectionConfig | None


def _unexpected(names: Sequence[str], known: Sequence[str]) -> TypeError:
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    plural = "s" if len(names) > 1 else ""
    return TypeError(f"unexpected keyword argument{plural} {', '.join(hints)}")


def resolve_options(
    side: Side, options: Mapping[str, Any]
) -> tuple[ConnectionConfig, dict[str, Any]]:
    """Validate the keyword options a function of ``side`` was given.

    Returns:
        The :class:`ConnectionConfig` (from ``config=`` or from the connection options),
        and the side's own options by name, with their defaults filled in.

    Raises:
        TypeError: An unknown option, an option of the wrong type, or ``config=`` together
            with a connection option.
        ValueError: An option out of range.
    """
    table = options_of(side)
    known = {option.name: option for option in table}
    unknown = sorted(set(options).difference(known))
    if unknown:
        raise _unexpected(unknown, list(known))
    connection = {name: options[name] for name in options if "connection" in known[name].sides}
    own: dict[str, Any] = {}
    for option in table:
        if "connection" in option.sides:
            continue
        value = options.get(option.name, option.default)
        if option.check is not None:
            option.check(option.name, value)
        own[option.name] = value
    config: ConnectionConfig | None = own.pop("config", None)
    if config is None:
        return ConnectionConfig(**connection), own
    if connection:
        names = ", ".join(repr(name) for name in sorted(connection))
        raise TypeError(
            f"config= and {names} given together: pass every connection option in config "
            "(dataclasses.replace(config, ...) derives a variant), or none"
        )
    return config, own


def connection_config(options: Mapping[str, Any]) -> ConnectionConfig:
    """The :class:`ConnectionConfig` of connection options alone (for internal callers).

    Raises:
        TypeError: An unknown option, or an option of the wrong type.
        ValueError: An option out of range.
    """
    unknown = sorted(set(options).difference(o.name for o in _CONNECTION_OPTIONS))
    if unknown:
        raise _unexpected(unknown, [o.name for o in _CONNECTION_OPTIONS])
    return ConnectionConfig(**options)


_F = TypeVar("_F", bound=Callable[..., Any])


def options_signature(function: Callable[..., Any], side: Side) -> inspect.Signature:
    """``function``'s signature with its ``**options`` spelled out from the table.

    The function's own parameters come first (``task_status`` last, as trio's do), then
    its side's options, keyword-only, with their annotations and defaults.
    """
    signature = inspect.signature(function)
    own = list(signature.parameters.values())
    if not own or own[-1].kind is not inspect.Parameter.VAR_KEYWORD:
        raise TypeError(f"{function.__qualname__} takes no **options")
    own.pop()
    last = [p for p in own if p.name == "task_status"]
    own = [p for p in own if p.name != "task_status"]
    spelled = [
        inspect.Parameter(
            option.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=option.default,
            annotation=option.annotation,
        )
        for option in options_of(side)
    ]
    return signature.replace(parameters=[*own, *spelled, *last])


#: The first line of the options' descriptions appended to the docstrings for ``help()``
#: (the docs build drops them: the reference pages have the tables).
OPTIONS_DOC_HEADING = "Keyword options (the option tables of the reference docs):"


def options_doc(side: Side) -> str:
    """The descriptions of ``side``'s options, appended to a docstring for ``help()``."""
    lines = ["", "", OPTIONS_DOC_HEADING]
    for option in options_of(side):
        text = f"{option.name}: {' '.join(option.doc.split())}"
        lines += textwrap.wrap(text, 88, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


def with_options(side: Side) -> Callable[[_F], _F]:
    """Decorate a public function whose ``**options`` are the options of ``side``.

    Its ``__signature__`` then lists every option, for ``help()``, ``inspect.signature``
    and autodoc, and its docstring ends with their descriptions; type checkers read the
    ``Unpack[...Options]`` annotation instead.
    """

    def decorate(function: _F) -> _F:
        function.__signature__ = options_signature(function, side)  # type: ignore[attr-defined]
        function.__trio_ws_options__ = side  # type: ignore[attr-defined]
        function.__doc__ = inspect.cleandoc(function.__doc__ or "") + options_doc(side)
        return function

    return decorate


def option_rows(side: Side) -> list[tuple[str, str, str, str]]:
    """The rows of the option table of ``side`` in the reference docs.

    Each row is (name, annotation, default as source, reST description on one line); only
    the side's own options, so each option is described on one page.
    """
    return [
        (option.name, option.annotation, repr(option.default), " ".join(option.doc.split()))
        for option in OPTIONS
        if side in option.sides
    ]
