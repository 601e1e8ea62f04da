"""examples/chat_server.py: rooms on a Hub, /healthz, ?name= required (both backends)."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from trio_ws import ConnectionClosed, ConnectionRejected, Hub, connect_sync
from trio_ws.testing import open_websocket_in_memory

if TYPE_CHECKING:
    from types import ModuleType

EXAMPLE = Path(__file__).parent.parent / "examples" / "chat_server.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chat_server_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chat_server = _load_example()


@pytest.mark.anyio
async def test_members_of_a_room_talk_and_rooms_are_separate() -> None:
    async with Hub() as hub:
        chat = chat_server.ChatServer(hub)
        with anyio.fail_after(10):
            async with open_websocket_in_memory(chat.handler, "/?name=ann") as ann:
                assert await ann.get_message() == "* ann joined"
                async with (
                    open_websocket_in_memory(chat.handler, "/?name=bob&room=lobby") as bob,
                    open_websocket_in_memory(chat.handler, "/?name=eve&room=42") as eve,
                ):
                    assert await bob.get_message() == "* bob joined"
                    assert await ann.get_message() == "* bob joined"
                    assert await eve.get_message() == "* eve joined"
                    assert chat.online == 3
                    await bob.send_message("hi ann!")
                    assert await ann.get_message() == "bob: hi ann!"
                    assert await bob.get_message() == "bob: hi ann!"
                    await eve.send_message("anyone in 42?")
                    assert await eve.get_message() == "eve: anyone in 42?"
                assert await ann.get_message() == "* bob left"
                await ann.send_message("alone")
                assert await ann.get_message() == "ann: alone"  # nothing from room 42
        assert hub.topics == frozenset()


@pytest.mark.anyio
async def test_a_name_is_required_and_healthz_answers() -> None:
    async with Hub() as hub:
        chat = chat_server.ChatServer(hub)
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_in_memory(chat.handler, "/"):
                pass
        assert info.value.status_code == 400
        with pytest.raises(ConnectionRejected) as info:
            async with open_websocket_in_memory(chat.handler, "/healthz"):
                pass
        assert info.value.status_code == 200
        assert info.value.body == b"0 members online\n"


@pytest.mark.anyio
async def test_a_member_too_slow_to_keep_up_is_closed_with_1013() -> None:
    async with Hub() as hub:
        chat = chat_server.ChatServer(hub)
        with anyio.fail_after(10):
            async with open_websocket_in_memory(
                chat.handler, "/?name=slow", capacity=1024, compression=None
            ) as slow:
                assert await slow.get_message() == "* slow joined"
                # It does not read: the pipe, the write buffer, then its 100 fill up.
                delivered = [await hub.publish("room:lobby", "x" * 1000) for _ in range(1000)]
                assert delivered[0] == 1
                assert delivered[-1] == 0  # its subscription ended
                received = 0
                with pytest.raises(ConnectionClosed) as info:  # noqa: PT012
                    for _ in range(1000):
                        assert await slow.get_message() == "x" * 1000
                        received += 1
                assert info.value.code == 1013
                assert 0 < received < 1000 - 100  # the 100 buffered in the hub were dropped
            assert hub.topics == frozenset()


def test_the_example_runs_and_stops_on_sigint() -> None:
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # The trio_ws of this checkout, whatever the installed one is.
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(EXAMPLE.parent.parent)},
    )
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()  # printed once it listens
        match = re.search(r"ws://([\d.]+):(\d+)/", banner)
        assert match, f"unexpected banner {banner!r}"
        host, port = match.groups()
        with connect_sync(f"ws://{host}:{port}/?name=ann&room=1") as ann:
            assert ann.recv(timeout=10) == "* ann joined"
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=10) as reply:
                assert reply.read() == b"1 members online\n"
            ann.send("hello")
            assert ann.recv(timeout=10) == "ann: hello"
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert "stopped" in out
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
