"""Helpers for testing code that uses trio_ws, without sockets.

:func:`memory_stream_pair` gives two connected in-memory byte streams; build connections
over them to test an application end to end inside one process.
"""

from __future__ import annotations

from ._memory import MemoryByteStream as MemoryByteStream, memory_stream_pair as memory_stream_pair

__all__ = ["MemoryByteStream", "memory_stream_pair"]
