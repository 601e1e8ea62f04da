"""``python -m trio_ws`` (the ``trio-ws`` command): a client to poke at a server, and an
echo server to point clients at.

::

    trio-ws ws://127.0.0.1:8000/            an interactive session (a typed line is sent)
    echo hello | trio-ws ws://host/path     non-interactive: stdin in, messages out
    trio-ws serve --port 8000               an echo server
    trio-ws serve --chat --port 8000        the chat: open http://127.0.0.1:8000/
    trio-ws serve --chat --redis URL        the chat, its rooms shared through Redis

Expected failures (refused, DNS, a rejected handshake, TLS verification, a bad URL) print
one line on stderr and exit with status 1; usage errors exit with 2 (argparse's), an
interrupt with 130. A session exits with 0 when it ends with close code 1000 or 1001, and
with 1 after any other close.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import ssl
import sys
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import anyio

from ._chat import chat_handler
from ._client import open_websocket_url
from ._groups import open_task_group
from ._hub import BaseHub, Hub
from ._redis_hub import RedisHub
from ._server import serve_websocket
from .sansio._errors import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeTimeout,
    InvalidURL,
    ProxyError,
    WebSocketError,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._connection import WebSocketConnection
    from ._request import WebSocketRequest

__all__ = ["main"]

PROG = "trio-ws"
#: How many bytes of a binary message the interactive session shows in hex.
HEX_PREVIEW = 32
#: Close codes after which a session counts as a success.
NORMAL_CLOSURES = (1000, 1001)


class CommandError(Exception):
    """An expected failure: printed as one line, exit status 1."""


# --- the client -------------------------------------------------------------------------


def _client_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Open a WebSocket connection: typed lines are sent as text messages, "
        "received messages are printed. Ctrl-D closes the connection (code 1000).",
        epilog=f"Run '{PROG} serve --help' for the echo server.",
    )
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable)",
    )
    parser.add_argument(
        "-p",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="a subprotocol to offer, most preferred first (repeatable)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate (a warning is printed)",
    )
    proxy = parser.add_mutually_exclusive_group()
    proxy.add_argument(
        "--proxy",
        metavar="URL",
        help="an HTTP or SOCKS5 proxy (default: from https_proxy, http_proxy, all_proxy)",
    )
    proxy.add_argument(
        "--no-proxy", action="store_true", help="ignore the proxy environment variables"
    )
    parser.add_argument(
        "--no-tty",
        action="store_true",
        help="non-interactive mode even on a terminal (automatic when stdin is not one): "
        "every line of stdin is sent, every received message is written to stdout as is",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="non-interactive mode: after the end of stdin, close once no message came "
        "for this long (default 1.0)",
    )
    parser.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="close after receiving N messages",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=2**20,
        metavar="BYTES",
        help="the largest message accepted (default 1 MiB; 0 for no limit)",
    )
    parser.add_argument(
        "--backend", choices=("trio", "asyncio"), default="trio", help="event loop (trio)"
    )
    return parser


def _headers(values: Sequence[str]) -> list[tuple[str, str]]:
    headers = []
    for value in values:
        name, colon, content = value.partition(":")
        if not colon or not name.strip():
            raise CommandError(f"invalid header {value!r}: expected 'Name: value'")
        headers.append((name.strip(), content.strip()))
    return headers


def _client_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "extra_headers": _headers(args.header),
        "subprotocols": args.subprotocol,
        "max_message_size": args.max_size or None,
    }
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        options["ssl_context"] = context
    if args.no_proxy:
        options["proxy"] = None
    elif args.proxy:
        options["proxy"] = args.proxy
    return options


def _describe(message: str | bytes) -> str:
    if isinstance(message, str):
        return f"< {message}"
    preview = message[:HEX_PREVIEW].hex(" ")
    more = " ..." if len(message) > HEX_PREVIEW else ""
    return f"< (binary, {len(message)} bytes) {preview}{more}"


class _Session:
    """One client session: a task printing what arrives, the main task sending stdin."""

    def __init__(self, args: argparse.Namespace, interactive: bool) -> None:
        self.args = args
        self.interactive = interactive
        self.received = 0
        self.last_message = 0.0
        self.out: TextIO = sys.stdout

    def note(self, line: str) -> None:
        """A line about the session itself: on stdout when interactive, else on stderr."""
        stream = self.out if self.interactive else sys.stderr
        print(line, file=stream, flush=True)

    async def print_messages(self, ws: WebSocketConnection, done: anyio.Event) -> None:
        try:
            async for message in ws:
                self.received += 1
                self.last_message = anyio.current_time()
                if self.interactive:
                    print(_describe(message), file=self.out, flush=True)
                elif isinstance(message, str):
                    print(message, file=self.out, flush=True)
                else:
                    self.out.flush()
                    sys.stdout.buffer.write(message + b"\n")
                    sys.stdout.buffer.flush()
                if self.args.count is not None and self.received >= self.args.count:
                    break
        except ConnectionClosed:
            pass  # reported by run() from the connection's close code
        finally:
            done.set()

    async def send_stdin(self, ws: WebSocketConnection) -> None:
        while True:
            line = await anyio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:  # end of input: Ctrl-D, or the pipe's end
                return
            await ws.send_message(line.rstrip("\r\n"))

    async def wait_for_quiet(self, done: anyio.Event) -> None:
        wait = self.args.wait
        self.last_message = anyio.current_time()
        while not done.is_set():
            left = self.last_message + wait - anyio.current_time()
            if left <= 0:
                return
            with anyio.move_on_after(left):
                await done.wait()

    async def run(self, url: str) -> int:
        async with open_websocket_url(url, **_client_options(self.args)) as ws:
            if self.interactive:
                chosen = f", subprotocol {ws.subprotocol}" if ws.subprotocol else ""
                self.note(f"* connected to {url}{chosen}; Ctrl-D to close")
            done = anyio.Event()
            async with open_task_group() as tg:
                tg.start_soon(self.print_messages, ws, done)

                async def until_done() -> None:
                    await done.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(until_done)
                await self.send_stdin(ws)
                if not self.interactive:
                    await self.wait_for_quiet(done)
                tg.cancel_scope.cancel()
            await ws.aclose(1000)
            code, reason = ws.close_code, ws.close_reason
        self.note(f"* closed: code {code}" + (f", reason {reason!r}" if reason else ""))
        return 0 if code in NORMAL_CLOSURES else 1


def _run_client(args: argparse.Namespace) -> int:
    if args.insecure:
        print(f"{PROG}: warning: TLS certificates are not verified", file=sys.stderr)
    interactive = not args.no_tty and sys.stdin.isatty()
    session = _Session(args, interactive)
    url = args.url
    try:
        return anyio.run(session.run, url, backend=args.backend)
    except ConnectionClosed as exc:  # the server closed before we did
        session.note(f"* closed by the server: code {exc.code}, reason {exc.reason!r}")
        return 0 if exc.code in NORMAL_CLOSURES else 1
    except ConnectionRejected as exc:
        raise CommandError(
            f"{url}: the server rejected the handshake with HTTP {exc.status_code}"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        raise CommandError(
            f"{url}: TLS certificate verification failed: {exc.verify_message} "
            "(--insecure skips it)"
        ) from None
    except (InvalidURL, ProxyError, HandshakeTimeout) as exc:
        raise CommandError(f"{url}: {exc}") from None
    except WebSocketError as exc:
        raise CommandError(f"{url}: {exc}") from None
    except ssl.SSLError as exc:
        raise CommandError(f"{url}: the TLS handshake failed: {exc.reason or exc}") from None
    except OSError as exc:
        raise CommandError(f"cannot connect to {url}: {_os_reason(exc)}") from None


def _os_reason(exc: OSError) -> str:
    """The system's words for ``exc``: anyio's "All connection attempts failed" has the
    errors of each address as its cause."""
    cause = exc.__cause__
    if isinstance(cause, OSError):
        return _os_reason(cause)
    if isinstance(cause, BaseExceptionGroup):
        reasons = [_os_reason(error) for error in cause.exceptions if isinstance(error, OSError)]
        if reasons:
            return ", ".join(dict.fromkeys(reasons))
    if exc.errno and exc.errno > 0:  # not for DNS errors (negative): their text is right
        return os.strerror(exc.errno)  # the loops word it differently; the system does not
    return exc.strerror or str(exc) or type(exc).__name__


# --- the server -------------------------------------------------------------------------


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} serve",
        description="Run an echo server (every message comes back to its sender), or the "
        "chat example with --chat: a page to open in a browser at http://HOST:PORT/, its "
        "WebSocket at /ws?name=NAME&room=ROOM and a health check at /healthz. Ctrl-C stops "
        "it: clients get 1001 (going away).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks one)")
    parser.add_argument(
        "--chat",
        action="store_true",
        help="serve the chat example (its page, and rooms) instead of the echo server",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="with --chat: share the rooms with every chat server on this Redis "
        "(redis://HOST:PORT; needs pip install trio_ws[redis])",
    )
    parser.add_argument(
        "--backend", choices=("trio", "asyncio"), default="trio", help="event loop (trio)"
    )
    return parser


async def _echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in ws:
        await ws.send_message(message)


async def _serve(args: argparse.Namespace) -> None:
    # The chat's rooms: in this process, or shared through Redis with --redis.
    hub: BaseHub = Hub() if args.redis is None else RedisHub(args.redis)
    async with hub:
        await _serve_on(args, hub)


async def _serve_on(args: argparse.Namespace, hub: BaseHub) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_task_group() as tg:
            host = f"[{args.host}]" if ":" in args.host else args.host
            if args.chat:
                serve = functools.partial(
                    serve_websocket, chat_handler(hub), args.host, args.port, allow_plain_http=True
                )
                server = await tg.start(serve)
                banner = f"chat server on http://{host}:{server.port}/ (open it in a browser"
                print(f"{banner}; Ctrl-C stops it)", flush=True)
            else:
                server = await tg.start(
                    functools.partial(serve_websocket, _echo, args.host, args.port)
                )
                print(f"echo server on ws://{host}:{server.port}/ (Ctrl-C stops it)", flush=True)
            async for _ in signals:
                tg.cancel_scope.cancel()  # open connections get 1001
                break
    print("stopped", flush=True)


def _run_server(args: argparse.Namespace) -> int:
    if args.redis is not None and not args.chat:
        raise CommandError("--redis needs --chat (the echo server has no rooms to share)")
    try:
        anyio.run(_serve, args, backend=args.backend)
    except OSError as exc:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {exc.strerror}") from None
    except (ImportError, TimeoutError) as exc:  # RedisHub: no coredis, or no Redis there
        raise CommandError(str(exc)) from None
    return 0


# --- entry point ------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (``sys.argv[1:]`` by default); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["serve"]:
            return _run_server(_serve_parser().parse_args(argv[1:]))
        return _run_client(_client_parser().parse_args(argv))
    except CommandError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
