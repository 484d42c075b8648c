"""MoveInstance between two Instance Hosts, end to end with real daemons.

Servers: the single server mode system of daemonfix (Management Server,
Instance Host and Client Access Server, config directory "single", all on
127.0.0.1) and a second Instance Host on 127.0.0.6 with its own config
directory ("ih2"), paired the way docs/operations.md does it. Separate config
directories on distinct loopback addresses, no network namespaces.

Time bounds: each MoveInstance moves a few MiB on loopback; `coffer api`
waits for the job (its own 60 s limit per call in daemonfix); state changes
are awaited with wait_for's 30 s, generous on a loaded 2-core machine."""
import imaplib
import json
import os
import subprocess

import pytest

from daemonfix import all_connected, free_port, wait_for
from mailgen import write_mbox
from test_imap import tls_context
from test_instances import data_dir, state

IH2 = "127.0.0.6"


@pytest.fixture
def two_hosts(single, make_server):
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
    return single


def make_acme(system, count=40):
    api = system.api
    base = data_dir(system, "acme")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(system, "acme") == "running", timeout=30, what="acme running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    write_mbox(os.path.join(base, "import", "a.mbox"), count)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/a.mbox",
                    "folder=INBOX")["archived"] == count
    return base


def fetch_all(system, password="alice-pass-1"):
    """Every message of alice's INBOX over IMAPS through the Client Access
    Server, by UID."""
    m = imaplib.IMAP4_SSL("127.0.0.1", system.ports["cimaps"], ssl_context=tls_context())
    m.login("alice@acme", password)
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


def cas_pid(system):
    return system.pid("client-access-server")


def test_move_keeps_mail_and_logins_and_back_keeping_the_source(two_hosts):
    s = two_hosts
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

    # The move as a job: a token at once, then progress until it ends.
    p = api.call_raw("MoveInstance", "instanceID=acme", "targetInstanceHost=" + IH2,
                     "baseDirectory=" + target, extra=("--no-wait",))
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running", env
    token = env["token"]
    texts, version = [], 0
    while True:
        q = api.call_raw("/api/get-status", "token=" + token, "lastKnownStatusVersion=%d" % version,
                         "millisecondsTimeout=20000", extra=("--no-wait",))
        env = json.loads(q.stdout)
        version = env["statusVersion"]
        texts.append(env["statusText"])
        if env["statusCode"] != "running":
            break
    assert env["statusCode"] == "succeeded", env
    assert env["result"]["instanceHost"] == IH2 and env["result"]["sourceKept"] is False
    assert any(t and t.startswith("copying") for t in texts), texts
    assert "copied and verified" in env["logOutput"]

    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == IH2 and conf["baseDirectory"] == target
    assert conf["status"] == "running"
    # The data and key live on the target now, and only there.
    assert os.path.exists(os.path.join(s.ih2.dir, "instance-keys", "acme.key"))
    assert not os.path.exists(os.path.join(s.dir, "instance-keys", "acme.key"))
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

    # And back, keeping the copy on the second host.
    r = api.call("MoveInstance", "instanceID=acme", "targetInstanceHost=127.0.0.1",
                 "baseDirectory=" + base, "keepSource=true")
    assert r["instanceHost"] == "127.0.0.1" and r["sourceKept"] is True
    assert state(s, "acme") == "running"
    assert fetch_all(s) == before
    assert os.path.exists(os.path.join(target, "import", "big.bin"))
    assert os.path.exists(os.path.join(s.ih2.dir, "instance-keys", "acme.key"))
    assert os.path.exists(os.path.join(s.dir, "instance-keys", "acme.key"))


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
