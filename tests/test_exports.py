"""The public namespaces: every exported name exists, is documented, and nothing private leaks."""

from __future__ import annotations

import enum
import inspect
import re
import types
from typing import Any

import pytest

import trio_ws
import trio_ws.sansio
import trio_ws.sansio.extensions
import trio_ws.testing

MODULES = [trio_ws, trio_ws.sansio, trio_ws.sansio.extensions, trio_ws.testing]


def _exports() -> list[tuple[str, str, Any]]:
    return [
        (module.__name__, name, getattr(module, name, None))
        for module in MODULES
        for name in module.__all__
    ]


def _own_doc(obj: Any) -> str:
    """The docstring written for ``obj`` itself (not inherited, not generated)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    if not doc:
        return ""
    # dataclasses and NamedTuple invent "Name(field, ...)" when there is no docstring.
    if isinstance(obj, type) and doc.startswith(f"{obj.__name__}("):
        return ""
    return str(doc).strip()


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_all_is_unique_and_public(module: types.ModuleType) -> None:
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
        assert not name.startswith("_") or name == "__version__", name


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_every_public_attribute_is_in_all(module: types.ModuleType) -> None:
    # A name reachable as module.name without an underscore is public; it must be meant.
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__ import annotations
    }
    assert public <= set(module.__all__), sorted(public - set(module.__all__))


@pytest.mark.parametrize(
    ("module", "name", "obj"), _exports(), ids=[f"{m}.{n}" for m, n, _ in _exports()]
)
def test_exported_classes_and_functions_have_docstrings(module: str, name: str, obj: Any) -> None:
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return  # aliases and constants: documented by a #: comment in their module
    assert _own_doc(obj), f"{module}.{name} has no docstring"
    assert obj.__module__.startswith("trio_ws"), f"{module}.{name} comes from {obj.__module__}"


def _public_members(cls: type) -> list[tuple[str, Any]]:
    members: list[tuple[str, Any]] = []
    for name, value in vars(cls).items():
        if name.startswith("_") or isinstance(value, enum.Enum):
            continue
        if isinstance(value, property):
            members.append((name, value.fget))
        elif inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod)):
            function: Any = getattr(value, "__func__", value)
            members.append((name, function))
    return members


def _io_layer_classes() -> list[tuple[str, type]]:
    return [
        (name, obj)
        for name in trio_ws.__all__
        if inspect.isclass(obj := getattr(trio_ws, name))
        and not obj.__module__.startswith("trio_ws.sansio")
    ]


@pytest.mark.parametrize(("name", "cls"), _io_layer_classes(), ids=lambda x: str(x))
def test_public_methods_of_io_classes_have_docstrings(name: str, cls: type) -> None:
    missing = [member for member, func in _public_members(cls) if not (func and func.__doc__)]
    assert not missing, f"{name}: undocumented {missing}"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALIAS = re.compile(r"^([A-Z][A-Za-z0-9_]*)(?:: TypeAlias)? = ", re.MULTILINE)


def _signature_names(func: Any) -> set[str]:
    annotations = getattr(func, "__annotations__", {})
    return {
        word for annotation in annotations.values() for word in _IDENTIFIER.findall(str(annotation))
    }


def _internal_names() -> set[str]:
    """Every class or type alias defined by an I/O layer module, public or not."""
    import trio_ws._client
    import trio_ws._compression
    import trio_ws._connection
    import trio_ws._request
    import trio_ws._server

    names = set()
    for module in (
        trio_ws._client,
        trio_ws._compression,
        trio_ws._connection,
        trio_ws._request,
        trio_ws._server,
    ):
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__.startswith("trio_ws"):
                names.add(name)
        names.update(_ALIAS.findall(inspect.getsource(module)))  # Handler, Address, ...
    return names


def test_public_signatures_mention_only_exported_names() -> None:
    exported = {name for module in MODULES for name in module.__all__}
    internal = _internal_names()
    problems = []
    for name in trio_ws.__all__ + trio_ws.testing.__all__:
        obj = getattr(trio_ws, name, None) or getattr(trio_ws.testing, name)
        functions: list[tuple[str, Any]] = []
        if inspect.isfunction(obj):
            functions.append((name, obj))
        elif inspect.isclass(obj) and not obj.__module__.startswith("trio_ws.sansio"):
            functions += [(f"{name}.{m}", f) for m, f in _public_members(obj) if f is not None]
        for where, func in functions:
            leaked = {word for word in _signature_names(func) if word in internal} - exported
            if leaked:
                problems.append(f"{where}: {sorted(leaked)}")
    assert not problems, problems
