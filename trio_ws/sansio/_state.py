"""The states of a WebSocket connection and the one table of legal transitions.

The opening handshake happens before a :class:`~trio_ws.sansio.Connection` exists, so a
connection starts ``OPEN``. What moves it on is the close handshake (RFC 6455 section 7)::

    OPEN ──SEND_CLOSE──> LOCAL_CLOSING ──RECEIVE_CLOSE──> CLOSED
      │                        │
      ├──RECEIVE_CLOSE─────────┼─────────────────────────> CLOSED   (reply queued at once)
      ├──FAIL──────────────────┴─FAIL────────────────────> CLOSED   (either side's violation)
      └──RECEIVE_EOF───────────┴─RECEIVE_EOF─────────────> CLOSED   (abnormal closure, 1006)

There is no "remote closing" state: a close frame received while open is answered in the
same call that parses it, so the connection goes straight to ``CLOSED``. ``CLOSED`` means
the close handshake is over from the protocol's point of view (both close frames exist,
or the connection failed); the reply may still sit in the outgoing buffer.
"""

from __future__ import annotations

import enum

from ._errors import LocalProtocolError

__all__ = ["TRANSITIONS", "ConnectionState", "Role", "Transition", "next_state"]


class Role(enum.Enum):
    """Which end of the connection this is. Clients mask their frames; servers must not."""

    CLIENT = "client"
    SERVER = "server"


class ConnectionState(enum.Enum):
    """Where a connection is in its lifecycle."""

    #: Messages flow both ways.
    OPEN = "open"
    #: This side sent a close frame and waits for the peer's; messages still arrive.
    LOCAL_CLOSING = "local closing"
    #: The close handshake is over, or the connection failed: close the transport.
    CLOSED = "closed"


class Transition(enum.Enum):
    """What can happen to a connection's state."""

    #: This side sends a close frame.
    SEND_CLOSE = "send close"
    #: A close frame arrives from the peer.
    RECEIVE_CLOSE = "receive close"
    #: Either side broke the protocol, or this side gave up (``Connection.fail``).
    FAIL = "fail"
    #: The transport reached end of file.
    RECEIVE_EOF = "receive eof"


_OPEN = ConnectionState.OPEN
_LOCAL_CLOSING = ConnectionState.LOCAL_CLOSING
_CLOSED = ConnectionState.CLOSED

#: The legal transitions; anything missing is illegal. Once closed, nothing moves the state
#: (the connection ignores input and rejects output), except EOF, which always arrives last.
TRANSITIONS: dict[ConnectionState, dict[Transition, ConnectionState]] = {
    _OPEN: {
        Transition.SEND_CLOSE: _LOCAL_CLOSING,
        Transition.RECEIVE_CLOSE: _CLOSED,
        Transition.FAIL: _CLOSED,
        Transition.RECEIVE_EOF: _CLOSED,
    },
    _LOCAL_CLOSING: {
        Transition.RECEIVE_CLOSE: _CLOSED,
        Transition.FAIL: _CLOSED,
        Transition.RECEIVE_EOF: _CLOSED,
    },
    _CLOSED: {
        Transition.RECEIVE_EOF: _CLOSED,
    },
}


def next_state(state: ConnectionState, transition: Transition) -> ConnectionState:
    """The state ``transition`` leads to from ``state``.

    Raises:
        LocalProtocolError: The transition is not legal from ``state``.
    """
    try:
        return TRANSITIONS[state][transition]
    except KeyError:
        raise LocalProtocolError(f"cannot {transition.value} in state {state.name}") from None
