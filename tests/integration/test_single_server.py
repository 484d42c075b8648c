"""Single server mode: all three roles on one server, paired locally."""
import json
import os
import signal

from daemonfix import all_connected, role_states, wait_for


def test_all_roles_connected(single):
    st = wait_for(all_connected(single.api), what="every role connected")
    assert st["managementServer"]["serverName"] == "single.test"
    assert st["managementServer"]["state"] == "running"
    # The Client Access Server was told about the Instance Host and reached it.
    wait_for(lambda: all(l["state"] == "connected"
                         for c in single.api.status()["clientAccessServers"]
                         for l in c.get("instanceHostLinks", [])) and
             single.api.status()["clientAccessServers"][0].get("instanceHostLinks"),
             timeout=20, what="CAS -> IH link")
    status = single.config("status")
    assert status.stdout.count(": running") == 3


def test_stop_and_start_each_role(single):
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    single.config("stop", "instance-host")
    wait_for(lambda: role_states(api.status(), "instanceHosts")["127.0.0.1"] == "unreachable",
             what="IH unreachable")
    single.config("start", "instance-host")
    wait_for(all_connected(api), what="IH back")
    single.config("stop", "client-access-server")
    wait_for(lambda: role_states(api.status(), "clientAccessServers")["127.0.0.1"] == "unreachable",
             what="CAS unreachable")
    single.config("start", "client-access-server")
    wait_for(all_connected(api), what="CAS back")
    # The Management Server restarts; the roles' event links come back by themselves.
    single.config("restart", "management-server")
    wait_for(all_connected(api), timeout=40, what="links after a Management Server restart")


def test_kill9_is_reported(single):
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    pid = single.pid("instance-host")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: role_states(api.status(), "instanceHosts")["127.0.0.1"] == "unreachable",
             what="killed IH unreachable")
    p = single.config("status", "instance-host", check=False)
    assert p.returncode == 1
    assert "dead" in p.stdout and str(pid) in p.stdout
    # The link's first word may be the kill itself ("connection reset by
    # peer", when the dead process left bytes unread); the next attempt, a
    # second later, is refused: nothing listens any more.
    st = wait_for(lambda: (lambda s: s if "refused" in s["error"].lower() else None)(
        api.status()["instanceHosts"][0]), timeout=30, what="the reconnect refused")
    assert st["eventLink"] == "disconnected"
    assert st["lastContact"] is not None
    single.config("start", "instance-host")
    wait_for(all_connected(api), what="IH restarted after kill -9")
    # And the Management Server itself: its status is "dead" and a start recovers.
    os.kill(single.pid("management-server"), signal.SIGKILL)
    wait_for(lambda: "dead" in single.config("status", "management-server", check=False).stdout,
             what="MS dead")
    single.config("start", "management-server")
    wait_for(all_connected(api), timeout=40, what="links after MS kill -9")


def test_double_start_and_stop_are_harmless(single):
    p = single.config("start")
    assert p.stdout.count("already running") == 3
    single.config("stop")
    p = single.config("stop")
    assert p.stdout.count("was not running") == 3
    p = single.config("status", check=False)
    assert p.returncode == 3 and p.stdout.count("stopped") == 3


def test_environment_and_metadata(single):
    env = single.api.call("GetEnvironmentInfo")
    assert env["productName"] == "Coffer" and env["mode"] == "single"
    assert env["licensee"].startswith("unlicensed")
    p = single.api.call_raw("Ping", extra=["--metadata"])
    meta = json.loads(p.stdout)["result"]
    names = {f["name"] for f in meta}
    assert {"Ping", "GetEnvironmentInfo", "GetServiceStatus", "PairWithManagementServer",
            "GetInstanceHosts", "CreateInstanceHost", "DeleteInstanceHost",
            "GetClientAccessServers", "CreateClientAccessServer", "DeleteClientAccessServer"} <= names
    pair = [f for f in meta if f["name"] == "PairWithManagementServer"][0]
    assert {a["name"] for a in pair["args"]} == {"serverType", "serverName", "port", "fingerprint"}


def test_daemons_run_unprivileged(single):
    if os.geteuid() != 0:
        return
    for role in ("management-server", "instance-host", "client-access-server"):
        with open("/proc/%d/status" % single.pid(role)) as f:
            uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
        assert uid != "0", role + " still runs as root"


def test_roles_of_one_config_dir_link_locally(single):
    """The Client Access Server reaches the Instance Host of its own config
    directory over <config-dir>/run/instance-host.sock (no TLS over loopback:
    rpc-local.c), the socket only its user may use, gone with the role."""
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    sock = os.path.join(single.dir, "run", "instance-host.sock")
    st = os.stat(sock)
    assert st.st_mode & 0o777 == 0o600
    host_log = os.path.join(single.dir, "log", "instance-host.log")
    wait_for(lambda: "peer=client-access-server/single.test conn=local: link up"
             in open(host_log).read(), what="the CAS's local link in the Instance Host's log")
    single.config("stop", "instance-host")
    assert not os.path.exists(sock)
    single.config("start", "instance-host")
    wait_for(lambda: open(host_log).read().count("conn=local: link up") >= 2, timeout=40,
             what="the CAS back on the local link")
    wait_for(lambda: all(l["state"] == "connected"
                         for c in api.status()["clientAccessServers"]
                         for l in c.get("instanceHostLinks", [])), timeout=20,
             what="CAS -> IH link connected")
