"""Echo servers and benchmark clients for every library the benchmarks compare.

Each library is described once by a :class:`Library`: how to run an echo server on a port,
and how to open a client connection that exposes ``send(message)`` and ``recv()``. The
scenarios (:mod:`scenarios`) are written once against that pair of callables, so each
library runs exactly the same client code and is measured against its own server.

This file is also the entry point of the server and client processes that ``run.py`` and
``memory.py`` start::

    python benchmarks/peers.py serve LIBRARY --port PORT [--compression] [--max-size N]
                                     [--ping-interval SECONDS]
    python benchmarks/peers.py client LIBRARY SCENARIO --port PORT --count N --cap SECONDS
    python benchmarks/peers.py hold LIBRARY --port PORT --connections N [--compression]

A server prints ``ready`` once it listens, answers ``rss`` on its standard input with
``rss <kB> <open connections>`` (after a garbage collection; ``rss trim`` also calls glibc's
``malloc_trim(0)`` first, which hands the pages the allocator holds free back to the system)
and exits when its standard input closes, so a crashed runner never leaves servers behind.

``--ping-interval`` sets the keepalive interval of the libraries that have one (trio_ws,
websockets); without it, each library's default applies. The environment variable
``PEERS_PING_INTERVAL`` gives it to servers started by a runner that does not pass it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import importlib.util
import json
import os
import resource
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

Send = Callable[[Any], Awaitable[None]]
Recv = Callable[[], Awaitable[Any]]
Connect = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Send, Recv]]]

#: Large enough for the 4 MiB scenario on every library.
MAX_SIZE = 8 * 2**20

#: Connections that completed the handshake on this server (for ``memory.py``).
open_connections = 0


@dataclass(frozen=True)
class Library:
    """One WebSocket implementation on one event loop.

    Attributes:
        name: the column name in the tables.
        backend: ``"trio"`` or ``"asyncio"``, the loop both processes run on.
        modules: modules that must be importable for the library to be benchmarked.
        serve: ``serve(port, *, compression, max_size, ping_interval)`` runs an echo
            server forever (``ping_interval``: ``None`` for the library's default; ignored
            by libraries without keepalive pings).
        connect: ``connect(url, *, compression, max_size)`` is an async context manager
            yielding ``(send, recv)``.
    """

    name: str
    backend: str
    modules: tuple[str, ...]
    serve: Callable[..., Awaitable[None]]
    connect: Connect
    #: printed beside the library in the tables
    note: str = ""
    #: whether the library implements permessage-deflate at all
    compression: bool = True
    #: the scenarios it is measured in (``None``: all); the raw TCP floors only make sense
    #: where one message is in flight per connection (their client does not batch writes)
    scenarios: tuple[str, ...] | None = None


def missing_reason(library: Library) -> str | None:
    """Why ``library`` cannot run here, or ``None`` when it can."""
    for module in library.modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found and module == "websockets.trio":
            return "this version of websockets has no trio implementation (websockets.trio)"
        if not found:
            return f"module {module} is not installed"
    if library.name.startswith("trio_ws"):
        try:
            import trio_ws

            for name in ("serve_websocket", "open_websocket_url"):
                if not hasattr(trio_ws, name):
                    return f"trio_ws.{name} does not exist yet"
        except ImportError as exc:
            return f"trio_ws cannot be imported: {exc}"
    return None


def _count_open() -> None:
    global open_connections
    open_connections += 1


def _count_closed() -> None:
    global open_connections
    open_connections -= 1


# --- trio_ws (the same code on trio and on asyncio, through anyio) ---------------------------


async def _serve_trio_ws(
    port: int,
    *,
    compression: bool,
    max_size: int | None,
    ping_interval: float | None = None,
    ssl_context: Any = None,
    nowait: bool = False,
) -> None:
    import trio_ws

    async def handler(request: Any) -> None:
        ws = await request.accept()
        _count_open()
        try:
            if nowait:
                await _echo_nowait(ws)
            else:
                while True:
                    await ws.send_message(await ws.get_message())
        except trio_ws.ConnectionClosed:
            pass
        finally:
            _count_closed()

    options: dict[str, Any] = {"max_message_size": max_size}
    if not compression:
        options["compression"] = None
    if ping_interval is not None:
        options["ping_interval"] = ping_interval
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
    async with anyio.create_task_group() as tg:
        await tg.start(
            functools.partial(trio_ws.serve_websocket, handler, "127.0.0.1", port, **options)
        )


async def _echo_nowait(ws: Any) -> None:
    """The echo loop with the no-yield calls: one checkpoint per batch of received
    messages (the wait for the first), none per message (``docs/performance.md``)."""
    from trio_ws import WouldBlock

    get_nowait = ws.get_message_nowait
    send_nowait = ws.send_message_nowait
    while True:
        message = await ws.get_message()
        while True:
            try:
                send_nowait(message)
            except WouldBlock:  # over write_high_water: wait for room as send_message does
                await ws.send_message(message)
            if not ws.messages_waiting:
                break
            message = get_nowait()


_serve_trio_ws_nowait = functools.partial(_serve_trio_ws, nowait=True)


@contextlib.asynccontextmanager
async def _connect_trio_ws_nowait(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    from trio_ws import WouldBlock

    async with _connect_trio_ws(url, compression=compression, max_size=max_size) as (
        send_message,
        get_message,
    ):
        # The connection's methods, reached through the bound awaitables' owner.
        ws: Any = send_message.__self__
        send_nowait = ws.send_message_nowait
        get_nowait = ws.get_message_nowait

        async def send(message: Any) -> None:
            try:
                send_nowait(message)
            except WouldBlock:
                await send_message(message)

        async def recv() -> Any:
            if ws.messages_waiting:
                return get_nowait()
            return await get_message()

        yield send, recv


@contextlib.asynccontextmanager
async def _connect_trio_ws(
    url: str, *, compression: bool, max_size: int | None, ssl_context: Any = None
) -> AsyncIterator[tuple[Send, Recv]]:
    import trio_ws

    options: dict[str, Any] = {"max_message_size": max_size}
    if ssl_context is not None:
        options["ssl_context"] = ssl_context
    if not compression:
        options["compression"] = None
    async with trio_ws.open_websocket_url(url, **options) as ws:
        yield ws.send_message, ws.get_message


def _server_tls_context() -> Any:
    """A throwaway certificate for 127.0.0.1 (trustme), made when the server starts."""
    import ssl

    import trustme

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    return context


@functools.cache
def _client_tls_context() -> Any:
    """The client does not verify the throwaway certificate: the benchmark measures the
    record layer, not the certificate check of the handshake. One context for all the
    client's connections, as an application would have: making one loads the system's CA
    store (milliseconds), and 1,000 of them made the set-up scenario time out."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _serve_trio_ws_tls(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    await _serve_trio_ws(
        port,
        compression=compression,
        max_size=max_size,
        ping_interval=ping_interval,
        ssl_context=_server_tls_context(),
    )


@contextlib.asynccontextmanager
async def _connect_trio_ws_tls(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    async with _connect_trio_ws(
        url.replace("ws://", "wss://", 1),
        compression=compression,
        max_size=max_size,
        ssl_context=_client_tls_context(),
    ) as pair:
        yield pair


# --- websockets (asyncio implementation) -----------------------------------------------------


async def _serve_websockets_asyncio(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    from websockets.asyncio.server import serve
    from websockets.exceptions import ConnectionClosed

    async def handler(ws: Any) -> None:
        _count_open()
        try:
            while True:
                await ws.send(await ws.recv())
        except ConnectionClosed:
            pass
        finally:
            _count_closed()

    options: dict[str, Any] = {}
    if ping_interval is not None:
        options["ping_interval"] = ping_interval
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression="deflate" if compression else None,
        max_size=max_size,
        **options,
    ) as server:
        await server.serve_forever()


@contextlib.asynccontextmanager
async def _connect_websockets_asyncio(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    from websockets.asyncio.client import connect

    async with connect(
        url, compression="deflate" if compression else None, max_size=max_size
    ) as ws:
        yield ws.send, ws.recv


# --- websockets (trio implementation, in the versions that ship websockets.trio) -------------


async def _serve_websockets_trio(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.trio.server import serve

    async def handler(ws: Any) -> None:
        _count_open()
        try:
            while True:
                await ws.send(await ws.recv())
        except ConnectionClosed:
            pass
        finally:
            _count_closed()

    async with anyio.create_task_group() as tg:
        await tg.start(
            functools.partial(
                serve,
                handler,
                port,
                host="127.0.0.1",
                compression="deflate" if compression else None,
                max_size=max_size,
                **({} if ping_interval is None else {"ping_interval": ping_interval}),
            )
        )


@contextlib.asynccontextmanager
async def _connect_websockets_trio(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    from websockets.trio.client import connect

    async with connect(
        url, compression="deflate" if compression else None, max_size=max_size
    ) as ws:
        yield ws.send, ws.recv


# --- trio-websocket (no compression support) -------------------------------------------------


async def _serve_trio_websocket(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    from trio_websocket import ConnectionClosed, serve_websocket

    async def handler(request: Any) -> None:
        ws = await request.accept()
        _count_open()
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass
        finally:
            _count_closed()

    async with anyio.create_task_group() as tg:
        await tg.start(
            functools.partial(
                serve_websocket,
                handler,
                "127.0.0.1",
                port,
                None,
                max_message_size=max_size or 2**62,
            )
        )


@contextlib.asynccontextmanager
async def _connect_trio_websocket(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    from trio_websocket import open_websocket_url

    async with open_websocket_url(url, max_message_size=max_size or 2**62) as ws:
        yield ws.send_message, ws.get_message


# --- picows (Cython, callbacks on asyncio) ---------------------------------------------------


async def _serve_picows(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    from picows import WSListener, WSMsgType, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_connected(self, transport: Any) -> None:
            _count_open()

        def on_ws_disconnected(self, transport: Any) -> None:
            _count_closed()

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            elif frame.msg_type != WSMsgType.PING and frame.msg_type != WSMsgType.PONG:
                # Frames are echoed one by one, so fragmented messages keep their shape.
                transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)

    server = await ws_create_server(
        lambda request: Echo(), "127.0.0.1", port, max_frame_size=max_size or 2**62
    )
    async with server:
        await server.serve_forever()


@contextlib.asynccontextmanager
async def _connect_picows(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    from picows import WSCloseCode, WSListener, WSMsgType, ws_connect

    loop = asyncio.get_running_loop()

    class Client(WSListener):  # type: ignore[misc]
        def __init__(self) -> None:
            self.received: deque[Any] = deque()
            self.waiter: asyncio.Future[None] | None = None

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.TEXT:
                self.received.append(frame.get_payload_as_utf8_text())
            elif frame.msg_type == WSMsgType.BINARY:
                self.received.append(frame.get_payload_as_bytes())
            else:
                return
            waiter = self.waiter
            if waiter is not None:
                self.waiter = None
                if not waiter.done():
                    waiter.set_result(None)

        def on_ws_disconnected(self, transport: Any) -> None:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(ConnectionError("picows: disconnected"))

    transport, client = await ws_connect(Client, url, max_frame_size=max_size or 2**62)

    async def send(message: Any) -> None:
        if isinstance(message, str):
            transport.send(WSMsgType.TEXT, message.encode())
        else:
            transport.send(WSMsgType.BINARY, message)

    async def recv() -> Any:
        while not client.received:
            client.waiter = loop.create_future()
            await client.waiter
        return client.received.popleft()

    try:
        yield send, recv
    finally:
        transport.send_close(WSCloseCode.OK)
        transport.disconnect()
        await transport.wait_disconnected()


# --- no WebSocket at all: raw TCP on trio, the floor of the scheduler and the kernel ----------
#
# Not a competitor: the least a trio server and client can do per message with the same
# system calls as a WebSocket library (one recv and one send per echo, a wait for readiness
# when the socket has nothing). The echo server returns whatever bytes arrive; the client
# frames each message with a 4-byte length. The gap between a library and this floor is
# what the library itself costs per message. It is a floor for a library written in Python
# on the same loop: one compiled to C (picows, on asyncio) can go under it, since the floor
# still runs a few lines of Python per message.

#: trio_ws's read size; over glibc's mmap threshold (128 KiB), each recv would map and
#: unmap its buffer: three system calls more per message.
_FLOOR_CHUNK = 2**16
#: Where a floor is a floor: one message in flight per connection.
FLOOR_SCENARIOS = ("rtt", "fan-in")


def _floor_frame(message: Any) -> bytes:
    """A floor client's message on the wire: its 4-byte length, then its bytes."""
    payload = message.encode() if isinstance(message, str) else message
    return len(payload).to_bytes(4, "big") + payload


def _floor_unframe(buffer: bytearray) -> Any:
    """Take the first whole message out of ``buffer``, or ``None`` if none is complete."""
    if len(buffer) < 4:
        return None
    size = int.from_bytes(buffer[:4], "big")
    if len(buffer) < 4 + size:
        return None
    payload = bytes(buffer[4 : 4 + size])
    del buffer[: 4 + size]
    # The scenarios send text for small messages and bytes for large ones.
    return payload.decode() if size < 1024 else payload


async def _floor_echo(sock: Any) -> None:
    import trio

    wait_readable = trio.lowlevel.wait_readable
    wait_writable = trio.lowlevel.wait_writable
    recv = sock.recv
    send = sock.send
    try:
        while True:
            # Wait before every recv: with one message in flight per connection (rtt,
            # fan-in), a read empties the socket, so an echo costs one recv, as in the
            # libraries after a short read, and never a second one that fails.
            await wait_readable(sock)
            data = recv(_FLOOR_CHUNK)
            if not data:
                return
            view = memoryview(data)
            while view:
                try:
                    view = view[send(view) :]
                except BlockingIOError:
                    await wait_writable(sock)
    except OSError:
        pass
    finally:
        sock.close()


async def _serve_tcp_trio(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    import trio

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(4096)
    listener.setblocking(False)
    async with trio.open_nursery() as nursery:
        while True:
            await trio.lowlevel.wait_readable(listener)
            try:
                sock, _ = listener.accept()
            except BlockingIOError:
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            nursery.start_soon(_floor_echo, sock)


@contextlib.asynccontextmanager
async def _connect_tcp_trio(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    import trio

    port = int(url.rsplit(":", 1)[1].strip("/"))
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.connect(("127.0.0.1", port))
    except BlockingIOError:
        await trio.lowlevel.wait_writable(sock)
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        sock.close()
        raise OSError(error, os.strerror(error))
    wait_readable = trio.lowlevel.wait_readable
    wait_writable = trio.lowlevel.wait_writable
    buffer = bytearray()

    async def send(message: Any) -> None:
        view = memoryview(_floor_frame(message))
        while view:
            try:
                view = view[sock.send(view) :]
            except BlockingIOError:
                await wait_writable(sock)

    async def recv() -> Any:
        while True:
            message = _floor_unframe(buffer)
            if message is not None:
                return message
            await wait_readable(sock)
            data = sock.recv(_FLOOR_CHUNK)
            if not data:
                raise ConnectionError("the floor server closed the connection")
            buffer.extend(data)

    try:
        yield send, recv
    finally:
        sock.close()


# --- no WebSocket at all: raw TCP on asyncio (the same floor, on asyncio's loop) ---------------


class _FloorEchoProtocol(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _serve_tcp_asyncio(
    port: int, *, compression: bool, max_size: int | None, ping_interval: float | None = None
) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_FloorEchoProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


class _FloorClientProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[None] | None = None
        self.lost: BaseException | None = None

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = exc or ConnectionError("the floor server closed the connection")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


@contextlib.asynccontextmanager
async def _connect_tcp_asyncio(
    url: str, *, compression: bool, max_size: int | None
) -> AsyncIterator[tuple[Send, Recv]]:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_connection(_FloorClientProtocol, "127.0.0.1", port)
    transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = client.buffer

    async def send(message: Any) -> None:
        transport.write(_floor_frame(message))

    async def recv() -> Any:
        while True:
            message = _floor_unframe(buffer)
            if message is not None:
                return message
            if client.lost is not None:
                raise client.lost
            client.waiter = loop.create_future()
            await client.waiter

    try:
        yield send, recv
    finally:
        transport.close()


LIBRARIES: dict[str, Library] = {
    library.name: library
    for library in (
        Library("trio_ws-trio", "trio", ("trio_ws", "trio"), _serve_trio_ws, _connect_trio_ws),
        Library(
            "trio_ws-asyncio",
            "asyncio",
            ("trio_ws",),
            _serve_trio_ws,
            _connect_trio_ws,
            note="through anyio",
        ),
        Library(
            "trio_ws-trio-nowait",
            "trio",
            ("trio_ws", "trio"),
            _serve_trio_ws_nowait,
            _connect_trio_ws_nowait,
            note="the *_nowait calls, a checkpoint per batch",
        ),
        Library(
            "trio_ws-asyncio-nowait",
            "asyncio",
            ("trio_ws",),
            _serve_trio_ws_nowait,
            _connect_trio_ws_nowait,
            note="the *_nowait calls, through anyio",
        ),
        Library(
            "trio_ws-trio-tls",
            "trio",
            ("trio_ws", "trio", "trustme"),
            _serve_trio_ws_tls,
            _connect_trio_ws_tls,
            note="wss://, TLS 1.3",
        ),
        Library(
            "trio_ws-asyncio-tls",
            "asyncio",
            ("trio_ws", "trustme"),
            _serve_trio_ws_tls,
            _connect_trio_ws_tls,
            note="wss://, through anyio",
        ),
        Library(
            "websockets-asyncio",
            "asyncio",
            ("websockets.asyncio",),
            _serve_websockets_asyncio,
            _connect_websockets_asyncio,
        ),
        Library(
            "websockets-trio",
            "trio",
            ("websockets.trio", "trio"),
            _serve_websockets_trio,
            _connect_websockets_trio,
        ),
        Library(
            "trio-websocket",
            "trio",
            ("trio_websocket",),
            _serve_trio_websocket,
            _connect_trio_websocket,
            compression=False,
        ),
        Library(
            "tcp-trio",
            "trio",
            ("trio",),
            _serve_tcp_trio,
            _connect_tcp_trio,
            note="no WebSocket: raw TCP echo, the floor",
            compression=False,
            scenarios=FLOOR_SCENARIOS,
        ),
        Library(
            "tcp-asyncio",
            "asyncio",
            (),
            _serve_tcp_asyncio,
            _connect_tcp_asyncio,
            note="no WebSocket: raw TCP echo, the floor",
            compression=False,
            scenarios=FLOOR_SCENARIOS,
        ),
        Library(
            "picows",
            "asyncio",
            ("picows",),
            _serve_picows,
            _connect_picows,
            note="Cython",
            compression=False,
        ),
    )
}


def raise_fd_limit(wanted: int) -> None:
    """Raise the soft limit on open files towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def resident_kib(pid: int | str = "self") -> int:
    """Resident set size of process ``pid`` in KiB (``VmRSS`` of ``/proc/PID/status``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS line")


def _malloc_trim() -> None:
    """Hand the free pages of glibc's heap back to the system (nothing elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


def _control_loop(graceful: bool) -> None:
    # The runner talks to the server through its standard input; a closed input means the
    # runner is gone, so the server goes too (no orphan servers after a crash or Ctrl-C).
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["rss"]:
            gc.collect()
            if words[1:] == ["trim"]:
                _malloc_trim()
            print(f"rss {resident_kib()} {open_connections}", flush=True)
    if graceful:
        # A profiled server must leave its loop to write the profile: interrupt the main
        # thread, and exit anyway if that has not worked within a few seconds.
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(10)
    os._exit(0)


def _run(backend: str, main: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(main, backend=backend)


async def wait_until_listening(port: int) -> None:
    """Poll until 127.0.0.1:``port`` accepts connections (at most about 5 s): not every
    library reports readiness. Runs on trio and asyncio."""
    for _ in range(500):
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            await anyio.sleep(0.01)
        else:
            await stream.aclose()
            return
    raise RuntimeError("the server did not start listening")


def serve_main(
    library: Library,
    port: int,
    *,
    compression: bool,
    max_size: int | None,
    ping_interval: float | None = None,
    profile: str | None = None,
) -> None:
    """Run ``library``'s echo server on 127.0.0.1:``port`` until standard input closes.

    With ``profile``, the server runs under cProfile and writes its statistics there.
    """
    raise_fd_limit(65536)

    async def main() -> None:
        async def announce() -> None:
            await wait_until_listening(port)
            print("ready", flush=True)

        async with anyio.create_task_group() as tg:
            tg.start_soon(
                functools.partial(
                    library.serve,
                    port,
                    compression=compression,
                    max_size=max_size,
                    ping_interval=ping_interval,
                )
            )
            await announce()

    threading.Thread(target=_control_loop, args=(profile is not None,), daemon=True).start()
    if profile is None:
        _run(library.backend, main)
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _run(library.backend, main)
    except KeyboardInterrupt:
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(profile)
    os._exit(0)


def client_main(
    library: Library, scenario: str, port: int, *, count: int, cap: float, connections: int
) -> None:
    """Run one scenario against a server on ``port`` and print its result as JSON."""
    import scenarios

    raise_fd_limit(65536)
    run_scenario = scenarios.SCENARIOS[scenario]
    connect = functools.partial(
        library.connect, f"ws://127.0.0.1:{port}/", compression=False, max_size=MAX_SIZE
    )

    async def main() -> dict[str, Any]:
        return await run_scenario(connect, count=count, cap=cap, connections=connections)

    result = _run(library.backend, main)
    result.update(library=library.name, scenario=scenario)
    print(json.dumps(result), flush=True)


#: A 1 KiB JSON-like text message: compressible, like most real traffic.
SAMPLE = (
    '{"id": 1234, "user": "someone@example.com", "tags": ["alpha", "beta"], "score": 0.5}\n' * 12
)[:1024]


def hold_main(
    library: Library, port: int, *, connections: int, compression: bool, exchange: bool
) -> None:
    """Open ``connections`` idle connections, print ``open N``, hold them until stdin closes.

    With ``exchange``, each connection first echoes one 1 KiB text message, so that buffers
    and compression contexts that are made on first use exist.
    """
    raise_fd_limit(connections + 256)

    async def hold(url: str, opened: list[int], all_open: anyio.Event, gate: Any) -> None:
        async with gate:
            cm = library.connect(url, compression=compression, max_size=2**20)
            send, recv = await cm.__aenter__()
            if exchange:
                await send(SAMPLE)
                if await recv() != SAMPLE:
                    raise AssertionError("bad echo")
        del send, recv
        opened[0] += 1
        if opened[0] == connections:
            all_open.set()
        await anyio.sleep_forever()

    async def main() -> None:
        url = f"ws://127.0.0.1:{port}/"
        opened = [0]
        all_open = anyio.Event()
        # Bounded concurrency: a burst of thousands of handshakes would overflow the backlog.
        gate = anyio.Semaphore(50)
        async with anyio.create_task_group() as tg:
            for _ in range(connections):
                tg.start_soon(hold, url, opened, all_open, gate)
            await all_open.wait()
            print(f"open {opened[0]}", flush=True)
            await anyio.to_thread.run_sync(sys.stdin.read)
            os._exit(0)

    _run(library.backend, main)


def main(argv: list[str] | None = None) -> None:
    """Command line of the server and client processes (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve")
    serve.add_argument("library", choices=LIBRARIES)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--compression", action="store_true")
    serve.add_argument("--max-size", type=int, default=MAX_SIZE)
    serve.add_argument("--profile", metavar="PATH", help="run under cProfile, stats to PATH")
    serve.add_argument(
        "--ping-interval",
        type=float,
        default=float(os.environ["PEERS_PING_INTERVAL"])
        if os.environ.get("PEERS_PING_INTERVAL")
        else None,
        metavar="SECONDS",
        help="keepalive interval (default: the library's own)",
    )
    client = commands.add_parser("client")
    client.add_argument("library", choices=LIBRARIES)
    client.add_argument("scenario")
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--count", type=int, required=True)
    client.add_argument("--cap", type=float, required=True)
    client.add_argument("--connections", type=int, default=200)
    hold = commands.add_parser("hold")
    hold.add_argument("library", choices=LIBRARIES)
    hold.add_argument("--port", type=int, required=True)
    hold.add_argument("--connections", type=int, required=True)
    hold.add_argument("--compression", action="store_true")
    hold.add_argument("--exchange", action="store_true", help="echo one message first")
    args = parser.parse_args(argv)
    library = LIBRARIES[args.library]
    if args.command == "serve":
        serve_main(
            library,
            args.port,
            compression=args.compression,
            max_size=args.max_size,
            ping_interval=args.ping_interval,
            profile=args.profile,
        )
    elif args.command == "client":
        client_main(
            library,
            args.scenario,
            args.port,
            count=args.count,
            cap=args.cap,
            connections=args.connections,
        )
    else:
        hold_main(
            library,
            args.port,
            connections=args.connections,
            compression=args.compression,
            exchange=args.exchange,
        )


if __name__ == "__main__":
    main()
