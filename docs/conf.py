"""Sphinx configuration for the trio_ws documentation (MyST Markdown, furo theme).

Build with ``nox -s docs`` (``sphinx-build -W -n``: every warning is an error and every
cross-reference must resolve).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

import trio_ws  # noqa: E402  (the path above must be set first)

project = "trio_ws"
author = "trio_ws developers"
copyright = "the trio_ws developers"
release = trio_ws.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "trio_ws_docs",  # docs/_ext/trio_ws_docs.py: the state table of the sans-IO core
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# Google-style docstrings (Args:, Returns:, Raises:) plus the custom sections the code uses.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [
    ("Cancellation", "notes_style"),
    ("Resource handling", "notes_style"),
]
napoleon_use_rtype = False

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# Off: the public functions' signatures are built from the option table at import time
# (trio_ws/_config.py), so there is no source text of their defaults to preserve.
autodoc_preserve_defaults = False
autodoc_default_options = {"members": True, "show-inheritance": True}

# The build runs without network access, so intersphinx cannot fetch the inventories of
# Python, trio and anyio. Instead, references into those projects (and to a few typing
# helpers) are ignored explicitly; references to trio_ws's own names must still resolve.
nitpicky = True
_EXTERNAL_MODULES = "|".join(
    (
        *("trio", "anyio", "ssl", "socket", "logging", "functools", "email", "enum", "abc"),
        *("os", "collections.abc", "typing"),
    )
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({_EXTERNAL_MODULES.replace('.', '[.]')})[.].+"),
    (r"py:mod", r"logging|functools|ssl|asyncio"),
]
nitpick_ignore = [
    # anyio's types, imported under their short names for annotations only.
    ("py:class", "TaskGroup"),
    ("py:class", "TaskStatus"),
    ("py:class", "BlockingPortal"),
    # contextlib's, as the sync client's annotations spell them.
    ("py:class", "AbstractContextManager"),
    ("py:class", "AbstractAsyncContextManager"),
]

html_theme = "furo"
html_title = f"trio_ws {release}"
html_static_path: list[str] = []
