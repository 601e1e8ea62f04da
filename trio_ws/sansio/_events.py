"""Events the sans-IO core produces from the bytes it receives.

Every event is a small immutable value: a frozen, slotted, keyword-only dataclass that
compares by value. :meth:`trio_ws.sansio.Connection.receive_data` returns them in the order
the peer sent them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BytesMessage",
    "CloseConnection",
    "ConnectionFailed",
    "Event",
    "Ping",
    "Pong",
    "TextMessage",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TextMessage:
    """A complete text message (opcode 0x1 and its continuations), validated as UTF-8.

    ``data`` is a ``str``, or the raw UTF-8 ``bytes`` when the connection was created with
    ``decode_text=False`` (useful for relays that never look inside the text).
    """

    data: str | bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BytesMessage:
    """A complete binary message (opcode 0x2 and its continuations)."""

    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping:
    """The peer sent a ping; the core has already queued the matching pong."""

    payload: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Pong:
    """The peer sent a pong (solicited or not)."""

    payload: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseConnection:
    """The peer sent a close frame.

    ``code`` is 1005 when the frame carried no status code (RFC 6455 section 7.1.5).
    If this side had not sent a close frame yet, the core has already queued the reply.
    """

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionFailed:
    """The peer broke the protocol; the core "failed the WebSocket connection" (7.1.7).

    The core has queued a close frame with ``code`` and ``reason`` and ignores every byte
    received from now on. The I/O layer should flush what is left to send and close the
    transport. ``code`` is 1002, 1007, 1009, ... as RFC 6455 section 7.4.1 says.
    """

    code: int
    reason: str


Event = TextMessage | BytesMessage | Ping | Pong | CloseConnection | ConnectionFailed


# For the parser, which makes one event per message received: ``object.__new__`` and the
# slot's own setter build the same frozen event as the dataclass ``__init__`` (which sets
# each field through ``object.__setattr__``) at about a third of the cost.
new_event = object.__new__
set_text_data = TextMessage.__dict__["data"].__set__
set_bytes_data = BytesMessage.__dict__["data"].__set__
