#!/usr/bin/python3
"""Directory sync of many users into one instance (issue 11 §5): SyncUsers
time and the instance process's CPU per user, for a fresh sync, a second
sync of the same list (nothing changes) and a sync where 1% changed and 1%
left (deleteMissing). With --one-by-one N, also N users made one CreateUser
call at a time (the only way before SyncUsers; with the users in one sealed
file that cost O(n^2) bytes written).

usage: bench/users-sync-bench.py [SIZES] [COFFER_BIN] [--one-by-one N]
       SIZES: comma-separated user counts (default 1000,10000,20000)
Runs single server mode in a temporary directory on free loopback ports,
one new instance per size, and cleans up. Needs root (the daemons drop to
the coffer user). The figures go to stdout, one line per measurement."""
import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

argv = sys.argv[1:]
ONE_BY_ONE = 0
if "--one-by-one" in argv:
    i = argv.index("--one-by-one")
    ONE_BY_ONE = int(argv[i + 1])
    del argv[i:i + 2]
SIZES = [int(x) for x in (argv[0] if argv else "1000,10000,20000").split(",")]
COFFER = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                     "build", "src", "cli", "coffer")
PW = "bench-password"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


base = tempfile.mkdtemp(prefix="coffer-users-bench-", dir="/tmp")
os.chmod(base, 0o755)
cfg = os.path.join(base, "etc")
data = os.path.join(base, "data")
os.makedirs(data)
shutil.chown(data, "coffer", "coffer")


def config(*args):
    subprocess.run([COFFER, "config", "--config-dir", cfg] + list(args), check=True, capture_output=True)


ports = {k: free_port() for k in ("m", "mt", "i", "c")}
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
auth = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()


def api(fn, **args):
    conn = http.client.HTTPSConnection("127.0.0.1", ports["m"], context=ctx, timeout=900)
    conn.request("POST", "/api/invoke/" + fn, body=json.dumps(args),
                 headers={"Authorization": auth, "Content-Type": "application/json"})
    env = json.loads(conn.getresponse().read())
    while env["statusCode"] == "running":
        conn.request("POST", "/api/get-status", body=json.dumps(
            {"token": env["token"], "lastKnownStatusVersion": env["statusVersion"],
             "millisecondsTimeout": 30000}),
            headers={"Authorization": auth, "Content-Type": "application/json"})
        env = json.loads(conn.getresponse().read())
    conn.close()
    if env["statusCode"] != "succeeded":
        raise SystemExit("%s failed: %s" % (fn, env["error"]))
    return env["result"]


def cpu_secs(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def measure(iid, what, n, work):
    pid = api("GetInstanceProcessLiveStatistics", instanceID=iid)["pid"]
    c0, t0 = cpu_secs(pid), time.monotonic()
    r = work()
    took, cpu = time.monotonic() - t0, cpu_secs(pid) - c0
    print("%-28s users=%-6d wall=%8.2f s  instance CPU=%7.2f s  CPU/user=%8.1f us  %s"
          % (what, n, took, cpu, cpu * 1e6 / max(n, 1), json.dumps(r) if isinstance(r, dict) else ""),
          flush=True)
    return r


def directory(n, generation=0):
    return [{"userName": "user%06d" % i, "fullName": "User %d%s" % (i, "" if i % 100 or not generation else " *"),
             "emailAddresses": ["user%06d@dir.test" % i],
             "privileges": ["login", "archive"] if i % 7 else ["login", "archive", "export"]}
            for i in range(n)]


def new_instance(iid, host):
    api("CreateInstance", instanceID=iid, instanceHost=host, baseDirectory=os.path.join(data, iid))
    for _ in range(300):
        if api("GetInstanceConfiguration", instanceID=iid)["status"] == "running":
            return
        time.sleep(0.2)
    raise SystemExit(iid + " did not start")


try:
    config("init", "--mode", "single", "--admin-password", PW)
    config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % ports["mt"],
           "--http-listeners", "127.0.0.1:%d" % ports["m"])
    config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % ports["i"])
    config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % ports["c"])
    config("start")
    for _ in range(100):
        try:
            hosts = api("GetInstanceHosts")
            if hosts:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    host = hosts[0]["serverName"]
    for n in SIZES:
        iid = "sync%d" % n
        new_instance(iid, host)
        users = directory(n)
        measure(iid, "SyncUsers (all new)", n, lambda: api("SyncUsers", instanceID=iid, users=users))
        measure(iid, "SyncUsers (unchanged)", n, lambda: api("SyncUsers", instanceID=iid, users=users))
        changed = directory(n, 1)[: n - n // 100]
        measure(iid, "SyncUsers (1% changed/left)", n,
                lambda: api("SyncUsers", instanceID=iid, users=changed, deleteMissing=True))
        assert len(api("GetUsers", instanceID=iid)) == len(changed)
    if ONE_BY_ONE:
        iid = "onebyone"
        new_instance(iid, host)

        def create_all():
            for u in directory(ONE_BY_ONE):
                api("CreateUser", instanceID=iid, **u)
        measure(iid, "CreateUser one by one", ONE_BY_ONE, create_all)
finally:
    subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    time.sleep(0.5)
    shutil.rmtree(base, ignore_errors=True)
