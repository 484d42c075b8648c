"""Moving roles (docs/operations.md, "Moving roles"): removing, renaming and
relocating Instance Hosts, and the registrations' Set...Configuration calls.

The "servers" are separate config directories on distinct loopback addresses
(127.0.0.2 Management Server, 127.0.0.3 Instance Host, which also answers on
127.0.0.6 so that it can be renamed to that address; 127.0.0.4 Client Access
Server). Renaming an Instance Host also runs (its "netns" variant, skipped
where namespaces cannot be made) on servers that are network namespaces of
their own (netnsfix), where the names are host names: the Instance Host's
own changes from ih.example.test to ih-new.example.test. Time bounds are generous
(waits of 30-60 s) because the suite runs on a loaded 2-core machine."""
import os
import pwd
import time

import pytest

from daemonfix import Api, all_connected, free_port, role_states, wait_for

ADMIN_PW = "moving-secret"


def chown_coffer(path):
    pw = pwd.getpwnam("coffer")
    os.chown(path, pw.pw_uid, pw.pw_gid)


@pytest.fixture
def mgmt(net):
    """The Management Server on 127.0.0.2, or (net "netns") in a network
    namespace of its own as mgmt.example.test."""
    s = net.server("mgmt", "127.0.0.2")
    s.ports = {"http": free_port(s.addr), "tcp": free_port(s.addr)}
    s.config("init", "--mode", "multi")
    s.config("role", "add", "management-server", *s.server_name_args(),
             "--tcp-listeners", "%s:%d" % (s.addr, s.ports["tcp"]),
             "--http-listeners", "%s:%d" % (s.addr, s.ports["http"]),
             "--admin-name", "admin", "--admin-password", ADMIN_PW)
    s.config("start")
    s.api = Api(s, s.addr, s.ports["http"], ADMIN_PW)
    return s


def pair(s, mgmt):
    return s.config("pair", "--management-server", mgmt.server_name, "--api-port", mgmt.ports["http"],
                    "--admin-name", "admin", "--admin-password", ADMIN_PW, "--trust-on-first-use")


def instance_host(make_server, mgmt, *extra_addrs):
    """An Instance Host on 127.0.0.3 (and on extra_addrs, same port), paired
    and running. make_server: daemonfix's, or a netnsfix net's server."""
    s = make_server("ih", "127.0.0.3")
    s.tcp_port = free_port(s.addr)
    listeners = ",".join("%s:%d" % (a, s.tcp_port) for a in (s.addr,) + extra_addrs)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "instance-host", *s.server_name_args(), "--tcp-listeners", listeners)
    pair(s, mgmt)
    s.config("start")
    s.data = os.path.join(os.path.dirname(s.dir), "data-ih")
    os.makedirs(s.data, exist_ok=True)
    chown_coffer(s.data)
    return s


def client_access_server(make_server, mgmt, *extra_addrs):
    """A Client Access Server on 127.0.0.4 (its TCP listener also on extra_addrs)."""
    s = make_server("cas", "127.0.0.4")
    s.tcp_port, s.imaps_port = free_port(s.addr), free_port(s.addr)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "client-access-server", *s.server_name_args(),
             "--tcp-listeners", ",".join("%s:%d" % (a, s.tcp_port) for a in (s.addr,) + extra_addrs),
             "--http-listeners", "%s:%d" % (s.addr, free_port(s.addr)),
             "--imap-listeners", "%s:%d" % (s.addr, free_port(s.addr)),
             "--imaps-listeners", "%s:%d" % (s.addr, s.imaps_port))
    pair(s, mgmt)
    s.config("start")
    return s


def create_instance(api, ih, iid, host=None):
    api.call("CreateInstance", "instanceID=" + iid, "instanceHost=" + (host or ih.server_name),
             "baseDirectory=%s/%s" % (ih.data, iid))
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=" + iid)["status"] == "running",
             timeout=60, what="instance %s running" % iid)


def test_delete_instance_host_refuses_while_instances_live_there(mgmt, make_server):
    ih = instance_host(make_server, mgmt)
    api = mgmt.api
    wait_for(all_connected(api, hosts=1, cas=0), timeout=60, what="IH connected")
    create_instance(api, ih, "acme")
    p = api.call_raw("DeleteInstanceHost", "serverName=127.0.0.3")
    assert p.returncode == 1, p.stdout
    assert "still holds 1 instance(s)" in p.stdout and "MoveInstance" in p.stdout \
        and "DeleteInstances" in p.stdout, p.stdout
    # Nothing changed: the host is registered and the instance still answers.
    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == ["127.0.0.3"]
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running"
    api.call("StopInstances", "instanceFilter=acme")
    api.call("DeleteInstances", "instanceFilter=acme")
    api.call("DeleteInstanceHost", "serverName=127.0.0.3")
    assert api.call("GetInstanceHosts") == []


def import_mail(api, ih, iid, user, count):
    """Import `count` generated messages for `user` into its folder Inbox."""
    from mailgen import write_mbox
    base = os.path.join(ih.data, iid)
    write_mbox(os.path.join(base, "import", "m.mbox"), count)
    r = api.call("ImportFiles", "instanceID=" + iid, "userName=" + user, "path=import/m.mbox",
                 "folder=Inbox")
    assert r["archived"] == count, r


def imap_messages(cas, login, password):
    """Every message of INBOX over IMAPS on the Client Access Server, as bytes."""
    import imaplib
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL(cas.addr, cas.imaps_port, ssl_context=ctx, timeout=60)
    try:
        m.login(login, password)
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        n = int(data[0])
        typ, data = m.fetch("1:%d" % n, "(BODY.PEEK[])") if n else ("OK", [])
        return [d[1] for d in data if isinstance(d, tuple)]
    finally:
        m.logout()


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_renaming_an_instance_host(net, mgmt):
    """docs/operations.md "Renaming a server": stop, rename, pair, start.
    The registration, the instances and the Client Access Server's route
    follow the new name; every instance call works on the renamed host.
    On loopback the names are addresses (127.0.0.3 becomes 127.0.0.6, on
    which it listens as well); in the netns variant the Instance Host is a
    server of its own whose host name changes from ih.example.test to
    ih-new.example.test (the LAN's hosts files follow, so the old name no
    longer resolves anywhere) and `coffer config rename` takes that name."""
    extra = ("127.0.0.6",) if net.kind == "loopback" else ()
    ih = instance_host(net.server, mgmt, *extra)
    cas = client_access_server(net.server, mgmt)
    old_name = ih.server_name
    api = mgmt.api
    wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="IH and CAS connected")
    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == [old_name]
    net.assert_placed(ih, "instance-host")
    create_instance(api, ih, "acme")
    create_instance(api, ih, "beta")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    import_mail(api, ih, "acme", "alice", 12)
    wait_for(lambda: [l for c in api.status()["clientAccessServers"]
                      for l in c.get("instanceHostLinks", []) if l["state"] == "connected"],
             timeout=60, what="CAS -> IH link")
    before = imap_messages(cas, "alice@acme", "alice-pass-1")
    assert len(before) == 12

    # The procedure, as documented.
    ih.config("stop")
    if net.kind == "loopback":
        new_name = "127.0.0.6"
    else:
        net.rename_host(ih, "ih-new.example.test")  # the server's new host name
        new_name = ih.sh("hostname").stdout.strip()
        assert new_name == "ih-new.example.test"
        assert mgmt.sh("getent hosts %s" % old_name, check=False).returncode != 0, "the old name is gone"
    ih.config("rename", new_name)
    pair(ih, mgmt)
    ih.config("start")

    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == [new_name]
    assert {i["instanceID"]: i["instanceHost"] for i in api.call("GetInstances")} == \
        {"acme": new_name, "beta": new_name}
    st = wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="renamed IH connected")
    assert role_states(st, "instanceHosts") == {new_name: "connected"}
    assert any("%s renamed to %s" % (old_name, new_name) in m["text"] for m in st["messages"])
    net.assert_placed(ih, "instance-host")
    wait_for(lambda: {i["instanceID"]: i["status"] for i in api.call("GetInstances")}
             == {"acme": "running", "beta": "running"}, timeout=60, what="instances running again")
    wait_for(lambda: {h["serverName"]: h.get("instancesRunning") for h in api.status()["instanceHosts"]}
             == {new_name: 2}, timeout=30, what="the dashboard counts them under the new name")
    # The Client Access Server routes users to the new name.
    wait_for(lambda: [l for c in api.status()["clientAccessServers"]
                      for l in c.get("instanceHostLinks", [])
                      if l["serverName"] == new_name and l["state"] == "connected"],
             timeout=60, what="CAS -> renamed IH link")
    assert imap_messages(cas, "alice@acme", "alice-pass-1") == before
    # Every instance call reaches the renamed host.
    assert api.call("StopInstances", "instanceFilter=acme")[0]["status"] == "stopped"
    assert api.call("StartInstances", "instanceFilter=acme")[0]["status"] == "running"
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 12
    api.call("StopInstances", "instanceFilter=beta")
    api.call("DeleteInstances", "instanceFilter=beta", "deleteData=true")
    assert [i["instanceID"] for i in api.call("GetInstances")] == ["acme"]
    assert not os.path.exists(os.path.join(ih.data, "beta"))


def test_renaming_a_client_access_server(mgmt, make_server):
    """The same procedure on a Client Access Server: one registration under
    the new name, admitted by the Instance Host, users read their mail."""
    ih = instance_host(make_server, mgmt)
    cas = client_access_server(make_server, mgmt, "127.0.0.8")
    api = mgmt.api
    wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="IH and CAS connected")
    create_instance(api, ih, "acme")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    import_mail(api, ih, "acme", "alice", 4)
    cas.config("stop")
    cas.config("rename", "127.0.0.8")
    pair(cas, mgmt)
    cas.config("start")
    assert [c["serverName"] for c in api.call("GetClientAccessServers")] == ["127.0.0.8"]
    st = wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="renamed CAS connected")
    assert role_states(st, "clientAccessServers") == {"127.0.0.8": "connected"}
    wait_for(lambda: [l for c in api.status()["clientAccessServers"]
                      for l in c.get("instanceHostLinks", []) if l["state"] == "connected"],
             timeout=60, what="renamed CAS -> IH link")
    assert len(imap_messages(cas, "alice@acme", "alice-pass-1")) == 4


def test_single_server_instances_follow_a_new_instance_host_address(single):
    """In single server mode the local Instance Host is registered under its
    listener's address: moving the listener to another address (as a new
    host name does) keeps its instances with it."""
    api = single.api
    wait_for(all_connected(api), timeout=60, what="every role connected")
    data = os.path.join(os.path.dirname(single.dir), "data")
    os.makedirs(data, exist_ok=True)
    chown_coffer(data)
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1",
             "baseDirectory=%s/acme" % data)
    single.config("stop")
    single.config("role", "configure", "instance-host",
                  "--tcp-listeners", "127.0.0.7:%d" % single.ports["itcp"])
    single.config("start")
    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == ["127.0.0.7"]
    assert api.call("GetInstances")[0]["instanceHost"] == "127.0.0.7"
    wait_for(all_connected(api), timeout=60, what="every role connected again")
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="the instance running on the moved host")
    assert api.call("StopInstances", "instanceFilter=acme")[0]["status"] == "stopped"


def host_names(api):
    return [(h["serverName"], h["port"], h["fingerprint"]) for h in api.call("GetInstanceHosts")]


def test_set_instance_host_configuration(mgmt, make_server):
    """A registration changed by hand (the Instance Host got a new name, port
    and certificate at once, so pairing cannot recognize it): refused while
    it is wrong, connected with its instances once it is set."""
    ih = instance_host(make_server, mgmt, "127.0.0.6")
    api = mgmt.api
    wait_for(all_connected(api, hosts=1, cas=0), timeout=60, what="IH connected")
    create_instance(api, ih, "acme")
    before = host_names(api)
    # Bad input changes nothing.
    fp = ih.fingerprint("instance-host")
    for args, error in ((["serverName=nope", "port=1"], "no InstanceHost 'nope'"),
                        (["serverName=127.0.0.3"], "nothing to change"),
                        (["serverName=127.0.0.3", "port=0"], "argument 'port'"),
                        (["serverName=127.0.0.3", "port=70000"], "argument 'port'"),
                        (["serverName=127.0.0.3", "port=x"], "not a whole number"),
                        (["serverName=127.0.0.3", "fingerprint=abc"], "argument 'fingerprint'"),
                        (["serverName=127.0.0.3", "newServerName=bad name", "port=5"], "invalid serverName"),
                        (["serverName=127.0.0.3", "newServerName=" + "a" * 300], "invalid serverName")):
        p = api.call_raw("SetInstanceHostConfiguration", *args)
        assert p.returncode == 1 and error in p.stdout, (args, p.stdout)
        assert host_names(api) == before
    # The server changes: another port and certificate, known by another name.
    ih.config("stop")
    new_port = free_port(ih.addr)
    ih.config("role", "configure", "instance-host", "--server-name", "127.0.0.6",
              "--tcp-listeners", "127.0.0.3:%d,127.0.0.6:%d" % (new_port, new_port))
    ih.config("cert", "renew", "instance-host", "tcp")
    new_fp = ih.fingerprint("instance-host")
    assert new_fp != fp
    ih.config("start")
    time.sleep(2)
    assert all_connected(api, hosts=1, cas=0)() is None, "the old registration cannot reach it"
    r = api.call("SetInstanceHostConfiguration", "serverName=127.0.0.3", "newServerName=127.0.0.6",
                 "port=%d" % new_port, "fingerprint=" + new_fp.upper())
    assert (r["serverName"], r["port"], r["fingerprint"]) == ("127.0.0.6", new_port, new_fp)
    assert host_names(api) == [("127.0.0.6", new_port, new_fp)]
    assert api.call("GetInstances")[0]["instanceHost"] == "127.0.0.6"
    st = wait_for(all_connected(api, hosts=1, cas=0), timeout=60, what="IH connected with the new values")
    assert role_states(st, "instanceHosts") == {"127.0.0.6": "connected"}
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="the instance running on the changed host")
    assert api.call("StopInstances", "instanceFilter=acme")[0]["status"] == "stopped"
    assert api.call("StartInstances", "instanceFilter=acme")[0]["status"] == "running"


def test_set_client_access_server_configuration(mgmt, make_server):
    """A Client Access Server with a new certificate is refused by the
    Management Server and by the Instance Host until its registration has the
    new fingerprint; then users reach their mail through it again."""
    ih = instance_host(make_server, mgmt)
    cas = client_access_server(make_server, mgmt)
    api = mgmt.api
    wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="IH and CAS connected")
    create_instance(api, ih, "acme")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    import_mail(api, ih, "acme", "alice", 5)
    for args, error in ((["serverName=nope", "port=1"], "no ClientAccessServer 'nope'"),
                        (["serverName=127.0.0.4"], "nothing to change"),
                        (["serverName=127.0.0.4", "fingerprint=" + "g" * 64], "argument 'fingerprint'")):
        p = api.call_raw("SetClientAccessServerConfiguration", *args)
        assert p.returncode == 1 and error in p.stdout, (args, p.stdout)
    cas.config("stop")
    cas.config("cert", "renew", "client-access-server", "tcp")
    new_fp = cas.fingerprint("client-access-server")
    cas.config("start")
    wait_for(lambda: role_states(api.status(), "clientAccessServers") == {"127.0.0.4": "fingerprintRefused"},
             timeout=60, what="the renewed CAS refused")
    r = api.call("SetClientAccessServerConfiguration", "serverName=127.0.0.4", "fingerprint=" + new_fp)
    assert r["fingerprint"] == new_fp and r["serverName"] == "127.0.0.4"
    wait_for(all_connected(api, hosts=1, cas=1), timeout=60, what="CAS connected with its new certificate")
    # The Instance Host admits it again (its peers follow the registration).
    wait_for(lambda: [l for c in api.status()["clientAccessServers"]
                      for l in c.get("instanceHostLinks", []) if l["state"] == "connected"],
             timeout=60, what="CAS -> IH link")
    assert len(imap_messages(cas, "alice@acme", "alice-pass-1")) == 5


def test_relocating_base_directories(single):
    """docs/operations.md "Moving instance base directories": stop, mv,
    relocate, start; the instance runs from the new place and its mail reads
    back byte-identical over IMAP. Refused while the roles run."""
    import imaplib
    import ssl
    api = single.api
    wait_for(all_connected(api), timeout=60, what="every role connected")
    top = os.path.dirname(single.dir)
    old, new, keep = (os.path.join(top, d) for d in ("disk1", "disk2", "disk3"))
    for d in (old, new, keep):
        os.makedirs(d)
        chown_coffer(d)
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1",
             "baseDirectory=%s/coffer/acme" % old)
    api.call("CreateInstance", "instanceID=other", "instanceHost=127.0.0.1",
             "baseDirectory=%s/other" % keep)
    for iid in ("acme", "other"):
        wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=" + iid)["status"] == "running",
                 timeout=60, what=iid + " running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    from mailgen import write_mbox
    write_mbox(os.path.join(old, "coffer", "acme", "import", "m.mbox"), 9)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/m.mbox",
                    "folder=Inbox")["archived"] == 9

    def read_mail():
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        m = imaplib.IMAP4_SSL("127.0.0.1", single.ports["cimaps"], ssl_context=ctx, timeout=60)
        m.login("alice@acme", "alice-pass-1")
        typ, data = m.select("INBOX", readonly=True)
        typ, data = m.fetch("1:%s" % data[0].decode(), "(BODY.PEEK[])")
        m.logout()
        return [d[1] for d in data if isinstance(d, tuple)]
    before = read_mail()
    assert len(before) == 9

    p = single.config("relocate", "--from", old, "--to", new, check=False)
    assert p.returncode != 0 and "stop the services first" in p.stderr, p.stderr
    single.config("stop")
    # The data is not there yet: refused, nothing changed.
    db_path = os.path.join(single.dir, "management-database.json")
    reg_path = os.path.join(single.dir, "instance-host-instances.json")
    files = [open(p, "rb").read() for p in (db_path, reg_path)]
    for args, error in ((["--from", old, "--to", new], "move the data first"),
                        (["--from", "relative", "--to", new], "field from"),
                        (["--from", old, "--to", "/"], "field to"),
                        (["--from", old, "--to", new + "/../x"], "field to"),
                        (["--from", old, "--to", old + "/"], "same directory"),
                        (["--from", old, "--to", single.dir + "/x"], "config directory"),
                        (["--from", top + "/nothing", "--to", new], "no instance's base directory")):
        p = single.config("relocate", *args, check=False)
        assert p.returncode != 0 and error in p.stderr, (args, p.stderr)
        assert [open(p, "rb").read() for p in (db_path, reg_path)] == files

    # The procedure, as documented.
    os.rmdir(new)
    os.rename(old, new)                                   # mv /disk1 /disk2
    p = single.config("relocate", "--from", old, "--to", new)
    assert "relocated 1 instance(s)" in p.stdout, p.stdout
    single.config("start")

    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["baseDirectory"] == new + "/coffer/acme"
    assert api.call("GetInstanceConfiguration", "instanceID=other")["baseDirectory"] == keep + "/other"
    wait_for(all_connected(api), timeout=60, what="every role connected again")
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="acme running from its new place")
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 9
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    assert read_mail() == before
    # New mail lands in the new place.
    write_mbox(os.path.join(new, "coffer", "acme", "import", "n.mbox"), 3, start=100)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/n.mbox",
                    "folder=Inbox")["archived"] == 3
