"""_groups: exceptions leave trio_ws task groups as themselves."""

from __future__ import annotations

import sys

import anyio
import pytest

from trio_ws import InternalError
from trio_ws._groups import open_task_group

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
