"""Masking: the pure-Python kernels and the compiled ones give the same bytes.

Every case runs against both implementations. The compiled one is skipped when it was not
built here, except in CI (``CI=true``), where a missing accelerator is a failure: CI must
test both paths.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

import trio_ws.sansio
from trio_ws.sansio import _masking
from trio_ws.sansio._masking import py_apply_mask, py_mask_parts, rotate_mask

if TYPE_CHECKING:
    from types import ModuleType

Buffer = bytes | bytearray | memoryview
ApplyMask = Callable[[Buffer, bytes | bytearray], bytes]
MaskParts = Callable[[Buffer, bytes | bytearray], list[bytes]]

KEY = b"\x8a\x13\x5c\xf0"


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("trio_ws.sansio._speedups")
    except ImportError:
        return None


@pytest.fixture(params=["python", "c"])
def kernels(request: pytest.FixtureRequest) -> tuple[ApplyMask, MaskParts]:
    if request.param == "python":
        return py_apply_mask, py_mask_parts
    module = _compiled()
    if module is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but the masking accelerator was not built (see hatch_build.py)")
        pytest.skip("the masking accelerator is not built here (no C compiler at install)")
    return module.apply_mask, module.mask_parts


def reference(data: bytes, key: bytes) -> bytes:
    return bytes(byte ^ key[i % 4] for i, byte in enumerate(data))


SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 125, 4093, 32_767, 32_768, 32_769]
SIZES += [65_535, 65_536, 65_537, 100_003]


@pytest.mark.parametrize("size", SIZES)
def test_masking_matches_the_definition(kernels: tuple[ApplyMask, MaskParts], size: int) -> None:
    apply_mask, mask_parts = kernels
    data = os.urandom(size)
    expected = reference(data, KEY)
    assert apply_mask(data, KEY) == expected
    assert apply_mask(expected, KEY) == data
    parts = mask_parts(data, KEY)
    assert all(isinstance(part, bytes) for part in parts)
    assert b"".join(parts) == expected


def test_large_payload(kernels: tuple[ApplyMask, MaskParts]) -> None:
    apply_mask, mask_parts = kernels
    data = os.urandom(2**20 + 13)
    masked = apply_mask(data, KEY)
    # Spot checks keep the reference loop cheap; the round trip checks every byte.
    for i in (0, 1, 2, 3, 65_535, 65_536, 2**20, 2**20 + 12):
        assert masked[i] == data[i] ^ KEY[i % 4]
    assert apply_mask(masked, KEY) == data
    assert b"".join(mask_parts(data, KEY)) == masked


@pytest.mark.parametrize("start", range(8))
@pytest.mark.parametrize("length", [0, 3, 17, 40, 70_001])
def test_unaligned_memoryviews_bytearrays(
    kernels: tuple[ApplyMask, MaskParts], start: int, length: int
) -> None:
    apply_mask, mask_parts = kernels
    backing = bytearray(os.urandom(length + 16))
    view = memoryview(backing)[start : start + length]
    expected = reference(bytes(view), KEY)
    for data in (view, bytearray(view), bytes(view)):
        result = apply_mask(data, KEY)
        assert isinstance(result, bytes)
        assert result == expected
        assert b"".join(mask_parts(data, KEY)) == expected
    assert view.tobytes() == bytes(backing[start : start + length])  # input left as it was


def test_strided_memoryview(kernels: tuple[ApplyMask, MaskParts]) -> None:
    apply_mask, _ = kernels
    data = os.urandom(999)
    assert apply_mask(memoryview(data)[::3], KEY) == reference(data[::3], KEY)


def test_any_bytes_like_key(kernels: tuple[ApplyMask, MaskParts]) -> None:
    apply_mask, _ = kernels
    # The connection slices the key out of a received bytearray.
    assert apply_mask(b"Hello", bytearray(KEY)) == reference(b"Hello", KEY)


@pytest.mark.parametrize("sizes", [[1, 2, 3, 4], [5, 32_771, 9], [70_001, 1, 65_536, 6]])
def test_mask_parts_over_several_buffers(
    kernels: tuple[ApplyMask, MaskParts], sizes: list[int]
) -> None:
    # A large frame is unmasked piece by piece as it arrives: each piece with the key rotated
    # to its offset in the payload.
    _, mask_parts = kernels
    payload = os.urandom(sum(sizes))
    out: list[bytes] = []
    offset = 0
    for size in sizes:
        out += mask_parts(memoryview(payload)[offset : offset + size], rotate_mask(KEY, offset))
        offset += size
    assert b"".join(out) == reference(payload, KEY)


def test_compiled_kernel_rejects_bad_arguments() -> None:
    module = _compiled()
    if module is None:
        pytest.skip("the masking accelerator is not built here")
    with pytest.raises(ValueError, match="4 bytes"):
        module.apply_mask(b"data", b"abc")
    with pytest.raises(TypeError):
        module.apply_mask("text", KEY)
    with pytest.raises(TypeError):
        module.mask_parts(b"data")


def test_public_apply_mask_checks_the_key() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        trio_ws.sansio.apply_mask(b"data", b"abcde")


def test_speedups_flag_says_which_kernel_is_used() -> None:
    module = _compiled()
    disabled = os.environ.get("TRIO_WS_NO_SPEEDUPS", "") not in {"", "0"}
    assert trio_ws.sansio.SPEEDUPS is (module is not None and not disabled)
    expected = module.apply_mask if trio_ws.sansio.SPEEDUPS and module else py_apply_mask
    assert _masking.apply_mask is expected


@pytest.fixture
def reload_masking(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    importlib.reload(_masking)


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_environment_variable_forces_pure_python(
    reload_masking: pytest.MonkeyPatch, value: str
) -> None:
    reload_masking.setenv("TRIO_WS_NO_SPEEDUPS", value)
    reloaded = importlib.reload(_masking)
    assert reloaded.SPEEDUPS is False
    assert reloaded.apply_mask is reloaded.py_apply_mask
    assert reloaded.mask_parts is reloaded.py_mask_parts


def test_missing_extension_falls_back_to_pure_python(reload_masking: pytest.MonkeyPatch) -> None:
    reload_masking.delenv("TRIO_WS_NO_SPEEDUPS", raising=False)
    reload_masking.setitem(sys.modules, "trio_ws.sansio._speedups", None)  # import fails
    reload_masking.delattr(trio_ws.sansio, "_speedups", raising=False)
    reloaded = importlib.reload(_masking)
    assert reloaded.SPEEDUPS is False
    assert reloaded.apply_mask is reloaded.py_apply_mask


def test_extension_is_used_when_present(reload_masking: pytest.MonkeyPatch) -> None:
    module = _compiled()
    if module is None:
        pytest.skip("the masking accelerator is not built here")
    reload_masking.delenv("TRIO_WS_NO_SPEEDUPS", raising=False)
    reloaded = importlib.reload(_masking)
    assert reloaded.SPEEDUPS is True
    assert reloaded.apply_mask is module.apply_mask


def test_environment_variable_in_a_fresh_interpreter() -> None:
    code = "import trio_ws.sansio as s; print(s.SPEEDUPS)"
    env = {**os.environ, "TRIO_WS_NO_SPEEDUPS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr
