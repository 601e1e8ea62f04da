"""RedisHub against a real redis-server (tests/redis_server.py), on both backends."""

from __future__ import annotations

import gc
import sys
from typing import Any

import anyio
import pytest

import trio_ws
from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]


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


# coredis leaves the memory streams of a connection attempt that failed (Redis down) to the
# garbage collector, which warns; collected inside the test, the warning is filtered here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:Unclosed <MemoryObject:ResourceWarning")
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
            with pytest.raises(Exception, match=r"(?i)connect"):
                await hub.publish("room", "lost")
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
