"""An idle instance gives its memory back (issue 11, SPEC: a thousand
instances per host). After real use (an import of 2,000 messages, searches
over them), an instance left idle closes its files and returns its heap.

The bound is on the process's private dirty memory (its heap, stacks and
the shared libraries' relocated data), at most 5 MB (see DIRTY_LIMIT_KIB):
that is what its PSS tends to on a host that runs many instances, where
every clean page of a file (the coffer binary's code, the libraries') is
shared by all of them."""
import json
import os
import re

import pytest

from daemonfix import SANITIZED, all_connected, wait_for
from mailgen import write_mbox
from test_instances import data_dir, state

IDLE_SECS = 3
# Measured here: 2.3-3.6 MB (the heap left after the trim varies with its
# fragmentation); before the trim, 27 MB. The target, 3 MB of PSS
# per instance, is for a thousand instances (bench/instances-bench.py --use);
# this test keeps the effect from regressing with a margin for the heap.
DIRTY_LIMIT_KIB = 5 * 1024


@pytest.fixture
def short_idle(monkeypatch):
    # inherited by the daemons the `single` fixture starts, then the instance
    monkeypatch.setenv("COFFER_INSTANCE_IDLE_SECS", str(IDLE_SECS))


def rollup(pid):
    fields = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            m = re.match(r"^(\w+):\s+(\d+) kB", line)
            if m:
                fields[m.group(1)] = int(m.group(2))
    return fields


def private_dirty_kib(pid):
    return rollup(pid)["Private_Dirty"]


def largest_private_mappings(pid, count=8):
    maps, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                cur = line.strip()
            elif line.startswith("Private_Dirty:"):
                maps.append((int(line.split()[1]), cur))
    return "\n".join("%8d KiB %s" % m for m in sorted(maps, reverse=True)[:count])


@pytest.mark.skipif(SANITIZED, reason="sanitizer shadow memory dwarfs the figure measured here")
def test_idle_instance_returns_its_memory(short_idle, single):
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    base = data_dir(single, "busy")
    api.call("CreateInstance", "instanceID=busy", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "busy") == "running", what="instance running")
    api.call("CreateUser", "instanceID=busy", "userName=alice", "password=alice-pass-1")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    write_mbox(os.path.join(base, "import", "mail.mbox"), 2000, size_pad=500)
    p = api.call_raw("ImportFiles", "instanceID=busy", "userName=alice", "path=import/mail.mbox",
                     "folder=Inbox")
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(p.stdout)["result"]["archived"] == 2000
    for q in ("subject:invoice", "panic", "holiday OR flush"):
        assert api.call("Search", "instanceID=busy", "query=" + q, "limit=1000")["total"] > 0
    pid = api.call("GetInstanceConfiguration", "instanceID=busy").get("pid")
    assert pid, "GetInstanceConfiguration gives the instance's pid"
    busy_kib = rollup(pid)["Rss"]
    assert busy_kib > 2 * DIRTY_LIMIT_KIB, "the use grew the process (RSS %d KiB)" % busy_kib

    try:
        wait_for(lambda: private_dirty_kib(pid) <= DIRTY_LIMIT_KIB, timeout=IDLE_SECS + 30, interval=0.5,
                 what="idle instance private dirty memory")
    except AssertionError:
        raise AssertionError("idle instance keeps %d KiB of its own (limit %d; busy RSS was %d KiB);"
                             " largest private mappings:\n%s"
                             % (private_dirty_kib(pid), DIRTY_LIMIT_KIB, busy_kib, largest_private_mappings(pid))
                             + "\n" + "\n".join(l for l in single.logs().splitlines() if "idle:" in l))
    assert "idle: files closed, memory returned" in single.logs()
    # and it still answers: the archive opens again on demand
    assert api.call("Search", "instanceID=busy", "query=subject:invoice", "limit=5")["total"] > 0
