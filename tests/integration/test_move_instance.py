"""MoveInstance between two Instance Hosts, end to end with real daemons.

Servers: the single server mode system of daemonfix (Management Server,
Instance Host and Client Access Server, config directory "single", all on
127.0.0.1) and a second Instance Host on 127.0.0.6 with its own config
directory ("ih2"), paired the way docs/operations.md does it: separate config
directories on distinct loopback addresses. The first test also runs on four
servers in network namespaces of their own (netnsfix; its "netns" variant,
skipped where namespaces cannot be made): the Management Server, the two
Instance Hosts (ih1.example.test, ih2.example.test, registered and reached
by those host names) and the Client Access Server the mail is read back
through, each with its own address, host name and config directory.

Time bounds: each MoveInstance moves a few MiB on loopback; `coffer api`
waits for the job (its own 60 s limit per call in daemonfix); state changes
are awaited with wait_for's 30 s, generous on a loaded 2-core machine."""
import errno
import imaplib
import json
import os
import re
import subprocess
import time

import pytest

from daemonfix import all_connected, free_port, start_single, wait_for
from mailgen import write_mbox
from test_imap import tls_context
from test_instances import data_dir, state
from test_moving_roles import add_instance_host, start_system

IH2 = "127.0.0.6"


class Across:
    """Two Instance Hosts, a Client Access Server and a Management Server,
    each a server (network namespace) of its own: what the helpers below
    read from the single server system (api, ports, dir, pid) and the names
    (ih1_name, ih2_name) and places (ih1, ih2, cas, imaps, data2) of each."""

    def __init__(self, net):
        mgmt, self.ih1, self.cas = start_system(net)
        self.api = mgmt.api
        self.ih2 = add_instance_host(net.server("ih2", IH2, hostname="ih2.example.test"), mgmt)
        wait_for(all_connected(self.api, hosts=2, cas=1), timeout=30, what="both Instance Hosts connected")
        net.assert_placed(self.ih2, "instance-host")
        self.dir = self.ih1.dir
        self.ih1_name, self.ih2_name = self.ih1.server_name, self.ih2.server_name
        self.imaps = (self.cas.addr, self.cas.ports["imaps"])
        self.data2 = os.path.join(os.path.dirname(self.ih2.dir), "data2")
        os.makedirs(self.data2, exist_ok=True)
        subprocess.run(["chown", "coffer", self.data2], check=False)


def add_second_host(single, make_server):
    ih2 = make_server("ih2", IH2)
    port = free_port(IH2)
    ih2.config("init", "--mode", "multi")
    ih2.config("role", "add", "instance-host", "--server-name", IH2,
               "--tcp-listeners", "%s:%d" % (IH2, port))
    ih2.config("pair", "--management-server", "127.0.0.1", "--api-port", single.ports["mhttp"],
               "--admin-name", "admin", "--admin-password", "pw-single", "--trust-on-first-use")
    ih2.config("start")
    wait_for(all_connected(single.api, hosts=2, cas=1), timeout=30, what="both Instance Hosts connected")
    single.ih2 = ih2
    single.data2 = os.path.join(os.path.dirname(ih2.dir), "data2")
    os.makedirs(single.data2, exist_ok=True)
    subprocess.run(["chown", "coffer", single.data2], check=False)
    single.ih1 = single.cas = single
    single.ih1_name, single.ih2_name = "127.0.0.1", IH2
    return single


@pytest.fixture
def two_hosts(single, make_server):
    return add_second_host(single, make_server)


@pytest.fixture
def hosts(net, make_server):
    """two_hosts, or (net "netns") four servers in namespaces (Across)."""
    if net.kind == "loopback":
        return add_second_host(start_single(make_server), make_server)
    return Across(net)


def make_acme(system, count=40):
    api = system.api
    base = data_dir(system, "acme")
    ih1 = getattr(system, "ih1_name", "127.0.0.1")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=" + ih1, "baseDirectory=" + base)
    wait_for(lambda: state(system, "acme") == "running", timeout=30, what="acme running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    write_mbox(os.path.join(base, "import", "a.mbox"), count)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/a.mbox",
                    "folder=INBOX")["archived"] == count
    return base


def fetch_all(system, password="alice-pass-1", login="alice@acme"):
    """Every message of a user's INBOX (alice's of acme unless told) over
    IMAPS through the Client Access Server, by UID."""
    addr, port = getattr(system, "imaps", None) or ("127.0.0.1", system.ports["cimaps"])
    m = imaplib.IMAP4_SSL(addr, port, ssl_context=tls_context())
    m.login(login, password)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK"
    typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    assert typ == "OK"
    out = {}
    for d in data:
        if isinstance(d, tuple):
            uid = int(d[0].split(b"UID ")[1].split()[0])
            out[uid] = d[1]
    m.logout()
    return out


def fetch_or_none(system):
    try:
        return fetch_all(system)
    except imaplib.IMAP4.error as e:
        if "UNAVAILABLE" not in str(e):
            raise
        return None


def cas_pid(system):
    return system.cas.pid("client-access-server")


def evict_from_page_cache(directory):
    """Drops every file under directory from the page cache (written back
    first), so that what reads them next reads from the disk."""
    for root, _, files in os.walk(directory):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_move_keeps_mail_and_logins_and_back_keeping_the_source(hosts):
    s = hosts
    api = s.api
    base = make_acme(s)
    # More than one 4 MiB chunk in one file, and bytes no compressor shrinks.
    blob = os.urandom(9 * 1024 * 1024 + 123)
    with open(os.path.join(base, "import", "big.bin"), "wb") as f:
        f.write(blob)
    before = fetch_all(s)
    assert len(before) == 40
    pid = cas_pid(s)
    target = os.path.join(s.data2, "acme")
    # the journal receiver's settings for it, kept by its Instance Host
    journal = api.call("SetJournalSettings", "instanceID=acme", "domains=acme.example",
                       "recipients=" + json.dumps({"journal@acme.example": "alice"}))

    # The move as a job: a token at once, then progress until it ends.
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + s.ih2_name,
                     "baseDirectory=" + target, extra=("--no-wait",))
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running", env
    token = env["token"]
    texts = []
    env = follow(api, token, lambda e: texts.append(e["statusText"]))
    assert env["statusCode"] == "succeeded", env
    assert env["result"]["instanceHost"] == s.ih2_name and env["result"]["sourceKept"] is False
    # Progress was shown; which texts a poller sees depends on how fast the
    # copy is (the first pass's "copying: X of Y bytes" is waited for in
    # test_move_live.py, where that pass lasts seconds). The first pass
    # carried every byte, the large file's included.
    assert any(texts), texts
    first = re.search(r"pass 1: \d+ files, (\d+) bytes copied and verified", env["logOutput"])
    assert first and int(first.group(1)) > len(blob), env["logOutput"]

    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == s.ih2_name and conf["baseDirectory"] == target
    assert conf["status"] == "running"
    # the journal settings went with it: on the target, gone from the source
    assert "journal settings set on" in env["logOutput"], env["logOutput"]
    assert api.call("GetJournalSettings", "instanceID=acme") == journal
    left = [i for i in api.call("GetInstanceHostJournalConfiguration",
                                "serverName=" + s.ih1_name)["instances"]
            if i.get("instanceID") == "acme"]
    assert all(not (i.get("domains") or i.get("addresses") or i.get("recipients"))
               for i in left), left
    # The data and key live on the target now, and only there.
    assert os.path.exists(os.path.join(s.ih2.dir, "instance-keys", "acme.key"))
    assert not os.path.exists(os.path.join(s.ih1.dir, "instance-keys", "acme.key"))
    assert not os.path.exists(base)
    with open(os.path.join(target, "import", "big.bin"), "rb") as f:
        assert f.read() == blob
    # Same bytes over IMAP, through the same Client Access Server process.
    assert fetch_all(s) == before
    assert cas_pid(s) == pid
    with pytest.raises(imaplib.IMAP4.error):
        fetch_all(s, password="wrong-password")
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 40

    # And back, keeping the copy on the second host. The source reads a
    # piece from the page cache when all of it is there (the first move:
    # everything had just been written) and with O_DIRECT when it is not:
    # dropped from the cache here, every piece of the way back is.
    evict_from_page_cache(target)
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + s.ih1_name,
                 "baseDirectory=" + base, "keepSource=true")
    assert r["instanceHost"] == s.ih1_name and r["sourceKept"] is True
    assert state(s, "acme") == "running"
    assert fetch_all(s) == before
    assert os.path.exists(os.path.join(target, "import", "big.bin"))
    assert os.path.exists(os.path.join(s.ih2.dir, "instance-keys", "acme.key"))
    assert os.path.exists(os.path.join(s.ih1.dir, "instance-keys", "acme.key"))


def test_move_to_a_file_system_that_refuses_o_direct(two_hosts):
    """The target writes pieces with O_DIRECT where the file system takes
    it; ramfs refuses O_DIRECT at open() (EINVAL), so a move whose target
    directory is on ramfs must fall back to buffered writes and still give
    a verified, byte-identical copy (the other moves here write to ext4,
    which takes O_DIRECT)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a ramfs needs root")
    s = two_hosts
    api = s.api
    base = make_acme(s, count=12)
    # more than one 4 MiB piece, and a last piece that is not a multiple of
    # the 4 KiB O_DIRECT wants
    blob = os.urandom(9 * 1024 * 1024 + 123)
    with open(os.path.join(base, "import", "big.bin"), "wb") as f:
        f.write(blob)
    before = fetch_all(s)
    mnt = os.path.join(s.data2, "ramfs")
    os.makedirs(mnt)
    subprocess.run(["mount", "-t", "ramfs", "-o", "mode=0755", "ramfs", mnt], check=True)
    try:
        subprocess.run(["chown", "coffer", mnt], check=False)
        # the premise: this file system refuses O_DIRECT
        with pytest.raises(OSError) as refused:
            os.open(os.path.join(mnt, "probe"), os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
        assert refused.value.errno == errno.EINVAL
        os.unlink(os.path.join(mnt, "probe"))
        target = os.path.join(mnt, "acme")
        r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target)
        assert r["instanceHost"] == IH2, r
        assert state(s, "acme") == "running"
        with open(os.path.join(target, "import", "big.bin"), "rb") as f:
            assert f.read() == blob
        assert fetch_all(s) == before
        assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
        # and off it again, so that the mount can go: now the source reads
        # from ramfs, which refuses its O_DIRECT reads too (buffered then)
        api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=127.0.0.1",
                 "baseDirectory=" + base)
        assert fetch_all(s) == before
        with open(os.path.join(base, "import", "big.bin"), "rb") as f:
            assert f.read() == blob
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)


def test_unwritable_target_fails_and_the_instance_keeps_running(two_hosts):
    s = two_hosts
    api = s.api
    make_acme(s, count=5)
    before = fetch_all(s)
    # A directory the Instance Host's user (coffer) may not write in.
    locked = os.path.join(os.path.dirname(s.ih2.dir), "locked")
    os.makedirs(locked)
    os.chmod(locked, 0o555)
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + os.path.join(locked, "acme"))
    assert p.returncode != 0
    env = json.loads(p.stdout)
    assert env["statusCode"] == "failed"
    msg = env["error"]["message"]
    assert "not usable" in msg and "Permission denied" in msg and "stays on 127.0.0.1" in msg, msg
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.1" and conf["status"] == "running"
    assert fetch_all(s) == before
    assert not os.path.exists(os.path.join(s.ih2.dir, "instance-keys", "acme.key"))


def test_failure_during_the_copy_is_undone(two_hosts):
    """A file the source cannot read fails the copy after the instance was
    stopped: the target's copy goes, the instance runs on the source again,
    and a retry after the cause is fixed works."""
    s = two_hosts
    api = s.api
    base = make_acme(s, count=5)
    before = fetch_all(s)
    bad = os.path.join(base, "import", "unreadable")
    with open(bad, "w") as f:
        f.write("x")
    os.chmod(bad, 0)  # root's own, coffer may not read it
    target = os.path.join(s.data2, "acme")
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target)
    env = json.loads(p.stdout)
    assert env["statusCode"] == "failed", env
    assert "cannot open" in env["error"]["message"] and "unreadable" in env["error"]["message"]
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.1" and conf["status"] == "running"
    assert not os.path.exists(target)
    for name in ("acme.key", "acme.key.moving"):
        assert not os.path.exists(os.path.join(s.ih2.dir, "instance-keys", name))
    assert fetch_all(s) == before
    # While it ran again, starts were not blocked; fixed, the retry works.
    os.unlink(bad)
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                 "baseDirectory=" + target)
    assert r["instanceHost"] == IH2
    assert fetch_all(s) == before


def rpc_frames(sock):
    """Read role-protocol JSON frames (docs/protocol.md) as they come."""
    buf = b""
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big"):
            n = int.from_bytes(buf[:4], "big")
            frame, buf = buf[4:4 + n], buf[4 + n:]
            if frame[0] == 1:
                yield json.loads(frame[1:])
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk


def rpc_send(sock, obj):
    payload = b"\x01" + json.dumps(obj).encode()
    sock.sendall(len(payload).to_bytes(4, "big") + payload)


def role_link(server, role, port):
    """A TLS link to the source Instance Host presenting `role`'s TCP
    certificate from `server`'s config directory."""
    import socket
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    certs = os.path.join(server.dir, "certs")
    ctx.load_cert_chain(os.path.join(certs, role + "-tcp.pem"), os.path.join(certs, role + "-tcp.key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    t = ctx.wrap_socket(raw)
    t.settimeout(20)
    rpc_send(t, {"hello": {"protocol": 1, "role": role, "serverName": "test", "version": "0"}})
    return t


def test_only_the_named_target_may_read_a_move(two_hosts):
    """The source's TCP port takes another Instance Host's certificate only
    while a move to it is open, and a Client Access Server (which it does
    accept) cannot read an instance's files."""
    import socket
    import ssl
    s = two_hosts
    port = s.ports["itcp"]
    # ih2 is a registered Instance Host, but no move to it is open.
    try:
        t = role_link(s.ih2, "instance-host", port)
        frames = rpc_frames(t)
        got = next(frames, None)
        assert got is None or "hello" not in got, got
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, socket.timeout, OSError):
        pass
    # The Client Access Server is accepted, but may not make Move calls.
    t = role_link(s, "client-access-server", port)
    frames = rpc_frames(t)
    assert "hello" in next(frames)
    for i, (call, args) in enumerate((("MoveOutList", {"moveToken": "0" * 32}),
                                      ("MoveOutRead", {"moveToken": "0" * 32, "index": 0, "offset": 0}),
                                      ("MoveOutBegin", {"instanceID": "acme", "peerFingerprint": "0" * 64}),
                                      ("MoveInPrepare", {"instanceID": "x", "baseDirectory": "/tmp/x"}))):
        rpc_send(t, {"id": i + 1, "call": call, "args": args})
        answer = next(f for f in frames if f.get("id") == i + 1)
        assert answer["error"]["code"] == "forbidden", (call, answer)
    t.close()


def follow(api, token, until):
    """Poll a job until until(envelope) holds or it ends; the last envelope."""
    version = 0
    for _ in range(200):
        p = api.call_raw("/api/get-status", "token=" + token, "lastKnownStatusVersion=%d" % version,
                         "millisecondsTimeout=20000", extra=("--no-wait",))
        env = json.loads(p.stdout)
        version = env["statusVersion"]
        if env["statusCode"] != "running" or until(env):
            return env
    raise AssertionError("job did not get there: %r" % env)


def test_target_killed_during_the_move_then_retried(two_hosts):
    """The target Instance Host dies (SIGKILL) after it prepared the base
    directory: the move is undone, the instance runs on the source, and a
    retry after the target is back clears the leftover and works. The
    source is held with SIGSTOP so that the kill lands at a known step."""
    import signal
    s = two_hosts
    api = s.api
    make_acme(s, count=8)
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    source_pid = s.pid("instance-host")
    os.kill(source_pid, signal.SIGSTOP)
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + target, extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        env = follow(api, token, lambda e: (e["statusText"] or "").startswith("listing"))
        assert env["statusCode"] == "running", env
        os.kill(s.ih2.pid("instance-host"), signal.SIGKILL)
    finally:
        os.kill(source_pid, signal.SIGCONT)
    env = follow(api, token, lambda e: False)
    assert env["statusCode"] == "failed", env
    assert "127.0.0.6" in env["error"]["message"] and "stays on 127.0.0.1" in env["error"]["message"]
    wait_for(lambda: state(s, "acme") == "running", timeout=30, what="acme running on the source again")
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.1"
    assert fetch_all(s) == before
    # The killed target left its prepared directory behind.
    assert os.path.exists(os.path.join(target, ".coffer-moving-in"))
    s.ih2.config("start")
    wait_for(all_connected(api, hosts=2, cas=1), timeout=40, what="the target back")
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2, "baseDirectory=" + target)
    assert r["instanceHost"] == IH2
    assert not os.path.exists(os.path.join(target, ".coffer-moving-in"))
    # The Client Access Server reconnects to the restarted host by itself,
    # with its backoff (at most 30 s between attempts): "unavailable" until then.
    assert wait_for(lambda: fetch_or_none(s), timeout=45, what="IMAP through the restarted target") == before
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0


def test_no_start_on_the_source_while_its_files_are_read(two_hosts):
    """Between the source's listing and the end of the move, a start of
    the instance there is refused (a restart, a delete or a new base
    directory would pull the files from under the copy).
    Steps are pinned with SIGSTOP: the source is held until the target has
    prepared, then the target is held, so the move waits with the source's
    files listed; then both go on and the move finishes."""
    import signal
    s = two_hosts
    api = s.api
    make_acme(s, count=3)
    before = fetch_all(s)
    source_pid = s.pid("instance-host")
    target_pid = s.ih2.pid("instance-host")
    os.kill(source_pid, signal.SIGSTOP)
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + os.path.join(s.data2, "acme"), extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        env = follow(api, token, lambda e: (e["statusText"] or "").startswith("listing"))
        assert env["statusCode"] == "running", env
        os.kill(target_pid, signal.SIGSTOP)
    finally:
        os.kill(source_pid, signal.SIGCONT)
    try:
        env = follow(api, token, lambda e: (e["statusText"] or "").startswith("copying"))
        assert env["statusCode"] == "running", env
        p = api.call_raw("StartInstances", "instanceFilter=acme")
        out = json.loads(p.stdout)
        assert out["statusCode"] == "failed" and "being moved" in out["result"][0]["error"], out
    finally:
        os.kill(target_pid, signal.SIGCONT)
    env = follow(api, token, lambda e: False)
    assert env["statusCode"] == "succeeded", env
    assert fetch_all(s) == before


def test_cancel_undoes_the_move(two_hosts):
    """/api/cancel-async during a move: the job ends "cancelled", the
    target's copy is gone and the instance runs on the source. The source
    is held with SIGSTOP so that the cancel lands before the copy."""
    import signal
    s = two_hosts
    api = s.api
    make_acme(s, count=3)
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    source_pid = s.pid("instance-host")
    os.kill(source_pid, signal.SIGSTOP)
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + target, extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        follow(api, token, lambda e: (e["statusText"] or "").startswith("listing"))
        p = api.call_raw("/api/cancel-async", "token=" + token, extra=("--no-wait",))
        assert json.loads(p.stdout)["statusText"] == "cancelling"
    finally:
        os.kill(source_pid, signal.SIGCONT)
    env = follow(api, token, lambda e: False)
    assert env["statusCode"] == "cancelled", env
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.1" and conf["status"] == "running"
    assert not os.path.exists(target)
    assert fetch_all(s) == before


def test_move_instances_moves_every_match(two_hosts):
    """MoveInstances with a filter moves each matching instance that is not
    on the target yet, one after the other, and says how each went."""
    s = two_hosts
    api = s.api
    make_acme(s, count=4)
    base = data_dir(s, "globex")
    api.call("CreateInstance", "instanceID=globex", "instanceHost=127.0.0.1", "baseDirectory=" + base,
             "startMode=manual")
    api.call("CreateInstance", "instanceID=other", "instanceHost=127.0.0.1",
             "baseDirectory=" + data_dir(s, "other"), "startMode=manual")
    api.call("StartInstances", "instanceFilter=globex")
    api.call("CreateUser", "instanceID=globex", "userName=carol", "password=carol-pass-4")
    write_mbox(os.path.join(base, "import", "c.mbox"), 6, start=300)
    api.call("ImportFiles", "instanceID=globex", "userName=carol", "path=import/c.mbox", "folder=INBOX")
    alice, carol = fetch_all(s), fetch_all(s, "carol-pass-4", "carol@globex")
    assert len(alice) == 4 and len(carol) == 6
    # Both "servers" share this machine's disk: the same path on the target
    # is the source's own, full directory. Refused per instance, nothing lost.
    p = api.call_raw("MoveInstances", "instanceFilter=[ag]*", "targetInstanceHost=" + IH2)
    env = json.loads(p.stdout)
    assert env["statusCode"] == "failed" and "2 of 2" in env["error"]["message"], env
    assert all("exists and is not an empty directory" in x["error"] for x in env["result"]), env
    assert fetch_all(s) == alice and fetch_all(s, "carol-pass-4", "carol@globex") == carol
    r = api.call("MoveInstances", "instanceFilter=[ag]*", "targetInstanceHost=" + IH2,
                 "targetDirectory=" + s.data2)
    assert sorted((x["instanceID"], x["instanceHost"], x["baseDirectory"]) for x in r) == \
        [("acme", IH2, s.data2 + "/acme"), ("globex", IH2, s.data2 + "/globex")], r
    hosts = {i["instanceID"]: (i["instanceHost"], i["status"]) for i in api.call("GetInstances")}
    assert hosts == {"acme": (IH2, "running"), "globex": (IH2, "running"), "other": ("127.0.0.1", "stopped")}
    assert fetch_all(s) == alice and fetch_all(s, "carol-pass-4", "carol@globex") == carol
    # Nothing left to move: an empty result, not an error.
    assert api.call("MoveInstances", "instanceFilter=[ag]*", "targetInstanceHost=" + IH2) == []


def test_management_server_killed_during_the_move(two_hosts):
    """The Management Server dies (SIGKILL) with the source's files listed
    and the copy about to start: both Instance Hosts undo their part when
    its link closes, so the instance runs on the source as before (the
    move let it run; StartInstances finds it running) and the target's
    copy is gone; a retry works. Steps pinned with SIGSTOP as above."""
    import signal
    s = two_hosts
    api = s.api
    make_acme(s, count=3)
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    source_pid, target_pid = s.pid("instance-host"), s.ih2.pid("instance-host")
    os.kill(source_pid, signal.SIGSTOP)
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + target, extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        follow(api, token, lambda e: (e["statusText"] or "").startswith("listing"))
        os.kill(target_pid, signal.SIGSTOP)
    finally:
        os.kill(source_pid, signal.SIGCONT)
    try:
        follow(api, token, lambda e: (e["statusText"] or "").startswith("copying"))
        os.kill(s.pid("management-server"), signal.SIGKILL)
    finally:
        os.kill(target_pid, signal.SIGCONT)
    s.config("start")
    wait_for(all_connected(api, hosts=2, cas=1), timeout=40, what="every role reconnected")
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.1"
    wait_for(lambda: not os.path.exists(target), timeout=30, what="the target's copy removed")
    r = api.call("StartInstances", "instanceFilter=acme")
    assert r[0]["status"] == "running", r
    assert wait_for(lambda: fetch_or_none(s), timeout=45, what="IMAP on the source") == before
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2, "baseDirectory=" + target)
    assert r["instanceHost"] == IH2
    assert wait_for(lambda: fetch_or_none(s), timeout=45, what="IMAP on the target") == before


def test_source_killed_during_the_move_then_retried(two_hosts):
    """The source Instance Host dies (SIGKILL) after it listed the
    instance's files, as the target starts to copy: the target
    cannot read (the restarted source no longer accepts it), the move is
    undone, the instance runs on the restarted source with its mail, and a
    retry works. Steps pinned with SIGSTOP as above."""
    import signal
    s = two_hosts
    api = s.api
    make_acme(s, count=5)
    before = fetch_all(s)
    target = os.path.join(s.data2, "acme")
    source_pid, target_pid = s.pid("instance-host"), s.ih2.pid("instance-host")
    os.kill(source_pid, signal.SIGSTOP)
    try:
        p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                         "baseDirectory=" + target, extra=("--no-wait",))
        token = json.loads(p.stdout)["token"]
        follow(api, token, lambda e: (e["statusText"] or "").startswith("listing"))
        os.kill(target_pid, signal.SIGSTOP)
    finally:
        os.kill(source_pid, signal.SIGCONT)
    try:
        follow(api, token, lambda e: (e["statusText"] or "").startswith("copying"))
        s.kill("instance-host")
        s.config("start")  # starts the Instance Host again (the other roles run)
    finally:
        os.kill(target_pid, signal.SIGCONT)
    env = follow(api, token, lambda e: False)
    assert env["statusCode"] == "failed" and "stays on 127.0.0.1" in env["error"]["message"], env
    wait_for(lambda: state(s, "acme") == "running", timeout=30, what="acme running on the source")
    assert not os.path.exists(target)
    assert wait_for(lambda: fetch_or_none(s), timeout=45, what="IMAP on the source") == before
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2, "baseDirectory=" + target)
    assert r["instanceHost"] == IH2
    assert wait_for(lambda: fetch_or_none(s), timeout=45, what="IMAP on the target") == before
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0


def test_emptying_an_instance_host_and_removing_it(two_hosts):
    """docs/operations.md "Removing an Instance Host", command for command:
    the instances on the second host move to the first with MoveInstances
    (sourceInstanceHost picks them; one elsewhere stays), then the host is
    removed, which is refused while an instance lives there."""
    s = two_hosts
    api = s.api
    make_acme(s, count=3)  # on 127.0.0.1: not to be moved
    for iid, user in (("north", "nina"), ("south", "sam")):
        api.call("CreateInstance", "instanceID=" + iid, "instanceHost=" + IH2,
                 "baseDirectory=%s/%s" % (s.data2, iid))
        wait_for(lambda: state(s, iid) == "running", timeout=30, what=iid + " running")
        api.call("CreateUser", "instanceID=" + iid, "userName=" + user, "password=%s-pass-1" % user)
        base = "%s/%s" % (s.data2, iid)
        write_mbox(os.path.join(base, "import", "m.mbox"), 4, start=500)
        api.call("ImportFiles", "instanceID=" + iid, "userName=" + user, "path=import/m.mbox", "folder=INBOX")
    mail = {iid: fetch_all(s, "%s-pass-1" % user, "%s@%s" % (user, iid))
            for iid, user in (("north", "nina"), ("south", "sam"))}
    acme = fetch_all(s)
    p = api.call_raw("DeleteInstanceHost", "serverName=" + IH2)
    assert p.returncode != 0, p.stdout
    new_dir = os.path.join(os.path.dirname(s.dir), "data-moved")
    os.makedirs(new_dir)
    subprocess.run(["chown", "coffer", new_dir], check=False)
    r = api.call("MoveInstances", "instanceFilter=*", "sourceInstanceHost=" + IH2,
                 "targetInstanceHost=127.0.0.1", "targetDirectory=" + new_dir)
    assert sorted((x["instanceID"], x["instanceHost"]) for x in r) == \
        [("north", "127.0.0.1"), ("south", "127.0.0.1")], r
    api.call("DeleteInstanceHost", "serverName=" + IH2)
    s.ih2.config("stop", "instance-host")
    s.ih2.config("role", "remove", "instance-host")
    assert {i["instanceID"]: (i["instanceHost"], i["status"]) for i in api.call("GetInstances")} == \
        {"acme": ("127.0.0.1", "running"), "north": ("127.0.0.1", "running"),
         "south": ("127.0.0.1", "running")}
    for iid, user in (("north", "nina"), ("south", "sam")):
        assert fetch_all(s, "%s-pass-1" % user, "%s@%s" % (user, iid)) == mail[iid]
        assert not os.path.exists(os.path.join(s.data2, iid))
    assert fetch_all(s) == acme


def test_first_login_after_an_instance_host_restart(single):
    """The Client Access Server's link to an Instance Host that went away
    retries with backoff (1, 2, 4 s...). A login that needs the host while
    the link is down asks for a reconnect at once and waits for it (up to
    3 s) instead of answering UNAVAILABLE until the next retry: the first
    login after a host restart, or after an instance moved to a host this
    server had not reached yet, gets through."""
    s = single
    make_acme(s, count=3)
    before = fetch_all(s)
    s.config("stop", "instance-host")
    wait_for(lambda: state(s, "acme") != "running", timeout=30, what="acme seen stopping")
    time.sleep(4)  # the link's retries back off to 4 s
    s.config("start", "instance-host")
    wait_for(lambda: state(s, "acme") == "running", timeout=30, what="acme running again")
    start = time.monotonic()
    assert fetch_all(s) == before
    assert time.monotonic() - start < 3.0
