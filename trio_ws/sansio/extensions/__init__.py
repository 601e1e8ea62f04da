"""Extensions of the sans-IO core (permessage-deflate, RFC 7692)."""

from __future__ import annotations

from .permessage_deflate import (
    ClientPerMessageDeflate as ClientPerMessageDeflate,
    PerMessageDeflate as PerMessageDeflate,
    ServerPerMessageDeflate as ServerPerMessageDeflate,
    client_extensions as client_extensions,
    server_extensions as server_extensions,
)

__all__ = [
    "ClientPerMessageDeflate",
    "PerMessageDeflate",
    "ServerPerMessageDeflate",
    "client_extensions",
    "server_extensions",
]
