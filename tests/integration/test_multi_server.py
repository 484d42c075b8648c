"""Multi server mode with servers on 127.0.0.2 (Management Server),
127.0.0.3 (Instance Host), 127.0.0.4 (Client Access Server) and 127.0.0.5
(a second Instance Host, paired by hand): separate config directories,
the way docs/operations.md sets them up."""
import json
import os

import pytest

from daemonfix import Api, all_connected, free_port, role_states, wait_for

ADMIN_PW = "multi-secret"


@pytest.fixture
def mgmt(make_server):
    s = make_server("mgmt", "127.0.0.2")
    s.ports = {"http": free_port(s.addr), "tcp": free_port(s.addr)}
    s.config("init", "--mode", "multi")
    s.config("role", "add", "management-server", "--server-name", s.addr,
             "--tcp-listeners", "%s:%d" % (s.addr, s.ports["tcp"]),
             "--http-listeners", "%s:%d" % (s.addr, s.ports["http"]),
             "--admin-name", "admin", "--admin-password", ADMIN_PW, "--product-key", "COFFER-TEST-12345")
    s.config("start")
    s.api = Api(s, s.addr, s.ports["http"], ADMIN_PW)
    return s


def add_role(s, role, **extra):
    port = free_port(s.addr)
    args = ["role", "add", role, "--server-name", s.addr, "--tcp-listeners", "%s:%d" % (s.addr, port)]
    if role == "client-access-server":
        for kind in ("http", "imap", "imaps"):
            args += ["--%s-listeners" % kind, "%s:%d" % (s.addr, free_port(s.addr))]
    for k, v in extra.items():
        args += ["--" + k.replace("_", "-"), v]
    s.config("init", "--mode", "multi")
    s.config(*args)
    s.tcp_port = port
    return s


def pair(s, mgmt, *extra, check=True):
    return s.config("pair", "--management-server", mgmt.addr, "--api-port", mgmt.ports["http"],
                    "--admin-name", "admin", *extra, check=check)


def test_automatic_pairing_and_status(mgmt, make_server):
    ih = add_role(make_server("ih1", "127.0.0.3"), "instance-host")
    cas = add_role(make_server("cas1", "127.0.0.4"), "client-access-server")
    http_fp = mgmt.fingerprint("management-server", "http")
    p = pair(ih, mgmt, "--admin-password", ADMIN_PW, "--trust-on-first-use")
    assert http_fp in p.stdout, "trust on first use shows the fingerprint"
    pair(cas, mgmt, "--admin-password", ADMIN_PW, "--fingerprint", http_fp.upper())
    # The roles now pin the Management Server's TCP certificate.
    assert ih.show("instance-host")["managementServer"]["fingerprint"] == mgmt.fingerprint("management-server")
    ih.config("start")
    cas.config("start")
    st = wait_for(all_connected(mgmt.api), what="IH and CAS connected")
    assert role_states(st, "instanceHosts") == {"127.0.0.3": "connected"}
    assert role_states(st, "clientAccessServers") == {"127.0.0.4": "connected"}
    hosts = mgmt.api.call("GetInstanceHosts")
    assert hosts[0]["fingerprint"] == ih.fingerprint("instance-host")
    # The Client Access Server reaches the Instance Host directly.
    wait_for(lambda: [l for c in mgmt.api.status()["clientAccessServers"]
                      for l in c.get("instanceHostLinks", []) if l["state"] == "connected"],
             timeout=25, what="CAS -> IH link")
    env = mgmt.api.call("GetEnvironmentInfo")
    assert env["mode"] == "multi" and env["licensee"].endswith("12345")
    assert "COFFER-TEST" not in json.dumps(env)


def test_manual_pairing_of_a_second_instance_host(mgmt, make_server):
    ih2 = add_role(make_server("ih2", "127.0.0.5"), "instance-host")
    fp = ih2.fingerprint("instance-host")
    # On the Management Server: register by name, port and fingerprint.
    mgmt.api.call("CreateInstanceHost", "serverName=127.0.0.5", "port=%d" % ih2.tcp_port, "fingerprint=" + fp)
    # On the Instance Host: the Management Server's address and TCP fingerprint.
    ih2.config("role", "configure", "instance-host", "--management-server", mgmt.addr,
               "--management-port", str(mgmt.ports["tcp"]),
               "--management-fingerprint", mgmt.fingerprint("management-server"))
    ih2.config("start")
    wait_for(all_connected(mgmt.api, hosts=1, cas=0), what="manually paired IH connected")
    p = mgmt.api.call_raw("CreateInstanceHost", "serverName=127.0.0.5", "port=%d" % ih2.tcp_port, "fingerprint=" + fp)
    assert p.returncode == 1 and "already registered" in p.stdout
    mgmt.api.call("DeleteInstanceHost", "serverName=127.0.0.5")
    assert mgmt.api.call("GetInstanceHosts") == []
    p = mgmt.api.call_raw("DeleteInstanceHost", "serverName=127.0.0.5")
    assert p.returncode == 1 and "no InstanceHost" in p.stdout


def test_mismatched_certificate_is_refused_and_shown(mgmt, make_server):
    ih = add_role(make_server("ih1", "127.0.0.3"), "instance-host")
    pair(ih, mgmt, "--admin-password", ADMIN_PW, "--trust-on-first-use")
    registered = ih.fingerprint("instance-host")
    # The Instance Host's certificate changes without pairing again.
    ih.config("cert", "renew", "instance-host", "tcp")
    assert ih.fingerprint("instance-host") != registered
    ih.config("start")
    st = wait_for(lambda: (lambda s: s if s["instanceHosts"][0]["state"] == "fingerprintRefused" else None)(
        mgmt.api.status()), what="fingerprint refused")
    h = st["instanceHosts"][0]
    assert h["presentedFingerprint"] == ih.fingerprint("instance-host")
    assert registered in h["error"] and h["eventLink"] == "disconnected"
    assert any("does not match the registered fingerprint" in m["text"] for m in st["messages"])
    # Its event link to the Management Server is refused too, and logged.
    wait_for(lambda: any("refused a connection" in m["text"] for m in mgmt.api.status()["messages"]),
             what="refused inbound connection in messages")
    # Pairing again fixes it.
    pair(ih, mgmt, "--admin-password", ADMIN_PW, "--trust-on-first-use")
    wait_for(all_connected(mgmt.api, hosts=1, cas=0), timeout=40, what="connected after re-pairing")


def test_pairing_with_wrong_password_changes_nothing(mgmt, make_server):
    ih = add_role(make_server("ih1", "127.0.0.3"), "instance-host")
    path = os.path.join(ih.dir, "instance-host.json")
    before = open(path, "rb").read()
    p = pair(ih, mgmt, "--admin-password", "wrong", "--trust-on-first-use", check=False)
    assert p.returncode != 0
    assert "refused the administrator name or password" in p.stderr
    assert open(path, "rb").read() == before
    assert mgmt.api.call("GetInstanceHosts") == []
    # A wrong pinned fingerprint: refused before any password is sent.
    p = pair(ih, mgmt, "--admin-password", ADMIN_PW, "--fingerprint", "ab" * 32, check=False)
    assert p.returncode != 0 and "mismatch" in p.stderr
    assert open(path, "rb").read() == before
    # Without a fingerprint and without a terminal, pairing asks for one.
    p = pair(ih, mgmt, "--admin-password", ADMIN_PW, check=False)
    assert p.returncode != 0 and "--trust-on-first-use" in p.stderr


def test_instances_on_two_instance_hosts(mgmt, make_server):
    """The provider's lifecycle across servers: two Instance Hosts, an
    instance on each, users, an import, statistics."""
    import os
    from mailgen import write_mbox
    hosts = []
    for name, addr in (("ih1", "127.0.0.3"), ("ih2", "127.0.0.5")):
        ih = add_role(make_server(name, addr), "instance-host")
        pair(ih, mgmt, "--admin-password", ADMIN_PW, "--trust-on-first-use")
        ih.config("start")
        hosts.append(ih)
    wait_for(all_connected(mgmt.api, hosts=2, cas=0), what="both Instance Hosts connected")
    api = mgmt.api
    for ih, iid in zip(hosts, ("north", "south")):
        data = os.path.join(os.path.dirname(ih.dir), "data-" + ih.name)
        os.makedirs(data, exist_ok=True)
        os.chown(data, *(lambda p: (p.pw_uid, p.pw_gid))(__import__("pwd").getpwnam("coffer")))
        api.call("CreateInstance", "instanceID=" + iid, "instanceHost=" + ih.addr,
                 "baseDirectory=%s/%s" % (data, iid), "displayName=" + iid.title())
    wait_for(lambda: [i["status"] for i in api.call("GetInstances")] == ["running", "running"],
             timeout=30, what="both instances running")
    assert {i["instanceID"]: i["instanceHost"] for i in api.call("GetInstances")} == \
        {"north": "127.0.0.3", "south": "127.0.0.5"}
    # Each instance's process runs on its own Instance Host.
    assert os.path.exists(os.path.join(hosts[0].dir, "instance-keys", "north.key"))
    assert not os.path.exists(os.path.join(hosts[0].dir, "instance-keys", "south.key"))
    api.call("CreateUser", "instanceID=south", "userName=sam", "password=sam-pass-1")
    base = api.call("GetInstanceConfiguration", "instanceID=south")["baseDirectory"]
    write_mbox(os.path.join(base, "import", "m.mbox"), 30)
    r = api.call("ImportFiles", "instanceID=south", "userName=sam", "path=import/m.mbox")
    assert r["archived"] == 30
    assert api.call("GetInstanceStatistics", "instanceID=south")["messages"] == 30
    assert api.call("GetInstanceStatistics", "instanceID=north")["messages"] == 0
    assert api.call("GetUsers", "instanceID=north") == []
    wait_for(lambda: {h["serverName"]: h.get("instancesRunning") for h in api.status()["instanceHosts"]}
             == {"127.0.0.3": 1, "127.0.0.5": 1}, what="instance counts per host")
    # The whole lifecycle on a remote Instance Host.
    for fn, expect in (("StopInstances", "stopped"), ("StartInstances", "running"),
                       ("RestartInstances", "running"), ("FreezeInstances", "frozen"),
                       ("ThawInstances", "running"), ("StopInstances", "stopped")):
        r = api.call(fn, "instanceFilter=south")
        assert r[0]["status"] == expect, (fn, r)
    assert api.call("GetInstanceConfiguration", "instanceID=south")["status"] == "stopped"
    api.call("StartInstances", "instanceFilter=south")
    folders = api.call("GetFolderStatistics", "instanceID=south")
    assert folders == [{"folder": "sam/Import", "messages": 30, "bytes": folders[0]["bytes"]}]
    assert api.call("GetMessages", "instanceID=south", "folder=sam/Import", "limit=5")["total"] == 30
    assert api.call("Search", "instanceID=south", "query=invoice")["total"] == 6
    assert api.call("VerifyStores", "instanceID=south")["problems"] == 0
    live = api.call("GetInstanceProcessLiveStatistics", "instanceID=south")
    assert live["pid"] > 0
    dirs = api.call("GetDirectoriesOnInstanceHost", "instanceHost=127.0.0.5",
                    "path=" + os.path.dirname(base))
    assert base in dirs
    api.call("StopInstances", "instanceFilter=*")
    api.call("DeleteInstances", "instanceFilter=north", "deleteData=true")
    assert [i["instanceID"] for i in api.call("GetInstances")] == ["south"]
