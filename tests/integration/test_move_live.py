"""MoveInstance of a running instance: writes during the copy are caught
up, the instance is frozen only for the last pass, the target Instance
Host keeps answering while it verifies a large file, and a target whose
disk fills up (an 8 MiB tmpfs, mounted here as root) fails the move
cleanly.

Servers as in test_move_instance.py: the single server mode system of
daemonfix on 127.0.0.1 and a second Instance Host on 127.0.0.6 (its own
config directory), no network namespaces. The second host runs with test
knobs (src/host/host-move.c, for tests only): COFFER_TEST_MOVE_READ_DELAY_MS
waits before each read, so that the first pass lasts seconds and an import
lands inside it, or the last (frozen) pass lasts long enough to kill the
Management Server during it; COFFER_TEST_MOVE_VERIFY_DELAY_MS makes
the end of a file of several pieces (its fsync, after its pieces were
written and verified) take seconds on its worker thread.

Time bounds: the first pass lasts at least (files x 700 ms), over 7 s; an
import of 30 messages takes well under that on an idle machine and is
checked to have finished while the job still copied (it would be refused
once frozen). A call to the target during its 6 s file end must answer
within 3 s: on the event loop it would wait for the whole of it. Other
waits: wait_for's 30 s and `coffer api`'s 60 s, generous on a loaded
2-core machine."""
import imaplib
import json
import os
import subprocess
import threading
import time

import pytest

from daemonfix import all_connected, free_port, wait_for
from mailgen import write_mbox
from test_imap import tls_context
from test_instances import state
from test_move_instance import IH2, fetch_all, follow, make_acme


def second_host(single, make_server, monkeypatch, **knobs):
    for name, value in knobs.items():
        monkeypatch.setenv(name, str(value))
    ih2 = make_server("ih2", IH2)
    port = free_port(IH2)
    ih2.config("init", "--mode", "multi")
    ih2.config("role", "add", "instance-host", "--server-name", IH2,
               "--tcp-listeners", "%s:%d" % (IH2, port))
    ih2.config("pair", "--management-server", "127.0.0.1", "--api-port", single.ports["mhttp"],
               "--admin-name", "admin", "--admin-password", "pw-single", "--trust-on-first-use")
    ih2.config("start")
    for name in knobs:
        monkeypatch.delenv(name)
    wait_for(all_connected(single.api, hosts=2, cas=1), timeout=30, what="both Instance Hosts connected")
    single.ih2 = ih2
    single.data2 = os.path.join(os.path.dirname(ih2.dir), "data2")
    os.makedirs(single.data2, exist_ok=True)
    subprocess.run(["chown", "coffer", single.data2], check=False)
    return single


class ImapPoller(threading.Thread):
    """Logs in over IMAPS through the Client Access Server every 100 ms and
    selects INBOX; records the longest stretch without an answer."""

    def __init__(self, system):
        super().__init__(daemon=True)
        self.system = system
        self.stop = threading.Event()
        self.longest = 0.0
        self.failures = 0
        self.polls = 0

    def once(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.system.ports["cimaps"], ssl_context=tls_context(),
                              timeout=20)
        try:
            m.login("alice@acme", "alice-pass-1")
            typ, _ = m.select("INBOX", readonly=True)
            return typ == "OK"
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def run(self):
        last_ok = time.monotonic()
        while not self.stop.is_set():
            try:
                ok = self.once()
            except (imaplib.IMAP4.error, OSError):
                ok = False
            now = time.monotonic()
            self.polls += 1
            if ok:
                last_ok = now
            else:
                self.failures += 1
                self.longest = max(self.longest, now - last_ok)
            time.sleep(0.1)


@pytest.fixture
def slow_first_pass(single, make_server, monkeypatch):
    return second_host(single, make_server, monkeypatch, COFFER_TEST_MOVE_READ_DELAY_MS=700)


def test_mail_imported_during_the_move_is_caught_up(slow_first_pass):
    s = slow_first_pass
    api = s.api
    base = make_acme(s, count=40)
    before = fetch_all(s)
    assert len(before) == 40
    target = os.path.join(s.data2, "acme")
    write_mbox(os.path.join(base, "import", "during.mbox"), 30, start=1000)
    poller = ImapPoller(s)
    poller.start()
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + target, extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        env = follow(api, token, lambda e: (e["statusText"] or "").startswith("copying"))
        assert env["statusCode"] == "running", env
        # The instance runs on the source during the first pass and takes
        # writes: an import, read back at once.
        r = api.call("ImportFiles", "instanceID=acme", "userName=alice",
                     "path=import/during.mbox", "folder=INBOX")
        assert r["archived"] == 30, r
        during = fetch_all(s)
        assert len(during) == 70
        p = api.call_raw("/api/get-status", "token=" + token, extra=("--no-wait",))
        env = json.loads(p.stdout)
        assert env["statusCode"] == "running" and env["statusText"].startswith("copying"), \
            "the import did not land inside the first pass: %r" % env
        env = follow(api, token, lambda e: False)
        assert env["statusCode"] == "succeeded", env
    finally:
        poller.stop.set()
        poller.join(30)
    log = env["logOutput"]
    assert "pass 1:" in log and "(frozen)" in log and "writes were paused for" in log, log
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == IH2 and conf["status"] == "running"
    assert not os.path.exists(base)
    # Every message, from before and from during the move, byte for byte.
    after = fetch_all(s)
    assert after == during
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 70
    paused = [line for line in log.splitlines() if "writes were paused for" in line]
    print("\nIMAP polls: %d, unanswered: %d, longest stretch without an answer: %.2f s; %s"
          % (poller.polls, poller.failures, poller.longest, paused[0].strip()))
    # Generous for a loaded machine; the copy itself took far longer.
    assert poller.longest < 20, poller.longest


@pytest.fixture
def slow_verify(single, make_server, monkeypatch):
    return second_host(single, make_server, monkeypatch, COFFER_TEST_MOVE_VERIFY_DELAY_MS=6000)


@pytest.mark.serial  # the slowest call's latency: run alone
def test_the_target_answers_while_it_verifies_a_large_file(slow_verify):
    s = slow_verify
    api = s.api
    base = make_acme(s, count=5)
    before = fetch_all(s)
    blob = os.urandom(3 * 4 * 1024 * 1024 + 77)  # four pieces
    with open(os.path.join(base, "import", "big.bin"), "wb") as f:
        f.write(blob)
    target = os.path.join(s.data2, "acme")
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target, extra=("--no-wait",))
    token = json.loads(p.stdout)["token"]
    # Wait until the large file is written out and being ended (fsynced).
    big = os.path.join(target, "import", "big.bin")
    wait_for(lambda: os.path.exists(big) and os.path.getsize(big) == len(blob), timeout=60,
             what="the large file copied to the target")
    worst = 0.0
    start = time.monotonic()
    while time.monotonic() - start < 5:
        t0 = time.monotonic()
        api.call("GetDirectoriesOnInstanceHost", "instanceHost=" + IH2, "path=" + s.data2)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.2)
    print("\nslowest call to the target during its file end: %.2f s" % worst)
    assert worst < 3, worst
    env = follow(api, token, lambda e: False)
    assert env["statusCode"] == "succeeded", env
    with open(os.path.join(target, "import", "big.bin"), "rb") as f:
        assert f.read() == blob
    assert fetch_all(s) == before
    wait_for(lambda: state(s, "acme") == "running", timeout=30, what="acme running on the target")


@pytest.fixture
def plain_hosts(single, make_server, monkeypatch):
    return second_host(single, make_server, monkeypatch)


@pytest.fixture
def full_disk(plain_hosts):
    """An 8 MiB tmpfs on the target's side, owned by the daemons' user."""
    mnt = os.path.join(os.path.dirname(plain_hosts.ih2.dir), "small")
    os.makedirs(mnt)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755",
                                            "tmpfs", mnt], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs (needs root)")
    subprocess.run(["chown", "coffer", mnt], check=False)
    yield mnt
    subprocess.run(["umount", "-l", mnt])


def add_big_file(base, size):
    """Bytes no compressor shrinks, in the instance's import/ folder."""
    blob = os.urandom(size)
    with open(os.path.join(base, "import", "big.bin"), "wb") as f:
        f.write(blob)
    return blob


def failed_move(api, base_directory):
    """MoveInstance of acme to the second host, which must fail: the error."""
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + base_directory)
    assert p.returncode != 0
    env = json.loads(p.stdout)
    assert env["statusCode"] == "failed", env
    return env["error"]["message"]


def assert_on_the_source(s, mail):
    conf = s.api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.1" and conf["status"] == "running", conf
    assert fetch_all(s) == mail


def assert_moved_intact(s, target, mail, blob):
    """A move to target works: the mail and the big file as they were."""
    r = s.api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                   "baseDirectory=" + target)
    assert r["instanceHost"] == IH2, r
    assert fetch_all(s) == mail
    with open(os.path.join(target, "import", "big.bin"), "rb") as f:
        assert f.read() == blob
    assert s.api.call("VerifyStores", "instanceID=acme")["problems"] == 0


def test_move_to_a_full_disk_fails_cleanly_and_a_retry_elsewhere_works(plain_hosts, full_disk):
    s = plain_hosts
    api = s.api
    base = make_acme(s, count=20)
    blob = add_big_file(base, 9 * 1024 * 1024)  # more than the target's 8 MiB
    before = fetch_all(s)
    msg = failed_move(api, os.path.join(full_disk, "acme"))
    assert "No space left on device" in msg and "stays on 127.0.0.1" in msg, msg
    # Nothing of the copy is left on the target (renamed aside at once,
    # removed on the target host's remover thread).
    assert not os.path.exists(os.path.join(full_disk, "acme"))
    wait_for(lambda: os.listdir(full_disk) == [], timeout=30, what="the copy removed")
    keys = os.path.join(s.ih2.dir, "instance-keys")
    assert not os.path.exists(os.path.join(keys, "acme.key"))
    assert not os.path.exists(os.path.join(keys, "acme.key.moving"))
    # The instance runs on the source with its mail, and takes writes.
    assert_on_the_source(s, before)
    write_mbox(os.path.join(base, "import", "later.mbox"), 5, start=2000)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/later.mbox",
                    "folder=INBOX")["archived"] == 5
    now = fetch_all(s)
    assert len(now) == 25
    # A retry to a target with room works.
    assert_moved_intact(s, os.path.join(s.data2, "acme"), now, blob)


@pytest.fixture
def corrupting_target(single, make_server, monkeypatch):
    return second_host(single, make_server, monkeypatch, COFFER_TEST_MOVE_CORRUPT_PIECES=1)


def test_a_piece_that_arrives_changed_fails_the_move(corrupting_target):
    """The target checksums every piece it writes against the source's: a
    byte flipped on its way (here by a test knob, in the first piece the
    target receives) fails the move before anything takes over; the
    instance stays on the source with its mail, and a retry works."""
    s = corrupting_target
    base = make_acme(s, count=20)
    blob = add_big_file(base, 5 * 1024 * 1024)  # more than one 4 MiB piece
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    msg = failed_move(s.api, target)
    assert "checksum of the copy" in msg and "differs from the source's" in msg, msg
    assert "stays on 127.0.0.1" in msg, msg
    wait_for(lambda: not os.path.exists(target), timeout=30, what="the copy removed")
    assert_on_the_source(s, before)
    # the knob corrupted one piece only: the retry goes through, verified
    assert_moved_intact(s, target, before, blob)


@pytest.fixture
def slow_passes(single, make_server, monkeypatch):
    return second_host(single, make_server, monkeypatch, COFFER_TEST_MOVE_READ_DELAY_MS=1500)


def test_management_server_killed_while_frozen(slow_passes):
    """The Management Server dies (SIGKILL) during the last pass, with the
    instance frozen on the source: the source thaws it when the link
    closes (it takes writes again, with nothing lost), the target removes
    its copy, and a retry works. Each read waits 1.5 s, so the last pass
    (it copies at least the catalog, which the freeze closed) lasts that
    long at least; the status is polled every 100 ms."""
    s = slow_passes
    api = s.api
    base = make_acme(s, count=6)
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target, extra=("--no-wait",))
    assert json.loads(p.stdout)["statusCode"] == "running"
    wait_for(lambda: state(s, "acme") == "frozen", timeout=120, interval=0.1,
             what="acme frozen for the last pass")
    s.kill("management-server")
    s.config("start")
    wait_for(all_connected(api, hosts=2, cas=1), timeout=40, what="every role reconnected")
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.1"
    wait_for(lambda: state(s, "acme") == "running", timeout=30, what="acme thawed on the source")
    wait_for(lambda: not os.path.exists(target), timeout=30, what="the target's copy removed")
    assert fetch_all(s) == before
    write_mbox(os.path.join(base, "import", "after.mbox"), 4, start=3000)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/after.mbox",
                    "folder=INBOX")["archived"] == 4
    now = fetch_all(s)
    assert len(now) == 10
    # The retry (slow passes too: followed as a job, not one 60 s call).
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target, extra=("--no-wait",))
    env = follow(api, json.loads(p.stdout)["token"], lambda e: False)
    assert env["statusCode"] == "succeeded", env
    assert fetch_all(s) == now
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
