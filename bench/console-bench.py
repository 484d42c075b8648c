#!/usr/bin/python3
"""The Console's dashboard and instance list with many instances (issue 13
target: the dashboard complete within 1 s of signing in, a page of the
instance list within 300 ms).

usage: bench/console-bench.py [COUNT] [COFFER_BIN] [RUNS]
Runs single server mode in a temporary directory on free loopback ports
plus three more Instance Hosts (127.0.0.6-8, each its own config directory,
paired as docs/operations.md does), creates COUNT instances (default 1,000)
spread over the four hosts in manual start mode (not started), then runs
bench/console-bench.mjs in Chromium (playwright-core from tests/web):
sign-in to complete dashboard and dashboard to the first page of the
instance list, measured in the page with the Performance API; the first
time in a new browser (cold) and RUNS more times (warm). Prints the
figures as JSON and cleans up. Needs root (daemons drop to the coffer
user)."""
import base64
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from daemonfix import Server, free_port, wait_for  # noqa: E402

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
COFFER = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else os.path.join(ROOT, "build", "src", "cli", "coffer")
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
os.environ["COFFER_BIN"] = COFFER
PW = "bench-password"
EXTRA_HOSTS = ["127.0.0.6", "127.0.0.7", "127.0.0.8"]

base = tempfile.mkdtemp(prefix="coffer-console-bench-", dir="/tmp")
os.chmod(base, 0o755)
data = os.path.join(base, "data")
os.makedirs(data)
shutil.chown(data, "coffer", "coffer")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
servers = []


class Client:
    """The Management API over one kept-alive HTTPS connection."""

    def __init__(self, port):
        self.port = port
        self.auth = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()
        self.conn = None

    def post(self, path, body):
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=600)
                self.conn.request("POST", path, body=json.dumps(body), headers=headers)
                return json.loads(self.conn.getresponse().read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        return None

    def call(self, fn, **args):
        env = self.post("/api/invoke/" + fn, args)
        while env["statusCode"] == "running":
            env = self.post("/api/get-status", {"token": env["token"], "lastKnownStatusVersion": env["statusVersion"],
                                                "millisecondsTimeout": 30000})
        if env["statusCode"] != "succeeded":
            raise SystemExit("%s failed: %s" % (fn, env["error"]))
        return env["result"]


def connected_hosts(api):
    st = api.call("GetServiceStatus")
    return len([h for h in st["instanceHosts"] if h["state"] == "connected"])


try:
    s = Server(base, "single", "127.0.0.1")
    servers.append(s)
    s.config("init", "--mode", "single", "--server-name", "127.0.0.1", "--admin-password", PW)
    p = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp")}
    s.config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % p["mtcp"],
             "--http-listeners", "127.0.0.1:%d" % p["mhttp"])
    s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % p["itcp"])
    s.config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % p["ctcp"])
    s.config("start")
    api = Client(p["mhttp"])
    wait_for(lambda: connected_hosts(api) == 1, timeout=60, what="the Instance Host connected")
    for i, addr in enumerate(EXTRA_HOSTS):
        h = Server(base, "ih%d" % (i + 2), addr)
        servers.append(h)
        h.config("init", "--mode", "multi")
        h.config("role", "add", "instance-host", "--server-name", addr,
                 "--tcp-listeners", "%s:%d" % (addr, free_port(addr)))
        h.config("pair", "--management-server", "127.0.0.1", "--api-port", p["mhttp"],
                 "--admin-name", "admin", "--admin-password", PW, "--trust-on-first-use")
        h.config("start")
    wait_for(lambda: connected_hosts(api) == 4, timeout=60, what="four Instance Hosts connected")
    hosts = [h["serverName"] for h in api.call("GetInstanceHosts")]
    t0 = time.time()
    for n in range(COUNT):
        iid = "bench-%04d" % n
        api.call("CreateInstance", instanceID=iid, instanceHost=hosts[n % len(hosts)],
                 baseDirectory="%s/%s" % (data, iid), startMode="manual", displayName="Bench customer %d" % n)
    t_create = time.time() - t0
    assert len(api.call("GetInstances")) == COUNT
    load_before = os.getloadavg()
    out_file = os.path.join(base, "console-bench.json")
    cfg = {"baseUrl": "https://127.0.0.1:%d" % p["mhttp"], "user": "admin", "password": PW,
           "instances": COUNT, "hosts": len(hosts), "runs": RUNS, "out": out_file,
           "chromium": "/usr/bin/chromium", "webTests": os.path.join(ROOT, "tests", "web")}
    subprocess.run(["node", os.path.join(HERE, "console-bench.mjs")], check=True,
                   env=dict(os.environ, COFFER_CONSOLE_BENCH=json.dumps(cfg)))
    figures = json.load(open(out_file))
    figures.update({"instances": COUNT, "instanceHosts": len(hosts), "createSeconds": round(t_create, 1),
                    "loadBefore": [round(x, 2) for x in load_before],
                    "loadAfter": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()})
    print(json.dumps(figures, indent=2))
finally:
    for srv in servers:
        srv.stop_all()
    time.sleep(1)
    shutil.rmtree(base, ignore_errors=True)
