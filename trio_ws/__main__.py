"""``python -m trio_ws``: the command-line client and server (see ``trio_ws._cli``)."""

from __future__ import annotations

import sys

from ._cli import main

sys.exit(main())
