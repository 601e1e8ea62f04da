"""Contract tests: the private anyio APIs that trio_ws's fast paths use (``_private_apis``)
still have the shape trio_ws relies on, in the installed versions.

If one of these fails after an upgrade, the fast path falls back to the generic one by
itself (each helper answers ``None`` for an unknown shape); this test says which
assumption moved, so that the fast path can be brought back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import anyio
import pytest

from trio_ws import _private_apis
from trio_ws._private_apis import (
    FAST_PATHS,
    asyncio_stream_parts,
    backend_checkpoint_if_cancelled,
    is_anyio_trio_socket_stream,
    trio_nursery,
)
from trio_ws.testing._memory import memory_stream_pair

pytestmark = pytest.mark.anyio


async def _tcp_pair() -> tuple[anyio.abc.SocketStream, anyio.abc.Listener[Any]]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    stream = await anyio.connect_tcp("127.0.0.1", port)
    return stream, listener


async def test_socket_stream_shapes(anyio_backend: str) -> None:
    stream, listener = await _tcp_pair()
    async with stream, listener:
        trio_socket = is_anyio_trio_socket_stream(stream)
        parts = asyncio_stream_parts(stream)
        if not FAST_PATHS:
            assert not trio_socket
            assert parts is None
        elif anyio_backend == "trio":
            assert trio_socket
            assert parts is None
        else:
            assert not trio_socket
            assert parts is not None
            transport, protocol = parts
            assert isinstance(transport, asyncio.Transport)
            assert protocol is not None, "anyio's stream protocol changed its reading shape"
            assert isinstance(protocol.read_queue, deque)
            assert isinstance(protocol.read_event, asyncio.Event)
            assert protocol.is_at_eof is False


async def test_other_streams_take_the_generic_path() -> None:
    left, _right = memory_stream_pair()
    assert not is_anyio_trio_socket_stream(left)
    assert asyncio_stream_parts(left) is None


async def test_backend_checkpoint(anyio_backend: str) -> None:
    method = backend_checkpoint_if_cancelled()
    if not FAST_PATHS:
        assert method is None
        return
    assert method is not None
    await method()  # a checkpoint that is not cancelled returns
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await method()


async def test_trio_nursery(anyio_backend: str) -> None:
    async with anyio.create_task_group() as task_group:
        nursery = trio_nursery(task_group)
        if FAST_PATHS and anyio_backend == "trio":
            import trio

            assert isinstance(nursery, trio.Nursery)
        else:
            assert nursery is None


async def test_the_switch_turns_every_helper_off(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_private_apis, "FAST_PATHS", False)
    stream, listener = await _tcp_pair()
    async with stream, listener, anyio.create_task_group() as task_group:
        assert not is_anyio_trio_socket_stream(stream)
        assert asyncio_stream_parts(stream) is None
        assert backend_checkpoint_if_cancelled() is None
        assert trio_nursery(task_group) is None
