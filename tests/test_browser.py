"""The chat page (``trio-ws serve --chat``) in a real headless browser.

Debian's ``chromium``, driven by ``playwright-core`` from npm with the system browser (no
browser download): ``tests/browser/chat.mjs`` opens two pages that join a room and chat;
then the server restarts on the same port and both pages must reconnect by themselves and
chat again. The server runs on trio first and on asyncio after the restart.

``npm ci`` runs in ``tests/browser`` when its ``node_modules`` is missing. The test is
skipped, with the reason, only where chromium or node cannot be found (nox installs them
with apt-get where it can: ``SYSTEM_PROGRAMS`` in noxfile.py).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

BROWSER_DIR = Path(__file__).parent / "browser"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
NODE = shutil.which("node")
NPM = shutil.which("npm")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
#: The whole test's bound, in seconds (the script's own steps are bounded at 15 s each).
DEADLINE = 55

pytestmark = pytest.mark.slow


class Lines:
    """The lines a subprocess writes, read by a thread so that every wait has a timeout."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self.label = label
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass  # closed by _stop() after the process ended
        self._queue.put(None)

    def wait_for(self, predicate: object, deadline: float) -> str:
        assert callable(predicate)
        while True:  # bounded by the deadline
            left = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = None
                ended = False
            else:
                ended = line is None
            if line is not None:
                self.seen.append(line)
                print(f"[{self.label}] {line}")
                if predicate(line):
                    return line
                continue
            if ended:
                raise AssertionError(f"{self.label} ended early:\n" + "\n".join(self.seen))
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.label} timed out:\n" + "\n".join(self.seen))


def _start_server(port: int, backend: str) -> tuple[subprocess.Popen[str], Lines]:
    command = [sys.executable, "-m", "trio_ws", "serve", "--chat", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--backend", backend], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert server.stdout is not None
    return server, Lines(server.stdout, f"server {backend}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


def _npm_ci() -> None:
    if (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return
    assert NPM is not None
    result = subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund"],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        if os.environ.get("CI"):  # CI has the registry: a failure there is a failure
            pytest.fail(f"npm ci failed in tests/browser:\n{result.stderr[-2000:]}")
        # No registry here (offline): the one case, beside a missing program, for a skip.
        pytest.skip(
            f"npm ci failed in tests/browser, cannot install playwright-core:\n"
            f"{result.stderr[-2000:]}"
        )


def test_two_pages_chat_and_reconnect_after_a_server_restart() -> None:
    missing = [
        name
        for name, path in (("chromium", CHROMIUM), ("node", NODE), ("npm", NPM))
        if path is None
    ]
    if missing:
        reason = f"not installed: {', '.join(missing)} (nox installs them with apt-get)"
        print(reason)
        pytest.skip(reason)
    _npm_ci()
    assert NODE is not None
    assert CHROMIUM is not None
    deadline = time.monotonic() + DEADLINE
    server, server_lines = _start_server(0, "trio")
    browser: subprocess.Popen[str] | None = None
    try:
        banner = server_lines.wait_for(lambda line: line.startswith("chat server on "), deadline)
        url = banner.split()[3]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        browser = subprocess.Popen(
            [NODE, "chat.mjs", url],
            cwd=BROWSER_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**ENV, "CHROMIUM": CHROMIUM},
        )
        assert browser.stdin is not None
        assert browser.stdout is not None
        page_lines = Lines(browser.stdout, "browser")
        page_lines.wait_for(lambda line: line == "STOP" or line.startswith("FAILED"), deadline)
        assert page_lines.seen[-1] == "STOP"
        server.send_signal(signal.SIGINT)  # the pages' connections get 1001
        assert server.wait(timeout=10) == 0
        browser.stdin.write("stopped\n")
        browser.stdin.flush()
        page_lines.wait_for(lambda line: line == "START" or line.startswith("FAILED"), deadline)
        assert page_lines.seen[-1] == "START"
        _stop(server)  # it exited: its pipe is closed here
        server, server_lines = _start_server(port, "asyncio")
        server_lines.wait_for(lambda line: line.startswith("chat server on "), deadline)
        browser.stdin.write("started\n")
        browser.stdin.flush()
        page_lines.wait_for(lambda line: line == "OK" or line.startswith("FAILED"), deadline)
        assert page_lines.seen[-1] == "OK"
        assert browser.wait(timeout=10) == 0
    finally:
        if browser is not None:
            _stop(browser)
        _stop(server)
