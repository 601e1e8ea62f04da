"""Masking (RFC 6455 section 5.3): the pure-Python kernels, and the one place that picks
between them and the optional compiled ones of ``_speedups.c``.

The pure-Python functions are the reference and always exist; the compiled module is used
when it was built (a C compiler at install time) and ``TRIO_WS_NO_SPEEDUPS`` is not set when
this module is first imported. Both give the same bytes for every input: the tests run the
same cases against both.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "SPEEDUPS",
    "apply_mask",
    "mask_parts",
    "py_apply_mask",
    "py_mask_parts",
    "rotate_mask",
]

Buffer = bytes | bytearray | memoryview

# Masking XORs whole chunks as Python integers, far faster than a loop over bytes. The byte
# order does not matter as long as both operands use the same one (XOR is bytewise); both
# convert equally fast. Chunks of 16-64 KiB keep the operands in cache: on large payloads
# that is about twice as fast as one huge integer (128 KiB chunks are already 30 % slower),
# and 32 KiB takes half the loop turns of 16 KiB. Measured on Python 3.11, CPU time per MiB:
# about 1.7-2.0 ms this way; bytes.translate over the four strided slices, 2.8-3.3 ms; int
# from hex strings, five times slower.
MASK_CHUNK = 32768


@functools.lru_cache(maxsize=16)
def _chunk_key(mask_key: bytes) -> int:
    # A large payload is masked chunk by chunk with the same key: build it once. The
    # server unmasks a large frame piece by piece as it arrives, with the same few keys.
    return int.from_bytes(mask_key * (MASK_CHUNK >> 2), "little")


def py_mask_parts(data: Buffer, mask_key: bytes | bytearray) -> list[bytes]:
    """``data`` masked with ``mask_key``, as a list of pieces (to join, or to write as is)."""
    from_bytes = int.from_bytes
    size = len(data)
    if size <= MASK_CHUNK:
        key = (mask_key * ((size >> 2) + 1))[:size]
        return [(from_bytes(data, "little") ^ from_bytes(key, "little")).to_bytes(size, "little")]
    view = memoryview(data)
    # MASK_CHUNK is a multiple of 4, so every chunk starts at key offset 0.
    chunk_key = _chunk_key(bytes(mask_key))
    whole = size - size % MASK_CHUNK
    parts = [
        (from_bytes(view[start : start + MASK_CHUNK], "little") ^ chunk_key).to_bytes(
            MASK_CHUNK, "little"
        )
        for start in range(0, whole, MASK_CHUNK)
    ]
    if whole < size:
        parts += py_mask_parts(view[whole:], mask_key)
    return parts


def py_apply_mask(data: Buffer, mask_key: bytes | bytearray) -> bytes:
    """``data`` masked with the 4-byte ``mask_key``, as one bytes object."""
    size = len(data)
    if size <= MASK_CHUNK:
        from_bytes = int.from_bytes
        key = (mask_key * ((size >> 2) + 1))[:size]
        return (from_bytes(data, "little") ^ from_bytes(key, "little")).to_bytes(size, "little")
    return b"".join(py_mask_parts(data, mask_key))


def rotate_mask(mask_key: bytes, offset: int) -> bytes:
    """The masking key that applies from byte ``offset`` of a payload on."""
    shift = offset & 3
    return mask_key[shift:] + mask_key[:shift] if shift else mask_key


def _wanted() -> bool:
    # The same spelling as TRIO_WS_FAST_PATHS=0: any value but "", "0", "false", "no" is yes.
    value = os.environ.get("TRIO_WS_NO_SPEEDUPS", "").strip().lower()
    return value in {"", "0", "false", "no"}


#: The kernels the core calls: the compiled ones when they load, else the pure ones.
apply_mask: Callable[[Buffer, bytes | bytearray], bytes] = py_apply_mask
mask_parts: Callable[[Buffer, bytes | bytearray], list[bytes]] = py_mask_parts
#: Whether the compiled masking accelerator is in use (re-exported as trio_ws.sansio.SPEEDUPS).
SPEEDUPS = False

if _wanted():
    try:
        from ._speedups import apply_mask as c_apply_mask, mask_parts as c_mask_parts
    except ImportError:
        # Not built (no compiler at install time, another interpreter, PyPy): pure Python.
        pass
    else:
        apply_mask = c_apply_mask
        mask_parts = c_mask_parts
        SPEEDUPS = True
