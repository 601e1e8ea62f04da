"""The connection states and their transition table."""

from __future__ import annotations

import pytest

from trio_ws.sansio import ConnectionState, LocalProtocolError
from trio_ws.sansio._state import TRANSITIONS, Transition, next_state

OPEN = ConnectionState.OPEN
LOCAL_CLOSING = ConnectionState.LOCAL_CLOSING
CLOSED = ConnectionState.CLOSED

LEGAL = {
    (OPEN, Transition.SEND_CLOSE): LOCAL_CLOSING,
    (OPEN, Transition.RECEIVE_CLOSE): CLOSED,
    (OPEN, Transition.FAIL): CLOSED,
    (OPEN, Transition.RECEIVE_EOF): CLOSED,
    (LOCAL_CLOSING, Transition.RECEIVE_CLOSE): CLOSED,
    (LOCAL_CLOSING, Transition.FAIL): CLOSED,
    (LOCAL_CLOSING, Transition.RECEIVE_EOF): CLOSED,
    (CLOSED, Transition.RECEIVE_EOF): CLOSED,
}


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(ConnectionState)


@pytest.mark.parametrize("state", list(ConnectionState))
@pytest.mark.parametrize("transition", list(Transition))
def test_transition_table(state: ConnectionState, transition: Transition) -> None:
    expected = LEGAL.get((state, transition))
    if expected is None:
        with pytest.raises(LocalProtocolError, match=f"cannot {transition.value}"):
            next_state(state, transition)
    else:
        assert next_state(state, transition) is expected


def test_closed_is_terminal() -> None:
    assert set(TRANSITIONS[CLOSED].values()) == {CLOSED}
