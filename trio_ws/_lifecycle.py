"""The I/O-level lifecycle of a :class:`~trio_ws.WebSocketConnection`, as one table.

The sans-IO core has its own states (``trio_ws/sansio/_state.py``: the close handshake as
the protocol sees it). This table is the other half: what the I/O layer does with the
transport and the background tasks. Only the connection's own methods move it, through
:func:`next_io_state`, so every change of state is one of the rows below::

    NEW ──START──> OPEN ──CLOSE──> CLOSING ──ABORT──> CLOSED
     │               └────────────ABORT──────────────> CLOSED   (peer closed, transport broke)
     ├──CLOSE──────────────────> CLOSING                        (closed before it started)
     └──ABORT──────────────────────────────────────────> CLOSED

``CLOSED`` is final: a second ``aclose()`` or abort is a no-op there, which is what makes
both idempotent.
"""

from __future__ import annotations

import enum

__all__ = ["IO_TRANSITIONS", "IOEvent", "IOState", "next_io_state"]


class IOState(enum.Enum):
    """Where a connection's transport and background tasks are."""

    #: Built by the client or the server; its background tasks are not started yet (a
    #: server's 101 response may already be queued).
    NEW = "new"
    #: The reader runs (and the writer when bytes wait, and the keepalive); messages flow
    #: as the core's state allows.
    OPEN = "open"
    #: ``aclose()`` runs: incoming messages are dropped, the close handshake is awaited
    #: (bounded by ``close_timeout``).
    CLOSING = "closing"
    #: The transport is closed and every background task ends or has ended.
    CLOSED = "closed"


class IOEvent(enum.Enum):
    """What moves a connection's I/O state."""

    #: The client or the server starts the background tasks (once).
    START = "start"
    #: ``aclose()`` is called.
    CLOSE = "close"
    #: The transport is closed: end of the close handshake, a transport error, a failure,
    #: a timeout, or the owner's abort.
    ABORT = "abort"


_NEW = IOState.NEW
_OPEN = IOState.OPEN
_CLOSING = IOState.CLOSING
_CLOSED = IOState.CLOSED

#: The legal transitions; anything missing is a bug in trio_ws (``RuntimeError``).
IO_TRANSITIONS: dict[IOState, dict[IOEvent, IOState]] = {
    _NEW: {IOEvent.START: _OPEN, IOEvent.CLOSE: _CLOSING, IOEvent.ABORT: _CLOSED},
    _OPEN: {IOEvent.CLOSE: _CLOSING, IOEvent.ABORT: _CLOSED},
    _CLOSING: {IOEvent.CLOSE: _CLOSING, IOEvent.ABORT: _CLOSED},
    _CLOSED: {IOEvent.CLOSE: _CLOSED, IOEvent.ABORT: _CLOSED},
}


def next_io_state(state: IOState, event: IOEvent) -> IOState:
    """The state ``event`` leads to from ``state``.

    Raises:
        RuntimeError: The event is not legal in ``state`` (starting a connection twice, or
            after it was closed).
    """
    try:
        return IO_TRANSITIONS[state][event]
    except KeyError:
        raise RuntimeError(f"a connection cannot {event.value} in I/O state {state.name}") from None
