"""The package's shape: no import cycles, no module touching another module's private names.

Both checks read the source (``ast``), so they cover every module whatever the tests run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trio_ws

PACKAGE_DIR = Path(trio_ws.__file__).parent

# (module, name): why the access is justified. Keep this list short.
ALLOWED_PRIVATE = {
    # The core's Headers keeps its fields packed until used; the I/O layer compacts the
    # handshake's headers once the connection is open (documented in architecture.md).
    # A public method would widen the core's API for one internal call per side.
    ("trio_ws._client", "_compact"): "Headers packing, see architecture.md",
    ("trio_ws._request", "_compact"): "Headers packing, see architecture.md",
    # typeshed's names of zlib's object types (only under TYPE_CHECKING).
    ("trio_ws.sansio.extensions.permessage_deflate", "_Compress"): "typeshed type name",
    ("trio_ws.sansio.extensions.permessage_deflate", "_Decompress"): "typeshed type name",
}

# (importer, imported): why a cycle through this import is justified.
ALLOWED_IMPORTS = {
    # The core's ConnectionRejected carries a Headers, and Headers raises the core's
    # errors: one lazy import inside ConnectionRejected.__init__ (sansio, not the I/O layer).
    ("trio_ws.sansio._errors", "trio_ws.sansio._headers"): "lazy, in ConnectionRejected",
}

# The one module allowed to rely on private APIs of trio, anyio and asyncio (contract
# tests: tests/test_private_apis.py).
PRIVATE_API_MODULE = "trio_ws._private_apis"


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {
        _module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
    }


def _imports(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """The trio_ws modules ``module`` imports, anywhere (TYPE_CHECKING and functions too:
    a cycle hidden from the interpreter is still two modules that need each other)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("trio_ws"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.startswith("trio_ws"):
                    found.add(target)
                    found.update(f"{target}.{a.name}" for a in node.names)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    visit([child])

    visit(tree.body)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    packages = {_module_name(path) for path in PACKAGE_DIR.rglob("__init__.py")}
    graph: dict[str, set[str]] = {}
    for name, tree in modules.items():
        imports = _imports(tree, name, name in packages)
        graph[name] = {
            target
            for target in imports
            if target in modules and target != name and (name, target) not in ALLOWED_IMPORTS
        }
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    # A package's __init__ importing its own submodules is how packages work; a submodule
    # importing its package back (or a module of it that imports it) is the cycle.
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = grey
        stack.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + "."):
                continue  # importing a name from the parent package's namespace module
            if color[target] == grey:
                return [*stack[stack.index(target) :], target]
            if color[target] == white:
                cycle = visit(target)
                if cycle is not None:
                    return cycle
        stack.pop()
        color[node] = black
        return None

    for node in sorted(graph):
        if color[node] == white:
            cycle = visit(node)
            if cycle is not None:
                return cycle
    return None


def test_no_import_cycle_in_the_package() -> None:
    assert _find_cycle(_import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _find_cycle(graph) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def _own_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: its functions, classes, attributes and slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets)
            and isinstance(node.value, (ast.Tuple, ast.List))
        ):
            names.update(
                e.value
                for e in node.value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            )
    return {name for name in names if name.startswith("_")}


def _private_accesses(module: str, tree: ast.Module) -> list[str]:
    """``x._name`` on another module's objects, and private names imported from elsewhere."""
    own = _own_private_names(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__"):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in {"self", "cls"}:
                continue
            if name in own or (module, name) in ALLOWED_PRIVATE:
                continue
            found.append(f"{module}:{node.lineno}: ._{name[1:]}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            name = node.args[1].value
            if (
                name.startswith("_")
                and not name.startswith("__")
                and name not in own
                and module != PRIVATE_API_MODULE
            ):
                found.append(f"{module}:{node.lineno}: {node.func.id} {name}")
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            third_party_private = (
                node.level == 0
                and not source.startswith(("trio_ws", "__future__"))
                and any(part.startswith("_") for part in source.split("."))
            )
            if third_party_private and module != PRIVATE_API_MODULE:
                found.append(f"{module}:{node.lineno}: from {source}")
            for alias in node.names:
                name = alias.name
                if (
                    name.startswith("_")
                    and not name.startswith("__")
                    and (module, name) not in ALLOWED_PRIVATE
                ):
                    found.append(f"{module}:{node.lineno}: import {name}")
    return found


def test_no_module_touches_another_modules_private_names() -> None:
    problems = [
        problem
        for module, tree in _modules().items()
        for problem in _private_accesses(module, tree)
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(ws):\n    return ws._protocol\n", ["m:2: ._protocol"]),
        ("def f(ws):\n    ws._state = 1\n", []),  # the module defines _state itself
        ("class A:\n    def f(self):\n        return self._x\n", []),
        ("from ._request import _Session\n", ["m:1: import _Session"]),
        ("from anyio._core._eventloop import x\n", ["m:1: from anyio._core._eventloop"]),
        ("x = getattr(group, '_nursery', None)\n", ["m:1: getattr _nursery"]),
    ],
)
def test_the_private_access_scan_can_fail(source: str, expected: list[str]) -> None:
    assert _private_accesses("m", ast.parse(source)) == expected
