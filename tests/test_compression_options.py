"""The public compression controls: ``Compression`` settings, ``send_message(compress=)``."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from anyio.abc import ByteStream

from trio_ws import (
    Compression,
    WebSocketRequest,
    open_websocket_stream,
    open_websocket_url,
    serve_websocket,
    serve_websocket_stream,
)
from trio_ws.sansio import FrameParser
from trio_ws.sansio.extensions.permessage_deflate import PerMessageDeflate
from trio_ws.testing import memory_stream_pair, open_websocket_in_memory

if TYPE_CHECKING:
    from collections.abc import Mapping

    from trio_ws import ServerOptions, WebSocketConnection


class RecordingStream(ByteStream):
    """Passes everything through and keeps a copy of what was sent."""

    def __init__(self, inner: ByteStream) -> None:
        self.inner = inner
        self.sent = bytearray()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self.inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        self.sent += item
        await self.inner.send(item)

    async def send_eof(self) -> None:
        await self.inner.send_eof()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def data_frames(self) -> list[tuple[bool, int]]:
        """``(rsv1, payload size)`` of every data frame sent after the handshake."""
        _, _, frames = bytes(self.sent).partition(b"\r\n\r\n")
        parsed = FrameParser(require_mask=True, reserved_bits=(True, False, False))
        return [
            (frame.rsv1, len(frame.payload))
            for frame in parsed.receive_data(frames)
            if not frame.opcode.is_control
        ]


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_send_message_compress_overrides_the_size_rule() -> None:
    big = "abc" * 1000  # compressible, well above min_size
    small = "hi"  # below min_size
    client_stream, server_stream = memory_stream_pair()
    recording = RecordingStream(client_stream)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_websocket_stream, echo, server_stream)
            async with open_websocket_stream(recording, host="h") as ws:
                assert isinstance(ws.extensions[0], PerMessageDeflate)
                cases: list[tuple[str | bytes, bool | None]] = [
                    (big, None),
                    (big, False),
                    (small, None),
                    (small, True),
                    (big.encode(), False),
                ]
                for message, compress in cases:
                    await ws.send_message(message, compress=compress)
                    assert await ws.get_message() == message  # the server decodes both kinds
    frames = recording.data_frames()
    assert [rsv1 for rsv1, _ in frames] == [True, False, False, True, False]
    assert frames[0][1] < 100  # compressed
    assert frames[1][1] == len(big)  # sent as is
    assert frames[4][1] == len(big)


@pytest.mark.anyio
async def test_send_message_parts_compress() -> None:
    client_stream, server_stream = memory_stream_pair()
    recording = RecordingStream(client_stream)
    parts = ["x" * 500, "y" * 500, "z"]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_websocket_stream, echo, server_stream)
            async with open_websocket_stream(recording, host="h") as ws:
                await ws.send_message_parts(parts, compress=False)
                assert await ws.get_message() == "".join(parts)
                await ws.send_message_parts(["a", "b"], compress=True)
                assert await ws.get_message() == "ab"
    frames = recording.data_frames()
    # Only a message's first frame carries RSV1 (RFC 7692 section 6.1).
    assert [rsv1 for rsv1, _ in frames] == [False, False, False, True, False]
    assert [size for _, size in frames[:3]] == [500, 500, 1]


@pytest.mark.anyio
async def test_compress_is_ignored_without_compression() -> None:
    with anyio.fail_after(10):
        async with open_websocket_in_memory(echo, compression=None) as ws:
            assert ws.extensions == ()
            await ws.send_message("hello", compress=True)
            assert await ws.get_message() == "hello"


async def negotiate(
    server_options: ServerOptions, **client_options: Any
) -> tuple[PerMessageDeflate, PerMessageDeflate, WebSocketConnection]:
    """Open a connection in memory; return the server's and client's extensions."""
    found: list[PerMessageDeflate] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        extension = ws.extensions[0]
        assert isinstance(extension, PerMessageDeflate)
        found.append(extension)
        await echo_once(ws)

    with anyio.fail_after(10):
        async with open_websocket_in_memory(
            handler, server_options=server_options, **client_options
        ) as ws:
            await ws.send_message("a" * 1000)
            assert await ws.get_message() == "a" * 1000
    client_extension = ws.extensions[0]
    assert isinstance(client_extension, PerMessageDeflate)
    return found[0], client_extension, ws


async def echo_once(ws: WebSocketConnection) -> None:
    await ws.send_message(await ws.get_message())


@pytest.mark.anyio
async def test_server_settings_reach_the_negotiation() -> None:
    settings = Compression(
        level=9,
        mem_level=8,
        min_size=10,
        max_window_bits=10,
        peer_max_window_bits=9,
        no_context_takeover=True,
    )
    server, client, ws = await negotiate({"compression": settings})
    answer = ws.response_headers["Sec-WebSocket-Extensions"]
    assert "server_no_context_takeover" in answer
    assert "server_max_window_bits=10" in answer
    assert "client_max_window_bits=9" in answer
    assert (server.local_max_window_bits, server.remote_max_window_bits) == (10, 9)
    assert (server.level, server.mem_level, server.min_size) == (9, 8, 10)
    assert server.local_no_context_takeover
    assert not server.remote_no_context_takeover
    assert (client.local_max_window_bits, client.remote_max_window_bits) == (9, 10)
    assert client.remote_no_context_takeover


@pytest.mark.anyio
async def test_client_settings_reach_the_offer() -> None:
    settings = Compression(
        min_size=0,
        max_window_bits=11,
        peer_max_window_bits=13,
        no_context_takeover=True,
        peer_no_context_takeover=True,
    )
    server, client, ws = await negotiate({}, compression=settings)
    offer = ws.request_headers["Sec-WebSocket-Extensions"]
    for parameter in (
        "client_max_window_bits=11",
        "server_max_window_bits=13",
        "client_no_context_takeover",
        "server_no_context_takeover",
    ):
        assert parameter in offer
    assert client.min_size == 0
    assert client.local_no_context_takeover
    assert client.remote_no_context_takeover
    # The server's default window (12) is below the 13 the client allowed.
    assert client.remote_max_window_bits == 12
    assert client.local_max_window_bits == 11
    assert (server.local_max_window_bits, server.remote_max_window_bits) == (12, 11)


@pytest.mark.anyio
async def test_deflate_string_means_the_default_settings() -> None:
    server, client, _ = await negotiate({"compression": "deflate"}, compression=Compression())
    assert (server.local_max_window_bits, server.remote_max_window_bits) == (12, 12)
    assert (client.level, client.mem_level, client.min_size) == (1, 5, 64)


@pytest.mark.anyio
async def test_settings_over_tcp() -> None:
    settings = Compression(max_window_bits=9, peer_max_window_bits=9)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await tg.start(
                functools.partial(serve_websocket, echo, "127.0.0.1", 0, compression=settings)
            )
            url = f"ws://127.0.0.1:{server.port}/"
            async with open_websocket_url(url, compression=Compression(level=0)) as ws:
                extension = ws.extensions[0]
                assert isinstance(extension, PerMessageDeflate)
                assert (extension.local_max_window_bits, extension.level) == (9, 0)
                await ws.send_message("b" * 5000)
                assert await ws.get_message() == "b" * 5000
            tg.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"level": 10}, ValueError),
        ({"level": -2}, ValueError),
        ({"mem_level": 0}, ValueError),
        ({"min_size": -1}, ValueError),
        ({"max_window_bits": 7}, ValueError),
        ({"peer_max_window_bits": 16}, ValueError),
        ({"level": True}, TypeError),
        ({"level": 1.5}, TypeError),
        ({"no_context_takeover": 1}, TypeError),
    ],
)
def test_invalid_settings(options: Mapping[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Compression(**options)


@pytest.mark.anyio
async def test_unknown_compression_is_a_value_error() -> None:
    client = open_websocket_url("ws://127.0.0.1:1/", compression="gzip")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="compression"):
        await client.__aenter__()
    with pytest.raises(ValueError, match="compression"):
        await serve_websocket(echo, "127.0.0.1", 0, compression="gzip")  # type: ignore[arg-type]
