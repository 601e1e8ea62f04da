"""broadcast(): one message to many connections, encoded once, never waiting for anyone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, final

from .sansio import Frame, Opcode, serialize_frame
from .sansio._errors import ConnectionClosed, LocalProtocolError, WouldBlock

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._connection import WebSocketConnection

__all__ = ["BroadcastResult", "SlowPolicy", "broadcast"]

#: What :func:`broadcast` does with a connection whose write buffer is above its
#: ``write_high_water``: ``"skip"`` leaves the message out for it, ``"close"`` starts
#: closing it with code 1013 (try again later).
SlowPolicy = Literal["skip", "close"]

#: The close code for a consumer too slow to keep up (RFC 6455 registry: "Try Again Later").
_TRY_AGAIN_LATER = 1013


@final
@dataclass(frozen=True, slots=True)
class BroadcastResult:
    """What :func:`broadcast` did: how many connections got the message, and who did not."""

    #: How many connections the message was queued for.
    sent: int
    #: How many connections were left out: closing or closed, sending a fragmented
    #: message, or (with ``on_slow="skip"``) too slow.
    skipped: int
    #: How many slow connections were told to close (``on_slow="close"``).
    closed: int
    #: The connections that were above their high-water mark (skipped or closed).
    slow: tuple[WebSocketConnection, ...] = ()


def broadcast(
    connections: Iterable[WebSocketConnection],
    message: str | bytes | bytearray | memoryview,
    *,
    text: bool | None = None,
    on_slow: SlowPolicy = "skip",
) -> BroadcastResult:
    """Queue ``message`` for every connection in ``connections``; never waits.

    The message is encoded once as one unmasked frame that every server connection sends
    as it is. A client connection (it must mask with a fresh key) or one whose extension
    forbids plain frames gets the message encoded for it alone. With permessage-deflate
    negotiated the shared frame goes out **uncompressed** (RSV1 clear): its bytes would
    otherwise depend on each connection's compression context. That is allowed by RFC
    7692 and leaves the compression context intact, so the connection's later compressed
    messages decode as before. Send with
    :meth:`~trio_ws.WebSocketConnection.send_message` in a loop instead when compressing
    each copy is worth its CPU.

    Connections that are closing or closed, or in the middle of a fragmented message
    (:attr:`~trio_ws.WebSocketConnection.is_sending_fragments`), are skipped. A connection
    whose :attr:`~trio_ws.WebSocketConnection.buffered_amount` is above its
    ``write_high_water`` is a slow consumer: ``on_slow`` says what happens to it.

    This is a plain function, not a checkpoint: it does not yield, however many
    connections there are (queueing is a few list appends each; the connections' own
    tasks write). Call it from a task that yields elsewhere, or use a
    :class:`~trio_ws.Hub` when many subscribers each need their own pace.

    Args:
        connections: The connections (any iterable; it is iterated once).
        message: The message: a ``str`` is sent as text, bytes-like as binary.
        text: Override the kind, as for :meth:`~trio_ws.WebSocketConnection.send_message`.
        on_slow: ``"skip"``: leave the message out for a slow connection (it misses this
            one message); ``"close"``: start closing it with code 1013 (see
            :meth:`~trio_ws.WebSocketConnection.close_nowait`).

    Returns:
        The counts, and the slow connections.

    Raises:
        LocalProtocolError: A ``str`` that cannot be encoded as UTF-8.
        ValueError: ``on_slow`` is neither ``"skip"`` nor ``"close"``.
    """
    if on_slow != "skip" and on_slow != "close":
        raise ValueError(f"on_slow must be 'skip' or 'close', not {on_slow!r}")
    if text is None:
        text = isinstance(message, str)
    if isinstance(message, str):
        try:
            payload = message.encode()
        except UnicodeEncodeError as exc:
            raise LocalProtocolError("a text message must be encodable as UTF-8") from exc
    else:
        payload = bytes(message)
    frame: bytes | None = None  # encoded at the first server connection
    sent = skipped = closed = 0
    slow: list[WebSocketConnection] = []
    for ws in connections:
        if ws.closed or ws.is_sending_fragments:
            skipped += 1
            continue
        try:
            if ws.is_client:
                ws.send_message_nowait(payload, text=text)
            else:
                if frame is None:
                    opcode = Opcode.TEXT if text else Opcode.BINARY
                    frame = serialize_frame(Frame(opcode, payload))
                try:
                    ws.send_encoded_nowait(frame)
                except LocalProtocolError:
                    # An extension that forbids plain frames: this one is encoded apart.
                    ws.send_message_nowait(payload, text=text)
        except WouldBlock:
            slow.append(ws)
            if on_slow == "close":
                ws.close_nowait(_TRY_AGAIN_LATER, "too slow to keep up")
                closed += 1
            else:
                skipped += 1
        except ConnectionClosed:
            skipped += 1
        else:
            sent += 1
    return BroadcastResult(sent=sent, skipped=skipped, closed=closed, slow=tuple(slow))
