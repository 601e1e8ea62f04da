"""The example project's tests: they use the ws_client fixture of trio_ws's pytest plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest
from app import handler  # type: ignore[import-not-found]  # beside this file once copied

from trio_ws import ConnectionRejected

if TYPE_CHECKING:
    from trio_ws.pytest_plugin import WebSocketClientFactory


@pytest.mark.anyio
async def test_chat(ws_client: WebSocketClientFactory, anyio_backend: str) -> None:
    with anyio.fail_after(5):
        async with ws_client(handler, "/chat", headers={"X-User": anyio_backend}) as ws:
            assert await ws.get_message() == f"welcome, {anyio_backend}"
            await ws.send_message("hi")
            assert await ws.get_message() == f"{anyio_backend}: hi"


@pytest.mark.anyio
async def test_unknown_room(ws_client: WebSocketClientFactory) -> None:
    with anyio.fail_after(5), pytest.raises(ConnectionRejected) as info:
        async with ws_client(handler, "/nowhere"):
            pass
    assert info.value.status_code == 404
    assert info.value.body == b"no such room"


@pytest.mark.anyio
async def test_handler_failure_fails_the_test(ws_client: WebSocketClientFactory) -> None:
    with anyio.fail_after(5), pytest.raises(RuntimeError, match="the handler failed"):  # noqa: PT012
        async with ws_client(handler, "/chat") as ws:
            await ws.get_message()
            await ws.send_message("boom")  # read before the close frame the exit sends


@pytest.mark.anyio
async def test_expected_to_fail(ws_client: WebSocketClientFactory) -> None:
    # Left failing on purpose: the suite checks that the plugin reports it.
    async with ws_client(handler, "/chat") as ws:
        assert await ws.get_message() == "welcome, nobody"
