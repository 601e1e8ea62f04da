"""Shared test configuration.

I/O tests are marked ``@pytest.mark.anyio`` and run once per backend below (trio and
asyncio); tests that need trio itself are marked ``@pytest.mark.trio`` (pytest-trio).
Pure sans-IO tests need no marker and no event loop.
"""

from __future__ import annotations

import os
import ssl

import pytest
import trustme

# The client takes proxies from the environment (curl's variables, as websockets and
# requests do). The suite's servers are on loopback: a proxy set on the machine running the
# tests must not carry them (the proxy tests set their own variables).
for _name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
    os.environ.pop(_name, None)
    os.environ.pop(_name.upper(), None)


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
