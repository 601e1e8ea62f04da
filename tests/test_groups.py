"""_groups: exceptions leave trio_ws task groups as themselves."""

from __future__ import annotations

import sys

import anyio
import pytest

from trio_ws import InternalError
from trio_ws._groups import open_task_group, spawner
from trio_ws._private_apis import FAST_PATHS

FAST_PATHS_ONLY = pytest.mark.skipif(
    not FAST_PATHS, reason="checks a fast path itself (TRIO_WS_FAST_PATHS=0)"
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


class Boom(Exception):
    pass


class Fatal(BaseException):
    pass


async def _raise_in_body(exc: BaseException) -> None:
    async with open_task_group():
        raise exc


async def _raise_chained() -> None:
    async with open_task_group():
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise Boom("outer") from exc


async def _raise_in_children(*exceptions: BaseException, body: BaseException | None) -> None:
    async def child(exc: BaseException) -> None:
        raise exc

    async with open_task_group() as tg:
        for exc in exceptions:
            tg.start_soon(child, exc)
        if body is not None:
            raise body
        await anyio.sleep_forever()


@pytest.mark.anyio
async def test_body_exception_comes_out_as_itself() -> None:
    original = Boom("body")
    with pytest.raises(Boom) as info:
        await _raise_in_body(original)
    assert info.value is original
    assert info.value.__context__ is None


@pytest.mark.anyio
async def test_chaining_is_preserved() -> None:
    with pytest.raises(Boom) as info:
        await _raise_chained()
    assert isinstance(info.value.__cause__, KeyError)


@pytest.mark.anyio
async def test_child_exception_comes_out_as_itself() -> None:
    with pytest.raises(Boom, match="child"):
        await _raise_in_children(Boom("child"), body=None)


@pytest.mark.anyio
async def test_several_exceptions_become_internal_error() -> None:
    with pytest.raises(InternalError) as info:
        await _raise_in_children(Boom("one"), Boom("two"), body=None)
    group = info.value.__cause__
    assert isinstance(group, BaseExceptionGroup)
    assert group.subgroup(Boom) is not None


@pytest.mark.anyio
async def test_base_exception_wins_over_errors() -> None:
    with pytest.raises(Fatal):
        await _raise_in_children(Fatal(), body=Boom("body"))


@pytest.mark.anyio
async def test_cancellation_from_outside_propagates() -> None:
    with anyio.fail_after(5):
        with anyio.move_on_after(0.01) as scope:
            async with open_task_group() as tg:
                tg.start_soon(anyio.sleep_forever)
                await anyio.sleep_forever()
        assert scope.cancelled_caught


@FAST_PATHS_ONLY
@pytest.mark.anyio
async def test_spawner_starts_named_tasks_whose_errors_come_out_as_themselves(
    anyio_backend: str,
) -> None:
    names: list[str] = []

    async def record() -> None:
        names.append(str(anyio.get_current_task().name))

    with anyio.fail_after(5):
        async with open_task_group() as tg:
            start_soon = spawner(tg)
            # On trio, the nursery's own start_soon: no anyio TaskHandle per task.
            expected = tg._nursery.start_soon if anyio_backend == "trio" else tg.start_soon  # type: ignore[attr-defined]
            assert start_soon == expected
            start_soon(record, name="trio_ws[test] reader")
        assert names == ["trio_ws[test] reader"]
        with pytest.raises(Boom, match="spawned"):
            await _spawn_failing_task()


async def _spawn_failing_task() -> None:
    async def fail() -> None:
        raise Boom("spawned")

    async with open_task_group() as tg:
        spawner(tg)(fail)
        await anyio.sleep_forever()


@pytest.mark.trio
async def test_spawner_takes_a_trio_nursery_as_it_is() -> None:
    import trio

    done = trio.Event()

    async def finish() -> None:
        done.set()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            start_soon = spawner(nursery)
            assert start_soon == nursery.start_soon
            start_soon(finish)
        assert done.is_set()
