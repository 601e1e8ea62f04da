"""Direct socket access for the two streams a connection runs over most: anyio's own TCP and
Unix socket streams, on trio and on asyncio.

A WebSocket connection spends most of its time on small messages, where the cost is not the
bytes but the scheduler passes around each system call. ``stream.send()`` and
``stream.receive()`` each yield to the scheduler at least once, even when the socket is ready.
For the streams listed here, :func:`socket_io` returns a :class:`SocketIO` that tries the
system call first, without awaiting, and waits for readiness only when the socket has nothing
to give or no room:

- it lets ``send_message()`` write a message straight from the sending task when nothing else
  is being written (the writer task then only handles bursts and what the socket refused);
- on trio, the reader and the writer wait for readiness themselves, skipping the empty
  ``recv`` and the extra scheduler pass of ``SocketStream.receive``/``send``.

TLS 1.3 over such a socket (anyio's ``TLSStream``, once its handshake is done) takes the
path of plain TCP, with the record layer of the stream's own ``ssl.SSLObject`` in between:
a :class:`TLSSocketIO` on trio (the same non-blocking calls), a :class:`TransportTLSIO` on
asyncio (records written to the transport, received chunks decrypted by the reader). Any
other stream (TLS 1.2, TLS over other streams, in-memory, user-defined) gets ``None``, and
the connection uses the plain ``ByteStream`` calls. The fast paths are
chosen by the stream's exact class, never by ``extra()`` (a TLS stream forwards its
transport's raw socket there: writing to it would bypass TLS); what that takes of
anyio's private API is in ``_private_apis``, and ``TRIO_WS_FAST_PATHS=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import SocketAttribute

from ._private_apis import (
    anyio_tls_parts,
    asyncio_stream_parts,
    backend_checkpoint,
    backend_checkpoint_if_cancelled,
    is_anyio_trio_socket_stream,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from anyio.abc import ByteStream

__all__ = [
    "SocketIO",
    "TLSSocketIO",
    "TransportTLSIO",
    "loop_cancel_shielded_checkpoint",
    "loop_checkpoint",
    "loop_checkpoint_if_cancelled",
    "socket_io",
]


#: How much plaintext one ``SSLObject.read`` asks for: one record's worth at most (a read
#: returns no more than a record). The buffer is allocated at that size before it shrinks
#: to what came: at 128 KiB, glibc maps and unmaps it for every small message (measured:
#: 43 against 28 µs of server CPU per fan-in message on asyncio).
RECORDS_READ = 2**14


class SocketIO:
    """Non-blocking send (and on trio, receive) on the socket under one stream.

    Attributes:
        waits: Whether :attr:`wait_readable`, :meth:`wait_writable` and
            :meth:`try_receive` may be used (trio); otherwise only :meth:`try_send`.
    """

    __slots__ = (
        "_drain_stream",
        "_socket",
        "_transport",
        "_writable",
        "checkpoint",
        "closed_error",
        "decrypt",
        "deferred_error",
        "protocol",
        "unsent",
        "wait_readable",
        "waits",
    )

    def __init__(
        self,
        sock: socket.socket | None,
        transport: asyncio.WriteTransport | None,
        protocol: Any = None,
        drain_stream: ByteStream | None = None,
    ) -> None:
        self._socket = sock
        self._transport = transport
        # asyncio: the stream whose ``send(b"")`` waits until the transport takes more
        # (the socket stream itself, under TLS too).
        self._drain_stream = drain_stream
        #: On asyncio under TLS, what turns received chunks (records) into plaintext
        #: (:meth:`TransportTLSIO.decrypt`); ``None`` when the chunks are the plaintext.
        self.decrypt: Callable[[bytes | memoryview], bytes] | None = None
        #: TLS: how the stream ended or broke (close_notify, a bad record) right after
        #: plaintext that a read returned first, so that nothing received intact is lost.
        #: The reader checks it after feeding that plaintext (:meth:`raise_deferred`).
        self.deferred_error: Exception | None = None
        #: anyio's asyncio stream protocol (``read_queue``, ``read_event``), when its
        #: shape is the one the reader knows: the reader then takes the received chunks
        #: from it directly (see ``_reader``); ``None`` otherwise.
        self.protocol = protocol
        #: Bytes accepted by :meth:`try_send` but not yet handed to the kernel (TLS
        #: records the socket had no room for; always 0 on a plain socket): the writer
        #: sends them with :meth:`flush_unsent` before it counts a write as done.
        self.unsent = 0
        self.waits = sock is not None
        if sock is not None:
            import trio

            #: trio's ``wait_readable(socket)`` itself, called with :attr:`raw_socket`: the
            #: reader awaits it with no frame of ours in between (one less per idle
            #: connection). It raises :attr:`closed_error` if the socket is closed meanwhile.
            self.wait_readable: Callable[[socket.socket], Awaitable[None]] = (
                trio.lowlevel.wait_readable
            )
            self._writable = trio.lowlevel.wait_writable
            #: What trio raises in a wait when the socket is closed meanwhile.
            self.closed_error: type[Exception] = trio.ClosedResourceError
            #: trio's own checkpoint, without anyio's per-call backend lookup.
            self.checkpoint = trio.lowlevel.checkpoint

    def try_send(self, data: bytes | memoryview) -> int:
        """Send what the socket takes now, without waiting; return how many bytes went.

        Returns 0 when the socket has no room, or when bytes written earlier through the
        stream are still queued in front (asyncio), so that order is kept. Transport errors
        propagate as :exc:`OSError`.
        """
        sock = self._socket
        if sock is not None:
            try:
                return sock.send(data)
            except (BlockingIOError, InterruptedError):
                return 0
        transport = self._transport
        assert transport is not None
        if transport.get_write_buffer_size() or transport.is_closing():
            return 0
        # The transport sends at once what the kernel takes and buffers the rest; it is
        # only used while its buffer is empty, so it holds at most one write's bytes.
        transport.write(data)
        return len(data)

    @property
    def transport(self) -> asyncio.Transport:
        """The asyncio transport (only when :attr:`protocol` is set)."""
        assert isinstance(self._transport, asyncio.Transport)
        return self._transport

    @property
    def raw_socket(self) -> socket.socket:
        """The socket itself (only when :attr:`waits`)."""
        assert self._socket is not None
        return self._socket

    @property
    def closing(self) -> bool:
        """Whether the asyncio transport is closing (it then takes no more bytes)."""
        return self._transport is not None and self._transport.is_closing()

    def try_receive(self, max_bytes: int) -> bytes | None:
        """Receive up to ``max_bytes`` without waiting; ``None`` if nothing is there yet.

        Returns ``b""`` at end of stream. Transport errors propagate as :exc:`OSError`.
        """
        assert self._socket is not None
        try:
            return self._socket.recv(max_bytes)
        except (BlockingIOError, InterruptedError):
            return None

    def flush_unsent(self) -> None:
        """Send what :attr:`unsent` counts, as far as the socket takes it (plain: no-op)."""

    def raise_deferred(self) -> None:
        """Raise :attr:`deferred_error`, if any, once."""
        error = self.deferred_error
        if error is not None:
            self.deferred_error = None
            raise error

    def _end_after(self, chunks: list[bytes], error: Exception) -> None:
        """A read met ``error`` after ``chunks``: raise it now if there are none, else keep
        it for :meth:`raise_deferred`, once the chunks are fed."""
        if not chunks:
            raise error
        self.deferred_error = error

    async def wait_drained(self) -> None:
        """Wait until the asyncio transport takes more (asyncio only); writes nothing, so a
        cancellation loses nothing.

        Raises:
            anyio.BrokenResourceError, anyio.ClosedResourceError: The transport is gone.
        """
        assert self._drain_stream is not None
        await self._drain_stream.send(b"")

    async def wait_writable(self) -> None:
        """Wait until the socket is writable (trio only).

        Raises:
            anyio.ClosedResourceError: The socket was closed meanwhile.
        """
        sock = self._socket
        assert sock is not None
        try:
            await self._writable(sock)
        except self.closed_error as exc:
            raise anyio.ClosedResourceError from exc


class TLSSocketIO(SocketIO):
    """:class:`SocketIO` for TLS over a socket on trio, through the stream's ``SSLObject``.

    The handshake was done by anyio's ``TLSStream``; from then on the connection encrypts
    and decrypts here, with the same memory BIOs, so that nothing anyio buffered is lost and
    the stream's ``aclose()`` still ends the session. Only TLS 1.3 is taken over: it has no
    renegotiation, so a write never has to wait for a read. Ciphertext the socket refuses is
    kept in :attr:`unsent`, in order, in front of any later record.
    """

    __slots__ = ("_incoming", "_outgoing", "_ragged_eof_is_error", "_ssl", "_unsent_data")

    def __init__(
        self,
        sock: socket.socket,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        *,
        standard_compatible: bool,
    ) -> None:
        super().__init__(sock, None)
        # As the stream would: a TCP close without close_notify is an error only if the
        # stream was made "standard compatible" (trio_ws's own streams are not).
        self._ragged_eof_is_error = standard_compatible
        self._ssl = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing
        self._unsent_data: bytes | memoryview = b""
        self._send_records()  # what the handshake may have left (session tickets)

    def _send_records(self) -> None:
        """Move the BIO's records behind the unsent ones and send as much as the socket takes."""
        records = self._outgoing.read()
        if records:
            unsent = self._unsent_data
            self._unsent_data = b"".join((unsent, records)) if unsent else records
        self.flush_unsent()

    def flush_unsent(self) -> None:
        data = self._unsent_data
        if not data:
            return
        sock = self._socket
        assert sock is not None
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        self._unsent_data = data = memoryview(data)[sent:] if sent < len(data) else b""
        self.unsent = len(data)

    def try_send(self, data: bytes | memoryview) -> int:
        """Encrypt and send ``data``; return its length once it is in records, or 0 while
        earlier records still wait for room (nothing of ``data`` is taken then)."""
        if self._unsent_data:
            self.flush_unsent()
            if self._unsent_data:
                return 0
        if not data:
            return 0
        self._ssl.write(data)
        self._send_records()
        return len(data)

    def try_receive(self, max_bytes: int) -> bytes | None:
        """Decrypt up to ``max_bytes`` from the records received so far and those the
        socket has now; ``None`` if no whole record is there yet, ``b""`` at the end.

        Records are read until ``max_bytes``, or until the BIO holds no whole record and
        the socket is empty, so that a short result means the reader may wait for the
        socket. A ``recv`` that came back short has most likely emptied the socket: it is
        not tried again in the same call (that would cost a system call and an exception
        per message), and ``SSLObject.read`` is only called when the BIO or the object
        holds bytes (or the end), since on an empty BIO it can only raise. TLS alerts and
        transport errors propagate as :exc:`OSError`, close_notify as ``b""``; when they
        come right after plaintext, that is returned first and the end is kept in
        :attr:`deferred_error`.
        """
        ssl_object = self._ssl
        incoming = self._incoming
        sock = self._socket
        assert sock is not None
        chunks: list[bytes] = []
        wanted = max_bytes
        drained = False
        while wanted > 0:
            if incoming.pending or incoming.eof or ssl_object.pending():
                chunk: bytes | None
                try:
                    chunk = ssl_object.read(min(wanted, RECORDS_READ))
                except ssl.SSLWantReadError:
                    chunk = None  # part of a record: the rest is still on its way
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError) as exc:
                    # close_notify, or the peer closed the TCP connection without it:
                    # clients commonly do that, and the WebSocket close handshake is the
                    # real end.
                    if isinstance(exc, ssl.SSLEOFError) and self._ragged_eof_is_error:
                        broken = anyio.BrokenResourceError()
                        broken.__cause__ = exc
                        self._end_after(chunks, broken)
                        break
                    chunk = b""
                except ssl.SSLError as exc:  # a bad record, an alert
                    self._end_after(chunks, exc)
                    break
                if chunk:
                    chunks.append(chunk)
                    wanted -= len(chunk)
                    continue
                if chunk is not None:  # the end (read() returns b"" after close_notify)
                    if not chunks:
                        return b""
                    self.deferred_error = anyio.EndOfStream()
                    break
            if drained:
                break
            size = max(wanted, 16_709)  # at least one whole record
            try:
                data = sock.recv(size)
            except (BlockingIOError, InterruptedError):
                break
            if data:
                incoming.write(data)
                drained = len(data) < size
            else:
                incoming.write_eof()
                drained = True
        if self._outgoing.pending:  # e.g. a KeyUpdate answer, or tickets after a read
            self._send_records()
        if not chunks:
            return None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class TransportTLSIO(SocketIO):
    """:class:`SocketIO` for TLS over anyio's asyncio socket stream, through the TLS
    stream's ``SSLObject``.

    As :class:`TLSSocketIO` on trio, the handshake was anyio's; from then on records are
    made here and written to the transport in the same step (so they keep their order),
    and the reader turns the chunks the transport delivers into plaintext with
    :meth:`decrypt`, from the callbacks or the reader task. Both use the stream's own
    BIOs, so the stream's ``receive()`` and ``aclose()`` still find the session as it is.
    Only TLS 1.3 is taken over (no renegotiation: a write never waits for a read).
    """

    __slots__ = ("_incoming", "_outgoing", "_ssl")

    def __init__(
        self,
        transport: asyncio.Transport,
        protocol: Any,
        socket_stream: ByteStream,
        ssl_object: ssl.SSLObject,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
    ) -> None:
        super().__init__(None, transport, protocol, socket_stream)
        self._ssl = ssl_object
        self._incoming = incoming
        self._outgoing = outgoing
        self.decrypt = self._decrypt
        if outgoing.pending:  # what the handshake may have left (session tickets)
            transport.write(outgoing.read())

    def try_send(self, data: bytes | memoryview) -> int:
        """Encrypt ``data`` and hand the records to the transport; 0 (nothing taken) while
        earlier bytes are still queued there or it is closing."""
        transport = self._transport
        assert transport is not None
        if transport.get_write_buffer_size() or transport.is_closing() or not data:
            return 0
        self._ssl.write(data)
        transport.write(self._outgoing.read())
        return len(data)

    def _decrypt(self, data: bytes | memoryview) -> bytes:
        """The plaintext of the records ``data`` completes (``b""`` if none yet), with
        those already in the BIO in front. A bad record propagates as :exc:`ssl.SSLError`
        and close_notify as :exc:`anyio.EndOfStream`, at once or after the plaintext
        before them (see :attr:`deferred_error`).
        """
        incoming = self._incoming
        ssl_object = self._ssl
        if data:
            incoming.write(data)
        chunks: list[bytes] = []
        # read() on a BIO with nothing in it can only raise: it is not called then.
        while incoming.pending or ssl_object.pending():
            try:
                chunk = ssl_object.read(RECORDS_READ)
            except ssl.SSLWantReadError:
                break  # part of a record: the rest is still on its way
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:  # a bad record, an alert
                self._end_after(chunks, exc)
                break
            if not chunk:  # close_notify: the end, as the TLS stream would report it
                self._end_after(chunks, anyio.EndOfStream())
                break
            chunks.append(chunk)
        if self._outgoing.pending:  # e.g. a KeyUpdate answer
            transport = self._transport
            assert transport is not None
            transport.write(self._outgoing.read())
        if not chunks:
            return b""
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def socket_io(stream: ByteStream) -> SocketIO | None:
    """The non-blocking socket access for ``stream``, or ``None`` if it has none.

    Only anyio's own socket streams qualify (see ``_private_apis``), and TLS 1.3 over them
    on trio: on trio they hold nothing but the socket, so direct system calls keep the
    byte order; on asyncio the transport is written to directly, and only while its buffer
    is empty.
    """
    tls = anyio_tls_parts(stream)
    if tls is not None:
        inner, ssl_object, incoming, outgoing, standard_compatible = tls
        if ssl_object.version() != "TLSv1.3":
            return None
        if is_anyio_trio_socket_stream(inner):
            sock = inner.extra(SocketAttribute.raw_socket, None)
            if isinstance(sock, socket.socket) and sock.gettimeout() == 0.0:
                return TLSSocketIO(
                    sock, ssl_object, incoming, outgoing, standard_compatible=standard_compatible
                )
            return None
        parts = asyncio_stream_parts(inner)
        if parts is None or parts[1] is None:  # decrypting needs the protocol's chunks
            return None
        transport, protocol = parts
        assert isinstance(transport, asyncio.Transport)
        # A TCP close without close_notify reaches the reader as the socket stream's end,
        # through the TLS stream's receive(), which applies standard_compatible itself.
        return TransportTLSIO(transport, protocol, inner, ssl_object, incoming, outgoing)
    if is_anyio_trio_socket_stream(stream):
        sock = stream.extra(SocketAttribute.raw_socket, None)
        if isinstance(sock, socket.socket) and sock.gettimeout() == 0.0:
            return SocketIO(sock, None)
        return None
    parts = asyncio_stream_parts(stream)
    if parts is None:
        return None
    transport, protocol = parts
    return SocketIO(None, transport, protocol, stream)


def _loop_function(
    name: str, backend_method: Callable[[], Callable[[], Awaitable[None]] | None] | None
) -> Callable[[], Awaitable[None]]:
    """``anyio.lowlevel.<name>`` as the running loop has it, looked up once: trio's own on
    trio, anyio's backend method bound on asyncio when ``backend_method`` finds it."""
    fallback: Callable[[], Awaitable[None]] = getattr(anyio.lowlevel, name)
    try:
        cancelled = anyio.get_cancelled_exc_class()
    except Exception:  # no event loop running yet: anyio's, which looks it up later
        return fallback
    if cancelled.__module__.startswith("trio"):
        import trio

        own: Callable[[], Awaitable[None]] = getattr(trio.lowlevel, name)
        return own
    method = None if backend_method is None else backend_method()
    return fallback if method is None else method


def loop_checkpoint_if_cancelled() -> Callable[[], Awaitable[None]]:
    """``checkpoint_if_cancelled`` of the running event loop, looked up once.

    anyio's version finds the backend on every call (two calls per echoed message); on trio,
    trio's own function is the same without that lookup, and on asyncio anyio's backend
    method is bound once.
    """
    return _loop_function("checkpoint_if_cancelled", backend_checkpoint_if_cancelled)


def loop_checkpoint() -> Callable[[], Awaitable[None]]:
    """``checkpoint`` (a schedule point, then a cancellation point) of the running loop.

    On asyncio it is one ``sleep(0)``, where anyio's ``cancel_shielded_checkpoint`` enters
    and leaves a shielded cancel scope (several microseconds): the hot calls of a
    connection yield first and then act without awaiting, so they need no shield.
    """
    return _loop_function("checkpoint", backend_checkpoint)


def loop_cancel_shielded_checkpoint() -> Callable[[], Awaitable[None]]:
    """``cancel_shielded_checkpoint`` of the running event loop (trio's own on trio)."""
    return _loop_function("cancel_shielded_checkpoint", None)
