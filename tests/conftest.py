"""Shared test configuration.

I/O tests are marked ``@pytest.mark.anyio`` and run once per backend below (trio and
asyncio); tests that need trio itself are marked ``@pytest.mark.trio`` (pytest-trio).
Pure sans-IO tests need no marker and no event loop.
"""

from __future__ import annotations

import pytest


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
