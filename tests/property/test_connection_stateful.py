"""A Hypothesis state machine of two sans-IO connections talking to each other.

A client and a server :class:`~trio_ws.sansio.Connection` send text, bytes, fragmented
messages, pings, pongs and closes in any interleaving, from either side; what one side
sends sits "on the wire" until a rule delivers it to the other in random chunks. A model
predicts, for each direction, every event the receiver must see (the automatic pongs and
close replies included, with the core's coalescing of unanswered pongs). The invariants:
the receiver's events are exactly the predicted ones, in order and intact; nothing follows
a close frame on the wire; every close code is legal; and the same bytes delivered in one
piece to a fresh connection give the same events, so chunking never changes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from trio_ws.sansio import (
    BytesMessage,
    CloseConnection,
    Connection,
    ConnectionState,
    Event,
    FrameParser,
    LocalProtocolError,
    Opcode,
    Ping,
    Pong,
    Role,
    TextMessage,
)
from trio_ws.sansio._connection import is_valid_close_code

# The core keeps at most this many automatic pongs queued; more replace the last one.
MAX_PENDING_PONGS = 16

sides = st.sampled_from([Role.CLIENT, Role.SERVER])
close_codes = st.none() | st.sampled_from([1000, 1001, 1003, 1008, 1011, 3000, 4999])


@dataclass
class Side:
    """One connection and what the model knows about the bytes it sends."""

    conn: Connection
    # Bytes taken from conn.data_to_send(), not yet delivered to the peer.
    wire: bytearray = field(default_factory=bytearray)
    # Every byte ever sent, to replay in one piece.
    transcript: bytearray = field(default_factory=bytearray)
    # The events the peer must see for what was queued and flushed to the wire...
    flushed: list[Event] = field(default_factory=list)
    # ...and for what is still queued in the core (automatic pongs may be coalesced).
    queued: list[Event] = field(default_factory=list)
    pending_pongs: int = 0
    last_pong: int = 0
    # The fragmented message being sent: (is_text, pieces), or None.
    fragments: tuple[bool, list[str]] | None = None
    # Events the peer's connection produced from this side's bytes.
    delivered: list[Event] = field(default_factory=list)
    eof_received: bool = False


class TwoConnections(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sides = {role: Side(Connection(role)) for role in (Role.CLIENT, Role.SERVER)}

    @staticmethod
    def other(role: Role) -> Role:
        return Role.SERVER if role is Role.CLIENT else Role.CLIENT

    # ------------------------------------------------------------ the model

    def may_send(self, role: Role) -> bool:
        return self.sides[role].conn.state is ConnectionState.OPEN

    def expect(self, role: Role, event: Event) -> None:
        self.sides[role].queued.append(event)

    def expect_automatic_pong(self, role: Role, payload: bytes) -> None:
        side = self.sides[role]
        if side.pending_pongs < MAX_PENDING_PONGS:
            side.pending_pongs += 1
            side.queued.append(Pong(payload=payload))
            side.last_pong = len(side.queued) - 1
        else:
            side.queued[side.last_pong] = Pong(payload=payload)

    def attempt(self, role: Role, allowed: bool, action: object) -> bool:
        """Run ``action``; it must raise LocalProtocolError exactly when not ``allowed``."""
        assert callable(action)
        if allowed:
            action()
            return True
        try:
            action()
        except LocalProtocolError:
            return False
        raise AssertionError("the core accepted a send it must refuse")

    # ------------------------------------------------------------ sending

    @rule(role=sides, text=st.text(max_size=20))
    def send_text(self, role: Role, text: str) -> None:
        side = self.sides[role]
        allowed = self.may_send(role) and side.fragments is None
        if self.attempt(role, allowed, lambda: side.conn.send_text(text)):
            self.expect(role, TextMessage(data=text))

    @rule(role=sides, data=st.binary(max_size=300))
    def send_bytes(self, role: Role, data: bytes) -> None:
        side = self.sides[role]
        allowed = self.may_send(role) and side.fragments is None
        if self.attempt(role, allowed, lambda: side.conn.send_binary(data)):
            self.expect(role, BytesMessage(data=data))

    @rule(role=sides, is_text=st.booleans(), piece=st.text(max_size=8), fin=st.booleans())
    def send_fragment(self, role: Role, is_text: bool, piece: str, fin: bool) -> None:
        side = self.sides[role]
        allowed = self.may_send(role) and (side.fragments is None or side.fragments[0] == is_text)
        if not self.attempt(
            role, allowed, lambda: side.conn.send_fragment(piece, text=is_text, fin=fin)
        ):
            return
        pieces = [*(side.fragments[1] if side.fragments else []), piece]
        if fin:
            whole = "".join(pieces)
            self.expect(
                role, TextMessage(data=whole) if is_text else BytesMessage(data=whole.encode())
            )
            side.fragments = None
        else:
            side.fragments = (is_text, pieces)

    @rule(role=sides, payload=st.binary(max_size=125))
    def ping(self, role: Role, payload: bytes) -> None:
        side = self.sides[role]
        if self.attempt(role, self.may_send(role), lambda: side.conn.send_ping(payload)):
            self.expect(role, Ping(payload=payload))

    @rule(role=sides, count=st.integers(min_value=2, max_value=2 * MAX_PENDING_PONGS))
    def ping_flood(self, role: Role, count: int) -> None:
        # Enough pings at once for the peer's automatic pongs to be coalesced.
        for index in range(count):
            self.ping(role, index.to_bytes(2, "big"))

    @rule(role=sides, payload=st.binary(max_size=125))
    def pong(self, role: Role, payload: bytes) -> None:
        side = self.sides[role]
        if self.attempt(role, self.may_send(role), lambda: side.conn.send_pong(payload)):
            self.expect(role, Pong(payload=payload))

    @rule(role=sides, code=close_codes)
    def close(self, role: Role, code: int | None) -> None:
        side = self.sides[role]
        if self.attempt(role, self.may_send(role), lambda: side.conn.send_close(code)):
            self.expect(role, CloseConnection(code=1005 if code is None else code))
            assert side.conn.state is ConnectionState.LOCAL_CLOSING

    # ------------------------------------------------------------ the wire

    @rule(role=sides)
    def flush(self, role: Role) -> None:
        side = self.sides[role]
        data = side.conn.data_to_send()
        side.wire += data
        side.transcript += data
        side.flushed += side.queued
        side.queued = []
        side.pending_pongs = 0

    @precondition(lambda self: any(side.wire for side in self.sides.values()))
    @rule(role=sides, sizes=st.lists(st.integers(min_value=1, max_value=40), max_size=8))
    def deliver(self, role: Role, sizes: list[int]) -> None:
        """Deliver some of ``role``'s bytes on the wire to its peer, in chunks of ``sizes``."""
        side = self.sides[role]
        peer_role = self.other(role)
        peer = self.sides[peer_role].conn
        for size in [*sizes, len(side.wire)]:  # the rest in one last chunk
            chunk = bytes(side.wire[:size])
            del side.wire[:size]
            if side.eof_received:
                continue  # the peer's transport is gone: the bytes are lost
            for event in peer.receive_data(chunk):
                side.delivered.append(event)
                # The model, not the core, says whether the peer was still open when this
                # event arrived (a close later in the same chunk changes the core's state).
                if isinstance(event, Ping) and not self.closed_locally(peer_role):
                    self.expect_automatic_pong(peer_role, event.payload)
                elif isinstance(event, CloseConnection):
                    self.on_close_received(peer_role, event)

    def closed_locally(self, role: Role) -> bool:
        side = self.sides[role]
        return any(isinstance(e, CloseConnection) for e in side.flushed + side.queued)

    def on_close_received(self, role: Role, event: CloseConnection) -> None:
        """``role`` received its peer's close frame: it replies unless it closed first."""
        if not self.closed_locally(role):
            self.expect(role, CloseConnection(code=event.code))
        self.sides[role].fragments = None

    @precondition(lambda self: any(not side.eof_received for side in self.sides.values()))
    @rule(role=sides)
    def eof(self, role: Role) -> None:
        """``role``'s peer sees the transport end (e.g. TCP closed): no more bytes arrive."""
        side = self.sides[role]
        if side.eof_received:
            return
        peer = self.sides[self.other(role)].conn
        assert peer.receive_eof() == []
        side.eof_received = True
        assert peer.state is ConnectionState.CLOSED
        assert peer.close_expected
        if peer.close_received is None and peer.close_sent is None:
            assert peer.close_code == 1006

    # ------------------------------------------------------------ invariants

    @invariant()
    def events_are_the_predicted_ones_in_order(self) -> None:
        for side in self.sides.values():
            expected = side.flushed
            if side.eof_received:
                assert side.delivered == expected[: len(side.delivered)]
            elif not side.wire:
                assert side.delivered == expected
            else:
                assert side.delivered == expected[: len(side.delivered)]

    @invariant()
    def nothing_follows_a_close(self) -> None:
        for role, side in self.sides.items():
            events = side.delivered
            closes = [i for i, e in enumerate(events) if isinstance(e, CloseConnection)]
            assert closes in ([], [len(events) - 1])
            # On the wire too: the sender writes no frame after its close frame.
            parser = FrameParser(require_mask=role is Role.CLIENT)
            frames = parser.receive_data(bytes(side.transcript))
            opcodes = [frame.opcode for frame in frames]
            if Opcode.CLOSE in opcodes:
                assert opcodes.index(Opcode.CLOSE) == len(opcodes) - 1

    @invariant()
    def close_codes_are_legal(self) -> None:
        for side in self.sides.values():
            for event in side.delivered:
                if isinstance(event, CloseConnection):
                    assert event.code == 1005 or is_valid_close_code(event.code)
            code = side.conn.close_code
            assert code is None or code in (1005, 1006) or is_valid_close_code(code)

    @invariant()
    def chunking_does_not_change_the_events(self) -> None:
        for role, side in self.sides.items():
            if side.eof_received:
                continue  # bytes after the EOF were dropped, not delivered
            delivered_bytes = bytes(side.transcript[: len(side.transcript) - len(side.wire)])
            fresh = Connection(self.other(role))
            assert fresh.receive_data(delivered_bytes) == side.delivered

    @invariant()
    def the_handshake_completes_both_ways(self) -> None:
        # Once each side has had its peer's close frame, both are closed.
        for role, side in self.sides.items():
            peer = self.sides[self.other(role)].conn
            if any(isinstance(e, CloseConnection) for e in side.delivered):
                assert peer.close_received is not None
                assert peer.state is ConnectionState.CLOSED
                assert peer.close_sent is not None


TwoConnections.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestTwoConnections = TwoConnections.TestCase
