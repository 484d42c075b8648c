"""docs/operations.md, "Moving roles" / "A host that is gone": an instance
whose Instance Host died is brought up on another Instance Host from a copy
of its base directory and key, with RecoverInstance; refused while the old
host still answers.

The "servers" are separate config directories on distinct loopback addresses
(127.0.0.2 Management Server, 127.0.0.3 the Instance Host that dies,
127.0.0.5 the one that takes over, 127.0.0.4 Client Access Server), not
network namespaces: the procedure is about which host answers, which
loopback addresses show as well. Waits are generous (up to 60 s) because the
suite runs on a loaded 2-core machine."""
import json
import os
import shutil
import signal
import subprocess

from daemonfix import all_connected, free_port, role_states, wait_for
from test_moving_hosts import (chown_coffer, client_access_server, create_instance, imap_messages,
                               import_mail, mgmt, pair)  # noqa: F401 (mgmt is a fixture)


def instance_host_at(make_server, mgmt, name, addr):
    s = make_server(name, addr)
    s.tcp_port = free_port(s.addr)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "instance-host", "--server-name", s.addr,
             "--tcp-listeners", "%s:%d" % (s.addr, s.tcp_port))
    pair(s, mgmt)
    s.config("start")
    s.data = os.path.join(os.path.dirname(s.dir), "data-" + name)
    os.makedirs(s.data, exist_ok=True)
    chown_coffer(s.data)
    return s


def test_recovering_the_instances_of_a_dead_instance_host(mgmt, make_server):
    ih1 = instance_host_at(make_server, mgmt, "ih1", "127.0.0.3")
    ih2 = instance_host_at(make_server, mgmt, "ih2", "127.0.0.5")
    cas = client_access_server(make_server, mgmt)
    api = mgmt.api
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

    args = ("instanceID=acme", "instanceHost=127.0.0.5",
            "baseDirectory=%s/acme" % ih2.data)
    # Refused while the old host answers; nothing changes.
    p = api.call_raw("RecoverInstance", *args)
    assert p.returncode == 1 and "127.0.0.3 of instance acme still answers" in p.stdout, p.stdout
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.3" and conf["status"] == "running", conf

    # The host dies: SIGKILL of the Instance Host and of its instances.
    pid = ih1.pid("instance-host")
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    os.kill(pid, signal.SIGKILL)
    for c in children:
        try:
            os.kill(int(c), signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_for(lambda: role_states(api.status(), "instanceHosts")["127.0.0.3"] != "connected",
             timeout=60, what="the Management Server to see 127.0.0.3 gone")

    # Refused: unknown host, a directory that holds no copy.
    p = api.call_raw("RecoverInstance", "instanceID=acme", "instanceHost=127.0.0.9")
    assert p.returncode == 1 and "no Instance Host '127.0.0.9'" in p.stdout, p.stdout
    p = api.call_raw(*(("RecoverInstance",) + args))
    assert p.returncode == 1 and "copy the instance's base directory there first" in p.stdout, p.stdout
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.3"

    # The procedure of the docs, on the new host: the base directory ...
    subprocess.run(["tar", "-C", ih2.data, "-xzf", backup + "/instances.tgz", "acme"], check=True)
    # Refused without the key on the new host (a new key would not open the copy).
    p = api.call_raw("RecoverInstance", *args)
    assert p.returncode == 1 and "copy the instance's key there first" in p.stdout, p.stdout
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.3"

    # ... and the key, where the docs say.
    keys = os.path.join(ih2.dir, "instance-keys")
    subprocess.run(["install", "-d", "-m", "0700", "-o", "coffer", "-g", "coffer", keys], check=True)
    subprocess.run(["install", "-m", "0600", "-o", "coffer", "-g", "coffer", backup + "/acme.key",
                    keys + "/acme.key"], check=True)
    r = api.call("RecoverInstance", *args)
    assert r["instanceHost"] == "127.0.0.5" and r["previousInstanceHost"] == "127.0.0.3", r
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="acme running on 127.0.0.5")
    conf = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert conf["instanceHost"] == "127.0.0.5" and conf["baseDirectory"] == ih2.data + "/acme"
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    # The Client Access Server routes there without a restart: same bytes, same login.
    after = wait_for(lambda: _try_messages(cas), timeout=60, what="alice's mail from 127.0.0.5")
    assert after == before
    # New mail goes to the new host's copy.
    from mailgen import write_mbox
    write_mbox(os.path.join(ih2.data, "acme", "import", "n.mbox"), 3, start=100)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/n.mbox",
                    "folder=Inbox")["archived"] == 3
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 15
    # A retry after a lost answer: reported as done, nothing registered twice.
    r = api.call("RecoverInstance", *args)
    assert r["alreadyRecovered"] is True and r["instanceHost"] == "127.0.0.5", r
    assert [i["instanceID"] for i in api.call("GetInstances")] == ["acme"]
    p = api.call_raw("RecoverInstance", "instanceID=acme", "instanceHost=127.0.0.5",
                     "baseDirectory=/elsewhere")
    assert p.returncode == 1 and "with base directory %s/acme already" % ih2.data in p.stdout, p.stdout
    # The Management Server died after the new host took the instance in,
    # before its database named the new host: the retry records it there
    # without creating it again (which the host would refuse).
    mgmt.config("stop", "management-server")
    db_path = os.path.join(mgmt.dir, "management-database.json")
    with open(db_path) as f:
        db = json.load(f)
    _rename_host(db, "acme", "127.0.0.5", "127.0.0.3")
    with open(db_path, "w") as f:
        json.dump(db, f)
    mgmt.config("start")
    wait_for(lambda: role_states(api.status(), "instanceHosts").get("127.0.0.5") == "connected",
             timeout=60, what="127.0.0.5 connected again")
    assert api.call("GetInstanceConfiguration", "instanceID=acme")["instanceHost"] == "127.0.0.3"
    r = api.call("RecoverInstance", *args)
    assert r["instanceHost"] == "127.0.0.5" and r["previousInstanceHost"] == "127.0.0.3", r
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=60, what="acme running on 127.0.0.5 again")
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 15
    # The dead host's registration can go now (no instance lives there).
    api.call("DeleteInstanceHost", "serverName=127.0.0.3")
    assert [h["serverName"] for h in api.call("GetInstanceHosts")] == ["127.0.0.5"]


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
