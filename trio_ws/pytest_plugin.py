"""pytest fixtures for testing applications built on trio_ws.

Installed with trio_ws and loaded by pytest itself (the ``pytest11`` entry point): a test
asks for :func:`ws_client` by name. Nothing here needs an event loop of its own: the
fixture returns a factory, and the test runs on whatever runner it uses (anyio's pytest
plugin with ``@pytest.mark.anyio``, or pytest-trio), on trio or asyncio.

Disable the plugin with ``pytest -p no:trio_ws``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pytest

from .testing import open_websocket_in_memory

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractAsyncContextManager

    from typing_extensions import Unpack

    from ._client import ClientOptions
    from ._connection import WebSocketConnection
    from ._server import Handler, ServerOptions

__all__ = ["WebSocketClientFactory", "ws_client"]


class WebSocketClientFactory(Protocol):
    """What :func:`ws_client` returns: call it to connect a client to a handler in memory."""

    def __call__(
        self,
        handler: Handler,
        path: str = "/",
        *,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
        host: str = "testserver",
        server_options: ServerOptions | None = None,
        **options: Unpack[ClientOptions],
    ) -> AbstractAsyncContextManager[WebSocketConnection]:
        """Connect a client to ``handler``, asking for ``path`` with ``headers``."""
        ...


def _connect(
    handler: Handler,
    path: str = "/",
    *,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    host: str = "testserver",
    server_options: ServerOptions | None = None,
    **options: Unpack[ClientOptions],
) -> AbstractAsyncContextManager[WebSocketConnection]:
    if headers and "extra_headers" in options:
        raise TypeError("ws_client() takes headers= or extra_headers=, not both")
    if headers:
        options["extra_headers"] = headers
    return open_websocket_in_memory(
        handler, path, host=host, server_options=server_options, **options
    )


@pytest.fixture
def ws_client() -> WebSocketClientFactory:
    """A factory that connects a client to a server handler in memory, for tests.

    ``async with ws_client(handler, "/chat", headers={"Cookie": "id=1"}) as ws:`` runs
    ``handler`` as :func:`~trio_ws.serve_websocket` would (real opening handshake, no
    socket, no port) and gives the block the client's connection. ``path`` is the
    request target (with an optional ``?query``); ``server_options`` go to the server
    side; other keywords are client options. A handler that raises fails the test when
    the block ends; a rejection raises :exc:`~trio_ws.ConnectionRejected` on entry. See
    :func:`trio_ws.testing.open_websocket_in_memory`, which this wraps.
    """
    return _connect
