"""The opening handshake: ClientHandshake and ServerHandshake, against each other and alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings, strategies as st
from websockets.client import ClientProtocol
from websockets.http11 import Request as WebsocketsRequest, Response as WebsocketsResponse
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from trio_ws.sansio import (
    ClientExtensionFactory,
    ClientHandshake,
    ConnectionRejected,
    Extension,
    HandshakeAccepted,
    Headers,
    InvalidHandshake,
    LocalProtocolError,
    NegotiationError,
    Request,
    ServerExtensionFactory,
    ServerHandshake,
    compute_accept_key,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from trio_ws.sansio import ExtensionParameters, Frame

# RFC 6455 section 1.3.
KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
RFC_REQUEST = (
    b"GET /chat HTTP/1.1\r\n"
    b"Host: server.example.com\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Origin: http://example.com\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Version: 13\r\n"
    b"\r\n"
)
RFC_RESPONSE = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
    b"Sec-WebSocket-Protocol: chat\r\n"
    b"\r\n"
)
FRAME = b"\x81\x05hello"  # an unmasked text frame, as a server sends it

REQUEST_FIELDS = [
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]
RESPONSE_FIELDS = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Accept", ACCEPT),
]


def http_message(
    start_line: str,
    base: Sequence[tuple[str, str]],
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    dropped = {name.lower() for name in drop}
    fields = [(n, v) for n, v in base if n.lower() not in dropped] + list(add)
    lines = [start_line] + [f"{name}: {value}" for name, value in fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def upgrade_request(
    start_line: str = "GET /chat HTTP/1.1",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    return http_message(start_line, REQUEST_FIELDS, drop, add)


def switch_response(
    start_line: str = "HTTP/1.1 101 Switching Protocols",
    drop: Sequence[str] = (),
    add: Sequence[tuple[str, str]] = (),
) -> bytes:
    return http_message(start_line, RESPONSE_FIELDS, drop, add)


def client(**kwargs: object) -> ClientHandshake:
    return ClientHandshake("example.com", "/chat", key=KEY, **kwargs)  # type: ignore[arg-type]


def received_request(data: bytes, **kwargs: object) -> tuple[ServerHandshake, Request]:
    server = ServerHandshake(**kwargs)  # type: ignore[arg-type]
    request = server.receive_data(data)
    assert request is not None
    return server, request


def server_failure(data: bytes, **kwargs: object) -> tuple[ServerHandshake, InvalidHandshake]:
    server = ServerHandshake(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidHandshake) as info:
        server.receive_data(data)
    return server, info.value


# --- test-only extensions ------------------------------------------------------------------------


class RecordingExtension(Extension):
    """Remembers how it was negotiated; leaves frames alone."""

    name = "x-test"

    def __init__(self, factory: str, params: ExtensionParameters, before: Sequence[Extension]):
        self.factory = factory
        self.params = list(params)
        self.before = list(before)

    def decode(self, frame: Frame, *, max_size: int | None) -> Frame:
        return frame

    def encode(self, frame: Frame, *, compress: bool | None = None) -> Frame:
        return frame


class SampleClientFactory(ClientExtensionFactory):
    """Offers ``params``; refuses an answer that carries a ``bad`` parameter."""

    name = "x-test"

    def __init__(self, params: Sequence[tuple[str, str | None]] = (), label: str = "") -> None:
        self.params = list(params)
        self.label = label or self.name

    def offer(self) -> list[tuple[str, str | None]]:
        return list(self.params)

    def accept_response(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> Extension:
        if ("bad", None) in params:
            raise NegotiationError("bad parameter")
        return RecordingExtension(self.label, params, accepted)


class OtherClientFactory(SampleClientFactory):
    name = "x-other"


class SampleServerFactory(ServerExtensionFactory):
    """Declines offers with a ``decline`` parameter; answers with the offer's parameters."""

    name = "x-test"

    def accept_offer(
        self, params: ExtensionParameters, accepted: Sequence[Extension]
    ) -> tuple[list[tuple[str, str | None]], Extension]:
        if ("decline", None) in params:
            raise NegotiationError("declined")
        return list(params), RecordingExtension(self.name, params, accepted)


class OtherServerFactory(SampleServerFactory):
    name = "x-other"


def as_recorded(extensions: Sequence[Extension]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    recorded = []
    for extension in extensions:
        assert isinstance(extension, RecordingExtension)
        recorded.append((extension.factory, extension.params))
    return recorded


# --- RFC 6455 examples and the two sides together ---------------------------------------------


def test_accept_key_of_the_rfc_sample() -> None:
    assert compute_accept_key(KEY) == ACCEPT


def test_rfc_example_byte_for_byte() -> None:
    handshake = ClientHandshake(
        "server.example.com",
        "/chat",
        subprotocols=["chat", "superchat"],
        origin="http://example.com",
        key=KEY,
    )
    assert handshake.key == KEY
    assert handshake.request_headers["sec-websocket-protocol"] == "chat, superchat"
    assert handshake.request_headers.raw[0] == (b"Host", b"server.example.com")
    assert handshake.data_to_send() == RFC_REQUEST
    assert handshake.data_to_send() == b""

    server, request = received_request(RFC_REQUEST)
    assert request == Request(
        method="GET",
        target="/chat",
        path="/chat",
        query="",
        headers=Headers(
            [
                ("Host", "server.example.com"),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", KEY),
                ("Origin", "http://example.com"),
                ("Sec-WebSocket-Protocol", "chat, superchat"),
                ("Sec-WebSocket-Version", "13"),
            ]
        ),
        subprotocols=["chat", "superchat"],
        extensions=[],
        key=KEY,
        http_version="1.1",
    )
    assert request.headers["origin"] == "http://example.com"
    assert server.request is request
    response, extensions = server.accept(subprotocol="chat")
    assert response == RFC_RESPONSE
    assert extensions == []

    accepted = handshake.receive_data(response)
    assert accepted == HandshakeAccepted(
        headers=Headers(
            [
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", ACCEPT),
                ("Sec-WebSocket-Protocol", "chat"),
            ]
        ),
        subprotocol="chat",
        extensions=[],
        extra_data=b"",
    )


def test_random_keys_are_valid_and_differ() -> None:
    first, second = ClientHandshake("example.com"), ClientHandshake("example.com")
    assert first.key != second.key
    _, request = received_request(first.data_to_send())
    assert request.key == first.key
    assert request.path == "/"


def test_pair_with_extensions_and_extra_data_both_ways() -> None:
    handshake = client(
        extensions=[SampleClientFactory([("a", "1")]), OtherClientFactory([("b", None)])],
        extra_headers={"Authorization": "Bearer t", "User-Agent": "trio_ws-test"},
    )
    request_bytes = handshake.data_to_send()
    assert b"Sec-WebSocket-Extensions: x-test; a=1, x-other; b\r\n" in request_bytes
    assert b"Authorization: Bearer t\r\nUser-Agent: trio_ws-test\r\n\r\n" in request_bytes

    server, request = received_request(
        request_bytes + b"early", extensions=[SampleServerFactory(), OtherServerFactory()]
    )
    assert server.extra_data == b"early"
    assert request.extensions == [("x-test", [("a", "1")]), ("x-other", [("b", None)])]
    response, server_extensions = server.accept(extra_headers=[("Set-Cookie", "s=1")])
    assert as_recorded(server_extensions) == [("x-test", [("a", "1")]), ("x-other", [("b", None)])]
    assert b"Sec-WebSocket-Extensions: x-test; a=1, x-other; b\r\nSet-Cookie: s=1\r\n" in response

    accepted = handshake.receive_data(response + FRAME)
    assert accepted is not None
    assert accepted.subprotocol is None
    assert accepted.extra_data == FRAME
    assert accepted.headers["set-cookie"] == "s=1"
    assert as_recorded(accepted.extensions) == [
        ("x-test", [("a", "1")]),
        ("x-other", [("b", None)]),
    ]
    second = accepted.extensions[1]
    assert isinstance(second, RecordingExtension)
    assert second.before == [accepted.extensions[0]]


def test_byte_by_byte_feeding_on_both_sides() -> None:
    handshake = client(subprotocols=["chat"], extensions=[SampleClientFactory()])
    server = ServerHandshake(extensions=[SampleServerFactory()])
    head = handshake.data_to_send()
    for i in range(len(head) - 1):
        assert server.receive_data(head[i : i + 1]) is None
    request = server.receive_data(head[-1:] + b"\x82\x00")
    assert request is not None
    assert request.subprotocols == ["chat"]
    assert server.extra_data == b"\x82\x00"

    response, _ = server.accept(subprotocol="chat")
    stream = response + FRAME
    for i in range(len(response) - 1):
        assert handshake.receive_data(stream[i : i + 1]) is None
    accepted = handshake.receive_data(stream[len(response) - 1 :])
    assert accepted is not None
    assert accepted.subprotocol == "chat"
    assert accepted.extra_data == FRAME
    assert len(accepted.extensions) == 1


def test_empty_data_is_not_the_end_of_the_stream() -> None:
    handshake = client()
    server = ServerHandshake()
    assert server.receive_data(b"") is None
    assert server.receive_data(handshake.data_to_send()) is not None
    assert handshake.receive_data(b"") is None
    assert handshake.receive_data(server.accept()[0]) is not None


def test_memoryview_and_bytearray_input() -> None:
    handshake = client()
    server, _ = received_request(bytes(memoryview(bytearray(handshake.data_to_send()))))
    response, _ = server.accept()
    assert handshake.receive_data(bytearray(response)) is not None


# --- interoperability with websockets' sans-IO protocol ------------------------------------------


def test_our_client_against_websockets_server() -> None:
    handshake = ClientHandshake("localhost", "/path?x=1", port=8765, subprotocols=["b", "a"])
    peer = ServerProtocol(subprotocols=[Subprotocol("a")])
    peer.receive_data(handshake.data_to_send())
    [request] = peer.events_received()
    assert isinstance(request, WebsocketsRequest)
    assert request.path == "/path?x=1"
    assert request.headers["Host"] == "localhost:8765"
    peer.send_response(peer.accept(request))
    [response] = peer.data_to_send()
    accepted = handshake.receive_data(response)
    assert accepted is not None
    assert accepted.subprotocol == "a"


def test_websockets_client_against_our_server() -> None:
    peer = ClientProtocol(parse_uri("ws://[::1]:8000/chat"), subprotocols=[Subprotocol("chat")])
    peer.send_request(peer.connect())
    [data] = peer.data_to_send()
    server, request = received_request(data)
    assert request.headers["host"] == "[::1]:8000"
    response, _ = server.accept(subprotocol="chat")
    peer.receive_data(response)
    [answer] = peer.events_received()
    assert isinstance(answer, WebsocketsResponse)
    assert peer.handshake_exc is None
    assert peer.subprotocol == "chat"


# --- the client's request -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port", "secure", "expected"),
    [
        ("example.com", None, False, "example.com"),
        ("example.com", 80, False, "example.com"),
        ("example.com", 443, True, "example.com"),
        ("example.com", 443, False, "example.com:443"),
        ("example.com", 80, True, "example.com:80"),
        ("example.com", 8080, False, "example.com:8080"),
        ("127.0.0.1", 9000, False, "127.0.0.1:9000"),
        ("::1", None, False, "[::1]"),
        ("::1", 8080, False, "[::1]:8080"),
        ("[2001:db8::1]", 443, True, "[2001:db8::1]"),
        ("bücher.example", None, False, "xn--bcher-kva.example"),
    ],
)
def test_host_header(host: str, port: int | None, secure: bool, expected: str) -> None:
    handshake = ClientHandshake(host, port=port, secure=secure)
    request = ServerHandshake().receive_data(handshake.data_to_send())
    assert request is not None
    assert request.headers.get_all("Host") == [expected]


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("", None),
        ("exa mple.com", None),
        ("example.com/evil", None),
        ("example.com\r\nX-Evil: 1", None),
        ("é" * 70, None),  # an IDNA label over 63 characters
        ("example.com", 0),
        ("example.com", 65536),
    ],
)
def test_invalid_host_or_port(host: str, port: int | None) -> None:
    with pytest.raises(LocalProtocolError):
        ClientHandshake(host, port=port)


@pytest.mark.parametrize("resource", ["", "chat", "/a b", "/a#frag", "/é", "/a\r\nX: y"])
def test_invalid_resource(resource: str) -> None:
    with pytest.raises(LocalProtocolError, match="resource"):
        ClientHandshake("example.com", resource)


@pytest.mark.parametrize(
    "key", ["", "abc", "dGhlIHNhbXBsZSBub25jZQ", "dGhlIHNhbXBsZSBub25jZSE=", "é"]
)
def test_invalid_injected_key(key: str) -> None:
    with pytest.raises(LocalProtocolError, match="Sec-WebSocket-Key"):
        ClientHandshake("example.com", key=key)


@pytest.mark.parametrize(
    ("extra_headers", "message"),
    [
        ([("Sec-WebSocket-Key", "x")], "set by the handshake"),
        ({"host": "other"}, "set by the handshake"),
        ([("Connection", "close")], "set by the handshake"),
        ([("Sec-WebSocket-Protocol", "chat")], "set by the handshake"),
        ([("Content-Length", "3")], "set by the handshake"),
        ([("X-Evil", "a\r\nInjected: 1")], "invalid value"),
        ([("X-Evil", "a\nb")], "invalid value"),
        ([("X-Evil", "a\x00b")], "invalid value"),
        ([("X-Evil", " padded")], "invalid value"),
        ([("X-Evil", 3)], "invalid value"),
        ([("X-Evil", "snow ☃")], "latin-1"),
        ([("X-Evil", "tab\t")], "invalid value"),
        ([("Bad Name", "x")], "invalid header name"),
        ([("Bad:Name", "x")], "invalid header name"),
        ([(b"X-Bytes", "x")], "invalid header name"),
    ],
)
def test_invalid_extra_headers(extra_headers: object, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        client(extra_headers=extra_headers)


def test_origin_either_as_argument_or_extra_header() -> None:
    with pytest.raises(LocalProtocolError, match="Origin"):
        client(origin="https://a.example", extra_headers=[("Origin", "https://b.example")])
    data = client(extra_headers=[("Origin", "https://b.example")]).data_to_send()
    assert b"Origin: https://b.example\r\n" in data
    with pytest.raises(LocalProtocolError):
        client(origin="https://a.example\r\nX: y")


def test_extra_headers_allow_repeats_and_latin1() -> None:
    data = client(extra_headers=[("Cookie", "a=1"), ("Cookie", "b=2"), ("X-Name", "café")])
    request = ServerHandshake().receive_data(data.data_to_send())
    assert request is not None
    assert request.headers.get_all("cookie") == ["a=1", "b=2"]
    assert request.headers["X-Name"] == "café"


def test_invalid_subprotocol_or_extension_offer() -> None:
    with pytest.raises(LocalProtocolError, match="Sec-WebSocket-Protocol"):
        client(subprotocols=["two words"])
    with pytest.raises(LocalProtocolError, match="Sec-WebSocket-Extensions"):
        client(extensions=[SampleClientFactory([("p", "not a token")])])


def test_invalid_max_response_size() -> None:
    with pytest.raises(LocalProtocolError, match="max_response_size"):
        client(max_response_size=0)


# --- the client checks the response ------------------------------------------------------------


def test_client_accepts_case_insensitive_tokens_and_informational_responses() -> None:
    handshake = client()
    early = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    response = switch_response(
        drop=["Upgrade", "Connection"],
        add=[("UPGRADE", "WebSocket"), ("connection", "keep-alive, upgrade")],
    )
    accepted = handshake.receive_data(early + response)
    assert accepted is not None
    assert accepted.headers["Upgrade"] == "WebSocket"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (switch_response(drop=["Upgrade"]), "not websocket"),
        (switch_response(drop=["Upgrade"], add=[("Upgrade", "h2c")]), "not websocket"),
        (switch_response(add=[("Upgrade", "h2c")]), "not websocket"),
        (switch_response(drop=["Upgrade"], add=[("Upgrade", "web socket")]), "Upgrade"),
        (switch_response(drop=["Connection"]), "Connection: Upgrade"),
        (switch_response(drop=["Connection"], add=[("Connection", "close")]), "Connection"),
        (switch_response(drop=["Sec-WebSocket-Accept"]), "Sec-WebSocket-Accept"),
        (
            switch_response(drop=["Sec-WebSocket-Accept"], add=[("Sec-WebSocket-Accept", "x")]),
            "Sec-WebSocket-Accept",
        ),
        (switch_response(add=[("Sec-WebSocket-Accept", ACCEPT)]), "Sec-WebSocket-Accept"),
        (switch_response(add=[("Sec-WebSocket-Protocol", "chat")]), "not offered"),
        (switch_response(add=[("Sec-WebSocket-Extensions", "x-test")]), "not offered"),
        (switch_response(add=[("Sec-WebSocket-Extensions", "x-test;")]), "parameter name"),
    ],
)
def test_client_rejects_invalid_101(response: bytes, message: str) -> None:
    handshake = client()
    with pytest.raises(InvalidHandshake, match=message):
        handshake.receive_data(response)
    with pytest.raises(LocalProtocolError):
        handshake.receive_data(b"more")


def test_client_checks_the_chosen_subprotocol() -> None:
    chosen = switch_response(add=[("Sec-WebSocket-Protocol", "b")])
    accepted = client(subprotocols=["a", "b"]).receive_data(chosen)
    assert accepted is not None
    assert accepted.subprotocol == "b"
    with pytest.raises(InvalidHandshake, match="not offered"):
        client(subprotocols=["a"]).receive_data(chosen)
    several = switch_response(add=[("Sec-WebSocket-Protocol", "a, b")])
    with pytest.raises(InvalidHandshake, match="several"):
        client(subprotocols=["a", "b"]).receive_data(several)


def test_client_extension_answers() -> None:
    def answer(value: str) -> bytes:
        return switch_response(add=[("Sec-WebSocket-Extensions", value)])

    with pytest.raises(InvalidHandshake, match="invalid answer for extension 'x-test': bad"):
        client(extensions=[SampleClientFactory()]).receive_data(answer("x-test; bad"))
    # Answered twice, offered once.
    with pytest.raises(InvalidHandshake, match="not offered"):
        client(extensions=[SampleClientFactory()]).receive_data(answer("x-test, x-test"))
    # Two offers of the same extension, both refusing the answer.
    factories = [SampleClientFactory(label="first"), SampleClientFactory(label="second")]
    with pytest.raises(InvalidHandshake, match="bad parameter"):
        client(extensions=factories).receive_data(answer("x-test; bad; p=1"))


def test_client_extension_fallback_offers() -> None:
    class PickyFactory(SampleClientFactory):
        def accept_response(
            self, params: ExtensionParameters, accepted: Sequence[Extension]
        ) -> Extension:
            if ("p", "1") not in params:
                raise NegotiationError("wants p=1")
            return super().accept_response(params, accepted)

    handshake = client(
        extensions=[PickyFactory([("p", "1")], label="picky"), SampleClientFactory()]
    )
    accepted = handshake.receive_data(
        switch_response(add=[("Sec-WebSocket-Extensions", "x-test; p=2")])
    )
    assert accepted is not None
    assert as_recorded(accepted.extensions) == [("x-test", [("p", "2")])]

    handshake = client(
        extensions=[PickyFactory([("p", "1")], label="picky"), SampleClientFactory()]
    )
    accepted = handshake.receive_data(
        switch_response(add=[("Sec-WebSocket-Extensions", "x-test; p=1, x-test")])
    )
    assert accepted is not None
    assert as_recorded(accepted.extensions) == [("picky", [("p", "1")]), ("x-test", [])]


def test_client_rejection_with_body() -> None:
    handshake = client()
    response = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 6\r\n\r\n"
    assert handshake.receive_data(response + b"no") is None
    with pytest.raises(ConnectionRejected) as info:
        handshake.receive_data(b"pe!!")
    assert info.value.status_code == 401
    assert info.value.headers["www-authenticate"] == "Bearer"
    assert info.value.body == b"nope!!"
    with pytest.raises(LocalProtocolError):
        handshake.receive_eof()


def test_client_rejection_with_a_2xx_status() -> None:
    with pytest.raises(ConnectionRejected) as info:
        client().receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert (info.value.status_code, info.value.body) == (200, b"hi")


def test_client_rejection_body_is_bounded() -> None:
    handshake = client(max_response_size=200)
    head = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\n"
    assert handshake.receive_data(head + b"x" * 150) is None
    with pytest.raises(ConnectionRejected) as info:
        handshake.receive_data(b"y" * 100)
    assert info.value.body == b"x" * 150 + b"y" * 50


def test_client_rejection_body_delimited_by_eof() -> None:
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 403 Forbidden\r\n\r\ngo away") is None
    with pytest.raises(ConnectionRejected) as info:
        handshake.receive_eof()
    assert (info.value.status_code, info.value.body) == (403, b"go away")


def test_client_eof_before_or_during_the_response() -> None:
    with pytest.raises(InvalidHandshake, match="without answering"):
        client().receive_eof()
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 101 Switching") is None
    with pytest.raises(InvalidHandshake, match="in the middle of its response"):
        handshake.receive_eof()
    handshake = client()
    assert handshake.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n") is None
    with pytest.raises(InvalidHandshake, match="in the middle of its response"):
        handshake.receive_eof()


def test_client_rejects_malformed_http() -> None:
    with pytest.raises(InvalidHandshake, match="malformed HTTP response"):
        client().receive_data(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")


def test_client_bounds_the_response_head() -> None:
    padding = [("X-Pad", "p" * 100)] * 5
    # Complete in one chunk but too large.
    with pytest.raises(InvalidHandshake, match="max_response_size"):
        client(max_response_size=300).receive_data(switch_response(add=padding))
    # Incomplete and already too large (h11 stops buffering).
    handshake = client(max_response_size=300)
    assert handshake.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n") is None
    assert handshake.receive_data(b"X-Pad: p\r\n" * 20) is None
    with pytest.raises(InvalidHandshake, match="malformed"):
        handshake.receive_data(b"X-Pad: p\r\n" * 20)
    # Exactly at the bound is fine.
    response = switch_response()
    assert client(max_response_size=len(response)).receive_data(response) is not None


def test_client_after_success_is_done() -> None:
    handshake = client()
    assert handshake.receive_data(switch_response()) is not None
    with pytest.raises(LocalProtocolError):
        handshake.receive_data(FRAME)
    with pytest.raises(LocalProtocolError):
        handshake.receive_eof()


# --- the server checks the request ---------------------------------------------------------------


def test_server_accepts_lenient_but_valid_requests() -> None:
    data = upgrade_request(
        "GET /chat?room=1&x=%20 HTTP/1.1",
        drop=["Upgrade", "Connection"],
        add=[
            ("upgrade", "h2c, WebSocket"),
            ("Connection", "keep-alive"),
            ("Connection", "UPGRADE"),
            ("Content-Length", "0"),
            ("Sec-WebSocket-Protocol", "a, b"),
            ("Sec-WebSocket-Protocol", "c"),
            ("Sec-WebSocket-Extensions", "x-test; p=1, x-other"),
        ],
    )
    _, request = received_request(data)
    assert (request.target, request.path, request.query) == (
        "/chat?room=1&x=%20",
        "/chat",
        "room=1&x=%20",
    )
    assert request.subprotocols == ["a", "b", "c"]
    assert request.extensions == [("x-test", [("p", "1")]), ("x-other", [])]


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        ("http://example.com/chat?x=1", "/chat", "x=1"),
        ("http://example.com", "/", ""),
        ("/", "/", ""),
        ("/?", "/", ""),
    ],
)
def test_server_request_targets(target: str, path: str, query: str) -> None:
    _, request = received_request(upgrade_request(f"GET {target} HTTP/1.1"))
    assert (request.target, request.path, request.query) == (target, path, query)


def test_server_accepts_a_later_http_1x() -> None:
    _, request = received_request(upgrade_request("GET / HTTP/1.2"))
    assert request.http_version == "1.2"


UPGRADE_REQUIRED = (("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"))


@pytest.mark.parametrize(
    ("data", "status", "headers", "message"),
    [
        (upgrade_request("POST /chat HTTP/1.1"), 405, (("Allow", "GET"),), "not GET"),
        (upgrade_request("HEAD /chat HTTP/1.1"), 405, (("Allow", "GET"),), "not GET"),
        (upgrade_request("GET /chat HTTP/1.0"), 505, (), "HTTP/1.0"),
        (upgrade_request("GET /chat HTTP/2.0"), 505, (), "HTTP/2.0"),
        (upgrade_request("GET /chat HTTP/1.2", drop=["Host"]), 400, (), "Host"),
        (upgrade_request(drop=["Host"]), 400, (), "Host"),
        (upgrade_request(add=[("Host", "other")]), 400, (), "Host"),
        (upgrade_request(add=[("Content-Length", "5")]), 400, (), "no body"),
        (upgrade_request(add=[("Transfer-Encoding", "chunked")]), 400, (), "no body"),
        (upgrade_request(drop=["Upgrade"]), 426, UPGRADE_REQUIRED, "Upgrade: websocket"),
        (
            upgrade_request(drop=["Upgrade"], add=[("Upgrade", "h2c")]),
            426,
            UPGRADE_REQUIRED,
            "Upgrade: websocket",
        ),
        (upgrade_request(drop=["Upgrade"], add=[("Upgrade", "web socket")]), 400, (), "Upgrade"),
        (upgrade_request(drop=["Connection"]), 426, UPGRADE_REQUIRED, "Connection: Upgrade"),
        (
            upgrade_request(drop=["Connection"], add=[("Connection", "keep-alive")]),
            426,
            UPGRADE_REQUIRED,
            "Connection: Upgrade",
        ),
        (
            upgrade_request(drop=["Sec-WebSocket-Version"]),
            426,
            UPGRADE_REQUIRED,
            "Sec-WebSocket-Version",
        ),
        (
            upgrade_request(drop=["Sec-WebSocket-Version"], add=[("Sec-WebSocket-Version", "8")]),
            426,
            UPGRADE_REQUIRED,
            "Sec-WebSocket-Version",
        ),
        (
            upgrade_request(add=[("Sec-WebSocket-Version", "13")]),
            426,
            UPGRADE_REQUIRED,
            "Sec-WebSocket-Version",
        ),
        (upgrade_request(drop=["Sec-WebSocket-Key"]), 400, (), "Sec-WebSocket-Key"),
        (upgrade_request(add=[("Sec-WebSocket-Key", KEY)]), 400, (), "Sec-WebSocket-Key"),
        (
            upgrade_request(drop=["Sec-WebSocket-Key"], add=[("Sec-WebSocket-Key", "c2hvcnQ=")]),
            400,
            (),
            "Sec-WebSocket-Key",
        ),
        (
            upgrade_request(drop=["Sec-WebSocket-Key"], add=[("Sec-WebSocket-Key", "!!!!")]),
            400,
            (),
            "Sec-WebSocket-Key",
        ),
        (
            upgrade_request(add=[("Sec-WebSocket-Protocol", "a b")]),
            400,
            (),
            "Sec-WebSocket-Protocol",
        ),
        (
            upgrade_request(add=[("Sec-WebSocket-Extensions", "x-test; =")]),
            400,
            (),
            "Sec-WebSocket-Extensions",
        ),
        (upgrade_request("GET * HTTP/1.1"), 400, (), "target"),
        (upgrade_request("GET example.com:80 HTTP/1.1"), 400, (), "target"),
        (b"GET /chat HTTP/1.1\r\nHost: a\r\nBroken header\r\n\r\n", 400, (), "malformed"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400, (), "malformed"),
    ],
)
def test_server_rejections(
    data: bytes, status: int, headers: tuple[tuple[str, str], ...], message: str
) -> None:
    server, error = server_failure(data)
    assert error.status_code == status
    assert error.headers == headers
    assert message in str(error)
    with pytest.raises(LocalProtocolError):
        server.receive_data(b"more")
    with pytest.raises(LocalProtocolError):
        server.accept()
    # The I/O layer answers with the error's status and headers.
    answer = server.reject(error.status_code, headers=error.headers, body=b"bad handshake")
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    for name, value in headers:
        assert f"\r\n{name}: {value}\r\n".encode() in answer


def test_server_bounds_the_request_head() -> None:
    padding = [("X-Pad", "p" * 100)] * 5
    # Complete in one chunk but too large.
    server, error = server_failure(upgrade_request(add=padding), max_request_size=300)
    assert error.status_code == 431
    assert "exceeds 300 bytes" in str(error)
    # Incomplete and already too large: h11 stops buffering.
    server = ServerHandshake(max_request_size=300)
    assert server.receive_data(b"GET / HTTP/1.1\r\n" + b"X-Pad: p\r\n" * 20) is None
    with pytest.raises(InvalidHandshake) as info:
        server.receive_data(b"X-Pad: p\r\n" * 20)
    assert info.value.status_code == 431
    assert server.reject(431).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    # Exactly at the bound is fine, and extra data does not count.
    data = upgrade_request()
    server, _ = received_request(data + b"x" * 1000, max_request_size=len(data))
    assert server.extra_data == b"x" * 1000


def test_invalid_max_request_size() -> None:
    with pytest.raises(LocalProtocolError, match="max_request_size"):
        ServerHandshake(max_request_size=-1)


# --- accept() -------------------------------------------------------------------------------------


def test_accept_needs_a_pending_request() -> None:
    server = ServerHandshake()
    with pytest.raises(LocalProtocolError):
        server.accept()
    assert server.receive_data(upgrade_request()[:10]) is None
    with pytest.raises(LocalProtocolError):
        server.accept()
    assert server.receive_data(upgrade_request()[10:]) is not None
    server.accept()
    with pytest.raises(LocalProtocolError):
        server.accept()
    with pytest.raises(LocalProtocolError):
        server.reject(403)


def test_accept_checks_the_subprotocol_and_headers() -> None:
    server, _ = received_request(upgrade_request(add=[("Sec-WebSocket-Protocol", "a, b")]))
    with pytest.raises(LocalProtocolError, match="not offered"):
        server.accept(subprotocol="c")
    with pytest.raises(LocalProtocolError, match="set by accept"):
        server.accept(extra_headers={"Sec-WebSocket-Accept": "x"})
    with pytest.raises(LocalProtocolError, match="invalid value"):
        server.accept(extra_headers={"X-Evil": "a\r\nb"})
    # The failed calls changed nothing.
    response, _ = server.accept(subprotocol="b")
    assert b"\r\nSec-WebSocket-Protocol: b\r\n" in response


def test_accept_without_an_offered_subprotocol() -> None:
    server, _ = received_request(upgrade_request())
    with pytest.raises(LocalProtocolError, match="not offered"):
        server.accept(subprotocol="chat")


def test_server_extension_negotiation_order_and_declines() -> None:
    offers = "x-other; decline, x-test; decline; p=1, x-test; p=2, x-test; p=3, x-unknown"
    server, _ = received_request(
        upgrade_request(add=[("Sec-WebSocket-Extensions", offers)]),
        extensions=[SampleServerFactory(), OtherServerFactory()],
    )
    response, extensions = server.accept()
    # x-test: the first offer is declined, the second accepted, the third ignored.
    # x-other: its only offer is declined, so it is not in the answer.
    assert as_recorded(extensions) == [("x-test", [("p", "2")])]
    assert b"\r\nSec-WebSocket-Extensions: x-test; p=2\r\n" in response


def test_server_extensions_in_factory_order_see_the_earlier_ones() -> None:
    server, _ = received_request(
        upgrade_request(add=[("Sec-WebSocket-Extensions", "x-test, x-other")]),
        extensions=[OtherServerFactory(), SampleServerFactory()],
    )
    response, extensions = server.accept()
    assert as_recorded(extensions) == [("x-other", []), ("x-test", [])]
    second = extensions[1]
    assert isinstance(second, RecordingExtension)
    assert second.before == [extensions[0]]
    assert b"\r\nSec-WebSocket-Extensions: x-other, x-test\r\n" in response


def test_server_without_matching_offers_sends_no_extension_header() -> None:
    server, _ = received_request(upgrade_request(), extensions=[SampleServerFactory()])
    response, extensions = server.accept()
    assert extensions == []
    assert b"Sec-WebSocket-Extensions" not in response


# --- reject() -------------------------------------------------------------------------------------


def test_reject_after_a_valid_request() -> None:
    server, _ = received_request(upgrade_request())
    response = server.reject(
        401, headers=[("WWW-Authenticate", 'Bearer realm="chat"')], body=b"log in first"
    )
    assert response == (
        b"HTTP/1.1 401 Unauthorized\r\n"
        b'WWW-Authenticate: Bearer realm="chat"\r\n'
        b"Content-Length: 12\r\n"
        b"Connection: close\r\n"
        b"\r\n"
        b"log in first"
    )
    with pytest.raises(LocalProtocolError):
        server.reject(401)
    with pytest.raises(LocalProtocolError):
        server.accept()


def test_reject_round_trips_to_connection_rejected() -> None:
    handshake = client()
    server, _ = received_request(handshake.data_to_send())
    response = server.reject(
        200, headers={"Content-Type": "text/plain"}, body=bytearray(b"healthy")
    )
    with pytest.raises(ConnectionRejected) as info:
        handshake.receive_data(response)
    assert info.value.status_code == 200
    assert info.value.headers.get("Content-Type") == "text/plain"
    assert info.value.body == b"healthy"


def test_reject_before_the_request() -> None:
    server = ServerHandshake()
    with pytest.raises(LocalProtocolError):
        server.reject(400)
    server.receive_data(b"GET / HT")
    with pytest.raises(LocalProtocolError):
        server.reject(400)


@pytest.mark.parametrize("status", [101, 199, 100, 600, 0])
def test_reject_needs_a_final_status(status: int) -> None:
    server, _ = received_request(upgrade_request())
    with pytest.raises(LocalProtocolError, match="200-599"):
        server.reject(status)


def test_reject_without_body_statuses() -> None:
    server, _ = received_request(upgrade_request())
    with pytest.raises(LocalProtocolError, match="no body"):
        server.reject(204, body=b"x")
    assert server.reject(204) == b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    server, _ = received_request(upgrade_request())
    assert server.reject(304, headers=[("ETag", '"1"')]) == (
        b'HTTP/1.1 304 Not Modified\r\nETag: "1"\r\nConnection: close\r\n\r\n'
    )


def test_reject_with_an_unregistered_status() -> None:
    server, _ = received_request(upgrade_request())
    assert server.reject(599).startswith(b"HTTP/1.1 599 \r\nContent-Length: 0\r\n")


@pytest.mark.parametrize("name", ["Content-Length", "transfer-encoding", "Connection"])
def test_reject_reserved_headers(name: str) -> None:
    server, _ = received_request(upgrade_request())
    with pytest.raises(LocalProtocolError, match="set by reject"):
        server.reject(400, headers=[(name, "1")])


def test_reject_a_head_request_without_its_body() -> None:
    server, error = server_failure(upgrade_request("HEAD / HTTP/1.1"))
    response = server.reject(error.status_code, headers=error.headers, body=b"use GET")
    assert response == (
        b"HTTP/1.1 405 Method Not Allowed\r\n"
        b"Allow: GET\r\n"
        b"Content-Length: 7\r\n"
        b"Connection: close\r\n"
        b"\r\n"
    )


def test_reject_426_names_upgrade_in_connection() -> None:
    server, error = server_failure(upgrade_request(drop=["Upgrade"]))
    assert server.reject(error.status_code, headers=error.headers) == (
        b"HTTP/1.1 426 Upgrade Required\r\n"
        b"Upgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"Content-Length: 0\r\n"
        b"Connection: Upgrade, close\r\n"
        b"\r\n"
    )


def test_reject_an_http_1_0_request() -> None:
    server, error = server_failure(upgrade_request("GET / HTTP/1.0"))
    response = server.reject(error.status_code, body=b"old")
    assert response.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert response.endswith(b"\r\n\r\nold")


# --- fuzzing --------------------------------------------------------------------------------------

VALID_REQUEST = upgrade_request(add=[("Sec-WebSocket-Extensions", "x-test; p=1")])
VALID_RESPONSE = switch_response(add=[("Sec-WebSocket-Extensions", "x-test")])


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """A valid message with a slice replaced by arbitrary bytes, or arbitrary bytes."""
    return st.binary(max_size=300) | st.builds(
        lambda start, length, junk: valid[:start] + junk + valid[start + length :],
        st.integers(0, len(valid)),
        st.integers(0, 20),
        st.binary(max_size=20),
    )


def chunks(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(data[start : start + size])
        start += size
    pieces.append(data[start:])
    return pieces


@settings(max_examples=300, deadline=None)
@given(mutated(VALID_REQUEST), st.lists(st.integers(1, 40), max_size=8))
def test_server_raises_only_invalid_handshake(data: bytes, sizes: list[int]) -> None:
    server = ServerHandshake(extensions=[SampleServerFactory()], max_request_size=1024)
    try:
        for piece in chunks(data, sizes):
            if server.receive_data(piece) is not None:
                server.accept()
                return
    except InvalidHandshake as exc:
        error = exc
    else:
        return
    assert error.status_code in {400, 405, 426, 431, 505}
    server.reject(error.status_code, headers=error.headers)


@settings(max_examples=300, deadline=None)
@given(mutated(VALID_RESPONSE), st.lists(st.integers(1, 40), max_size=8), st.booleans())
def test_client_raises_only_handshake_errors(data: bytes, sizes: list[int], eof: bool) -> None:
    handshake = client(extensions=[SampleClientFactory()], max_response_size=1024)
    try:
        for piece in chunks(data, sizes):
            if handshake.receive_data(piece) is not None:
                return
        if eof:
            handshake.receive_eof()
    except (InvalidHandshake, ConnectionRejected):
        pass


# --- plain HTTP requests (health checks on the WebSocket port) ------------------------------


def test_plain_http_get_is_reported_when_allowed() -> None:
    server = ServerHandshake(allow_plain_http=True)
    request = server.receive_data(b"GET /health?deep=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert request is not None
    assert request.is_websocket is False
    assert (request.method, request.path, request.query) == ("GET", "/health", "deep=1")
    assert request.key == ""
    assert request.subprotocols == []
    with pytest.raises(LocalProtocolError, match="plain HTTP"):
        server.accept()
    response = server.reject(200, headers=[("Content-Type", "text/plain")], body=b"ok")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert response.endswith(b"\r\n\r\nok")


def test_plain_http_head_is_reported_and_answered_without_body() -> None:
    server = ServerHandshake(allow_plain_http=True)
    request = server.receive_data(b"HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert request is not None
    assert (request.method, request.is_websocket) == ("HEAD", False)
    response = server.reject(200, body=b"ok")
    assert b"Content-Length: 2\r\n" in response
    assert response.endswith(b"\r\n\r\n")


def test_plain_http_is_refused_by_default() -> None:
    server = ServerHandshake()
    with pytest.raises(InvalidHandshake) as info:
        server.receive_data(b"GET /health HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert info.value.status_code == 426


def test_plain_http_other_methods_get_405_naming_head() -> None:
    server = ServerHandshake(allow_plain_http=True)
    with pytest.raises(InvalidHandshake) as info:
        server.receive_data(b"DELETE / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert info.value.status_code == 405
    assert ("Allow", "GET, HEAD") in info.value.headers


def test_websocket_upgrades_are_unchanged_when_plain_http_is_allowed() -> None:
    server = ServerHandshake(allow_plain_http=True)
    request = server.receive_data(RFC_REQUEST)
    assert request is not None
    assert request.is_websocket is True
    data, _ = server.accept(subprotocol="chat")
    assert data == RFC_RESPONSE


def test_connection_rejected_headers_are_headers() -> None:
    """A rejection's headers read like a request's: case-insensitive, repeated fields kept."""
    rejected = ConnectionRejected(
        401, [(b"WWW-Authenticate", b"Bearer"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2")]
    )
    assert isinstance(rejected.headers, Headers)
    assert rejected.headers["www-authenticate"] == "Bearer"
    assert rejected.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    same = Headers([("X", "1")])
    assert ConnectionRejected(403, same).headers is same


@pytest.mark.parametrize(
    "target",
    [b"http://[::1/", b"http://[x]/echo", b"ws://[::1:80/chat", b"http://[:::::]/"],
)
def test_a_malformed_absolute_target_is_a_400_not_a_crash(target: bytes) -> None:
    # urlsplit raises ValueError on these: the handshake reports a protocol error.
    request = upgrade_request(f"GET {target.decode()} HTTP/1.1")
    server, error = server_failure(request)
    assert error.status_code == 400
    assert "invalid request target" in str(error)
    assert server.reject(400).startswith(b"HTTP/1.1 400 ")


def test_a_request_line_too_long_is_414_and_a_head_too_large_431() -> None:
    long_target = b"/" + b"a" * 70_000
    # Arriving piece by piece: h11 gives up before the line ends.
    server = ServerHandshake(max_request_size=8192)
    assert server.receive_data(b"GET " + long_target[:5000]) is None
    with pytest.raises(InvalidHandshake) as info:
        server.receive_data(long_target[5000:])
    assert info.value.status_code == 414
    assert server.reject(414).startswith(b"HTTP/1.1 414 ")
    # Complete in one chunk, the line alone over the bound: 414 too.
    request = upgrade_request(f"GET {long_target[:400].decode()} HTTP/1.1")
    _, error = server_failure(request, max_request_size=300)
    assert error.status_code == 414
    # A short line with too many headers stays 431.
    many = upgrade_request(add=[("X-Pad", "p" * 100)] * 200)
    _, error = server_failure(many, max_request_size=8192)
    assert error.status_code == 431
