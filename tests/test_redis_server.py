"""The redis-server fixture, and coredis pub/sub on both backends (the RedisHub's client)."""

from __future__ import annotations

import anyio
import pytest

from tests.redis_server import RedisServer, redis_server

__all__ = ["redis_server"]


@pytest.mark.anyio
async def test_coredis_pubsub_round_trip(redis_server: RedisServer) -> None:
    import coredis

    with anyio.fail_after(10):
        client = coredis.Redis(host="127.0.0.1", port=redis_server.port)
        async with client, client.pubsub(channels=["room"]) as pubsub:
            assert await client.publish("room", b"\x00hello") == 1
            async for message in pubsub:
                if message is not None and message["type"] == "message":
                    assert message["data"] == b"\x00hello"
                    break
