#!/usr/bin/python3
"""Instance Host with many idle instances: memory per idle instance process
(PSS, from /proc/PID/smaps_rollup) and instance start times.

usage: bench/instances-bench.py [COUNT] [COFFER_BIN] [--use]
Runs single server mode in a temporary directory on high loopback ports,
creates COUNT instances, starts them all, lets them idle, measures, then
restarts 50 of them one at a time (start time while the host carries the
others) and cleans up. Needs root (daemons drop to the coffer user).
With --use, each instance is used once before the measurement: a user is
created, 200 messages are imported and searched; then every instance idles
(COFFER_INSTANCE_IDLE_SECS=10 shortens the idle time from 60 s) and has
closed its files and returned its memory when PSS is measured."""
import base64
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

USE = "--use" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--use"]
COUNT = int(ARGS[0]) if len(ARGS) > 0 else 1000
COFFER = ARGS[1] if len(ARGS) > 1 else os.path.join(os.path.dirname(__file__), "..", "build", "src", "cli", "coffer")
IDLE_SECS = 10
if USE:
    os.environ["COFFER_INSTANCE_IDLE_SECS"] = str(IDLE_SECS)  # inherited by the daemons
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
    from mailgen import write_mbox
PW = "bench-password"
base = tempfile.mkdtemp(prefix="coffer-bench-", dir="/tmp")
os.chmod(base, 0o755)
cfg = os.path.join(base, "etc")
data = os.path.join(base, "data")
os.makedirs(data)
shutil.chown(data, "coffer", "coffer")


def config(*args):
    subprocess.run([COFFER, "config", "--config-dir", cfg] + list(args), check=True, capture_output=True)


ports = {"m": 18470, "mt": 18471, "i": 18472, "c": 18473}
config("init", "--mode", "single", "--admin-password", PW)
config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % ports["mt"],
       "--http-listeners", "127.0.0.1:%d" % ports["m"])
config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % ports["i"])
config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % ports["c"])
config("start")
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
conn = http.client.HTTPSConnection("127.0.0.1", ports["m"], context=ctx, timeout=600)
auth = "Basic " + base64.b64encode(("admin:" + PW).encode()).decode()


def post(path, body):
    """One request; a kept-alive connection the server closed after 20 s
    without a request (docs/operations.md) is opened again."""
    global conn
    headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
    try:
        conn.request("POST", path, body=body, headers=headers)
        return json.loads(conn.getresponse().read())
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        conn.close()
        conn = http.client.HTTPSConnection("127.0.0.1", ports["m"], context=ctx, timeout=600)
        conn.request("POST", path, body=body, headers=headers)
        return json.loads(conn.getresponse().read())


def api(fn, **args):
    path = fn if fn.startswith("/") else "/api/invoke/" + fn
    body = "&".join("%s=%s" % kv for kv in args.items())
    env = post(path, body)
    while env["statusCode"] == "running":
        env = post("/api/get-status", "token=%s&lastKnownStatusVersion=%d&millisecondsTimeout=30000"
                   % (env["token"], env["statusVersion"]))
    if env["statusCode"] != "succeeded":
        raise SystemExit("%s failed: %s" % (fn, env["error"]))
    return env["result"]


try:
    time.sleep(1)
    host = api("GetInstanceHosts")[0]["serverName"]
    t0 = time.time()
    for i in range(COUNT):
        api("CreateInstance", instanceID="bench-%04d" % i, instanceHost=host,
            baseDirectory="%s/bench-%04d" % (data, i), startMode="manual")
    t_create = time.time() - t0
    t0 = time.time()
    try:
        api("StartInstances", instanceFilter="bench-*")
    except SystemExit as e:
        # say why, per status and error, before giving up
        counts = {}
        for i in api("GetInstances"):
            key = (i["status"], i.get("error", ""))
            counts[key] = counts.get(key, 0) + 1
        print("StartInstances after %.1f s: %s" % (time.time() - t0, e))
        for (status, error), n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print("  %5d %s %s" % (n, status, error))
        raise
    t_start_all = time.time() - t0
    insts = api("GetInstances")
    running = [i for i in insts if i["status"] == "running"]
    print("created %d instances in %.1f s; StartInstances for all: %.1f s; running: %d"
          % (COUNT, t_create, t_start_all, len(running)))
    if USE:
        t0 = time.time()
        sample = os.path.join(base, "sample.mbox")
        write_mbox(sample, 200, size_pad=50)
        for i in range(COUNT):
            iid = "bench-%04d" % i
            imp = "%s/%s/import" % (data, iid)
            os.makedirs(imp, exist_ok=True)
            shutil.copy(sample, imp + "/mail.mbox")
            api("CreateUser", instanceID=iid, userName="user", password="user-password-1")
            r = api("ImportFiles", instanceID=iid, userName="user", path="import/mail.mbox")
            assert r["archived"] == 200, r
            assert api("Search", instanceID=iid, query="invoice")["total"] > 0
        print("used each instance once (200 messages imported, one search): %.1f s" % (time.time() - t0))
        time.sleep(IDLE_SECS + 15)  # idle time, then the instances' next idle check
    time.sleep(15)  # let them settle into idleness
    for _ in range(60):
        insts = api("GetInstances")
        if all(i.get("pid", 0) > 0 for i in insts):
            break
        time.sleep(1)
    pss, rss, private = [], [], []
    for i in insts:
        with open("/proc/%d/smaps_rollup" % i["pid"]) as f:
            fields = {l.split()[0].rstrip(":"): int(l.split()[1]) for l in f if l.split()[0].endswith(":") and len(l.split()) >= 2 and l.split()[1].isdigit()}
        pss.append(fields["Pss"])
        rss.append(fields["Rss"])
        private.append(fields.get("Private_Dirty", 0) + fields.get("Private_Clean", 0))
    start_all = [i["startMillis"] for i in api("GetInstances") if i.get("startMillis", -1) >= 0]
    if os.environ.get("COFFER_BENCH_PAUSE"):
        # For profiling: touch this file's path to go on.
        print("paused; config dir %s; remove %s to continue" % (cfg, os.environ["COFFER_BENCH_PAUSE"]), flush=True)
        while os.path.exists(os.environ["COFFER_BENCH_PAUSE"]):
            time.sleep(0.5)
    one_by_one = []
    for i in range(min(50, COUNT)):
        r = api("RestartInstances", instanceFilter="bench-%04d" % i)
        one_by_one.append(r[0]["startMillis"])
    kib = lambda v: "%.0f KiB" % v
    print("idle instance process memory over %d processes:" % len(pss))
    print("  PSS  median %s, mean %s, max %s (total %.0f MiB)" % (kib(statistics.median(pss)), kib(statistics.mean(pss)),
                                                               kib(max(pss)), sum(pss) / 1024))
    print("  RSS  median %s; private (not shared) median %s" % (kib(statistics.median(rss)), kib(statistics.median(private))))
    print("start time, all %d at once: median %.0f ms, p90 %.0f ms, max %.0f ms"
          % (len(start_all), statistics.median(start_all), sorted(start_all)[int(len(start_all) * 0.9) - 1], max(start_all)))
    print("start time, one at a time with %d others idle: median %.1f ms, max %.1f ms (%d restarts)"
          % (COUNT - 1, statistics.median(one_by_one), max(one_by_one), len(one_by_one)))
finally:
    subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
