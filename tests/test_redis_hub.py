"""RedisHub against a real redis-server (tests/redis_server.py), on both backends."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest

import trio_ws
from tests.redis_server import RedisServer, redis_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

__all__ = ["redis_server"]

ROOT = Path(__file__).parent.parent
#: The trio_ws of this checkout in the subprocesses, whatever the installed one is.
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}

# coredis leaves the memory streams of a connection attempt that failed (Redis down) to the
# garbage collector, which warns; tests that make such attempts collect them themselves
# (gc.collect() before they end) under these filters.
coredis_leaks = [
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning"),
]


async def _numsub(server: RedisServer, topic: str) -> int:
    """PUBSUB NUMSUB from a raw client: how many Redis subscriptions ``topic`` has."""
    import coredis

    client: Any = coredis.Redis(host="127.0.0.1", port=server.port)
    async with client:
        counts = await client.pubsub_numsub(topic)
    return int(next(iter(counts.values())))


async def _wait_numsub(server: RedisServer, topic: str, expected: int) -> None:
    with anyio.fail_after(10):
        # Polling: the state is in another process, there is no event to wait for.
        while await _numsub(server, topic) != expected:  # noqa: ASYNC110
            await anyio.sleep(0.05)


@pytest.mark.anyio
async def test_round_trip_of_text_and_bytes(redis_server: RedisServer) -> None:
    with anyio.fail_after(20):
        async with (
            trio_ws.RedisHub(redis_server.url) as hub,
            hub.subscribe("room") as subscription,
        ):
            assert hub.topics == {"room"}
            assert await hub.publish("room", "text é") == 1
            assert await hub.publish("room", b"\x00bin") == 1
            assert await hub.publish("room", "") == 1
            assert await hub.publish("room", b"") == 1
            assert await hub.publish("elsewhere", "nobody") == 0
            received = [await subscription.receive() for _ in range(4)]
            assert received == ["text é", b"\x00bin", "", b""]
            assert [type(message) for message in received] == [str, bytes, str, bytes]


@pytest.mark.anyio
async def test_one_redis_subscription_per_topic(redis_server: RedisServer) -> None:
    with anyio.fail_after(20):
        async with trio_ws.RedisHub(redis_server.url) as hub:
            async with (
                hub.subscribe("room") as first,
                hub.subscribe("room") as second,
                hub.subscribe("room") as third,
                hub.subscribe("other"),
            ):
                assert hub.subscriber_count("room") == 3
                assert await _numsub(redis_server, "room") == 1
                assert await _numsub(redis_server, "other") == 1
                assert await hub.publish("room", "hello") == 1  # one process
                for subscription in (first, second, third):
                    assert await subscription.receive() == "hello"
                async with hub.subscribe("room"):
                    assert await _numsub(redis_server, "room") == 1
            # The last local subscriber left: so did the Redis subscription.
            await _wait_numsub(redis_server, "room", 0)
            await _wait_numsub(redis_server, "other", 0)
            assert hub.topics == frozenset()


@contextlib.asynccontextmanager
async def _slow_link_to(port: int, delay: float) -> AsyncIterator[str]:
    """A TCP relay to a Redis on ``port`` that holds every chunk sent to Redis for
    ``delay`` seconds (answers come back at once); yields its ``redis://`` URL."""

    async def pump(source: Any, target: Any, hold: float, scope: anyio.CancelScope) -> None:
        try:
            async for chunk in source:
                await anyio.sleep(hold)
                await target.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()  # one side is gone: so is the link

    async def handle(client: Any) -> None:
        async with (
            client,
            await anyio.connect_tcp("127.0.0.1", port) as server,
            anyio.create_task_group() as link,
        ):
            link.start_soon(pump, client, server, delay, link.cancel_scope)
            link.start_soon(pump, server, client, 0, link.cancel_scope)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"redis://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}"
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _hubs_near_and_far(
    redis_server: RedisServer,
) -> AsyncIterator[tuple[trio_ws.RedisHub, trio_ws.RedisHub]]:
    """A hub whose bytes to Redis take 0.2 s (a slow link), and one connected directly
    (another process, say)."""
    async with (
        _slow_link_to(redis_server.port, delay=0.2) as slow_url,
        trio_ws.RedisHub(slow_url) as hub,
        trio_ws.RedisHub(redis_server.url) as elsewhere,
    ):
        yield hub, elsewhere


async def _until_subscribers(hub: trio_ws.RedisHub, topic: str, count: int) -> None:
    """Yield until ``hub`` counts ``count`` local subscribers to ``topic`` (bounded)."""
    for _ in range(1000):
        if hub.subscriber_count(topic) == count:
            return
        await anyio.lowlevel.checkpoint()
    raise AssertionError(f"never {count} subscribers to {topic!r}")


@pytest.mark.anyio
async def test_a_subscriber_that_comes_while_the_subscribe_is_in_flight_waits_for_it(
    redis_server: RedisServer,
) -> None:
    with anyio.fail_after(30):
        async with _hubs_near_and_far(redis_server) as (hub, elsewhere):
            first_in = anyio.Event()

            async def first() -> None:
                async with hub.subscribe("room"):
                    first_in.set()
                    await anyio.sleep_forever()

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await _until_subscribers(hub, "room", 1)  # it has sent its SUBSCRIBE
                assert not first_in.is_set()  # its SUBSCRIBE is still on the slow link
                async with hub.subscribe("room") as second:
                    # Entered only once Redis confirmed the SUBSCRIBE: a message published
                    # now, from anywhere, reaches it.
                    assert first_in.is_set()
                    assert await elsewhere.publish("room", "hello") == 1
                    assert await second.receive() == "hello"
                tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_when_the_first_subscriber_gives_up_a_waiting_one_subscribes(
    redis_server: RedisServer,
) -> None:
    with anyio.fail_after(30):
        async with _hubs_near_and_far(redis_server) as (hub, elsewhere):
            first_scope = anyio.CancelScope()
            received: list[trio_ws.Message] = []

            async def first() -> None:
                with first_scope:
                    async with hub.subscribe("room"):
                        await anyio.sleep_forever()

            async def second() -> None:
                async with hub.subscribe("room") as subscription:
                    assert await elsewhere.publish("room", "hello") == 1
                    received.append(await subscription.receive())

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                await _until_subscribers(hub, "room", 1)
                tg.start_soon(second)
                await _until_subscribers(hub, "room", 2)
                first_scope.cancel()  # while its SUBSCRIBE is still on the slow link
            assert received == ["hello"]


@pytest.mark.anyio
async def test_a_cancelled_subscriber_unsubscribes(redis_server: RedisServer) -> None:
    with anyio.fail_after(20):
        async with trio_ws.RedisHub(redis_server.url) as hub:
            subscribed = anyio.Event()

            async def subscriber() -> None:
                async with hub.subscribe("room") as subscription:
                    subscribed.set()
                    await subscription.receive()

            async with anyio.create_task_group() as tg:
                tg.start_soon(subscriber)
                await subscribed.wait()
                assert await _numsub(redis_server, "room") == 1
                tg.cancel_scope.cancel()
            assert hub.subscriber_count("room") == 0
            await _wait_numsub(redis_server, "room", 0)
            # A new subscriber subscribes again.
            async with hub.subscribe("room") as subscription:
                await hub.publish("room", "back")
                assert await subscription.receive() == "back"


@pytest.mark.anyio
async def test_overflow_policies_apply(redis_server: RedisServer) -> None:
    with anyio.fail_after(20):
        async with (
            trio_ws.RedisHub(redis_server.url) as hub,
            hub.subscribe("room", max_buffer=2, overflow="drop_oldest") as oldest,
            hub.subscribe("room", max_buffer=2, overflow="drop_newest") as newest,
            hub.subscribe("room", max_buffer=2, overflow="end") as end,
            hub.subscribe("room", max_buffer=10) as witness,
        ):
            for number in range(5):
                await hub.publish("room", str(number))
            # Once the witness has all five, so has everyone else been offered them.
            assert [await witness.receive() for _ in range(5)] == list("01234")
            assert [oldest.receive_nowait() for _ in range(2)] == ["3", "4"]
            assert [newest.receive_nowait() for _ in range(2)] == ["0", "1"]
            assert oldest.dropped == newest.dropped == 3
            with pytest.raises(trio_ws.SubscriptionOverflow):
                end.receive_nowait()


@pytest.mark.anyio
async def test_closing_the_hub_ends_subscriptions(redis_server: RedisServer) -> None:
    with anyio.fail_after(20):
        async with (
            trio_ws.RedisHub(redis_server.url) as hub,
            hub.subscribe("room") as subscription,
        ):
            await hub.aclose()
            assert [message async for message in subscription] == []
            with pytest.raises(anyio.ClosedResourceError):
                await hub.publish("room", "late")
            with pytest.raises(anyio.ClosedResourceError):
                async with hub.subscribe("room"):
                    pass  # pragma: no cover


@pytest.mark.anyio
async def test_an_error_or_a_cancellation_in_the_block_leaves_it_as_it_is(
    redis_server: RedisServer,
) -> None:
    with anyio.fail_after(20):
        with pytest.raises(KeyError):  # not wrapped in an exception group
            async with trio_ws.RedisHub(redis_server.url) as hub, hub.subscribe("room"):
                raise KeyError("mine")
        with anyio.CancelScope() as scope:
            async with trio_ws.RedisHub(redis_server.url) as hub, hub.subscribe("room"):
                scope.cancel()
                await anyio.sleep(10)
        assert scope.cancelled_caught
        await _wait_numsub(redis_server, "room", 0)


@pytest.mark.anyio
async def test_a_foreign_message_on_the_channel_is_ignored(redis_server: RedisServer) -> None:
    import coredis

    with anyio.fail_after(20):
        raw: Any = coredis.Redis(host="127.0.0.1", port=redis_server.port)
        async with (
            raw,
            trio_ws.RedisHub(redis_server.url) as hub,
            hub.subscribe("room") as subscription,
        ):
            assert await raw.publish("room", b"not ours") == 1
            await hub.publish("room", "ours")
            assert await subscription.receive() == "ours"


@coredis_leaks[0]
@coredis_leaks[1]
@pytest.mark.anyio
async def test_reconnects_after_redis_restarts(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    backoff = trio_ws.Backoff(initial_delay=0.05, max_delay=0.5)
    with anyio.fail_after(30):
        async with (
            trio_ws.RedisHub(redis_server.url, backoff=backoff) as hub,
            hub.subscribe("room") as subscription,
        ):
            await hub.publish("room", "before")
            assert await subscription.receive() == "before"
            redis_server.stop()
            await anyio.sleep(0.5)  # a few failed attempts
            # While Redis is down, publishing fails: the message is lost.
            with pytest.raises(trio_ws.HubUnavailable, match="Redis is unreachable") as info:
                await hub.publish("room", "lost")
            assert info.value.__cause__ is not None  # coredis's own error
            redis_server.start()  # same port
            await _wait_numsub(redis_server, "room", 1)
            await hub.publish("room", "after")
            assert await subscription.receive() == "after"
            # A topic subscribed after the restart gets its own Redis subscription.
            async with hub.subscribe("new") as new:
                assert await _numsub(redis_server, "new") == 1
                await hub.publish("new", b"x")
                assert await new.receive() == b"x"
        assert "Redis unreachable" in caplog.text
    caplog.clear()
    gc.collect()


def test_a_clear_error_without_coredis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "coredis", None)  # import coredis raises ImportError
    with pytest.raises(ImportError, match=r"pip install trio_ws\[redis\]"):
        trio_ws.RedisHub("redis://127.0.0.1:1")


@coredis_leaks[0]
@coredis_leaks[1]
@pytest.mark.anyio
async def test_entering_without_redis_fails_clearly(redis_server: RedisServer) -> None:
    url = redis_server.url
    redis_server.stop()
    with anyio.fail_after(10):
        with pytest.raises(TimeoutError, match=f"cannot reach Redis at {url} within 0.5 s"):
            async with trio_ws.RedisHub(url, connect_timeout=0.5):
                pass  # pragma: no cover
    gc.collect()


# --- several server processes on one Redis ----------------------------------------------


@contextmanager
def _server(command: list[str], pattern: str) -> Iterator[str]:
    """Run a server program until the block ends (SIGINT); yields the URL its banner shows."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,  # its own process group: workers it starts are killed too
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout
        # Printed once it listens; read by a thread, so that a server that never prints
        # fails the test after 30 s instead of hanging it.
        banners: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: banners.put(stdout.readline()), daemon=True).start()
        try:
            banner = banners.get(timeout=30)
        except queue.Empty:
            pytest.fail(f"no banner from {command} within 30 s")
        match = re.search(pattern, banner)
        assert match, f"unexpected banner {banner!r}: {process.stderr and process.stderr.read()}"
        yield match.group(1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
    finally:
        # Children that outlive it would hold the pipes open: kill the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)


def test_two_chat_example_processes_share_rooms(redis_server: RedisServer) -> None:
    example = [sys.executable, str(ROOT / "examples" / "chat_server.py"), "--port", "0"]
    pattern = r"(ws://[\d.]+:\d+/)"
    # One on each backend: the hub's wire format is the same.
    with (
        _server([*example, "--redis", redis_server.url, "--backend", "trio"], pattern) as one,
        _server([*example, "--redis", redis_server.url, "--backend", "asyncio"], pattern) as two,
    ):
        assert one != two
        with trio_ws.connect_sync(one + "?name=ann&room=r") as ann:
            assert ann.recv(timeout=10) == "* ann joined"
            with trio_ws.connect_sync(two + "?name=bob&room=r") as bob:
                assert bob.recv(timeout=10) == "* bob joined"
                assert ann.recv(timeout=10) == "* bob joined"  # from the other process
                ann.send("hi bob")
                assert bob.recv(timeout=10) == "ann: hi bob"
                assert ann.recv(timeout=10) == "ann: hi bob"
                bob.send("hi ann")
                assert ann.recv(timeout=10) == "bob: hi ann"
            assert ann.recv(timeout=10) == "* bob left"


def test_two_cli_chat_servers_share_rooms(redis_server: RedisServer) -> None:
    cli = [sys.executable, "-m", "trio_ws", "serve", "--chat", "--port", "0"]
    pattern = r"chat server on http(://[\d.]+:\d+/)"
    with (
        _server([*cli, "--redis", redis_server.url], pattern) as one,
        _server([*cli, "--redis", redis_server.url, "--backend", "asyncio"], pattern) as two,
        trio_ws.connect_sync(f"ws{one}ws?name=ann&room=r") as ann,
        trio_ws.connect_sync(f"ws{two}ws?name=bob&room=r") as bob,
    ):
        # Bob's own join is published once his server has subscribed to the room: from then
        # on, ann's words reach him from the other process (sent earlier, they could reach
        # Redis before that SUBSCRIBE and be lost, as Redis keeps no history).
        for _ in range(5):
            if json.loads(bob.recv(timeout=10)) == {"type": "join", "name": "bob"}:
                break
        ann.send("hello")
        for _ in range(5):
            notice = json.loads(bob.recv(timeout=10))
            if notice["type"] == "message":
                break
        assert notice == {"type": "message", "name": "ann", "text": "hello"}


def test_cli_redis_needs_chat(redis_server: RedisServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trio_ws", "serve", "--redis", redis_server.url],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "--redis needs --chat" in result.stderr


def _recv_until(member: trio_ws.SyncConnection, expected: str) -> list[str | bytes]:
    """What ``member`` receives before ``expected`` (which must come within 10 s)."""
    before = []
    while (message := member.recv(timeout=10)) != expected:
        before.append(message)
    return before


def test_the_multiprocess_example_shares_rooms_between_workers(redis_server: RedisServer) -> None:
    example = ROOT / "examples" / "multiprocess_server.py"
    command = [sys.executable, str(example), "--workers", "2", "--port", "0"]
    with _server([*command, "--redis", redis_server.url], r"(ws://[\d.]+:\d+/)") as url:
        http = "http" + url.removeprefix("ws")
        # Both workers answer on the one port (the kernel spreads the connections).
        pids = set()
        for _ in range(64):
            with urllib.request.urlopen(http + "worker", timeout=10) as reply:
                pids.add(reply.read())
            if len(pids) == 2:
                break
        assert len(pids) == 2
        # Whichever worker each member reached, they hear each other. One member joins at
        # a time: the handshake ends before the handler has subscribed and announced the
        # member, so members connected together announce themselves in any order.
        members: list[trio_ws.SyncConnection] = []
        try:
            for n in range(6):
                members.append(trio_ws.connect_sync(f"{url}?name=m{n}&room=r"))
                # Its own arrival, maybe after the arrival of an earlier member: Redis sent
                # that to both workers, and the other worker may relay it only after this
                # member subscribed there.
                before = _recv_until(members[n], f"* m{n} joined")
                assert set(before) <= {f"* m{earlier} joined" for earlier in range(n)}
            members[0].send("hello all")
            for n, member in enumerate(members):
                heard = _recv_until(member, "m0: hello all")
                assert heard == [f"* m{later} joined" for later in range(n + 1, len(members))]
        finally:
            for member in members:
                member.close()


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_the_multiprocess_example_stops_gracefully_on_ctrl_c(
    redis_server: RedisServer, backend: str
) -> None:
    # Ctrl-C in a terminal signals the whole foreground process group: every worker gets
    # SIGINT from the terminal, then again from the supervisor, which forwards it.
    example = ROOT / "examples" / "multiprocess_server.py"
    command = [sys.executable, str(example), "--workers", "2", "--port", "0"]
    process = subprocess.Popen(
        [*command, "--backend", backend, "--redis", redis_server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,  # a process group of its own, as a shell gives a job
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout
        banners: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: banners.put(stdout.readline()), daemon=True).start()
        match = re.search(r"ws://[\d.]+:\d+/", banners.get(timeout=30))
        assert match
        with trio_ws.connect_sync(match.group(0) + "?name=ann&room=r") as ann:
            assert ann.recv(timeout=10) == "* ann joined"
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
            with pytest.raises(trio_ws.ConnectionClosed) as closed:
                ann.recv(timeout=10)
            assert closed.value.code == 1001  # going away: the graceful shutdown
        out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "stopped" in out
    finally:
        # Workers that outlive it would hold the pipes open: kill the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
