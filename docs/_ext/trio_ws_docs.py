"""Sphinx helpers for the trio_ws docs: the connection state table, read from the code.

``{trio-ws-states}`` renders the states of :class:`trio_ws.sansio.ConnectionState`, the
transitions of ``Transition`` and the transition table ``TRANSITIONS`` of
``trio_ws/sansio/_state.py`` at build time, so the documentation cannot drift from the code;
``{trio-ws-io-states}`` does the same for the I/O lifecycle of ``trio_ws/_lifecycle.py``.
The descriptions come from the ``#:`` comments in that module.

``.. trio-ws-options:: client`` (or ``server``, ``connection``) renders the option table of
that side from ``trio_ws._config.OPTIONS``, the table every public signature is built from,
under the label ``client-option-table`` (``server-option-table``, ``connection-option-table``).

It also smooths autodoc over the package's layout:

- references to private module paths (``trio_ws._connection.WebSocketConnection``) or to
  bare names used inside a module's docstrings (``RemoteProtocolError``) resolve to the
  public name (``trio_ws.RemoteProtocolError``) when there is one;
- classes that users never construct are shown without their constructor's signature;
- napoleon reads the first line of an attribute's or property's docstring as
  ``type: description``; trio_ws's docstrings never use that form (types come from the
  annotations), so such a first line is protected from it.

Two pages of the docs are written by other tasks (the conformance results and the
performance report). Until they exist, their entries are dropped from the root toctree and
links to them render as plain text, instead of failing the ``-W`` build.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

if TYPE_CHECKING:
    from sphinx.application import Sphinx

STATE_MODULE = "trio_ws.sansio._state"
IO_STATE_MODULE = "trio_ws._lifecycle"
OPTIONS_MODULE = "trio_ws._config"
OPTIONAL_DOCS = ("conformance", "performance")
PUBLIC_MODULES = ("trio_ws", "trio_ws.sansio", "trio_ws.testing")
# Built by the library, never by users: their constructors' parameters are private.
NO_CONSTRUCTOR = frozenset(
    {
        "trio_ws.WebSocketServer",
        "trio_ws.WebSocketRequest",
        "trio_ws.WebSocketConnection",
        "trio_ws.ConnectionTaskGroup",
        "trio_ws.testing.MemoryByteStream",
    }
)

logger = logging.getLogger(__name__)


def _table(header: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["trio-ws-state-table"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for index, title in enumerate(header):
        width = max(len(title), *(len(cells[index]) for cells in rows))
        group += nodes.colspec(colwidth=width)

    def row(cells: list[str]) -> nodes.row:
        line = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=cell)
            line += entry
        return line

    head = nodes.thead()
    head += row(header)
    body = nodes.tbody()
    for cells in rows:
        body += row(cells)
    group += head
    group += body
    return table


def _definitions(enum_cls: Any, docs: dict[tuple[str, str], list[str]]) -> nodes.bullet_list:
    items = nodes.bullet_list()
    for member in enum_cls:
        text = " ".join(docs.get((enum_cls.__name__, member.name), [])).strip()
        item = nodes.list_item()
        para = nodes.paragraph()
        para += nodes.literal(text=member.name)
        if text:
            para += nodes.Text(": ")
            # The comments are reST: render its ``literals``, keep the rest as text.
            for index, piece in enumerate(text.split("``")):
                para += nodes.literal(text=piece) if index % 2 else nodes.Text(piece)
        item += para
        items += item
    return items


class StatesDirective(SphinxDirective):
    """Render the states, the transitions and the transition table of the core."""

    has_content = False
    module_name = STATE_MODULE
    states_name = "ConnectionState"
    events_name = "Transition"
    table_name = "TRANSITIONS"

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(self.module_name)
        self.env.note_dependency(module.__file__)
        docs = ModuleAnalyzer.for_module(self.module_name).find_attr_docs()
        state_enum = getattr(module, self.states_name)
        event_enum = getattr(module, self.events_name)
        states = list(state_enum)
        transitions = list(event_enum)
        table = getattr(module, self.table_name)

        header = ["state \\ event", *(t.name for t in transitions)]
        cells = []
        for state in states:
            targets = table.get(state, {})
            moves = [f"→ {targets[t].name}" if t in targets else "—" for t in transitions]
            cells.append([state.name, *moves])

        result: list[nodes.Node] = []
        result.append(nodes.rubric(text="States"))
        result.append(_definitions(state_enum, docs))
        result.append(nodes.rubric(text="Events"))
        result.append(_definitions(event_enum, docs))
        result.append(nodes.rubric(text="Transition table"))
        result.append(_table(header, cells))
        return result


class IOStatesDirective(StatesDirective):
    """Render the I/O lifecycle of a connection (``trio_ws/_lifecycle.py``)."""

    module_name = IO_STATE_MODULE
    states_name = "IOState"
    events_name = "IOEvent"
    table_name = "IO_TRANSITIONS"


class OptionsDirective(SphinxDirective):
    """Render the option table of one side (client, server or connection options)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        module = importlib.import_module(OPTIONS_MODULE)
        self.env.note_dependency(module.__file__)
        side = self.arguments[0]
        if side not in ("client", "server", "connection"):
            raise self.error(f"unknown side {side!r}: client, server or connection")
        label = f"{side}-option-table"
        title = f"{side.capitalize()} options"
        lines = [
            # A caption, so that :ref:`client-options` has a title to link with.
            f".. list-table:: {side.capitalize()} options",
            "   :header-rows: 1",
            "   :widths: 20 25 15 40",
            "   :class: trio-ws-option-table",
            "",
            "   * - option",
            "     - type",
            "     - default",
            "     - meaning",
        ]
        for name, annotation, default, doc in module.option_rows(side):
            lines += [
                f"   * - ``{name}``",
                f"     - ``{annotation}``",
                f"     - ``{default}``",
                f"     - {doc}",
            ]
        container = nodes.container(ids=[label])
        # Parsed as reST, so the descriptions' roles (:class:`...`) become links.
        self.state.nested_parse(StringList(lines, source=OPTIONS_MODULE), 0, container)
        # A label that :ref: finds from any page. Registered by hand: inside MyST's
        # eval-rst block a ".. _label:" target stays in a document of its own.
        std = self.env.get_domain("std")
        std.anonlabels[label] = (self.env.docname, label)  # type: ignore[attr-defined]
        std.labels[label] = (self.env.docname, label, title)  # type: ignore[attr-defined]
        return [container]


def _drop_missing_optional_docs(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname != app.config.root_doc:
        return
    for name in OPTIONAL_DOCS:
        if name not in app.env.found_docs:
            logger.info("docs: %s.md does not exist yet; left out of the toctree", name)
            source[0] = "\n".join(line for line in source[0].split("\n") if line.strip() != name)


def _public_candidates(target: str) -> list[str]:
    """Public names that ``target`` (private path or bare name) may stand for."""
    name = target.rsplit(".", 1)[-1]
    parts = target.split(".")
    candidates = []
    if any(part.startswith("_") for part in parts[:-1]):
        public_parts = [part for part in parts[:-1] if not part.startswith("_")]
        candidates.append(".".join([*public_parts, name]))
    candidates.extend(f"{module}.{name}" for module in PUBLIC_MODULES)
    return candidates


def _resolve_public_name(
    app: Sphinx, env: Any, node: Any, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("reftype") == "doc":
        # A link to an optional page that does not exist yet: keep the text, drop the link.
        target = node.get("reftarget", "").rsplit("/", 1)[-1]
        return contnode if target in OPTIONAL_DOCS else None
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if target.startswith("~"):
        target = target[1:]
    domain = env.get_domain("py")
    for candidate in _public_candidates(target):
        if candidate != target and candidate in domain.objects:
            return domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], candidate, node, contnode
            )
    return None


def _hide_private_constructor(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str] | None:
    if what in {"class", "exception"} and name in NO_CONSTRUCTOR:
        return "", ""
    return None


def _name_ignored_task_status(
    app: Sphinx,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    signature: str | None,
    return_annotation: str | None,
) -> tuple[str, str | None] | None:
    # The signatures built from the option table are values, not source text (autodoc's
    # preserve_defaults cannot read them): name the one default whose repr is an address.
    import anyio

    ignored = repr(anyio.TASK_STATUS_IGNORED)
    if signature and ignored in signature:
        return signature.replace(ignored, "anyio.TASK_STATUS_IGNORED"), return_annotation
    return None


def _drop_options_doc(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    # The descriptions of the options appended for help(): the pages have the tables.
    from trio_ws._config import OPTIONS_DOC_HEADING

    if getattr(obj, "__trio_ws_options__", None) and OPTIONS_DOC_HEADING in lines:
        del lines[lines.index(OPTIONS_DOC_HEADING) :]
        while lines and not lines[-1].strip():
            lines.pop()


def _protect_attribute_first_line(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    if what in {"attribute", "data", "property"} and lines and ":" in lines[0]:
        # An empty reST comment as the first line: napoleon takes it as the description
        # and finds no "type:" in it; it renders as nothing.
        lines[:0] = ["..", ""]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _resolve_public_name)
    app.connect("autodoc-process-signature", _hide_private_constructor)
    # Before napoleon's own handler (priority 500).
    app.connect("autodoc-process-docstring", _protect_attribute_first_line, priority=400)
    app.connect("autodoc-process-docstring", _drop_options_doc, priority=400)
    app.add_directive("trio-ws-states", StatesDirective)
    app.add_directive("trio-ws-io-states", IOStatesDirective)
    app.add_directive("trio-ws-options", OptionsDirective)
    app.connect("autodoc-process-signature", _name_ignored_task_status)
    app.connect("source-read", _drop_missing_optional_docs)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
