"""The version of trio_ws (read by the build backend too)."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
