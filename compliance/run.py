"""Run the Autobahn Testsuite against trio_ws, as server and as client, on trio and asyncio.

For each backend it starts ``echo_server.py`` and points the suite's fuzzing client at it,
then starts the suite's fuzzing server and runs ``echo_client.py`` against it. It reads the
JSON reports and fails on any case that is not OK, unless ``expectations.json`` allows
that case's result with a reason (UNIMPLEMENTED is allowed for the compression sections 12
and 13 only while compression is off). Usage::

    python compliance/run.py [--full | --ci] [--backends trio,asyncio] [--roles server,client]
        [--cases LIST] [--exclude LIST] [--jobs N] [--write-docs] [--compression on|off|auto]
        [--no-run]

The suite itself lives in a virtual environment of its own (``.autobahn-venv/`` in the
repository, or ``$AUTOBAHN_VENV``), made by ``compliance/install.py`` on first use (about
half a minute, from PyPI). Exit status: 0 clean, 1 some case not allowed,
2 setup or run error.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import dataclasses
import datetime
import fnmatch
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXPECTATIONS = HERE / "expectations.json"
DOCS_PAGE = REPO / "docs" / "conformance.md"
RUN_INFO = "run-info.json"  # written next to each run's reports: its time and error
ROLES = ("server", "client")
BACKENDS = ("trio", "asyncio")
CLEAN_CLOSE = ("OK", "INFORMATIONAL")
COLUMNS = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

# Protocol options of the suite's own endpoint. Its closing handshake timeout is 1 second by
# default. On a loaded machine (CI, or the two processes of each run sharing a couple of
# cores) the suite's single-threaded loop can be busy (checking a 4 MiB echo) or descheduled
# past that deadline; Twisted then runs the due timeout before it reads the close frame
# already waiting in its socket, and reports a peer that did answer as UNCLEAN. We saw this
# on 3 of about 1500 cases, at random. A peer that never answers is still caught, later.
SUITE_OPTIONS = {"closeHandshakeTimeout": 5}

# The CI subset. Sections 1-10 run whole (about half a minute per run). Sections 12 and 13
# (compression) are most of the suite's time: each of their 12 groups sends 1000 messages
# of each of 18 sizes, up to 128 KiB auto-fragmented into 256-byte frames, and the suite's
# own Python deflate is the bottleneck. CI keeps, from each group, the small unfragmented
# messages (16 to 4096 bytes) and one auto-fragmented one (8 KiB in 256-byte frames), which
# still cover every negotiated parameter set, context takeover and compressed fragments.
CI_COMPRESSION_CASES = frozenset({1, 2, 3, 4, 5, 11})


def ci_subset(case_ids: list[str]) -> list[str]:
    """The cases CI runs, out of ``case_ids`` (see the comment above)."""
    chosen = []
    for case_id in case_ids:
        parts = case_key(case_id)
        if parts[0] in (12, 13) and parts[-1] not in CI_COMPRESSION_CASES:
            continue
        chosen.append(case_id)
    return chosen


# Run inside the suite's virtual environment: the selected cases with their descriptions,
# resolved by the suite's own pattern rules, and the section names.
LIST_CASES = """
import json, re, sys
from autobahntestsuite import case as C
from autobahntestsuite.caseset import CaseSet
cs = CaseSet(C.CaseSetname, C.CaseBasename, C.Cases, C.CaseCategories, C.CaseSubCategories)
split = lambda s: [x.strip() for x in s.split(",") if x.strip()]
def describe(html):
    text = " ".join(re.sub(r"<[^>]*>", "", re.sub(r"<br\\s*/?>", " ", html)).split())
    return text if len(text) <= 160 else text[:157] + "..."
ids = cs.parseSpecCases({"cases": split(sys.argv[1]), "exclude-cases": split(sys.argv[2])})
import autobahntestsuite
json.dump({
    "version": autobahntestsuite.version,
    "sections": C.CaseCategories,
    "cases": [[i, describe(cs.CasesById[i].DESCRIPTION)] for i in ids],
}, sys.stdout)
"""


class SetupError(Exception):
    """The suite could not be installed or run (exit status 2)."""


@dataclasses.dataclass
class Run:
    """One role x backend run of the suite and what came of it."""

    role: str
    backend: str
    outdir: Path
    seconds: float = 0.0
    results: dict[str, dict[str, object]] = dataclasses.field(default_factory=dict)
    error: str | None = None

    @property
    def name(self) -> str:
        return f"{self.role}/{self.backend}"

    @property
    def agent(self) -> str:
        return f"trio_ws-{self.role}-{self.backend}"


@dataclasses.dataclass
class Verdict:
    """One case whose result is not plainly OK."""

    run: str
    case: str
    behavior: str
    close: str
    allowed: bool
    note: str


def case_key(case_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in case_id.split("."))


def ensure_venv(venv: Path) -> None:
    """Install the suite into ``venv`` with ``install.py`` unless it is there already."""
    sys.path.insert(0, str(HERE))
    import install

    try:
        install.ensure(venv)
    except install.InstallError as exc:
        raise SetupError(f"installing the Autobahn Testsuite: {exc}") from None


def list_cases(venv: Path, cases: str, exclude: str) -> dict[str, object]:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", LIST_CASES, cases, exclude],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SetupError(f"cannot list the suite's cases:\n{done.stderr}")
    listing: dict[str, object] = json.loads(done.stdout)
    return listing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SetupError(f"{what} exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SetupError(f"{what} did not listen on port {port} within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_spec(run: Run, options: argparse.Namespace, path: Path, url: str) -> None:
    """The suite's spec file for one run (its ``-s`` argument)."""
    split = [c.strip() for c in options.cases.split(",") if c.strip()]
    spec: dict[str, object] = {
        "outdir": str(run.outdir),
        "cases": split,
        "exclude-cases": [c.strip() for c in options.exclude.split(",") if c.strip()],
        "exclude-agent-cases": {},
        "options": SUITE_OPTIONS,
    }
    if run.role == "server":
        spec["servers"] = [{"url": url, "agent": run.agent}]
    else:
        spec["url"] = url
    path.write_text(json.dumps(spec, indent=2))


def update_reports(port: int) -> None:
    """Ask the fuzzing server to write its reports, as a testee's ``/updateReports`` does."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /updateReports?agent=run.py HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        sock.sendall(request.encode())
        sock.settimeout(120)
        # The server closes once the reports are written; read until then (bounded).
        # A reset after the close frame is an end too.
        with contextlib.suppress(ConnectionError):
            for _ in range(1000):
                if not sock.recv(65536):
                    break


def run_one(run: Run, options: argparse.Namespace) -> Run:
    """Run the suite for one role and backend; fill in ``run.results`` from its report."""
    if run.outdir.exists():
        shutil.rmtree(run.outdir)
    run.outdir.mkdir(parents=True)
    wstest = str(options.venv / "bin" / "wstest")
    spec = run.outdir / "spec.json"
    testee_flags = ["--backend", run.backend]
    if not options.compression:
        testee_flags.append("--no-compression")
    port = free_port()
    log = (run.outdir / "runner.log").open("wb")
    started = time.monotonic()
    server = suite = None
    try:
        if run.role == "server":
            server = subprocess.Popen(
                [sys.executable, str(HERE / "echo_server.py"), *testee_flags, str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            wait_listening(port, server, 30, "the echo server")
            write_spec(run, options, spec, f"ws://127.0.0.1:{port}")
            subprocess.run(
                [wstest, "-m", "fuzzingclient", "-s", str(spec)],
                cwd=run.outdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=options.timeout,
            )
        else:
            write_spec(run, options, spec, f"ws://127.0.0.1:{port}")
            suite = subprocess.Popen(
                [wstest, "-m", "fuzzingserver", "-s", str(spec), "--webport", "0"],
                cwd=run.outdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            wait_listening(port, suite, 60, "the suite's fuzzing server")
            client = [sys.executable, str(HERE / "echo_client.py"), *testee_flags]
            client += ["--agent", run.agent, f"ws://127.0.0.1:{port}"]
            subprocess.run(client, stdout=log, stderr=subprocess.STDOUT, timeout=options.timeout)
            update_reports(port)
    except subprocess.TimeoutExpired:
        run.error = f"the run took longer than {options.timeout}s"
    except (SetupError, OSError) as exc:
        run.error = str(exc)
    finally:
        for process in (server, suite):
            if process is not None:
                stop(process)
        log.close()
        run.seconds = time.monotonic() - started
    (run.outdir / RUN_INFO).write_text(json.dumps({"seconds": run.seconds, "error": run.error}))
    return load_results(run)


def load_results(run: Run) -> Run:
    """Fill in ``run.results`` (and the time, for ``--no-run``) from the run's reports."""
    info_path = run.outdir / RUN_INFO
    if info_path.exists() and not run.seconds:
        info = json.loads(info_path.read_text())
        run.seconds, run.error = info["seconds"], info["error"]
    index_path = run.outdir / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_text())
        if run.agent in index:
            run.results = index[run.agent]
        elif len(index) == 1:
            run.results = next(iter(index.values()))
    if not run.results and run.error is None:
        run.error = "the suite wrote no results"
    return run


def load_expectations() -> list[dict[str, object]]:
    data = json.loads(EXPECTATIONS.read_text())
    entries: list[dict[str, object]] = data["expected"]
    for entry in entries:
        if not entry.get("reason"):
            raise SetupError(f"expectations.json: entry {entry.get('cases')} has no reason")
        if "FAILED" in entry["allow"]:  # type: ignore[operator]
            raise SetupError("expectations.json: FAILED can never be allowed")
    return entries


def is_allowed(
    entries: list[dict[str, object]], role: str, case: str, outcome: str
) -> dict[str, object] | None:
    for entry in entries:
        if role not in entry.get("roles", ROLES):  # type: ignore[operator]
            continue
        if outcome not in entry["allow"]:  # type: ignore[operator]
            continue
        if any(fnmatch.fnmatchcase(case, pattern) for pattern in entry["cases"]):  # type: ignore[attr-defined]
            return entry
    return None


def judge(
    runs: list[Run],
    selected: list[str],
    entries: list[dict[str, object]],
    compression: bool,
) -> tuple[list[Verdict], set[int]]:
    """Every not-OK outcome of every run, with whether it is allowed, and the entries used."""
    verdicts = []
    used: set[int] = set()
    for run in runs:
        for case in selected:
            result = run.results.get(case)
            if result is None:
                verdicts.append(Verdict(run.name, case, "MISSING", "", False, "no result"))
                continue
            behavior = str(result["behavior"])
            close = str(result.get("behaviorClose", ""))
            notes, allowed = [], True
            if behavior != "OK":
                if behavior == "UNIMPLEMENTED" and case.split(".")[0] in ("12", "13"):
                    ok = not compression
                    notes.append("compression is off" if ok else "compression is on")
                else:
                    entry = is_allowed(entries, run.role, case, behavior)
                    ok = entry is not None
                    if entry is not None:
                        used.add(id(entry))
                        notes.append(str(entry["reason"]))
                allowed = allowed and ok
            if close not in CLEAN_CLOSE:
                entry = is_allowed(entries, run.role, case, f"close:{close}")
                if entry is not None:
                    used.add(id(entry))
                    notes.append(str(entry["reason"]))
                allowed = allowed and entry is not None
            if behavior != "OK" or close not in CLEAN_CLOSE:
                verdicts.append(Verdict(run.name, case, behavior, close, allowed, "; ".join(notes)))
    return verdicts, used


def report_detail(run: Run, case: str) -> str:
    """The suite's own explanation of a case's outcome, from its per-case JSON report."""
    result = run.results.get(case)
    if not result or "reportfile" not in result:
        return ""
    try:
        report = json.loads((run.outdir / str(result["reportfile"])).read_text())
    except (OSError, ValueError):
        return ""
    parts = [f"expected: {report.get('expectation', '')}"]
    parts.append(f"result: {report.get('result', '')}")
    parts.append(f"close: {report.get('resultClose', '')}")
    local, remote = report.get("localCloseCode"), report.get("remoteCloseCode")
    parts.append(f"close codes: sent {local}, received {remote}")
    return "\n      ".join(parts)


def section_counts(run: Run, selected: list[str]) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for case in selected:
        row = table.setdefault(case.split(".")[0], dict.fromkeys((*COLUMNS, "MISSING"), 0))
        result = run.results.get(case)
        behavior = "MISSING" if result is None else str(result["behavior"])
        row[behavior if behavior in row else "FAILED"] += 1
    return table


def cell(row: dict[str, int]) -> str:
    short = {"NON-STRICT": "non-strict", "INFORMATIONAL": "info", "UNIMPLEMENTED": "unimpl."}
    parts = [f"{row[name]} {short.get(name, name)}" for name in (*COLUMNS, "MISSING") if row[name]]
    return ", ".join(parts) or "-"


def print_summary(runs: list[Run], selected: list[str], sections: dict[str, str]) -> None:
    counts = {run.name: section_counts(run, selected) for run in runs}
    names = [run.name for run in runs]
    print()
    print("section".ljust(9) + "".join(name.ljust(26) for name in names))
    for section in sorted(counts[names[0]], key=int):
        line = f"{section:<3}{sections.get(section, '')[:5]:<6}"
        print(line + "".join(cell(counts[name][section]).ljust(26) for name in names))
    print("time     " + "".join(f"{run.seconds:.0f}s".ljust(26) for run in runs))


def write_docs(
    runs: list[Run],
    selected: list[str],
    listing: dict[str, object],
    verdicts: list[Verdict],
    entries: list[dict[str, object]],
    options: argparse.Namespace,
    version: str,
) -> None:
    """Write docs/conformance.md: the per-section table and every result that is not OK."""
    sections: dict[str, str] = listing["sections"]  # type: ignore[assignment]
    descriptions = dict(listing["cases"])  # type: ignore[call-overload]
    counts = {run.name: section_counts(run, selected) for run in runs}
    names = [run.name for run in runs]
    today = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    lines = [
        "# Conformance: the Autobahn Testsuite",
        "",
        "The [Autobahn Testsuite](https://github.com/crossbario/autobahn-testsuite) checks a",
        "WebSocket implementation against {rfc}`6455` and {rfc}`7692` with 517 cases. trio_ws",
        "runs it as a server (the suite's fuzzing client against `compliance/echo_server.py`)",
        "and as a client (`compliance/echo_client.py` against the suite's fuzzing server), on",
        "trio and on asyncio, with `nox -s autobahn`: the whole suite, or in CI every case of",
        "sections 1 to 10 and a subset of the slow compression sections 12 and 13. A FAILED or",
        "missing case fails the run, and so does a NON-STRICT or INFORMATIONAL result, or an",
        "unclean close, that `compliance/expectations.json` does not list with a reason.",
        "",
        "The suite is Python 2 code on PyPI: on first use `compliance/install.py` converts",
        "it to Python 3 and installs it into `.autobahn-venv/`, in about half a minute, with the",
        "versions pinned in `compliance/autobahn-requirements.txt` (autobahntestsuite 25.10.1,",
        "autobahn 26.10.2, Twisted 26.10.0). Nothing outside the repository is needed.",
        "",
        "This page is written by `compliance/run.py` from the suite's reports.",
        "",
        f"- Date: {today}",
        f"- trio_ws {version}, Python {platform.python_version()}, "
        f"Autobahn Testsuite {listing['version']}",
        f"- Cases: {len(selected)} ({options.selection}); compression "
        f"{'on' if options.compression else 'off'}",
        "- Running time: " + ", ".join(f"{r.name} {r.seconds:.0f} s" for r in runs),
        "",
        "| Section | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for section in sorted(counts[names[0]], key=int):
        title = f"{section}. {sections.get(section, '')}"
        row = " | ".join(cell(counts[name][section]) for name in names)
        lines.append(f"| {title} | {row} |")
    totals = []
    for name in names:
        total = dict.fromkeys((*COLUMNS, "MISSING"), 0)
        for row_counts in counts[name].values():
            for key in total:
                total[key] += row_counts[key]
        totals.append(cell(total))
    lines += ["| **All** | " + " | ".join(totals) + " |", ""]
    if not verdicts:
        lines += ["Every case is OK on every run.", ""]
        DOCS_PAGE.write_text("\n".join(lines))
        print(f"[autobahn] wrote {DOCS_PAGE.relative_to(REPO)}")
        return
    outcome: dict[str, dict[str, str]] = {}
    for v in verdicts:
        text = v.behavior if v.close in CLEAN_CLOSE else f"{v.behavior}, close {v.close}"
        outcome.setdefault(v.case, {})[v.run] = text if v.allowed else f"**{text}**"
    lines += [
        "## Results other than OK",
        "",
        "| Case | " + " | ".join(names) + " | What the case does |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for case in sorted(outcome, key=case_key):
        row = " | ".join(outcome[case].get(name, "OK") for name in names)
        description = descriptions.get(case, "").replace("|", "\\|")
        lines.append(f"| {case} | {row} | {description} |")
    lines.append("")
    reasons = []
    for entry in entries:
        seen = sorted(
            {
                v.case
                for v in verdicts
                if v.allowed and is_allowed([entry], v.run.split("/")[0], v.case, v.behavior)
            },
            key=case_key,
        )
        if seen:
            reasons.append(f"- {', '.join(seen)}: {entry['reason']}.")
    if reasons:
        lines += ["Why these results are accepted (from `compliance/expectations.json`):", ""]
        lines += [*reasons, ""]
    if any(not v.allowed for v in verdicts):
        lines += ["Results in **bold** are not accepted: the run failed.", ""]
    DOCS_PAGE.write_text("\n".join(lines))
    print(f"[autobahn] wrote {DOCS_PAGE.relative_to(REPO)}")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def package_info() -> tuple[str, bool]:
    """The installed trio_ws version and whether it has permessage-deflate."""
    probe = (
        "import importlib.util, trio_ws; "
        "print(trio_ws.__version__); "
        "print(importlib.util.find_spec('trio_ws.sansio.extensions.permessage_deflate') "
        "is not None)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"cannot import trio_ws:\n{done.stderr}")
    version, has_deflate = done.stdout.split()
    return version, has_deflate == "True"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the Autobahn Testsuite against trio_ws.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--full", action="store_true", help="every case (default outside CI)")
    scope.add_argument("--ci", action="store_true", help="the CI subset (default when CI=true)")
    parser.add_argument("--cases", help="comma-separated case ids or globs (overrides the scope)")
    parser.add_argument("--exclude", help="comma-separated case ids or globs to leave out")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--jobs", type=int, default=2, help="runs at the same time (default 2)")
    parser.add_argument("--compression", choices=("on", "off", "auto"), default="auto")
    # A full run takes 9 to 14 minutes per role and backend on two busy cores; leave room.
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per run")
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="judge (and write docs from) the reports of the last run instead of running",
    )
    parser.add_argument("--venv", type=Path, default=None)
    parser.add_argument("--reports", type=Path, default=REPO / "autobahn-reports")
    parser.add_argument(
        "--write-docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/conformance.md (default: on a full run of both roles and backends)",
    )
    options = parser.parse_args(argv)
    options.venv = (
        options.venv or Path(os.environ.get("AUTOBAHN_VENV") or REPO / ".autobahn-venv")
    ).resolve()
    options.subset = options.ci or (in_ci() and not options.full)
    if options.cases is None:
        options.cases = "*"
    elif options.subset:
        parser.error("--cases and --ci do not mix")
    options.exclude = options.exclude or ""
    if options.subset:
        options.selection = "the CI subset"
    elif options.cases == "*" and not options.exclude:
        options.selection = "the full suite"
    else:
        options.selection = "a custom selection"
    options.backends = [b for b in options.backends.split(",") if b]
    options.roles = [r for r in options.roles.split(",") if r]
    if not set(options.backends) <= set(BACKENDS) or not set(options.roles) <= set(ROLES):
        parser.error(f"backends are {BACKENDS}, roles are {ROLES}")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        ensure_venv(options.venv)
        entries = load_expectations()
        version, has_deflate = package_info()
        options.compression = {"on": True, "off": False, "auto": has_deflate}[options.compression]
        listing = list_cases(options.venv, options.cases, options.exclude)
    except SetupError as exc:
        print(f"[autobahn] error: {exc}", file=sys.stderr)
        return 2
    selected = [case for case, _ in listing["cases"]]  # type: ignore[attr-defined]
    if options.subset:
        selected = ci_subset(selected)
        # The runner gets the resolved list: the same cases, whatever its pattern rules.
        options.cases, options.exclude = ",".join(selected), ""
    descriptions = dict(listing["cases"])  # type: ignore[call-overload]
    print(
        f"[autobahn] trio_ws {version}; {len(selected)} cases ({options.selection}); "
        f"compression {'on' if options.compression else 'off'}; suite in {options.venv}",
        flush=True,
    )
    runs = [
        Run(role, backend, options.reports / f"{role}-{backend}")
        for role in options.roles
        for backend in options.backends
    ]
    if options.no_run:
        runs = [load_results(run) for run in runs]
    else:
        with concurrent.futures.ThreadPoolExecutor(max(1, options.jobs)) as pool:
            futures = [pool.submit(run_one, run, options) for run in runs]
            for future in concurrent.futures.as_completed(futures):
                run = future.result()
                state = run.error or f"{len(run.results)} results"
                print(f"[autobahn] {run.name}: done in {run.seconds:.0f}s ({state})", flush=True)

    verdicts, used = judge(runs, selected, entries, options.compression)
    print_summary(runs, selected, listing["sections"])  # type: ignore[arg-type]
    bad = [v for v in verdicts if not v.allowed]
    allowed = [v for v in verdicts if v.allowed]
    if allowed:
        # One paragraph per reason, with the runs and cases it covers: the reasons are long.
        print(f"\n{len(allowed)} allowed result(s) that are not plainly OK:")
        by_note: dict[str, list[str]] = {}
        for v in allowed:
            by_note.setdefault(v.note, []).append(f"{v.run} {v.case} ({v.behavior})")
        for note, results in by_note.items():
            print(f"  {', '.join(results)}")
            print(f"      because {note}")
    if bad:
        print(f"\n{len(bad)} result(s) NOT allowed:")
        by_run = {run.name: run for run in runs}
        for v in sorted(bad, key=lambda v: (v.run, case_key(v.case))):
            print(f"  {v.run} {v.case}: {v.behavior} / close {v.close or '-'}")
            print(f"      {descriptions.get(v.case, '')}")
            detail = report_detail(by_run[v.run], v.case)
            if detail:
                print(f"      {detail}")
    unused = [e for e in entries if id(e) not in used]
    if unused and options.selection == "the full suite":
        print("\nexpectations that no longer match anything (remove them):")
        for entry in unused:
            print(f"  {entry['cases']}: {entry['allow']}")
    for run in runs:
        if run.error:
            print(f"[autobahn] {run.name}: {run.error} (log: {run.outdir / 'runner.log'})")
    print(f"\n[autobahn] reports: {options.reports}/<role>-<backend>/index.html")

    complete = set(options.roles) == set(ROLES) and set(options.backends) == set(BACKENDS)
    write = options.write_docs
    if write is None:
        write = complete and options.selection == "the full suite"
    if write and not any(run.error for run in runs):
        write_docs(runs, selected, listing, verdicts, entries, options, version)
    if any(run.error for run in runs):
        return 2
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
