"""Client and server over byte streams the caller provides, and the in-memory test helper."""

from __future__ import annotations

import logging

import anyio
import pytest

from trio_ws import (
    ConnectionClosed,
    ConnectionClosedOK,
    ConnectionRejected,
    WebSocketRequest,
    connect_websocket_stream,
    open_websocket_stream,
    serve_websocket_stream,
)
from trio_ws.testing import memory_stream_pair, open_websocket_in_memory


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


@pytest.mark.anyio
async def test_client_and_server_over_a_memory_stream() -> None:
    seen: list[tuple[str, str, str | None]] = []

    async def handler(request: WebSocketRequest) -> None:
        seen.append((request.path, request.query, request.headers.get("Host")))
        await echo(request)

    client_stream, server_stream = memory_stream_pair()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_websocket_stream, handler, server_stream)
            async with open_websocket_stream(
                client_stream, host="example.test", resource="/echo?x=1"
            ) as ws:
                assert (ws.path, ws.query, ws.resource) == ("/echo", "x=1", "/echo?x=1")
                assert ws.remote_address is None  # no socket under a memory stream
                await ws.send_message("hello")
                assert await ws.get_message() == "hello"
                await ws.send_message(b"\x00\x01")
                assert await ws.get_message() == b"\x00\x01"
            # The server's side ends by itself once the client closed: no cancel needed.
    assert seen == [("/echo", "x=1", "example.test")]


@pytest.mark.anyio
async def test_connect_websocket_stream_in_a_caller_task_group() -> None:
    client_stream, server_stream = memory_stream_pair()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_websocket_stream, echo, server_stream)
            ws = await connect_websocket_stream(tg, client_stream, host="h", port=8080)
            assert ws.request_headers["Host"] == "h:8080"
            await ws.send_message("ping")
            assert await ws.get_message() == "ping"
            await ws.aclose()
            assert ws.close_code == 1000


@pytest.mark.trio
async def test_trio_streams_are_accepted() -> None:
    import trio
    import trio.testing

    client_stream, server_stream = trio.testing.memory_stream_pair()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve_websocket_stream, echo, server_stream)
            async with open_websocket_stream(client_stream, host="h") as ws:
                await ws.send_message("over trio")
                assert await ws.get_message() == "over trio"


@pytest.mark.anyio
async def test_not_a_stream_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ByteStream"):
        async with open_websocket_stream(object(), host="h"):  # type: ignore[arg-type]
            pass  # pragma: no cover
    with pytest.raises(TypeError, match="ByteStream"):
        await serve_websocket_stream(echo, object())  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_rejection_over_a_stream_closes_the_stream() -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(404, body="nothing here\n")

    client_stream, server_stream = memory_stream_pair()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_websocket_stream, handler, server_stream)
            with pytest.raises(ConnectionRejected) as caught:
                async with open_websocket_stream(client_stream, host="h"):
                    pass  # pragma: no cover
    assert caught.value.status_code == 404
    assert caught.value.body == b"nothing here\n"
    with pytest.raises(anyio.ClosedResourceError):
        await client_stream.send(b"x")  # the client closed the stream it was given


@pytest.mark.anyio
async def test_cancelling_serve_websocket_stream_closes_with_1001() -> None:
    accepted = anyio.Event()

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        accepted.set()
        await ws.get_message()  # pragma: no cover (cancelled before a message)

    client_stream, server_stream = memory_stream_pair()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            serving = anyio.CancelScope()

            async def serve() -> None:
                with serving:
                    await serve_websocket_stream(handler, server_stream, close_timeout=2)

            tg.start_soon(serve)
            async with open_websocket_stream(client_stream, host="h") as ws:
                await accepted.wait()
                serving.cancel()
                with pytest.raises(ConnectionClosedOK) as caught:
                    await ws.get_message()
                assert caught.value.code == 1001


@pytest.mark.anyio
async def test_in_memory_helper_runs_the_whole_stack() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol="chat")
        await ws.send_message(f"hello {request.query_params['name']}")
        async for message in ws:
            await ws.send_message(message)

    with anyio.fail_after(10):
        async with open_websocket_in_memory(handler, "/room?name=ann", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.extensions[0].name == "permessage-deflate"  # negotiated for real
            assert await ws.get_message() == "hello ann"
            await ws.send_message("x" * 100_000)  # larger than the in-memory window
            assert await ws.get_message() == "x" * 100_000
        assert ws.close_code == 1000


@pytest.mark.anyio
async def test_in_memory_helper_passes_server_options() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message("hi")

    with anyio.fail_after(10):
        async with open_websocket_in_memory(handler, server_options={"compression": None}) as ws:
            assert ws.extensions == ()
            assert await ws.get_message() == "hi"


@pytest.mark.anyio
async def test_in_memory_helper_raises_the_handler_error(caplog: pytest.LogCaptureFixture) -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.get_message()
        raise KeyError("handler bug")

    codes: list[int] = []

    async def talk() -> None:
        async with open_websocket_in_memory(handler) as ws:
            await ws.send_message("go")
            with pytest.raises(ConnectionClosed) as caught:
                await ws.get_message()
            codes.append(caught.value.code)

    with (
        anyio.fail_after(10),
        caplog.at_level(logging.ERROR, logger="trio_ws.server"),
        pytest.raises(KeyError, match="handler bug"),
    ):
        await talk()
    assert codes == [1011]  # the client saw the close before the error was raised
    assert "handler bug" in caplog.text


@pytest.mark.anyio
async def test_in_memory_helper_reports_a_rejection() -> None:
    async def handler(request: WebSocketRequest) -> None:
        await request.reject(401, headers={"WWW-Authenticate": "Bearer"})

    with anyio.fail_after(10), pytest.raises(ConnectionRejected) as caught:
        async with open_websocket_in_memory(handler):
            pass  # pragma: no cover
    assert caught.value.status_code == 401
    assert caught.value.headers["WWW-Authenticate"] == "Bearer"
