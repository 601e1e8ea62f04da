"""The Autobahn Testsuite testee client: a trio_ws client that echoes every case.

It drives the suite's fuzzing server (``wstest -m fuzzingserver``) as every testee client
does: ``/getCaseCount``, then ``/runCase?case=N&agent=A`` for N = 1..count (echoing every
message until the server closes), then ``/updateReports?agent=A``. Usage::

    python compliance/echo_client.py [--backend trio|asyncio] [--agent NAME]
        [--case-timeout SECONDS] [--no-compression] ws://127.0.0.1:PORT

A case that errors or hangs does not stop the run: its error is printed and the suite's
report shows how the case ended. The exit status is 0 once every case was attempted.
"""

from __future__ import annotations

import argparse
import functools
import sys
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

import trio_ws

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager


@dataclass(frozen=True)
class Testee:
    """How the client connects: the fuzzing server's URL and the connection options."""

    base_url: str
    compression: bool

    def connect(self, resource: str) -> AbstractAsyncContextManager[trio_ws.WebSocketConnection]:
        """Open a connection to ``resource`` on the fuzzing server."""
        return trio_ws.open_websocket_url(
            f"{self.base_url}{resource}",
            compression="deflate" if self.compression else None,
            # No size limit (9.x sends up to 16 MiB) and no keepalive: the suite compares
            # every frame it receives with what the case expects, so a ping would fail it.
            max_message_size=None,
            # 9.3 and 9.4 send 4 MiB messages in fragments as small as 64 bytes.
            max_fragments=None,
            ping_interval=None,
        )


async def get_case_count(testee: Testee) -> int:
    """Ask the fuzzing server how many cases it will run."""
    async with testee.connect("/getCaseCount") as ws:
        return int(await ws.get_message())


async def run_case(testee: Testee, case: int, agent: str) -> None:
    """Echo every message of one case until the fuzzing server closes the connection."""
    query = urllib.parse.urlencode({"case": case, "agent": agent})
    async with testee.connect(f"/runCase?{query}") as ws:
        while True:
            try:
                message = await ws.get_message()
                await ws.send_message(message)
            except trio_ws.ConnectionClosed:
                return


async def update_reports(testee: Testee, agent: str) -> None:
    """Tell the fuzzing server to write its reports for ``agent``."""
    query = urllib.parse.urlencode({"agent": agent})
    async with testee.connect(f"/updateReports?{query}") as ws:
        # The server closes once the reports are written; wait for that.
        try:
            await ws.get_message()
        except trio_ws.ConnectionClosed:
            pass


async def run_suite(testee: Testee, agent: str, *, case_timeout: float) -> int:
    """Run every case the fuzzing server offers; return how many ended with an error."""
    with anyio.fail_after(30):
        count = await get_case_count(testee)
    print(f"{count} cases; agent {agent!r}", flush=True)
    errors = 0
    for case in range(1, count + 1):
        try:
            with anyio.fail_after(case_timeout):
                await run_case(testee, case, agent)
        except TimeoutError:
            errors += 1
            print(f"case #{case}: still running after {case_timeout}s, abandoned", file=sys.stderr)
        except Exception as exc:  # one case's failure must not stop the run
            errors += 1
            print(f"case #{case}: {type(exc).__name__}: {exc}", file=sys.stderr)
    with anyio.fail_after(120):
        await update_reports(testee, agent)
    print(f"done: {count} cases, {errors} ended with an error in the client", flush=True)
    return errors


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the suite on the chosen backend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the fuzzing server, e.g. ws://127.0.0.1:9001")
    parser.add_argument("--backend", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--agent", default=None, help="agent name in the reports")
    # Above the suite's own longest case timeout (480 s, for the big compression cases).
    parser.add_argument("--case-timeout", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument(
        "--no-compression", action="store_true", help="do not offer permessage-deflate"
    )
    args = parser.parse_args(argv)
    agent = args.agent or f"trio_ws-{trio_ws.__version__}-client-{args.backend}"
    anyio.run(
        functools.partial(
            run_suite,
            Testee(args.url.rstrip("/"), compression=not args.no_compression),
            agent,
            case_timeout=args.case_timeout,
        ),
        backend=args.backend,
    )


if __name__ == "__main__":
    main()
