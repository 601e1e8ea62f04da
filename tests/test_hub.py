"""The in-process Hub: topics, subscriptions and their overflow policies (both backends)."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import pytest

from trio_ws import BaseHub, Hub, Message, Subscription, SubscriptionOverflow, WebSocketError

pytestmark = pytest.mark.anyio

#: More subscribers than Hub.publish delivers to between two yields (512).
MANY = 4096


async def _collect(subscription: Subscription, count: int, into: list[Message]) -> None:
    async for message in subscription:
        into.append(message)
        if len(into) == count:
            return


async def test_subscribers_get_what_is_published_in_order_per_publisher() -> None:
    hub = Hub()
    received: list[list[Message]] = [[] for _ in range(5)]
    with anyio.fail_after(10):
        async with AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("room:42", max_buffer=500))
                for _ in range(5)
            ]
            assert hub.subscriber_count("room:42") == 5

            async def publisher(name: str) -> None:
                for index in range(100):
                    assert await hub.publish("room:42", f"{name}{index}") == 5

            async with anyio.create_task_group() as tg:
                for subscription, into in zip(subscriptions, received, strict=True):
                    tg.start_soon(_collect, subscription, 200, into)
                tg.start_soon(publisher, "a")
                tg.start_soon(publisher, "b")
    for into in received:
        for name in "ab":
            own = [message for message in into if str(message).startswith(name)]
            assert own == [f"{name}{index}" for index in range(100)]
    assert hub.topics == frozenset()


async def test_topics_are_separate() -> None:
    hub = Hub()
    async with hub.subscribe("a") as a, hub.subscribe("b") as b:
        assert hub.topics == {"a", "b"}
        assert await hub.publish("a", "for a") == 1
        assert await hub.publish("b", b"for b") == 1
        assert await hub.publish("c", "for nobody") == 0
        assert a.receive_nowait() == "for a"
        assert b.receive_nowait() == b"for b"
        with pytest.raises(anyio.WouldBlock):
            a.receive_nowait()
        # Only what is published after subscribing arrives.
        async with hub.subscribe("a") as late:
            assert late.buffered == 0
            assert hub.publish_nowait("a", "both") == 2
            assert late.receive_nowait() == "both"
        assert hub.subscriber_count("a") == 1


async def test_leaving_the_block_unsubscribes() -> None:
    hub = Hub()
    async with hub.subscribe("t") as subscription:
        assert hub.topics == {"t"}
    assert hub.topics == frozenset()
    assert hub.subscriber_count("t") == 0
    assert subscription.ended
    assert await hub.publish("t", "nobody listens") == 0
    with pytest.raises(RuntimeError, match="boom"):
        async with hub.subscribe("t"):
            raise RuntimeError("boom")
    assert hub.topics == frozenset()


async def test_a_cancelled_subscriber_unsubscribes() -> None:
    hub = Hub()
    entered = anyio.Event()
    got: list[Message] = []

    async def subscriber() -> None:
        async with hub.subscribe("t") as subscription:
            entered.set()
            while True:
                got.append(await subscription.receive())

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(subscriber)
            await entered.wait()
            assert await hub.publish("t", "one") == 1
            await anyio.wait_all_tasks_blocked()
            assert got == ["one"]
            assert hub.subscriber_count("t") == 1
            tg.cancel_scope.cancel()
    assert hub.topics == frozenset()
    assert await hub.publish("t", "two") == 0


async def test_drop_oldest_keeps_the_latest() -> None:
    hub = Hub()
    async with hub.subscribe("t", max_buffer=3, overflow="drop_oldest") as subscription:
        assert [await hub.publish("t", index.to_bytes()) for index in range(5)] == [1] * 5
        assert subscription.dropped == 2
        assert [subscription.receive_nowait() for _ in range(3)] == [b"\x02", b"\x03", b"\x04"]


async def test_drop_newest_keeps_the_first() -> None:
    hub = Hub()
    async with hub.subscribe("t", max_buffer=3, overflow="drop_newest") as subscription:
        assert [await hub.publish("t", str(index)) for index in range(5)] == [1, 1, 1, 0, 0]
        assert subscription.dropped == 2
        assert [await subscription.receive() for _ in range(3)] == ["0", "1", "2"]
        assert await hub.publish("t", "room again") == 1
        assert await subscription.receive() == "room again"


async def test_end_ends_the_subscription_with_subscription_overflow() -> None:
    hub = Hub()
    async with hub.subscribe("t", max_buffer=3, overflow="end") as subscription:
        assert [await hub.publish("t", str(index)) for index in range(4)] == [1, 1, 1, 0]
        # It left the topic at once, before the handler noticed.
        assert hub.subscriber_count("t") == 0
        assert subscription.ended
        with pytest.raises(SubscriptionOverflow) as info:
            await anext(subscription)  # nothing buffered is given any more
        assert (info.value.topic, info.value.max_buffer) == ("t", 3)
        assert isinstance(info.value, WebSocketError)
        assert await hub.publish("t", "later") == 0
        with pytest.raises(SubscriptionOverflow):
            subscription.receive_nowait()
    assert hub.topics == frozenset()


async def test_a_thousand_subscribers() -> None:
    hub = Hub()
    with anyio.fail_after(20):
        async with AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("big", max_buffer=20))
                for _ in range(1000)
            ]
            for index in range(10):
                assert await hub.publish("big", str(index)) == 1000
            for subscription in subscriptions:
                assert [subscription.receive_nowait() for _ in range(10)] == [
                    str(index) for index in range(10)
                ]
    assert hub.topics == frozenset()


async def test_a_slow_subscriber_does_not_slow_the_others() -> None:
    hub = Hub()
    never = anyio.Event()
    fast: list[list[Message]] = [[] for _ in range(3)]

    async def slow_subscriber(ready: anyio.Event) -> None:
        async with hub.subscribe("t", max_buffer=5) as subscription:
            ready.set()
            await subscription.receive()
            await never.wait()  # stuck: never reads again

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg, AsyncExitStack() as stack:
            ready = anyio.Event()
            tg.start_soon(slow_subscriber, ready)
            await ready.wait()
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("t", max_buffer=5)) for _ in range(3)
            ]
            for subscription, into in zip(subscriptions, fast, strict=True):
                tg.start_soon(_collect, subscription, 200, into)
            for index in range(200):
                assert await hub.publish("t", str(index)) == 4
                await anyio.wait_all_tasks_blocked()  # the fast ones keep up
            assert all(into == [str(index) for index in range(200)] for into in fast)
            tg.cancel_scope.cancel()
    assert hub.topics == frozenset()


async def test_publish_to_many_yields_between_batches() -> None:
    hub = Hub()
    seen_mid_publish: list[tuple[int, int]] = []
    with anyio.fail_after(20):
        async with AsyncExitStack() as stack:
            subscriptions = [
                await stack.enter_async_context(hub.subscribe("t")) for _ in range(MANY)
            ]

            async def observer() -> None:
                # Runs at the publisher's first yield: part of the topic has the message.
                seen_mid_publish.append((subscriptions[0].buffered, subscriptions[-1].buffered))

            async with anyio.create_task_group() as tg:
                tg.start_soon(observer)
                assert await hub.publish("t", "x") == MANY
            assert seen_mid_publish == [(1, 0)]
            assert all(subscription.buffered == 1 for subscription in subscriptions)


async def test_a_cancelled_publish_delivers_nothing() -> None:
    hub = Hub()
    async with hub.subscribe("t") as subscription:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await hub.publish("t", "never")
            pytest.fail("publish is a cancellation point")
        assert subscription.buffered == 0


async def test_closing_the_hub_ends_the_subscriptions() -> None:
    got: list[Message] = []
    with anyio.fail_after(10):
        async with Hub() as hub:
            assert isinstance(hub, BaseHub)
            async with hub.subscribe("t") as subscription:
                await hub.publish("t", "before close")
                await hub.aclose()
                await hub.aclose()  # idempotent
                assert hub.closed
                # What was buffered, then the end.
                got.extend([message async for message in subscription])
                with pytest.raises(anyio.EndOfStream):
                    await subscription.receive()
                with pytest.raises(anyio.ClosedResourceError):
                    await hub.publish("t", "after")
                with pytest.raises(anyio.ClosedResourceError):
                    hub.publish_nowait("t", "after")
                with pytest.raises(anyio.ClosedResourceError):
                    async with hub.subscribe("t"):
                        pass
    assert got == ["before close"]
    assert hub.topics == frozenset()


async def test_a_waiting_receiver_is_woken_by_a_publish() -> None:
    hub = Hub()
    got: list[Message] = []
    with anyio.fail_after(10):
        async with hub.subscribe("t") as subscription, anyio.create_task_group() as tg:
            tg.start_soon(_collect, subscription, 2, got)
            await anyio.wait_all_tasks_blocked()
            await hub.publish("t", "wake")
            await hub.publish("t", "up")
    assert got == ["wake", "up"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_buffer": 0}, "max_buffer"),
        ({"max_buffer": True}, "max_buffer"),
        ({"max_buffer": 2.5}, "max_buffer"),
        ({"overflow": "block"}, "overflow"),
    ],
)
async def test_invalid_subscription_options(options: dict[str, object], match: str) -> None:
    hub = Hub()
    with pytest.raises(ValueError, match=match):
        async with hub.subscribe("t", **options):  # type: ignore[arg-type]
            pass
    assert hub.topics == frozenset()
