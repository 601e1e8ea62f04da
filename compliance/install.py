"""Install the Autobahn Testsuite (``wstest``) for Python 3 into a virtual environment.

Usage: ``python compliance/install.py [VENV]`` (default ``.autobahn-venv/`` in the
repository); ``run.py`` calls :func:`ensure` on first use. Steps:

1. a venv with the pins of ``autobahn-requirements.txt``;
2. the ``autobahntestsuite`` sdist from PyPI, checked against its pinned sha256;
3. conversion of its Python 2 code: non-ASCII byte-string literals of ``case/`` become
   latin-1 ``str`` (one py2 ``str`` stays one py3 ``str``; the hooks added below encode them
   back where they reach the wire), then fissix (lib2to3's fork) for the syntax, then the
   exact edits in ``EDITS``: each must match the expected number of times, or the install
   stops and names it (so a changed upstream is noticed, not half-converted);
4. install, and a smoke check (the package imports and all 517 cases load).

A marker file in the venv records what was installed: a re-run with the same recipe does
nothing, a changed recipe (or a half-made venv) is rebuilt from scratch.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "autobahn-requirements.txt"
SUITE_VERSION = "25.10.1"
SUITE_SHA256 = "b083d6e15330fc16f3e5f0975cce2b15f21bfa0c6db09547316b1852c6dbd6df"
CASE_COUNT = 517
MARKER = "trio-ws-autobahn.json"


class InstallError(Exception):
    """The suite could not be installed; the message says which step and why."""


# ------------------------------------------------------------------ step 3a: literals
def py2_literal_bytes(token: str) -> bytes | None:
    """The bytes Python 2 gives a plain string literal in a UTF-8 file; None if not one."""
    quote = min(i for i in (token.find("'"), token.find('"')) if i >= 0)
    prefix = token[:quote].lower()
    if set(prefix) & set("ubf"):
        return None
    body = token[quote:]
    delimiter = 3 if body[:3] in ('"""', "'''") else 1
    text = body[delimiter:-delimiter]
    if "r" in prefix:
        return text.encode("utf-8")
    # A bytes literal evaluates the escapes as Python 2 did; it takes ASCII only, so the
    # UTF-8 text of the source goes in as \x escapes, which is what Python 2 read.
    escaped = "".join(
        c if ord(c) < 0x80 else "".join(f"\\x{b:02x}" for b in c.encode()) for c in text
    )
    quotes = body[:delimiter]
    value: bytes = eval(f"b{quotes}{escaped}{quotes}", {"__builtins__": {}})
    return value


def convert_literals(source: str) -> tuple[str, int]:
    """Rewrite non-ASCII py2 byte-string literals as latin-1 str literals of the same bytes."""
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    edits = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.STRING:
            continue
        value = py2_literal_bytes(tok.string)
        if value is None or value.isascii():
            continue
        begin = starts[tok.start[0] - 1] + tok.start[1]
        end = starts[tok.end[0] - 1] + tok.end[1]
        edits.append((begin, end, repr(value.decode("latin-1"))))
    for begin, end, new in reversed(edits):
        source = source[:begin] + new + source[end:]
    return source, len(edits)


# ------------------------------------------------------------------ step 3c: edits
_TO_BYTES = '''

def _py3_bytes(value):
   """py3 port: a py2 byte string held in a latin-1 str, as bytes"""
   return value.encode('latin-1') if isinstance(value, str) else value

'''

# Current autobahn wants bytes where the suite passes py2 strings; its protocols lost .debug.
_SEND_HOOKS = """
   debug = False  # py3 port: current autobahn protocols have no .debug

   def sendFrame(self, opcode, payload=b'', *args, **kw):
      return super().sendFrame(opcode, _py3_bytes(payload), *args, **kw)

   def sendMessage(self, payload, *args, **kw):
      return super().sendMessage(_py3_bytes(payload), *args, **kw)

   def sendMessageFrame(self, payload, *args, **kw):
      return super().sendMessageFrame(_py3_bytes(payload), *args, **kw)

   def sendMessageFrameData(self, payload, sync=False):
      return super().sendMessageFrameData(_py3_bytes(payload), sync)

   def sendPing(self, payload=None):
      return super().sendPing(_py3_bytes(payload))

   def sendPong(self, payload=None):
      return super().sendPong(_py3_bytes(payload))

   def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):
      return super().sendCloseFrame(code, _py3_bytes(reasonUtf8), isReply)
"""

_NORMALIZE = """def _py3_events(events):
   # py3 port: compare the payload (2nd item of each event) as bytes
   return [(e[0], _py3_bytes(e[1])) + tuple(e[2:]) for e in events]


def _py3_bytes(value):
   return value.encode('latin-1') if isinstance(value, str) else value


class Case:"""

# (file, old text, new text, how many times old must occur)
EDITS: list[tuple[str, str, str, int]] = [
    (
        "fuzzing.py",
        "def binLogData(data, maxlen = 64):",
        _TO_BYTES + "def binLogData(data, maxlen = 64):",
        1,
    ),
    (
        "fuzzing.py",
        "dd = binascii.b2a_hex(data[:maxlen]) + ellipses",
        "dd = binascii.b2a_hex(_py3_bytes(data)[:maxlen]).decode() + ellipses",
        1,
    ),
    (
        "fuzzing.py",
        "dd = binascii.b2a_hex(data)\n",
        "dd = binascii.b2a_hex(_py3_bytes(data)).decode()\n",
        1,
    ),
    (
        "fuzzing.py",
        "   try:\n      if len(data) > maxlen - len(ellipses):\n"
        "         dd = data[:maxlen] + ellipses\n",
        "   try:\n      data = _py3_bytes(data)\n      if len(data) > maxlen - len(ellipses):\n"
        "         dd = data[:maxlen] + ellipses.encode()\n",
        1,
    ),
    ("fuzzing.py", "   MAX_WIRE_LOG_DATA = 256\n", "   MAX_WIRE_LOG_DATA = 256\n" + _SEND_HOOKS, 1),
    (
        "fuzzing.py",
        "p = ''.join(payload)",
        "p = b''.join(payload) if isinstance(payload, list) else payload",
        1,
    ),
    (
        "fuzzing.py",
        "binascii.b2a_hex(frameHeader.mask) if frameHeader.mask",
        "binascii.b2a_hex(frameHeader.mask).decode() if frameHeader.mask",
        2,
    ),
    (
        "fuzzing.py",
        "WebSocketServerFactory.__init__(self, debug = debug, debugCodePaths = debug)",
        "WebSocketServerFactory.__init__(self)",
        1,
    ),
    (
        "fuzzing.py",
        "WebSocketClientFactory.__init__(self, debug = debug, debugCodePaths = debug)",
        "WebSocketClientFactory.__init__(self)",
        1,
    ),
    (
        "fuzzing.py",
        "f = open(os.path.join(outdir, report_filename), 'w')",
        "f = open(os.path.join(outdir, report_filename), 'w', encoding='utf-8')",
        4,
    ),
    (
        "fuzzing.py",
        '% (c[0], case[c[0]], c[1])).encode("utf-8"))',
        "% (c[0], case[c[0]], c[1])))",
        1,
    ),
    ("fuzzing.py", ", ll.encode('utf8')))", ", ll))", 1),
    (
        "fuzzing.py",
        "mmask = binascii.b2a_hex(t[6])",
        "mmask = t[6]  # py3 port: hex text already",
        1,
    ),
    (
        "fuzzing.py",
        "json.dumps(case, sort_keys = True, indent = 3, separators = (',', ': '))",
        "json.dumps(case, sort_keys = True, indent = 3, separators = (',', ': '), "
        "default = lambda o: o.decode('latin-1') if isinstance(o, bytes) else str(o))",
        1,
    ),
    (
        "case/case.py",
        "return pickle.dumps(obj1) == pickle.dumps(obj2)",
        "return pickle.dumps(_py3_events(obj1)) == pickle.dumps(_py3_events(obj2))",
        1,
    ),
    ("case/case.py", "class Case:", _NORMALIZE, 1),
    (
        "wstest.py",
        "from . import serializer\n",
        "try:\n   from . import serializer\n"
        "except ImportError:  # py3 port: WAMP only, old autobahn\n"
        "   serializer = None\n",
        1,
    ),
    (
        "case/case10_1_1.py",
        "len(self.payload) / self.p.autoFragmentSize",
        "len(self.payload) // self.p.autoFragmentSize",
        1,
    ),
    (
        "case/case9_9_1.py",
        "from zope.interface import implements",
        "from zope.interface import implementer",
        1,
    ),
    (
        "case/case9_9_1.py",
        "class FrameProducer:\n\n   implements(interfaces.IPushProducer)\n",
        "@implementer(interfaces.IPushProducer)\nclass FrameProducer:\n",
        1,
    ),
    (
        "case/case6_x_x.py",
        "res = v.validate(vss[:i])",
        "res = v.validate(vss[:i].encode('latin-1'))",
        1,
    ),
]

# Edits over files of case/: (file glob, pattern, replacement, total matches expected;
# 0 means at least one).
_HEX = r"binascii\.b2a_hex\(([\w.\[\]:]+)\)"
CASE_PATTERNS: list[tuple[str, str, str, int]] = [
    # dynamically built case classes: (object, Case) has no consistent MRO on Python 3
    ("*.py", r"\(object, Case, \)", "(Case, )", 6),
    ("*.py", _HEX, r"(\1.encode('latin-1') if isinstance(\1, str) else \1).hex()", 21),
    # current autobahn spells the permessage-deflate parameters in snake_case
    ("case12_x_x.py", r"\b(request|accept)NoContextTakeover\b", r"\1_no_context_takeover", 0),
    ("case12_x_x.py", r"\b(request|accept)MaxWindowBits\b", r"\1_max_window_bits", 0),
]


def apply_edit(text: str, where: str, old: str, new: str, count: int) -> str:
    """Replace ``old`` by ``new``; it must occur exactly ``count`` times."""
    found = text.count(old)
    if found != count:
        raise InstallError(
            f"upstream changed: {where}: expected {count} x {old[:70]!r}, found {found}; "
            "update EDITS in compliance/install.py for the new autobahntestsuite"
        )
    return text.replace(old, new)


def convert(package: Path, venv_python: Path) -> None:
    """Turn the unpacked ``autobahntestsuite/`` folder into Python 3 code, in place."""
    literals = 0
    for path in sorted((package / "case").glob("*.py")):
        text, n = convert_literals(path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")
        literals += n
    print(f"[install] {literals} non-ASCII byte-string literals made latin-1 str", flush=True)
    done = subprocess.run(
        [str(venv_python), "-W", "ignore", "-m", "fissix", "-w", "-n", "--no-diffs", str(package)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise InstallError(f"fissix failed:\n{done.stdout}{done.stderr}")
    for rel, old, new, count in EDITS:
        path = package / rel
        path.write_text(
            apply_edit(path.read_text(encoding="utf-8"), rel, old, new, count), encoding="utf-8"
        )
    for glob, pattern, replacement, expected in CASE_PATTERNS:
        total = 0
        for path in sorted((package / "case").glob(glob)):
            text, n = re.subn(pattern, replacement, path.read_text(encoding="utf-8"))
            path.write_text(text, encoding="utf-8")
            total += n
        if (expected and total != expected) or (not expected and not total):
            raise InstallError(
                f"upstream changed: case/{glob}: pattern {pattern!r} matched {total} times, "
                f"expected {expected or 'at least 1'}"
            )
    print(f"[install] converted; {len(EDITS)} edits and {len(CASE_PATTERNS)} patterns applied")


# ------------------------------------------------------------------ the install
def recipe() -> dict[str, str]:
    """What an install is made of: a change of any of it means a rebuild."""
    digest = hashlib.sha256(Path(__file__).read_bytes() + REQUIREMENTS.read_bytes()).hexdigest()
    return {"autobahntestsuite": SUITE_VERSION, "recipe": digest, "python": sys.version.split()[0]}


def is_installed(venv: Path) -> bool:
    marker = venv / MARKER
    if not marker.exists() or not (venv / "bin" / "wstest").exists():
        return False
    try:
        return bool(json.loads(marker.read_text()) == recipe())
    except ValueError:
        return False


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise InstallError(f"{what} failed (status {done.returncode}):\n{done.stdout}{done.stderr}")


SMOKE = f"""
import autobahn, autobahntestsuite
from autobahntestsuite.case import Cases
assert len(Cases) == {CASE_COUNT}, len(Cases)
print("[install] ok: autobahntestsuite", autobahntestsuite.version, "on autobahn",
      autobahn.__version__, "with", len(Cases), "cases")
"""


def ensure(venv: Path) -> None:
    """Install the suite into ``venv`` unless the same recipe is already installed there."""
    if is_installed(venv):
        return
    if venv.exists():
        if any(venv.iterdir()) and not (venv / "pyvenv.cfg").exists():
            raise InstallError(f"{venv} exists and is not a virtual environment; not touching it")
        shutil.rmtree(venv)  # half-made, or another recipe: start over
    print(f"[install] installing the Autobahn Testsuite {SUITE_VERSION} into {venv}", flush=True)
    _run([sys.executable, "-m", "venv", str(venv)], "creating the venv")
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    _run([*pip, "install", "-r", str(REQUIREMENTS)], "installing the pinned dependencies")
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"autobahntestsuite=={SUITE_VERSION}"
        _run([*pip, "download", "--no-deps", "--no-binary", ":all:", spec, "-d", tmp], "download")
        (sdist,) = Path(tmp).glob("autobahntestsuite-*.tar.gz")
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != SUITE_SHA256:
            raise InstallError(f"{sdist.name}: sha256 {digest}, expected {SUITE_SHA256}")
        with tarfile.open(sdist) as archive:
            archive.extractall(tmp, filter="data")
        source = Path(tmp) / f"autobahntestsuite-{SUITE_VERSION}"
        convert(source / "autobahntestsuite", python)
        _run([*pip, "install", "--no-deps", "--no-build-isolation", str(source)], "installing")
    done = subprocess.run(
        [str(python), "-W", "ignore", "-c", SMOKE], capture_output=True, text=True
    )
    if done.returncode != 0 or not (venv / "bin" / "wstest").exists():
        raise InstallError(f"smoke check failed:\n{done.stdout}{done.stderr}")
    print(done.stdout.strip(), flush=True)
    (venv / MARKER).write_text(json.dumps(recipe()))


def main(argv: list[str]) -> int:
    venv = Path(argv[0]) if argv else HERE.parent / ".autobahn-venv"
    try:
        ensure(venv.resolve())
    except InstallError as exc:
        print(f"[install] error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
