"""The examples run: the echo server answers the echo client, then stops on SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
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
