"""Shared test configuration.

I/O tests are marked ``@pytest.mark.anyio`` and run once per backend below (trio and
asyncio); tests that need trio itself are marked ``@pytest.mark.trio`` (pytest-trio).
Pure sans-IO tests need no marker and no event loop.
"""

from __future__ import annotations

import ssl

import pytest
import trustme


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- TLS: a throwaway certificate authority (trustme) for 127.0.0.1, localhost and ::1 ---


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    tls_ca.configure_trust(context)
    return context
