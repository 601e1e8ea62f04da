"""ConnectionConfig: defaults and validation."""

from __future__ import annotations

import dataclasses
import inspect
import math
from typing import Any

import pytest

import trio_ws
import trio_ws.testing
from trio_ws import ClientOptions, ConnectionConfig, ConnectionOptions, ServerOptions
from trio_ws._config import connection_config


def test_defaults() -> None:
    config = ConnectionConfig()
    assert config.max_message_size == 2**20
    assert config.max_queue == 16
    assert config.ping_interval == 20.0
    assert config.ping_timeout == 20.0
    assert config.close_timeout == 10.0
    assert config.open_timeout == 10.0
    assert config.decode_text is True
    assert config.write_high_water > 0


def test_frozen() -> None:
    config = ConnectionConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_queue = 3  # type: ignore[misc]


def test_none_disables() -> None:
    config = ConnectionConfig(max_message_size=None, ping_interval=None, ping_timeout=None)
    assert config.ping_interval is None


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("max_queue", 0, ValueError),
        ("max_queue", None, ValueError),
        ("max_queue", 1.5, TypeError),
        ("max_message_size", -1, ValueError),
        ("write_high_water", 0, ValueError),
        ("ping_interval", 0, ValueError),
        ("ping_timeout", -2.0, ValueError),
        ("close_timeout", math.nan, ValueError),
        ("open_timeout", "10", TypeError),
        ("close_timeout", True, TypeError),
    ],
)
def test_invalid(name: str, value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        ConnectionConfig(**{name: value})  # type: ignore[arg-type]


def test_connection_options_match_the_config_fields() -> None:
    # ClientOptions and ServerOptions inherit these keys: one per field, no more, no less.
    fields = {field.name for field in dataclasses.fields(ConnectionConfig)}
    assert set(ConnectionOptions.__annotations__) == fields
    assert fields <= set(ClientOptions.__annotations__)
    assert fields <= set(ServerOptions.__annotations__)


@pytest.mark.parametrize("function", [trio_ws.serve_websocket, trio_ws.connect_websocket])
def test_spelled_out_defaults_are_the_config_defaults(function: Any) -> None:
    parameters = inspect.signature(function).parameters
    for field in dataclasses.fields(ConnectionConfig):
        assert parameters[field.name].default == field.default, field.name


def test_connection_config_from_options() -> None:
    config = connection_config({"max_queue": 4, "ping_interval": None})
    assert config == ConnectionConfig(max_queue=4, ping_interval=None)
    assert connection_config({}) == ConnectionConfig()


def test_connection_config_rejects_unknown_options() -> None:
    with pytest.raises(TypeError, match=r"unexpected keyword arguments 'max_size' .*, 'ping'$"):
        connection_config({"ping": 1.0, "max_size": 10, "max_queue": 2})


@pytest.mark.anyio
async def test_unknown_option_of_a_server_or_client_function() -> None:
    async def handler(request: trio_ws.WebSocketRequest) -> None:
        raise AssertionError("never reached")

    server_end, client_end = trio_ws.testing.memory_stream_pair()
    with pytest.raises(TypeError, match="max_size"):
        await trio_ws.serve_websocket_stream(handler, server_end, max_size=10)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="max_size"):
        async with trio_ws.open_websocket_stream(client_end, host="localhost", max_size=10):  # type: ignore[call-arg]
            raise AssertionError("never reached")
