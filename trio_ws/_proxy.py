"""The client's transport: a TCP (or TLS) connection to the server, directly or through a proxy.

The proxy exchanges themselves are sans-IO (:mod:`trio_ws.sansio._proxy`); this module
connects to the proxy, drives one of them, and runs TLS to the server through the tunnel.
"""

from __future__ import annotations

import os
import socket
import ssl
from typing import TYPE_CHECKING, Literal

import anyio
from anyio.streams.tls import TLSStream

from ._reader import RECEIVE_SIZE
from .sansio._errors import ProxyError
from .sansio._proxy import HttpConnect, Socks5Connect, parse_proxy_url, proxy_from_environment

if TYPE_CHECKING:
    from anyio.abc import ByteStream

    from .sansio._proxy import ProxyURL

__all__ = ["open_transport", "select_proxy"]


def select_proxy(
    proxy: str | Literal[True] | None, *, secure: bool, host: str, port: int
) -> ProxyURL | None:
    """The proxy to go through: ``proxy`` itself, the environment's for ``True``, or none."""
    if proxy is True:
        proxy = proxy_from_environment(os.environ, secure=secure, host=host, port=port)
    return None if proxy is None else parse_proxy_url(proxy)


async def open_transport(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    *,
    proxy: str | Literal[True] | None,
    proxy_ssl_context: ssl.SSLContext | None,
) -> ByteStream:
    """A stream to ``host:port``, TLS if ``ssl_context``, through ``proxy`` if there is one.

    Raises:
        ProxyError: The proxy refused or failed to open the tunnel.
        InvalidURL: ``proxy`` is not a proxy URL.
        OSError: Connecting to the proxy or the server failed.
    """
    chosen = select_proxy(proxy, secure=ssl_context is not None, host=host, port=port)
    if chosen is None:
        if ssl_context is not None:
            return await anyio.connect_tcp(
                host,
                port,
                ssl_context=ssl_context,
                tls_hostname=host,
                tls_standard_compatible=False,
            )
        return await anyio.connect_tcp(host, port)
    stream = await _open_tunnel(chosen, host, port, proxy_ssl_context)
    if ssl_context is None:
        return stream
    try:
        return await TLSStream.wrap(
            stream, hostname=host, ssl_context=ssl_context, standard_compatible=False
        )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _open_tunnel(
    proxy: ProxyURL, host: str, port: int, proxy_ssl_context: ssl.SSLContext | None
) -> ByteStream:
    stream: ByteStream
    if proxy.scheme == "https":
        context = proxy_ssl_context or ssl.create_default_context()
        stream = await anyio.connect_tcp(
            proxy.host,
            proxy.port,
            ssl_context=context,
            tls_hostname=proxy.host,
            tls_standard_compatible=False,
        )
    else:
        stream = await anyio.connect_tcp(proxy.host, proxy.port)
    try:
        target = host
        if not proxy.resolves_remotely:
            # socks5:// resolves the name here (curl's meaning); socks5h:// leaves it to the proxy.
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            target = str(infos[0][4][0])
        exchange = (
            Socks5Connect(target, port, username=proxy.username, password=proxy.password)
            if proxy.is_socks
            else HttpConnect(target, port, username=proxy.username, password=proxy.password)
        )
        await _run(stream, exchange)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return stream


async def _run(stream: ByteStream, exchange: HttpConnect | Socks5Connect) -> None:
    try:
        while True:
            outgoing = exchange.data_to_send()
            if outgoing:
                await stream.send(outgoing)
            try:
                data = await stream.receive(RECEIVE_SIZE)
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                # A proxy that closes on a refusal may reset rather than close: both
                # mean it will not answer, and the exchange knows what that suggests.
                try:
                    exchange.receive_eof()
                except ProxyError as error:
                    raise error from exc
            rest = exchange.receive_data(data)
            if rest is not None:
                break
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
        raise ProxyError(f"the connection to the proxy broke: {exc!r}") from exc
    if rest:
        # The client speaks first in both protocols that follow (HTTP and TLS): a proxy
        # that sends bytes before is not one to trust with the connection.
        raise ProxyError("the proxy sent data through the tunnel before the client spoke")
