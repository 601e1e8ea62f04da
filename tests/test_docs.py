"""The Python examples of the documentation compile, and the runnable ones run.

Every ```` ```python ```` block of every page under ``docs/`` must compile (top-level
``await`` and ``async with`` are allowed, since many snippets are fragments of a coroutine).

A MyST comment line right above a block (invisible in the rendered docs) marks what else to
do with it:

``% test: run``
    The block is a complete program that ends by itself: run it in a fresh interpreter,
    bounded in time; it must exit with status 0.
``% test: serve NAME``
    The block defines the coroutine function ``NAME``, a server handler. The next
    ``client`` block of the same page is tested against it, served on 127.0.0.1, port 0.
``% test: client NAME``
    The block defines the coroutine function ``NAME(url)``. It is awaited with the URL of
    the page's last ``serve`` block, bounded in time.
``% test: expect``
    Marks a text block: each of its lines must appear in what the previous ``run`` or
    ``client`` block printed.

Blocks run with ``__name__`` set to something other than ``"__main__"``, so a block's
``if __name__ == "__main__":`` part (which starts a real server on a fixed port, or
connects to one) does not run. ``backend=asyncio`` after the name runs the server and
client on asyncio instead of trio. The examples run against the real library over real
loopback sockets.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).parent.parent / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)
RUN_TIMEOUT = 60  # seconds for one whole example program, interpreter start included
CLIENT_TIMEOUT = 20  # seconds for one client scenario against its server

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_MARK = re.compile(r"^ *% *test: *(?P<what>\w+)(?P<args>.*)$")


@dataclass
class Block:
    """One fenced code block of a page, with the ``% test:`` mark above it, if any."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    mark: str | None = None
    args: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(DOCS)}:{self.line}"

    @property
    def backend(self) -> str:
        return "asyncio" if "backend=asyncio" in self.args else "trio"

    @property
    def name(self) -> str:
        names = [arg for arg in self.args if "=" not in arg]
        assert names, f"{self.id}: the test mark needs a function name"
        return names[0]


def _blocks(page: Path) -> list[Block]:
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    pending_mark: re.Match[str] | None = None
    while index < len(lines):
        mark = _MARK.match(lines[index])
        if mark:
            pending_mark = mark
            index += 1
            continue
        opening = _FENCE.match(lines[index])
        if not opening:
            if lines[index].strip():
                pending_mark = None
            index += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        # A MyST directive ({code-block} python) or a plain language tag.
        language = re.sub(r"^\{code-block\}\s*|^\{code\}\s*", "", info).split(" ")[0]
        body: list[str] = []
        start = index + 1
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        code = textwrap.dedent("\n".join(line for line in body if not line.startswith(":")))
        block = Block(page=page, line=start, language=language, code=code + "\n")
        if pending_mark is not None:
            block.mark = pending_mark["what"]
            block.args = pending_mark["args"].split()
            pending_mark = None
        blocks.append(block)
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in _blocks(page)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language in {"python", "py", "python3"}]
KNOWN_MARKS = {None, "run", "serve", "client", "expect"}


def _expected_after(block: Block) -> list[str]:
    """The lines of the ``expect`` block that follows ``block`` on its page, if any."""
    page_blocks = [b for b in ALL_BLOCKS if b.page == block.page]
    position = page_blocks.index(block)
    for later in page_blocks[position + 1 :]:
        if later.mark == "expect":
            return [line.strip() for line in later.code.splitlines() if line.strip()]
        if later.mark in {"run", "client"}:
            break
    return []


def _scenarios() -> list[tuple[Block | None, Block]]:
    """(serve block, client block) pairs, each client with the page's last server before it."""
    pairs: list[tuple[Block | None, Block]] = []
    server: Block | None = None
    for block in PYTHON_BLOCKS:
        if server is not None and server.page != block.page:
            server = None
        if block.mark == "serve":
            server = block
        elif block.mark == "client":
            pairs.append((server, block))
    return pairs


def _load(block: Block) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(block.code, block.id, "exec"), namespace)
    return namespace


def test_the_docs_have_runnable_examples() -> None:
    # Guards the collection itself: if the marks stopped being found, every test below
    # would silently vanish.
    assert PAGES, "no documentation pages found"
    assert any(block.mark == "run" for block in PYTHON_BLOCKS)
    assert _scenarios()


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda block: block.id)
def test_marks_are_known(block: Block) -> None:
    assert block.mark in KNOWN_MARKS, f"{block.id}: unknown test mark {block.mark!r}"
    if block.mark == "expect":
        assert block.language in {"text", "console", "none", ""}


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda block: block.id)
def test_python_block_compiles(block: Block) -> None:
    compile(block.code, block.id, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


@pytest.mark.parametrize(
    "block", [b for b in PYTHON_BLOCKS if b.mark == "run"], ids=lambda block: block.id
)
def test_runnable_block_runs(block: Block) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block.code],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        cwd=DOCS,
    )
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"
    for line in _expected_after(block):
        assert line in result.stdout, f"{block.id}: {line!r} not in its output"


@pytest.mark.parametrize(
    ("server", "client"), _scenarios(), ids=lambda block: "none" if block is None else block.id
)
def test_client_block_against_server_block(server: Block | None, client: Block) -> None:
    import anyio

    from trio_ws import serve_websocket

    assert server is not None, f"{client.id}: no serve block above this client on its page"
    assert server.backend == client.backend, f"{client.id}: not on its server's backend"
    handler = _load(server)[server.name]
    client_function = _load(client)[client.name]
    output = io.StringIO()

    async def scenario() -> None:
        with anyio.fail_after(CLIENT_TIMEOUT):
            async with anyio.create_task_group() as task_group:
                listening = await task_group.start(serve_websocket, handler, "127.0.0.1", 0)
                port = listening.port
                with contextlib.redirect_stdout(output):
                    await client_function(f"ws://127.0.0.1:{port}/")
                task_group.cancel_scope.cancel()

    anyio.run(scenario, backend=client.backend)
    for line in _expected_after(client):
        assert line in output.getvalue(), f"{client.id}: {line!r} not in its output"
