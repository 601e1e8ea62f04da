"""Hiding the task group: exceptions leave trio_ws as themselves, never as ExceptionGroups.

trio and anyio wrap whatever leaves a task group in a ``BaseExceptionGroup``, even a single
exception raised by the body. trio_ws owns task groups the user never sees (one per
connection), so it unwraps them in this one place:

- a single exception (the user's, since background tasks never raise) comes out as itself,
  with its traceback, cause and context untouched;
- cancellation always propagates: when the group mixes cancellations with one real
  exception, the real exception wins (the cancel scope delivers cancellation again at the
  next checkpoint, because cancellation is level-triggered); a group of nothing but
  cancellations comes out as one of them;
- ``KeyboardInterrupt``, ``SystemExit`` and other non-``Exception`` leaves win over ordinary
  errors;
- several real exceptions become :exc:`InternalError`, raised from the group so nothing is
  lost.

It also has :func:`spawner`, the cheapest way to start a task in a given task group.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NoReturn, cast

import anyio

from ._private_apis import trio_nursery
from .sansio._errors import InternalError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from anyio.abc import TaskGroup

__all__ = ["open_task_group", "raise_unwrapped", "spawner"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    leaves: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            leaves.extend(_leaves(exc))
        else:
            leaves.append(exc)
    return leaves


def _reraise_as_is(exc: BaseException) -> NoReturn:
    # Raising inside the ``except group`` block would overwrite the exception's context
    # with the group (and, for a cancellation, build a cycle through the group). Keep the
    # chaining the exception had when it was first raised.
    cause, context, suppress = exc.__cause__, exc.__context__, exc.__suppress_context__
    try:
        raise exc
    finally:
        exc.__cause__, exc.__context__ = cause, context
        exc.__suppress_context__ = suppress


def raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one exception a task group's ``group`` stands for.

    Raises:
        BaseException: the single meaningful leaf of ``group``, as itself.
        InternalError: when ``group`` holds several real exceptions (raised from it).
    """
    cancelled_class = anyio.get_cancelled_exc_class()
    leaves = _leaves(group)
    real = [leaf for leaf in leaves if not isinstance(leaf, cancelled_class)]
    if not real:
        _reraise_as_is(leaves[0])
    fatal = [leaf for leaf in real if not isinstance(leaf, Exception)]
    if fatal:
        _reraise_as_is(fatal[0])
    if len(real) == 1:
        _reraise_as_is(real[0])
    raise InternalError(
        f"{len(real)} exceptions escaped a trio_ws task group at once; please report this"
    ) from group


@asynccontextmanager
async def open_task_group() -> AsyncIterator[TaskGroup]:
    """An ``anyio`` task group whose exceptions come out unwrapped (see the module doc).

    Use it wherever trio_ws opens a task group on the user's behalf.
    """
    try:
        async with anyio.create_task_group() as task_group:
            yield task_group
    except BaseExceptionGroup as group:
        raise_unwrapped(group)


def spawner(task_group: Any) -> Callable[..., None]:
    """The ``start_soon`` to use for background tasks in ``task_group``.

    On trio, anyio's task group wraps each task in a handle with a cancel scope and an
    event of its own (about a KiB per task, for ``TaskHandle`` features trio_ws never
    uses); its nursery's own ``start_soon`` runs the same task without them, with the same
    error propagation and the same name. Any other task group (anyio's on asyncio, a trio
    nursery) is used as it is.

    Args:
        task_group: An anyio task group or a trio nursery.

    Returns:
        ``start_soon(func, *args, name=...)``.
    """
    nursery = trio_nursery(task_group)
    if nursery is not None:
        start_soon: Callable[..., None] = nursery.start_soon
        return start_soon
    return cast("Callable[..., None]", task_group.start_soon)
