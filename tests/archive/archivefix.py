"""Helpers for the archive engine's integration tests (imported as
`archivefix`, a name of its own so that one pytest call can collect every
suite): run the real `coffer archive` binary on base directories under a temporary directory,
with the key file kept in a separate directory (as in production)."""
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def coffer_bin():
    return os.environ.get("COFFER_BIN", str(REPO / "build" / "src" / "cli" / "coffer"))


class Archive:
    def __init__(self, base, key):
        self.base = Path(base)
        self.key = Path(key)

    def argv(self, *args):
        return [coffer_bin(), "archive", "--base-dir", str(self.base), "--key-file",
                str(self.key), *[str(a) for a in args]]

    def run(self, *args, check=True, input=None, **kw):
        p = subprocess.run(self.argv(*args), capture_output=True, input=input, **kw)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d): %s" % (args, p.returncode,
                                                         p.stderr.decode(errors="replace")))
        return p

    def import_(self, *args, **kw):
        """Returns {source: (id, sha256)} for every message reported archived."""
        p = self.run("import", *args, **kw)
        return parse_archived(p.stdout), p

    def search(self, query, limit=1000, offset=0):
        p = self.run("search", "--limit", limit, "--offset", offset, query)
        lines = p.stdout.decode().splitlines()
        return int(lines[0]), [int(l.split("\t")[0]) for l in lines[1:]]

    def show(self, msg_id):
        return self.run("show", msg_id).stdout

    def stats(self):
        import json
        return json.loads(self.run("stats").stdout)

    def verify(self):
        p = self.run("verify", check=False)
        return p.returncode, p.stdout.decode() + p.stderr.decode(errors="replace")


def small_tmpfs(path, size):
    """Mounts a tmpfs of `size` (as mount takes it: "16m") at path, for a
    full disk; a generator for a fixture to yield from (unmounts after).
    Skips where it cannot (not root)."""
    path.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                                            "tmpfs", str(path)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs (needs root)")
    yield path
    subprocess.run(["umount", "-l", str(path)])


def parse_archived(stdout):
    """The messages an import reported. A process killed mid-write leaves its
    last line cut short; only lines ended by a newline are reports."""
    found = {}
    text = stdout.decode(errors="replace")
    for line in text[:text.rfind("\n") + 1].splitlines():
        parts = line.split(" ")
        if len(parts) >= 4 and parts[0] in ("archived", "duplicate"):
            found[parts[3]] = (int(parts[1]), parts[2])
    return found


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def split_mboxrd(data):
    """The reference splitter of ../shared/peers/mbox2maildir.py."""
    import re
    sep = re.compile(rb"^From [^\n]*\n", re.M)
    unescape = re.compile(rb"^>(>*From )", re.M)
    marks = list(sep.finditer(data))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(data)
        msg = data[m.end():end]
        if msg.endswith(b"\n\n"):
            msg = msg[:-1]
        msg = unescape.sub(rb"\1", msg)
        if not msg.strip():
            continue
        out.append(msg)
    return out


def corpus_or_skip(name):
    path = SHARED / "corpus" / name
    if not path.exists():
        pytest.skip("%s is absent (the shared corpus lives in ../shared next to the "
                    "repository)" % path)
    return path
