"""The examples run: the echo server answers the echo client, then stops on SIGINT."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.mark.parametrize("client_backend", ["trio", "asyncio"])
def test_echo_client_against_echo_server(client_backend: str) -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()  # the server prints its URL once it listens
        match = re.search(r"ws://[\d.]+:(\d+)/", banner)
        assert match, f"unexpected banner {banner!r}"
        client = subprocess.run(
            [sys.executable, str(EXAMPLES / "echo_client.py"), match.group(0)],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "TRIO_WS_BACKEND": client_backend},
            check=False,
        )
        assert client.returncode == 0, client.stderr
        echoes = [line for line in client.stdout.splitlines() if line.startswith("echo:")]
        assert echoes == ["echo: hello", "echo: structured", "echo: concurrency"]
        assert "round trip:" in client.stdout
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert "stopped" in out
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


def test_readme_example_runs() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks, "README.md should show a Python example"
    result = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello"


def test_sync_client_example_against_echo_server() -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        match = re.search(r"ws://[\d.]+:(\d+)/", server.stdout.readline())
        assert match
        client = subprocess.run(
            [sys.executable, str(EXAMPLES / "sync_client.py"), match.group(0), "one", "two"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == ["answer: one", "answer: two"]
        refused = subprocess.run(
            [sys.executable, str(EXAMPLES / "sync_client.py"), "ws://127.0.0.1:1/"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert refused.returncode == 1
        assert "could not connect" in refused.stderr
    finally:
        server.kill()
        server.communicate()


def _start_echo_server(port: int = 0) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_server.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert server.stdout is not None
    match = re.search(r"ws://[\d.]+:(\d+)/", server.stdout.readline())
    assert match, "the echo server did not start"
    return server, match.group(0)


class _Lines:
    """The lines a process prints, read by a thread so that none hides in a buffer.

    ``select`` on a text pipe misses a line that ``readline`` already pulled into
    Python's buffer together with the line before it; a thread that blocks in
    ``readline`` and hands each line over a queue sees every one.
    """

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        self._queue: queue.Queue[str | None] = queue.Queue()
        stdout = process.stdout

        def pump() -> None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)  # end of output

        threading.Thread(target=pump, daemon=True).start()

    def until(self, wanted: str, seconds: float) -> list[str]:
        """The lines printed until one contains ``wanted`` (bounded in time)."""
        lines: list[str] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            lines.append(line)
            if wanted in line:
                return lines
        pytest.fail(f"no {wanted!r} within {seconds} s; got {lines}")


def test_reconnecting_client_example_comes_back_after_a_server_restart() -> None:
    server, url = _start_echo_server()
    port = int(url.rstrip("/").rpartition(":")[2])
    client = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "reconnecting_client.py"), url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = _Lines(client)
    try:
        first = lines.until("received: hello", 20)
        assert first[0] == "connected (attempt 1)"
        server.kill()  # the connection drops without a close frame
        server.communicate()
        lines.until("connection lost", 20)
        time.sleep(0.5)  # the client retries while nothing listens
        server, _ = _start_echo_server(port)
        again = lines.until("received: hello", 30)
        assert any(line.startswith("connected (attempt ") for line in again)
        assert "connected (attempt 1)" not in again
    finally:
        for process in (client, server):
            process.kill()
            process.communicate()
