"""Extensions of the sans-IO core (permessage-deflate, RFC 7692)."""

from __future__ import annotations
