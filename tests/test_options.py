"""The table of options: every spelling of an option agrees with it, and the functions obey it.

The table (``trio_ws._config.OPTIONS``) is the one place an option is defined; type checkers
need the TypedDicts and ``ConnectionConfig`` spelled out, so these tests fail when one of
them, or a public function's signature, drifts from the table.
"""

from __future__ import annotations

import dataclasses
import inspect
import pydoc
import ssl
import typing
from pathlib import Path
from typing import Any

import anyio
import pytest

import trio_ws
import trio_ws.testing
from trio_ws import (
    ClientOptions,
    Compression,
    ConnectionConfig,
    ConnectionOptions,
    ServerOptions,
    WebSocketRequest,
)
from trio_ws._config import (
    OPTIONS,
    Side,
    option_rows,
    options_of,
    resolve_options,
    with_options,
)

DOCS = Path(__file__).parent.parent / "docs" / "reference"
TYPED_DICTS: list[tuple[Side, Any]] = [
    ("connection", ConnectionOptions),
    ("client", ClientOptions),
    ("server", ServerOptions),
]


def _public_functions() -> list[tuple[str, Any]]:
    return [
        (f"{module.__name__}.{name}", obj)
        for module in (trio_ws, trio_ws.testing)
        for name in module.__all__
        if inspect.isfunction(obj := getattr(module, name))
        or inspect.isfunction(getattr(obj, "__wrapped__", None))
    ]


def _option_functions() -> list[tuple[str, Any]]:
    return [(name, f) for name, f in _public_functions() if hasattr(f, "__trio_ws_options__")]


def test_every_client_and_server_function_takes_the_options() -> None:
    names = {name.rpartition(".")[2] for name, _ in _option_functions()}
    assert names == {
        "connect_sync",
        "reconnecting",
        "connect_websocket",
        "connect_websocket_stream",
        "connect_websocket_url",
        "open_websocket",
        "open_websocket_stream",
        "open_websocket_url",
        "serve_websocket",
        "serve_websocket_listeners",
        "serve_websocket_stream",
        "serve_websocket_unix",
        "open_websocket_in_memory",
    }


@pytest.mark.parametrize(("name", "function"), _public_functions())
def test_no_public_function_hides_its_keywords(name: str, function: Any) -> None:
    kinds = {p.kind for p in inspect.signature(function).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds, f"{name}(**...) shows no keywords"


@pytest.mark.parametrize(("name", "function"), _option_functions())
def test_signature_lists_the_options_of_the_table(name: str, function: Any) -> None:
    side = function.__trio_ws_options__
    parameters = inspect.signature(function).parameters
    table = options_of(side)
    spelled = [p for p in parameters.values() if p.name in {o.name for o in table}]
    assert [p.name for p in spelled] == [o.name for o in table]
    for parameter, option in zip(spelled, table, strict=True):
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY
        assert parameter.default == option.default, option.name
        assert parameter.annotation == option.annotation, option.name
    if "task_status" in parameters:
        assert list(parameters)[-1] == "task_status"


@pytest.mark.parametrize(("name", "function"), _option_functions())
def test_static_annotation_is_the_typed_dict_of_the_same_side(name: str, function: Any) -> None:
    # What type checkers read (``**options: Unpack[ClientOptions]``) names the same side.
    annotation = inspect.unwrap(function).__annotations__["options"]
    side = function.__trio_ws_options__
    assert annotation == f"Unpack[{side.capitalize()}Options]"


def _forward_arg(annotation: Any) -> str:
    return annotation.__forward_arg__ if isinstance(annotation, typing.ForwardRef) else annotation


@pytest.mark.parametrize(("side", "typed_dict"), TYPED_DICTS)
def test_typed_dicts_spell_the_table(side: Side, typed_dict: Any) -> None:
    # TypedDict merges the keys of its bases into __annotations__.
    annotations = {k: _forward_arg(v) for k, v in typed_dict.__annotations__.items()}
    expected = {option.name: option.annotation for option in options_of(side)}
    missing = {k: v for k, v in expected.items() if annotations.get(k) != v}
    assert not missing, f"{typed_dict.__name__} needs: " + ", ".join(
        f"{k}: {v}" for k, v in missing.items()
    )
    assert set(annotations) == set(expected)
    assert typed_dict.__required_keys__ == frozenset()


def test_connection_config_fields_are_the_connection_options() -> None:
    fields = dataclasses.fields(ConnectionConfig)
    table = options_of("connection")
    assert [f.name for f in fields] == [o.name for o in table]
    for field, option in zip(fields, table, strict=True):
        assert field.default == option.default, option.name
        assert field.type == option.annotation, option.name


def test_the_table_is_well_formed() -> None:
    sides: list[Side] = ["client", "server", "connection"]
    for side in sides:
        names = [option.name for option in options_of(side)]
        assert len(names) == len(set(names)), side
    for option in OPTIONS:
        assert option.sides, option.name
        assert option.doc.strip(), option.name
        if option.check is not None:
            option.check(option.name, option.default)  # every default passes its own check


def test_help_shows_every_keyword_with_its_default() -> None:
    text = pydoc.plain(pydoc.render_doc(trio_ws.open_websocket_url))
    for option in options_of("client"):
        # Annotations are strings (``from __future__ import annotations``), shown quoted.
        assert f"{option.name}: {option.annotation!r} = {option.default!r}" in text
    described = [line.strip() for line in text.splitlines() if ": " in line]
    for option in options_of("client"):  # and the first words of its description
        first_words = " ".join(option.doc.split()[:3])
        assert any(line.startswith(f"{option.name}: {first_words}") for line in described)
    text = pydoc.plain(pydoc.render_doc(trio_ws.serve_websocket))
    assert "max_connections: At most this many connections" in text
    assert "max_connections: 'int | None' = None" in text
    assert "backlog: 'int | None' = None" in text


@pytest.mark.parametrize(("side", "page"), [("client", "client.md"), ("server", "server.md")])
def test_reference_pages_render_the_table(side: str, page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    assert f".. trio-ws-options:: {side}" in text
    assert ".. trio-ws-options:: connection" in (DOCS / "connection.md").read_text("utf-8")


def test_rows_of_the_docs_tables() -> None:
    rows = option_rows("server")
    assert [row[0] for row in rows] == [o.name for o in options_of("server") if "server" in o.sides]
    name, annotation, default, doc = rows[0]
    assert (name, annotation, default) == ("ssl_context", "ssl.SSLContext | None", "None")
    assert "\n" not in doc
    assert [row[0] for row in option_rows("connection")][:2] == ["max_message_size", "max_queue"]


# --- What the functions do with the options -------------------------------------------------


def _every_option_changed(side: Side) -> dict[str, Any]:
    """A value other than the default for each option of ``side`` that fits an in-memory pair."""
    values: dict[str, Any] = {
        "subprotocols": ["chat"],
        "extra_headers": {"X-Test": "1"},
        "origin": "https://example.com",
        "compression": Compression(level=1),
        "max_connections": 3,
        "max_request_size": 8192,
        "origins": {"https://example.com"},
        "allow_plain_http": True,
        "max_message_size": 2**16,
        "max_queue": 4,
        "max_fragments": 64,
        "write_high_water": 2**12,
        "ping_interval": None,
        "ping_timeout": 5.0,
        "open_timeout": 5.0,
        "close_timeout": 2.0,
        "decode_text": False,
        "proxy": None,  # the *_stream functions use no proxy: only accepted here
        "max_redirects": 2,  # nor follow redirects: only accepted here
    }
    wanted = {option.name for option in options_of(side)} - {"ssl_context", "config"}
    wanted -= {"proxy_ssl_context"}
    assert wanted <= set(values), sorted(wanted - set(values))
    return {name: values[name] for name in wanted}


@pytest.mark.anyio
async def test_every_option_of_the_table_is_accepted_by_both_sides() -> None:
    seen: list[str] = []

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept(subprotocol="chat")
        seen.append(request.headers["x-test"])
        await ws.send_message(await ws.get_message())

    server_end, client_end = trio_ws.testing.memory_stream_pair()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: trio_ws.serve_websocket_stream(
                    handler, server_end, **_every_option_changed("server")
                )
            )
            async with trio_ws.open_websocket_stream(
                client_end, host="test", **_every_option_changed("client")
            ) as ws:
                assert ws.subprotocol == "chat"
                await ws.send_message("hi")
                assert await ws.get_message() == b"hi"  # decode_text=False on the client
    assert seen == ["1"]


@pytest.mark.anyio
async def test_config_gives_every_connection_option_at_once() -> None:
    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(await ws.get_message())

    config = ConnectionConfig(decode_text=False, ping_interval=None)
    server_end, client_end = trio_ws.testing.memory_stream_pair()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: trio_ws.serve_websocket_stream(handler, server_end, config=config)
            )
            async with trio_ws.open_websocket_stream(client_end, host="t", config=config) as ws:
                await ws.send_message("text")
                assert await ws.get_message() == b"text"


@pytest.mark.anyio
async def test_config_and_a_connection_keyword_together_are_a_type_error() -> None:
    async def handler(request: WebSocketRequest) -> None:
        raise AssertionError("never reached")

    server_end, client_end = trio_ws.testing.memory_stream_pair()
    config = ConnectionConfig()
    with pytest.raises(TypeError, match=r"config= and 'max_queue'"):
        await trio_ws.serve_websocket_stream(handler, server_end, config=config, max_queue=2)
    with pytest.raises(TypeError, match=r"config= and 'decode_text', 'ping_interval'"):
        async with trio_ws.open_websocket_stream(
            client_end, host="t", config=config, ping_interval=None, decode_text=False
        ):
            raise AssertionError("never reached")


@pytest.mark.parametrize(
    ("side", "options", "error", "match"),
    [
        ("client", {"max_size": 1}, TypeError, r"'max_size' \(did you mean 'max_message_size'\?\)"),
        ("server", {"max_conections": 1}, TypeError, "did you mean 'max_connections'"),
        (
            "server",
            {"subprotocols": ["a"]},
            TypeError,
            "unexpected keyword argument 'subprotocols'",
        ),
        ("client", {"config": {"max_queue": 2}}, TypeError, "config must be ConnectionConfig"),
        ("client", {"ssl_context": True}, TypeError, "ssl_context must be SSLContext or None"),
        ("client", {"subprotocols": "chat"}, TypeError, "not a single string"),
        ("server", {"max_connections": 0}, ValueError, "max_connections must be positive"),
        ("server", {"max_request_size": 1.5}, TypeError, "max_request_size must be an int"),
        ("server", {"allow_plain_http": "yes"}, TypeError, "allow_plain_http must be bool"),
        ("server", {"origins": "https://a.example"}, TypeError, "a collection of origins"),
        ("server", {"origins": [b"https://a.example"]}, TypeError, "a str or None, not bytes"),
        ("server", {"origins": ["https://a.example/"]}, ValueError, "no trailing slash"),
        ("server", {"origins": ["*.example.com"]}, ValueError, "is not an origin"),
        ("client", {"decode_text": 0}, TypeError, "decode_text must be bool"),
        ("client", {"max_queue": 0}, ValueError, "max_queue must be positive"),
    ],
)
def test_invalid_options(side: Side, options: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        resolve_options(side, options)


def test_defaults_are_filled_in_from_the_table() -> None:
    config, own = resolve_options("server", {"allow_plain_http": True})
    assert config == ConnectionConfig()
    assert own == {
        "ssl_context": None,
        "compression": "deflate",
        "max_connections": None,
        "max_request_size": 16 * 1024,
        "origins": None,
        "allow_plain_http": True,
    }
    context = ssl.create_default_context()
    _, own = resolve_options("client", {"ssl_context": context})
    assert own["ssl_context"] is context


def test_with_options_needs_a_function_that_takes_options() -> None:
    def no_options(x: int) -> None:
        """Takes no ``**options``."""

    with pytest.raises(TypeError, match=r"no_options takes no \*\*options"):
        with_options("client")(no_options)
