"""The client through real proxies: pproxy (HTTP CONNECT and SOCKS5) run on loopback.

Each proxy is a pproxy process listening on 127.0.0.1 port 0; it prints the port it got.
``--auth 0`` stops pproxy from remembering an authenticated client address, so that each
connection is checked. ``-b '{localhost}'`` makes it refuse the target ``localhost``.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.handlers import recording_echo
from trio_ws import (
    InvalidHandshake,
    InvalidURL,
    ProxyError,
    WebSocketServer,
    open_websocket_url,
    serve_websocket,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import trustme
    from anyio.abc import TaskGroup

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pproxy") is None,
    reason="pproxy is not installed (pip install -e '.[tests]')",
)

_SERVING = re.compile(r"Serving on .*?127\.0\.0\.1:(\d+)")


def _start_pproxy(*args: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pproxy", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    for _ in range(20):  # pproxy prints a line or two before the one with the port
        line = process.stdout.readline()
        lines.append(line)
        match = _SERVING.search(line)
        if match:
            return process, int(match.group(1))
        if not line:
            break
    process.kill()
    process.communicate()
    raise RuntimeError(f"pproxy did not start: {''.join(lines)!r}")


@pytest.fixture(scope="module")
def pproxy() -> Iterator[Callable[..., int]]:
    """Start a pproxy process with the given arguments; its port; all killed at the end."""
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str) -> int:
        process, port = _start_pproxy(*args, "--auth", "0", "-b", "{localhost}")
        processes.append(process)
        return port

    yield start
    for process in processes:
        process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def open_proxy(pproxy: Callable[..., int]) -> int:
    return pproxy("-l", "http+socks5://127.0.0.1:0/")


@pytest.fixture(scope="module")
def auth_proxy(pproxy: Callable[..., int]) -> int:
    return pproxy("-l", "http+socks5://127.0.0.1:0/#alice:s3cret")


@pytest.fixture(scope="module")
def tls_proxy(pproxy: Callable[..., int], tls_ca: trustme.CA, tmp_path_factory: Any) -> int:
    directory: Path = tmp_path_factory.mktemp("proxy-tls")
    cert = tls_ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(directory / "cert.pem")
    cert.private_key_pem.write_to_path(directory / "key.pem")
    return pproxy(
        "-l",
        "http+ssl://127.0.0.1:0/",
        "--ssl",
        f"{directory / 'cert.pem'},{directory / 'key.pem'}",
    )


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


async def _echo_server(tg: TaskGroup, **options: Any) -> WebSocketServer:
    server: WebSocketServer = await tg.start(
        functools.partial(serve_websocket, recording_echo([]), "127.0.0.1", 0, **options)
    )
    return server


async def _round_trip(url: str, **options: Any) -> str:
    async with open_websocket_url(url, **options) as ws:
        await ws.send_message("through the tunnel")
        message = await ws.get_message()
        assert isinstance(message, str)
        return message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "proxy",
    ["http://127.0.0.1:{port}", "socks5://127.0.0.1:{port}", "socks5h://127.0.0.1:{port}"],
)
async def test_ws_through_a_proxy_without_auth(open_proxy: int, proxy: str) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg)
            url = f"ws://127.0.0.1:{server.port}/"
            echoed = await _round_trip(url, proxy=proxy.format(port=open_proxy))
            assert echoed == "through the tunnel"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "socks5h"])
async def test_wss_through_a_proxy_with_auth(
    auth_proxy: int,
    scheme: str,
    server_ssl_context: ssl.SSLContext,
    client_ssl_context: ssl.SSLContext,
) -> None:
    # TLS to the server runs through the tunnel, verified against the URL's host.
    proxy = f"{scheme}://alice:s3cret@127.0.0.1:{auth_proxy}"
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg, ssl_context=server_ssl_context)
            url = f"wss://127.0.0.1:{server.port}/"
            echoed = await _round_trip(url, proxy=proxy, ssl_context=client_ssl_context)
            assert echoed == "through the tunnel"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_through_an_https_proxy(tls_proxy: int, client_ssl_context: ssl.SSLContext) -> None:
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg)
            echoed = await _round_trip(
                f"ws://127.0.0.1:{server.port}/",
                proxy=f"https://127.0.0.1:{tls_proxy}",
                proxy_ssl_context=client_ssl_context,
            )
            assert echoed == "through the tunnel"
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_https_proxy_is_verified(tls_proxy: int) -> None:
    # The default context does not trust the test CA: the proxy's certificate is refused.
    with anyio.fail_after(10), pytest.raises(ssl.SSLCertVerificationError):
        await _round_trip("ws://127.0.0.1:9/", proxy=f"https://127.0.0.1:{tls_proxy}")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("proxy", "message"),
    [
        ("http://127.0.0.1:{port}", "requires authentication"),
        ("http://alice:wrong@127.0.0.1:{port}", "rejected the username and password"),
        ("socks5://127.0.0.1:{port}", "check the credentials"),
        ("socks5h://alice:wrong@127.0.0.1:{port}", "check the credentials"),
    ],
)
async def test_proxy_refuses_missing_or_wrong_credentials(
    auth_proxy: int, proxy: str, message: str
) -> None:
    with anyio.fail_after(10), pytest.raises(ProxyError, match=message) as info:
        await _round_trip("ws://127.0.0.1:9/", proxy=proxy.format(port=auth_proxy))
    if proxy.startswith("http"):
        assert info.value.status_code == 407


@pytest.mark.anyio
async def test_http_proxy_refuses_a_blocked_target(open_proxy: int) -> None:
    # pproxy closes the connection on a blocked name rather than answering.
    with anyio.fail_after(10), pytest.raises(ProxyError, match="without answering CONNECT"):
        await _round_trip("ws://localhost:9/", proxy=f"http://127.0.0.1:{open_proxy}")


@pytest.mark.anyio
async def test_socks_proxy_closing_a_blocked_tunnel(open_proxy: int) -> None:
    # pproxy's SOCKS5 side answers "connected" before it checks its block list, then
    # closes (or resets): the handshake, not the proxy exchange, sees the stream end.
    with anyio.fail_after(10), pytest.raises(InvalidHandshake, match=r"without answering|broke"):
        await _round_trip("ws://localhost:9/", proxy=f"socks5h://127.0.0.1:{open_proxy}")


@pytest.mark.anyio
async def test_socks5_resolves_locally_where_socks5h_leaves_it_to_the_proxy(
    open_proxy: int,
) -> None:
    # The proxy blocks the name "localhost": socks5:// sends it 127.0.0.1 instead.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg)
            url = f"ws://localhost:{server.port}/"
            assert await _round_trip(url, proxy=f"socks5://127.0.0.1:{open_proxy}")
            with pytest.raises(InvalidHandshake):  # closed by the proxy: see above
                await _round_trip(url, proxy=f"socks5h://127.0.0.1:{open_proxy}")
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_environment_selects_the_proxy(open_proxy: int, no_proxy_env: Any) -> None:
    # The proxy blocks "localhost", so going through it or not is visible.
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg)
            url = f"ws://localhost:{server.port}/"
            no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{open_proxy}")
            with pytest.raises(ProxyError):
                await _round_trip(url)
            assert await _round_trip(url, proxy=None)  # None: no proxy, whatever the env
            no_proxy_env.setenv("no_proxy", "example.com,localhost")
            assert await _round_trip(url)
            no_proxy_env.setenv("no_proxy", f"localhost:{server.port + 1}")
            with pytest.raises(ProxyError):
                await _round_trip(url)
            no_proxy_env.delenv("HTTP_PROXY")
            no_proxy_env.delenv("no_proxy")
            # https_proxy is for wss:// only; all_proxy for both.
            no_proxy_env.setenv("https_proxy", f"http://127.0.0.1:{open_proxy}")
            assert await _round_trip(url)
            no_proxy_env.setenv("all_proxy", f"socks5h://127.0.0.1:{open_proxy}")
            with pytest.raises(InvalidHandshake):
                await _round_trip(url)
            no_proxy_env.setenv("NO_PROXY", "*")
            assert await _round_trip(url)
            tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_unreachable_proxy_is_an_os_error(no_proxy_env: Any) -> None:
    # Port 9 on loopback: nothing listens there.
    with anyio.fail_after(10), pytest.raises(OSError, match=r"(?i)connect|refused"):
        await _round_trip("ws://127.0.0.1:9/", proxy="http://127.0.0.1:9")


@pytest.mark.anyio
async def test_invalid_proxy_url() -> None:
    with pytest.raises(InvalidURL, match="unsupported proxy scheme"):
        await _round_trip("ws://127.0.0.1:9/", proxy="ftp://127.0.0.1:21")


@pytest.mark.anyio
async def test_proxy_example(open_proxy: int, auth_proxy: int) -> None:
    example = Path(__file__).parent.parent / "examples" / "proxy_client.py"
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            server = await _echo_server(tg)
            url = f"ws://127.0.0.1:{server.port}/"
            ok = await anyio.run_process(
                [sys.executable, str(example), url, f"socks5h://127.0.0.1:{open_proxy}"]
            )
            assert b"answer: hello through the proxy" in ok.stdout
            refused = await anyio.run_process(
                [sys.executable, str(example), url, f"http://127.0.0.1:{auth_proxy}"], check=False
            )
            assert refused.returncode == 2
            assert b"the proxy said no (HTTP 407)" in refused.stderr
            tg.cancel_scope.cancel()
