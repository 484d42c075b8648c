"""docs/operations.md, "Moving roles" / "A host that is gone": an instance
whose Instance Host died is brought up on another Instance Host from a copy
of its base directory and key, with RecoverInstance; refused while the old
host still answers.

Two variants (netnsfix). "loopback": the servers are separate config
directories on distinct loopback addresses (127.0.0.2 Management Server,
127.0.0.3 the Instance Host that dies, 127.0.0.5 the one that takes over,
127.0.0.4 Client Access Server), named by their addresses. "netns": each
server is a network namespace of its own with its own address and host name
(ih1.example.test dies, ih2.example.test takes over), and the dead server
also drops off the network (its link goes down), as a machine that is
switched off does; skipped, saying why, where namespaces cannot be made.
Waits are generous (up to 60 s) because the suite runs on a loaded 2-core
machine."""
import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

from daemonfix import all_connected, free_port, role_states, wait_for
from test_moving_hosts import (chown_coffer, client_access_server, create_instance, imap_messages,
                               import_mail, mgmt, pair)  # noqa: F401 (mgmt is a fixture)


def instance_host_at(net, mgmt, name, addr):
    s = net.server(name, addr)
    s.tcp_port = free_port(s.addr)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "instance-host", *s.server_name_args(),
             "--tcp-listeners", "%s:%d" % (s.addr, s.tcp_port))
    pair(s, mgmt)
    s.config("start")
    s.data = os.path.join(os.path.dirname(s.dir), "data-" + name)
    os.makedirs(s.data, exist_ok=True)
    chown_coffer(s.data)
    return s


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_recovering_the_instances_of_a_dead_instance_host(net, mgmt):
    ih1 = instance_host_at(net, mgmt, "ih1", "127.0.0.3")
    ih2 = instance_host_at(net, mgmt, "ih2", "127.0.0.5")
    cas = client_access_server(net.server, mgmt)
    old, new = ih1.server_name, ih2.server_name
    api = mgmt.api
    net.assert_placed(ih1, "instance-host")
    net.assert_placed(ih2, "instance-host")
    wait_for(all_connected(api, hosts=2, cas=1), timeout=60, what="both IHs and the CAS connected")
    create_instance(api, ih1, "acme")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    import_mail(api, ih1, "acme", "alice", 12)
    before = wait_for(lambda: imap_messages(cas, "alice@acme", "alice-pass-1"), timeout=60,
                      what="alice's mail over the CAS")
    assert len(before) == 12

    # The backup (docs: "Backup and restore"): frozen, base directory and key copied.
    backup = os.path.join(os.path.dirname(ih2.dir), "backup")
    os.makedirs(backup)
    api.call("FreezeInstances", "instanceFilter=acme")
    subprocess.run(["tar", "-C", ih1.data, "-czf", backup + "/instances.tgz", "acme"], check=True)
    shutil.copy(os.path.join(ih1.dir, "instance-keys", "acme.key"), backup + "/acme.key")
    api.call("ThawInstances", "instanceFilter=acme")

    args = ("instanceID=acme", "instanceHost=" + new,
            "baseDirectory=%s/acme" % ih2.data)
    # Refused while the old host answers; nothing changes.
    p = api.call_raw("RecoverInstance", *args)
    assert p.returncode == 1 and "%s of instance acme still answers" % old in p.stdout, p.stdout
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == old and conf["status"] == "running", conf

    # The host dies: SIGKILL of the Instance Host and of its instances.
    pid = ih1.pid("instance-host")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    os.kill(pid, signal.SIGKILL)
    for c in children:
        try:
            os.kill(int(c), signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: role_states(api.status(), "instanceHosts")[old] != "connected",
             timeout=60, what="the Management Server to see %s gone" % old)
    if net.kind == "netns":
        # a machine switched off: nothing answers at its address any more
        ih1.sh("ip link set eth0 down")
        with pytest.raises(OSError):
            socket.create_connection((ih1.addr, ih1.tcp_port), timeout=3).close()

    # Refused: unknown host, a directory that holds no copy.
    p = api.call_raw("RecoverInstance", "instanceID=acme", "instanceHost=127.0.0.9")
    assert p.returncode == 1 and "no Instance Host '127.0.0.9'" in p.stdout, p.stdout
    p = api.call_raw(*(("RecoverInstance",) + args))
    assert p.returncode == 1 and "copy the instance's base directory there first" in p.stdout, p.stdout
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == old

    # The procedure of the docs, on the new host: the base directory ...
    subprocess.run(["tar", "-C", ih2.data, "-xzf", backup + "/instances.tgz", "acme"], check=True)
    # Refused without the key on the new host (a new key would not open the copy).
    p = api.call_raw("RecoverInstance", *args)
    assert p.returncode == 1 and "copy the instance's key there first" in p.stdout, p.stdout
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == old

    # ... and the key, where the docs say.
    keys = os.path.join(ih2.dir, "instance-keys")
    subprocess.run(["install", "-d", "-m", "0700", "-o", "coffer", "-g", "coffer", keys], check=True)
    subprocess.run(["install", "-m", "0600", "-o", "coffer", "-g", "coffer", backup + "/acme.key",
                    keys + "/acme.key"], check=True)
    r = api.call("RecoverInstance", *args)
    assert r["instanceHost"] == new and r["previousInstanceHost"] == old, r
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="acme running on " + new)
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == new and conf["baseDirectory"] == ih2.data + "/acme"
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    # The Client Access Server routes there without a restart: same bytes, same login.
    after = wait_for(lambda: _try_messages(cas), timeout=60, what="alice's mail from " + new)
    assert after == before
    # New mail goes to the new host's copy.
    from mailgen import write_mbox
    write_mbox(os.path.join(ih2.data, "acme", "import", "n.mbox"), 3, start=100)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/n.mbox",
                    "folder=Inbox")["archived"] == 3
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 15
    # A retry after a lost answer: reported as done, nothing registered twice.
    r = api.call("RecoverInstance", *args)
    assert r["alreadyRecovered"] is True and r["instanceHost"] == new, r
    assert [i["instanceID"] for i in api.call("GetInstances")] == ["acme"]
    p = api.call_raw("RecoverInstance", "instanceID=acme", "instanceHost=" + new,
                     "baseDirectory=/elsewhere")
    assert p.returncode == 1 and "with base directory %s/acme already" % ih2.data in p.stdout, p.stdout
    # The Management Server died after the new host took the instance in,
    # before its database named the new host: the retry records it there
    # without creating it again (which the host would refuse).
    mgmt.config("stop", "management-server")
    db_path = os.path.join(mgmt.dir, "management-database.json")
    with open(db_path) as f:
        db = json.load(f)
    _rename_host(db, "acme", new, old)
    with open(db_path, "w") as f:
        json.dump(db, f)
    mgmt.config("start")
    wait_for(lambda: role_states(api.status(), "instanceHosts").get(new) == "connected",
             timeout=60, what=new + " connected again")
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == old
    r = api.call("RecoverInstance", *args)
    assert r["instanceHost"] == new and r["previousInstanceHost"] == old, r
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="acme running on %s again" % new)
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 15
    # The dead host's registration can go now (no instance lives there).
    api.call("DeleteInstanceHost", "serverName=" + old)
    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == [new]


def _rename_host(node, iid, old, new):
    """In the management database's JSON: the instance iid names `new`
    instead of `old` as its Instance Host."""
    if isinstance(node, dict):
        if node.get("instanceID") == iid and node.get("instanceHost") == old:
            node["instanceHost"] = new
        for v in node.values():
            _rename_host(v, iid, old, new)
    elif isinstance(node, list):
        for v in node:
            _rename_host(v, iid, old, new)


def _try_messages(cas):
    import imaplib
    try:
        return imap_messages(cas, "alice@acme", "alice-pass-1")
    except (imaplib.IMAP4.error, OSError):
        return None
