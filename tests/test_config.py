"""ConnectionConfig: defaults and validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from trio_ws import ConnectionConfig


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
