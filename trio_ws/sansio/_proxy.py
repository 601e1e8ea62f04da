"""Opening a tunnel through a proxy, sans-IO: HTTP ``CONNECT`` and SOCKS5 (RFC 1928, 1929).

The I/O layer connects to the proxy, then drives one of the exchanges below like the
opening handshake: send :meth:`data_to_send`, feed what the proxy answers to
:meth:`receive_data` until it returns the bytes that followed the answer; from there on,
the stream is a tunnel to the server. Which proxy to use comes from an explicit URL or
from the environment variables curl reads (:func:`proxy_from_environment`).
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass
from enum import Enum, auto
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote, urlsplit

import h11

from ._errors import InvalidURL, LocalProtocolError, ProxyError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "HttpConnect",
    "ProxyURL",
    "Socks5Connect",
    "bypass_proxy",
    "parse_proxy_url",
    "proxy_from_environment",
]

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True, slots=True)
class ProxyURL:
    """A parsed proxy URL: ``http://``, ``https://``, ``socks5://`` or ``socks5h://``."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def is_socks(self) -> bool:
        return self.scheme.startswith("socks5")

    @property
    def resolves_remotely(self) -> bool:
        """Whether the proxy resolves the server's name (all but ``socks5://``, as curl)."""
        return self.scheme != "socks5"


def parse_proxy_url(url: str) -> ProxyURL:
    """Parse a proxy URL; without a scheme (``proxy:3128``) it is an HTTP proxy, as for curl.

    Raises:
        InvalidURL: Not a proxy URL trio_ws can use.
    """
    if "://" not in url:
        url = f"http://{url}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid proxy URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(
            f"unsupported proxy scheme in {url!r}: use http://, https://, socks5:// or socks5h://"
        )
    if not parts.hostname:
        raise InvalidURL(f"no host in the proxy URL {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidURL(f"a proxy URL has no path, query or fragment: {url!r}")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyURL(
        scheme,
        parts.hostname,
        port if port is not None else _DEFAULT_PORTS[scheme],
        username,
        password,
    )


def _environ(environ: Mapping[str, str], name: str) -> str | None:
    # Lower case wins, as for curl and urllib. Upper-case HTTP_PROXY is ignored in a CGI
    # script, where a client's "Proxy:" header would set it ("httpoxy").
    value = environ.get(name)
    if value is None and not (name == "http_proxy" and "REQUEST_METHOD" in environ):
        value = environ.get(name.upper())
    return value or None


def bypass_proxy(no_proxy: str, host: str, port: int) -> bool:
    """Whether ``no_proxy`` (comma-separated, as curl reads it) exempts ``host:port``.

    An entry is ``*`` (every host), a domain that also covers its subdomains (a leading
    ``.`` or ``*.`` changes nothing), an IP address or network (``10.0.0.0/8``), each
    optionally with ``:port``. Names compare case-insensitively; no name is resolved.
    """
    host = host.lower().rstrip(".").strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        entry_port: int | None = None
        if entry.startswith("["):  # [::1]:8080
            entry, _, rest = entry[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit():
                entry_port = int(rest[1:])
        elif entry.count(":") == 1:
            name, _, digits = entry.partition(":")
            if digits.isdigit():
                entry, entry_port = name, int(digits)
        if not entry or (entry_port is not None and entry_port != port):
            continue
        if address is not None:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                continue
            if address in network:
                return True
            continue
        entry = entry.removeprefix("*").lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith(f".{entry}")):
            return True
    return False


def proxy_from_environment(
    environ: Mapping[str, str], *, secure: bool, host: str, port: int
) -> str | None:
    """The proxy URL the environment sets for a ``ws://`` (``secure=False``) or ``wss://`` URL.

    ``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``, else ``all_proxy``;
    ``None`` if none is set or ``no_proxy`` exempts the host. Lower- and upper-case names
    are read, lower case first.
    """
    url = _environ(environ, "https_proxy" if secure else "http_proxy") or _environ(
        environ, "all_proxy"
    )
    if url is None:
        return None
    no_proxy = _environ(environ, "no_proxy")
    if no_proxy is not None and bypass_proxy(no_proxy, host, port):
        return None
    return url


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_target(host: str, port: int) -> None:
    if not host or any(c in host for c in "\r\n\0 /@"):
        raise LocalProtocolError(f"invalid host for a tunnel: {host!r}")
    if not 0 < port < 65536:
        raise LocalProtocolError(f"invalid port for a tunnel: {port!r}")


class _Phase(Enum):
    RECEIVING = auto()
    DONE = auto()


class HttpConnect:
    """The ``CONNECT host:port`` exchange with an HTTP proxy (RFC 9110 section 9.3.6).

    ``username``/``password`` send ``Proxy-Authorization: Basic``. Any 2xx answer opens
    the tunnel; anything else raises :exc:`~trio_ws.ProxyError` with the status.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        max_response_size: int = 65536,
    ) -> None:
        _check_target(host, port)
        self._target = _authority(host, port)
        headers = [("Host", self._target)]
        self._authenticated = username is not None
        if username is not None:
            credentials = f"{username}:{password or ''}".encode()
            token = base64.b64encode(credentials).decode()
            headers.append(("Proxy-Authorization", f"Basic {token}"))
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=max_response_size)
        self._outgoing = self._h11.send(
            h11.Request(method="CONNECT", target=self._target, headers=headers)
        )
        self._outgoing += self._h11.send(h11.EndOfMessage())
        self._phase = _Phase.RECEIVING
        self._received = 0

    def data_to_send(self) -> bytes:
        """The bytes to send: the whole ``CONNECT`` request the first time, then ``b""``."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """Feed bytes from the proxy.

        Returns:
            ``None`` until the proxy accepted, then the bytes that followed its answer
            (already the server's).

        Raises:
            ProxyError: The proxy refused (``status_code`` set) or answered nonsense.
            LocalProtocolError: The exchange is already over.
        """
        self._check_receiving()
        if not data:
            return None
        self._received += len(data)
        self._h11.receive_data(bytes(data))
        return self._process()

    def receive_eof(self) -> NoReturn:
        """The proxy closed the connection before it answered.

        Raises:
            ProxyError: Always.
            LocalProtocolError: The exchange is already over.
        """
        self._check_receiving()
        self._phase = _Phase.DONE
        if self._received == 0:
            reason = f"the proxy closed the connection without answering CONNECT {self._target}"
        else:
            reason = "the proxy closed the connection in the middle of its answer"
        raise ProxyError(reason)

    def _check_receiving(self) -> None:
        if self._phase is not _Phase.RECEIVING:
            raise LocalProtocolError("the proxy exchange is already over")

    def _process(self) -> bytes | None:
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._phase = _Phase.DONE
                raise ProxyError(f"the proxy sent a malformed HTTP answer: {exc}") from None
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Response):
                self._phase = _Phase.DONE
                if 200 <= event.status_code < 300:
                    return self._h11.trailing_data[0]
                raise self._refusal(event.status_code, event.reason.decode("latin-1"))
            # Only 1xx answers come before the final one; they change nothing.
            assert isinstance(event, h11.InformationalResponse), event

    def _refusal(self, status: int, reason: str) -> ProxyError:
        answer = f"HTTP {status} {reason}".rstrip()
        if status == 407 and self._authenticated:
            text = f"the proxy rejected the username and password ({answer})"
        elif status == 407:
            text = (
                f"the proxy requires authentication ({answer}): put the credentials in "
                "the proxy URL, http://user:password@proxy:port"
            )
        else:
            text = f"the proxy refused to connect to {self._target} ({answer})"
        return ProxyError(text, status_code=status)


_SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by the proxy's rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused by the server",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class _Socks(Enum):
    METHOD = auto()
    AUTH = auto()
    REPLY = auto()
    DONE = auto()


class Socks5Connect:
    """The SOCKS5 ``CONNECT`` exchange (RFC 1928), with RFC 1929 username/password auth.

    ``host`` is sent as an address if it is an IP address, else as a name for the proxy
    to resolve (``socks5h://``); for ``socks5://`` the I/O layer resolves it first.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        _check_target(host, port)
        self._target = _authority(host, port)
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            try:
                name = host.encode("idna")
            except UnicodeError:
                raise LocalProtocolError(f"invalid host name for SOCKS5: {host!r}") from None
            if len(name) > 255:
                raise LocalProtocolError(f"host name too long for SOCKS5: {host!r}") from None
            destination = b"\x03" + bytes([len(name)]) + name
        else:
            kind = b"\x01" if address.version == 4 else b"\x04"
            destination = kind + address.packed
        self._request = b"\x05\x01\x00" + destination + port.to_bytes(2, "big")
        self._auth: bytes | None = None
        if username is not None:
            user, secret = username.encode(), (password or "").encode()
            if len(user) > 255 or len(secret) > 255:
                raise LocalProtocolError("SOCKS5 usernames and passwords are 255 bytes at most")
            self._auth = b"\x01" + bytes([len(user)]) + user + bytes([len(secret)]) + secret
            self._outgoing = b"\x05\x02\x00\x02"  # offer no auth and username/password
        else:
            self._outgoing = b"\x05\x01\x00"
        self._phase = _Socks.METHOD
        self._buffer = bytearray()

    def data_to_send(self) -> bytes:
        """The bytes to send now (the greeting, then auth and request as the proxy answers)."""
        data, self._outgoing = self._outgoing, b""
        return data

    def receive_data(self, data: bytes | bytearray | memoryview) -> bytes | None:
        """Feed bytes from the proxy; send :meth:`data_to_send` after each call.

        Returns:
            ``None`` until the proxy connected, then the bytes that followed its reply.

        Raises:
            ProxyError: The proxy refused (``reply`` set to its reply code), rejected the
                credentials, or is not a SOCKS5 proxy.
            LocalProtocolError: The exchange is already over.
        """
        if self._phase is _Socks.DONE:
            raise LocalProtocolError("the proxy exchange is already over")
        self._buffer += data
        try:
            while True:
                if self._phase is _Socks.METHOD:
                    if not self._method():
                        return None
                elif self._phase is _Socks.AUTH:
                    if not self._authenticated():
                        return None
                else:
                    return self._reply()
        except ProxyError:
            self._phase = _Socks.DONE
            raise

    def receive_eof(self) -> NoReturn:
        """The proxy closed the connection before it connected.

        Raises:
            ProxyError: Always (a proxy that rejects credentials may just close).
            LocalProtocolError: The exchange is already over.
        """
        if self._phase is _Socks.DONE:
            raise LocalProtocolError("the proxy exchange is already over")
        phase, self._phase = self._phase, _Socks.DONE
        if phase is _Socks.AUTH or (phase is _Socks.METHOD and self._auth is None):
            # Some proxies (pproxy, for one) answer bad or missing credentials so.
            raise ProxyError("the SOCKS5 proxy closed the connection: check the credentials")
        raise ProxyError(
            f"the SOCKS5 proxy closed the connection before connecting to {self._target}"
        )

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _method(self) -> bool:
        answer = self._take(2)
        if answer is None:
            return False
        if answer[0] != 5:
            raise ProxyError("the proxy does not speak SOCKS5")
        if answer[1] == 0:
            self._phase = _Socks.REPLY
            self._outgoing += self._request
        elif answer[1] == 2 and self._auth is not None:
            self._phase = _Socks.AUTH
            self._outgoing += self._auth
        elif self._auth is None:
            raise ProxyError(
                "the SOCKS5 proxy requires authentication: put the credentials in the "
                "proxy URL, socks5://user:password@proxy:port"
            )
        else:
            raise ProxyError("the SOCKS5 proxy accepts none of the offered authentication methods")
        return True

    def _authenticated(self) -> bool:
        answer = self._take(2)
        if answer is None:
            return False
        if answer[1] != 0:
            raise ProxyError("the SOCKS5 proxy rejected the username and password")
        self._phase = _Socks.REPLY
        self._outgoing += self._request
        return True

    def _reply(self) -> bytes | None:
        if len(self._buffer) < 5:
            return None
        version, reply, _, kind, first = self._buffer[:5]
        if version != 5:
            raise ProxyError("the proxy does not speak SOCKS5")
        if reply != 0:
            what = _SOCKS_REPLIES.get(reply, f"unknown reply {reply}")
            raise ProxyError(
                f"the SOCKS5 proxy could not connect to {self._target}: {what}", reply=reply
            )
        sizes = {1: 4, 4: 16, 3: 1 + first}
        if kind not in sizes:
            raise ProxyError(f"the SOCKS5 proxy replied with an unknown address type {kind}")
        if self._take(4 + sizes[kind] + 2) is None:
            return None
        self._phase = _Socks.DONE
        return bytes(self._buffer)
