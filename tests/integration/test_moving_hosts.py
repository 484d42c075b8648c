"""Moving roles (docs/operations.md, "Moving roles"): removing, renaming and
relocating Instance Hosts, and the registrations' Set...Configuration calls.

The "servers" are separate config directories on distinct loopback addresses
(127.0.0.2 Management Server, 127.0.0.3 Instance Host, which also answers on
127.0.0.6 so that it can be renamed to that address; 127.0.0.4 Client Access
Server), not network namespaces: the procedures here are about names and
paths, which loopback addresses show as well. Time bounds are generous
(waits of 30-60 s) because the suite runs on a loaded 2-core machine."""
import os
import pwd

import pytest

from daemonfix import Api, all_connected, free_port, role_states, wait_for

ADMIN_PW = "moving-secret"


def chown_coffer(path):
    pw = pwd.getpwnam("coffer")
    os.chown(path, pw.pw_uid, pw.pw_gid)


@pytest.fixture
def mgmt(make_server):
    s = make_server("mgmt", "127.0.0.2")
    s.ports = {"http": free_port(s.addr), "tcp": free_port(s.addr)}
    s.config("init", "--mode", "multi")
    s.config("role", "add", "management-server", "--server-name", s.addr,
             "--tcp-listeners", "%s:%d" % (s.addr, s.ports["tcp"]),
             "--http-listeners", "%s:%d" % (s.addr, s.ports["http"]),
             "--admin-name", "admin", "--admin-password", ADMIN_PW)
    s.config("start")
    s.api = Api(s, s.addr, s.ports["http"], ADMIN_PW)
    return s


def pair(s, mgmt):
    return s.config("pair", "--management-server", mgmt.addr, "--api-port", mgmt.ports["http"],
                    "--admin-name", "admin", "--admin-password", ADMIN_PW, "--trust-on-first-use")


def instance_host(make_server, mgmt, *extra_addrs):
    """An Instance Host on 127.0.0.3 (and on extra_addrs, same port), paired and running."""
    s = make_server("ih", "127.0.0.3")
    s.tcp_port = free_port(s.addr)
    listeners = ",".join("%s:%d" % (a, s.tcp_port) for a in (s.addr,) + extra_addrs)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "instance-host", "--server-name", s.addr, "--tcp-listeners", listeners)
    pair(s, mgmt)
    s.config("start")
    s.data = os.path.join(os.path.dirname(s.dir), "data-ih")
    os.makedirs(s.data, exist_ok=True)
    chown_coffer(s.data)
    return s


def client_access_server(make_server, mgmt):
    s = make_server("cas", "127.0.0.4")
    s.tcp_port = free_port(s.addr)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "client-access-server", "--server-name", s.addr,
             "--tcp-listeners", "%s:%d" % (s.addr, s.tcp_port),
             "--http-listeners", "%s:%d" % (s.addr, free_port(s.addr)),
             "--imap-listeners", "%s:%d" % (s.addr, free_port(s.addr)),
             "--imaps-listeners", "%s:%d" % (s.addr, free_port(s.addr)))
    pair(s, mgmt)
    s.config("start")
    return s


def create_instance(api, ih, iid, host=None):
    api.call("CreateInstance", "instanceID=" + iid, "instanceHost=" + (host or ih.addr),
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
