"""Helpers for testing code that uses trio_ws, without sockets.

:func:`open_websocket_in_memory` connects a client to a server handler in memory, to test
an application end to end inside one process. :func:`memory_stream_pair` gives the two
connected in-memory byte streams it is built on, for :func:`trio_ws.open_websocket_stream`
and :func:`trio_ws.serve_websocket_stream`.
"""

from __future__ import annotations

from ._in_memory import open_websocket_in_memory as open_websocket_in_memory
from ._memory import MemoryByteStream as MemoryByteStream, memory_stream_pair as memory_stream_pair

__all__ = ["MemoryByteStream", "memory_stream_pair", "open_websocket_in_memory"]
