"""The received-message queue: a getter parked on the loop's own primitive, on both backends."""

from __future__ import annotations

import anyio
import pytest

from trio_ws._messages import MessageQueue

pytestmark = pytest.mark.anyio


async def test_a_waiting_getter_wakes_when_a_message_is_put() -> None:
    queue = MessageQueue(4)
    got: list[str | bytes] = []

    async def getter() -> None:
        while not queue:
            await queue.wait_for_message()
        got.append(queue.get_nowait())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(getter)
            await anyio.wait_all_tasks_blocked()
            queue.put("hello")
    assert got == ["hello"]


async def test_a_cancelled_getter_takes_nothing_and_the_next_one_gets_it() -> None:
    queue = MessageQueue(4)
    with anyio.fail_after(5):
        with anyio.move_on_after(0.01) as scope:
            await queue.wait_for_message()
        assert scope.cancelled_caught
        queue.put(b"kept")
        assert queue.get_nowait() == b"kept"

        # Put and cancel in the same step: the message stays for the next getter.
        async with anyio.create_task_group() as tg:
            cancel_scopes: list[anyio.CancelScope] = []

            async def waiter() -> None:
                with anyio.CancelScope() as inner:
                    cancel_scopes.append(inner)
                    await queue.wait_for_message()

            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            queue.put("second")
            cancel_scopes[0].cancel()
        assert len(queue) == 1
        assert queue.get_nowait() == "second"


async def test_two_waiting_getters_both_wake() -> None:
    queue = MessageQueue(4)
    got: list[str | bytes] = []

    async def getter() -> None:
        while not queue:
            await queue.wait_for_message()
        got.append(queue.get_nowait())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(getter)
            tg.start_soon(getter)
            await anyio.wait_all_tasks_blocked()
            queue.put("a")
            queue.put("b")
    assert sorted(got) == ["a", "b"]


async def test_close_wakes_a_parked_getter() -> None:
    queue = MessageQueue(4)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(queue.wait_for_message)
            await anyio.wait_all_tasks_blocked()
            queue.close()
    assert queue.closed


async def test_the_queue_holds_no_deque_while_empty_and_keeps_order() -> None:
    queue = MessageQueue(2)
    assert queue._items is None
    assert not queue
    with pytest.raises(IndexError):
        queue.get_nowait()
    for index in range(5):  # over the limit: the bound is soft
        queue.put(str(index))
    assert queue.full
    assert len(queue) == 5
    assert [queue.get_nowait() for _ in range(5)] == ["0", "1", "2", "3", "4"]
    assert queue._items is None
    queue.put("again")
    queue.discard()
    assert queue._items is None
    assert not queue
    assert queue.closed
