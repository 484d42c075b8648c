#!/usr/bin/python3
"""fetch-bench.py [WORKDIR]: FETCH 1:* (BODY.PEEK[]) of corpus A over TLS, Coffer
beside Dovecot, measured as the servers' CPU time and memory (issue 10, Targets).

Corpus A (or its first BENCH_BYTES) is imported into one user's folder `corpus`
of a single server mode Coffer on fixed high loopback ports, and split into a
Maildir that Dovecot serves (../shared/peers/dovecot-serve.sh). Then RUNS runs
(at least 2), each side once per run, alternating which side goes first. For
each side and run:

  1. the side's servers start afresh (so every process's peak RSS starts anew);
  2. CONNS client processes connect over implicit TLS, LOGIN and EXAMINE;
  3. then, and only then, every server process's VmHWM is reset
     (/proc/PID/clear_refs "5") and its CPU time read: the login (Argon2id,
     64 MiB, for Coffer; no hashing at all in Dovecot's static passdb) is not
     part of what is measured;
  4. the clients fetch the folder together, each its own contiguous share of
     the sequence numbers (`FETCH a:b (BODY.PEEK[])`), counting literal bytes;
  5. with the sessions still open, the CPU time and VmHWM are read again.

Reported per side and run: wall time (first FETCH sent to last answer),
messages/s and MB/s; CPU = the sum over every server process of the side (the
processes in the side's pid files and all their descendants) of the change in
utime+stime+cutime+cstime (/proc/PID/stat: children reaped meanwhile are
included), in seconds and per 1,000 messages; the summed peak RSS (VmHWM of
each of those processes, with the per-process figures); the load average
(/proc/loadavg) at the start and the end. Coffer's processes: the Management
Server, the Instance Host, the instance process, the Client Access Server.
Dovecot's: master and every child (imap-login, imap, auth, config, log,
anvil, stats). A process that exits between the two readings and is not
reaped by one of them is missed (none does: the sessions stay open).

Targets: Coffer's CPU per 1,000 messages at most 0.8 x Dovecot's, summed
peak RSS at most 1.0 x Dovecot's (the medians over the runs are compared).

  RUNS        runs per side (default 3, at least 2)
  CONNS       client connections (default 4)
  BENCH_BYTES use only the first N bytes of corpus A (default: all)
  COFFER_BIN  coffer binary (default build/src/cli/coffer)
  SHARED      the shared folder (default ../shared next to the repository)
Needs dovecot-imapd, zstd; run as root. Writes WORKDIR/fetch-report.json."""
import json
import multiprocessing
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time

from serverprocs import (TICK, cpu_seconds, cpu_ticks, loadavg, process_tree, pss_kib, reset_peaks,
                         status_kib)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COFFER = os.environ.get("COFFER_BIN", os.path.join(REPO, "build", "src", "cli", "coffer"))
WORK = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "/tmp/coffer-fetch-bench")
PEERS = os.path.join(SHARED, "peers")
CORPUS = os.path.join(SHARED, "corpus", "linux-mips.mboxrd.zst")
RUNS = max(2, int(os.environ.get("RUNS", "3")))
CONNS = max(1, int(os.environ.get("CONNS", "4")))
PORTS = {"mtcp": 19671, "mhttp": 19643, "itcp": 19672, "ctcp": 19673, "chttp": 19644,
         "cimap": 19343, "cimaps": 19794, "dovecot": 19350}


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return p.stdout


def coffer_cfg():
    return os.path.join(WORK, "coffer")


def api(*args):
    out = run(COFFER, "api", "--config-dir", coffer_cfg(), "--server",
              "127.0.0.1:%d" % PORTS["mhttp"], "--user", "admin", "--password", "bench-admin",
              *args, timeout=7200)
    return json.loads(out)["result"]


def wait(predicate, what, secs=60):
    end = time.time() + secs
    while time.time() < end:
        try:
            if predicate():
                return
        except SystemExit:
            pass  # the API is not up yet
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


# ---- the corpus and the two sides ----

def prepare_corpus():
    mbox = os.path.join(WORK, "corpus-a.mbox")
    if not os.path.exists(mbox):
        data = subprocess.run(["zstd", "-dc", CORPUS], capture_output=True, check=True).stdout
        limit = int(os.environ.get("BENCH_BYTES", "0"))
        if limit:
            data = data[:data.rindex(b"\nFrom ", 0, limit) + 1]
        with open(mbox, "wb") as f:
            f.write(data)
    maildir = os.path.join(WORK, "maildir")
    if not os.path.isdir(os.path.join(maildir, "cur")):
        run("/usr/bin/python3", os.path.join(PEERS, "mbox2maildir.py"), maildir, mbox)
    return mbox, maildir


def coffer_connected():
    st = api("GetServiceStatus")
    return all(s["state"] == "connected" for s in st["instanceHosts"] + st["clientAccessServers"])


def coffer_instance_running():
    return api("GetInstanceConfiguration", "instanceID=bench")["status"] == "running"


def coffer_setup(mbox):
    """Configure and import once; later calls find it done."""
    cfg = coffer_cfg()
    done = os.path.join(WORK, "coffer-imported")
    if os.path.exists(done) and open(done).read() == json.dumps(PORTS):
        return
    if os.path.isdir(cfg):
        subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    shutil.rmtree(cfg, ignore_errors=True)
    conf = [COFFER, "config", "--config-dir", cfg]
    run(*conf, "init", "--mode", "single", "--server-name", "bench.test",
        "--admin-password", "bench-admin")
    run(*conf, "role", "configure", "management-server",
        "--tcp-listeners", "127.0.0.1:%d" % PORTS["mtcp"],
        "--http-listeners", "127.0.0.1:%d" % PORTS["mhttp"])
    run(*conf, "role", "configure", "instance-host",
        "--tcp-listeners", "127.0.0.1:%d" % PORTS["itcp"])
    run(*conf, "role", "configure", "client-access-server",
        "--tcp-listeners", "127.0.0.1:%d" % PORTS["ctcp"],
        "--http-listeners", "127.0.0.1:%d" % PORTS["chttp"],
        "--imap-listeners", "127.0.0.1:%d" % PORTS["cimap"],
        "--imaps-listeners", "127.0.0.1:%d" % PORTS["cimaps"])
    run(*conf, "start")
    wait(coffer_connected, "Coffer's roles connected")
    data = os.path.join(WORK, "data")
    base = os.path.join(data, "bench")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    os.chmod(WORK, 0o755)
    subprocess.run(["chown", "coffer", data], check=False)  # the Instance Host's user
    api("CreateInstance", "instanceID=bench", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait(coffer_instance_running, "the instance running")
    api("CreateUser", "instanceID=bench", "userName=bench", "password=bench-pass")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    shutil.copyfile(mbox, os.path.join(base, "import", "corpus.mbox"))
    t = time.time()
    r = api("ImportFiles", "instanceID=bench", "userName=bench", "path=import/corpus.mbox",
            "folder=corpus")
    print("coffer import: %d messages in %.1f s" % (r["archived"], time.time() - t), flush=True)
    os.remove(os.path.join(base, "import", "corpus.mbox"))
    run(*conf, "stop")
    with open(done, "w") as f:
        f.write(json.dumps(PORTS))  # a setup made with other ports is made anew


def coffer_start():
    cfg = coffer_cfg()
    subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    run(COFFER, "config", "--config-dir", cfg, "start")
    wait(coffer_connected, "Coffer's roles connected")
    if not coffer_instance_running():
        api("StartInstance", "instanceID=bench")
    wait(coffer_instance_running, "the instance running")
    roots = []
    for name in ("management-server", "instance-host", "client-access-server"):
        with open(os.path.join(cfg, "run", name + ".pid")) as f:
            roots.append(int(f.read()))
    return roots


def coffer_stop():
    subprocess.run([COFFER, "config", "--config-dir", coffer_cfg(), "stop"], capture_output=True)


def dovecot_conf():
    return os.path.join(WORK, "dovecot", "dovecot.conf")


def dovecot_start(maildir):
    dovecot_stop()
    with open(os.path.join(WORK, "dovecot-serve.log"), "w") as log:
        subprocess.run(["sh", os.path.join(PEERS, "dovecot-serve.sh"), maildir,
                        os.path.join(WORK, "dovecot"), str(PORTS["dovecot"])],
                       stdout=log, stderr=subprocess.STDOUT, check=True)
    pidfile = os.path.join(WORK, "dovecot", "run", "master.pid")
    wait(lambda: os.path.exists(pidfile), "Dovecot's master.pid")
    time.sleep(0.5)
    with open(pidfile) as f:
        return [int(f.read())]


def dovecot_stop():
    if os.path.exists(dovecot_conf()):
        subprocess.run(["doveadm", "-c", dovecot_conf(), "stop"], capture_output=True)
        time.sleep(0.5)


SIDES = {
    # name: (start -> root pids, stop, TLS port, login, password, folder)
    "coffer": (lambda maildir: coffer_start(), coffer_stop, PORTS["cimaps"], "bench@bench",
               "bench-pass", "corpus"),
    "dovecot": (dovecot_start, dovecot_stop, PORTS["dovecot"] + 1, "bench", "pass", "INBOX"),
}


# ---- the clients: one process each, so the client is not the bottleneck ----

def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def client(port, login, password, box, first, last, ready, go, done, results):
    s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=3600))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb", buffering=1 << 20)

    def cmd(tag, text):
        s.sendall(("%s %s\r\n" % (tag, text)).encode())
        count = size = 0
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("connection closed")
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                n = int(m.group(1))
                f.read(n)
                count += 1
                size += n
                continue
            if line.startswith(tag.encode() + b" "):
                if line.split()[1] != b"OK":
                    raise SystemExit(line)
                return count, size

    f.readline()
    cmd("a", 'LOGIN "%s" "%s"' % (login, password))
    cmd("b", "EXAMINE " + box)
    ready.wait()
    go.wait()
    t0 = time.monotonic()
    count, size = cmd("c", "FETCH %d:%d (BODY.PEEK[])" % (first, last))
    t1 = time.monotonic()
    results.put((t0, t1, count, size))
    done.wait()  # the sessions stay open until the servers were read
    s.close()


def folder_size(port, login, password, box):
    s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=600))
    f = s.makefile("rwb")
    f.readline()
    f.write(('a LOGIN "%s" "%s"\r\nb EXAMINE %s\r\n' % (login, password, box)).encode())
    f.flush()
    exists = None
    while True:
        line = f.readline()
        if not line:
            raise SystemExit("closed before EXAMINE's answer")
        m = re.match(rb"\* (\d+) EXISTS", line)
        if m:
            exists = int(m.group(1))
        if line.startswith(b"b "):
            s.close()
            return exists


def measure(side, maildir):
    start, stop, port, login, password, box = SIDES[side]
    load_start = loadavg()
    roots = start(maildir)
    try:
        total = folder_size(port, login, password, box)
        share = (total + CONNS - 1) // CONNS
        ranges = [(1 + i * share, min(total, (i + 1) * share)) for i in range(CONNS)
                  if 1 + i * share <= total]
        ctx = multiprocessing.get_context("fork")
        ready, go, done = (ctx.Barrier(len(ranges) + 1) for _ in range(3))
        results = ctx.Queue()
        procs = [ctx.Process(target=client, args=(port, login, password, box, a, b, ready, go, done,
                                                  results)) for a, b in ranges]
        for p in procs:
            p.start()
        ready.wait(timeout=600)  # every client logged in, folder examined
        tree = process_tree(roots)
        at_reset = {"%s[%d]" % (comm, pid): status_kib(pid, "VmRSS") for pid, comm in tree.items()}
        reset_peaks(tree)
        cpu_before = cpu_ticks(tree)
        pss_max, sampling = [0], [True]

        def sample_pss():  # no kernel peak for PSS: the largest of samples
            while sampling[0]:
                pss_max[0] = max(pss_max[0], pss_kib(tree))
                time.sleep(0.1)
        sampler = threading.Thread(target=sample_pss)
        sampler.start()
        go.wait()
        got = [results.get(timeout=7200) for _ in procs]
        sampling[0] = False
        sampler.join()
        tree = process_tree(roots)  # with any process started meanwhile
        cpu_after = cpu_ticks(tree)
        peaks = {"%s[%d]" % (comm, pid): status_kib(pid, "VmHWM") for pid, comm in tree.items()}
        done.wait()
        for p in procs:
            p.join(timeout=60)
    finally:
        stop()
    cpu_s = cpu_seconds(cpu_before, cpu_after)
    cpu_by_process = {"%s[%d]" % (tree.get(pid, "?"), pid): round(
        (t - cpu_before.get(pid, 0)) / TICK, 2) for pid, t in cpu_after.items()}
    wall = max(r[1] for r in got) - min(r[0] for r in got)
    messages = sum(r[2] for r in got)
    size = sum(r[3] for r in got)
    return {"side": side, "messages": messages, "bytes": size, "wall_s": round(wall, 3),
            "msgs_per_s": round(messages / wall), "mb_per_s": round(size / wall / 1e6, 1),
            "cpu_s": round(cpu_s, 2), "cpu_ms_per_1000": round(cpu_s * 1e6 / messages, 1),
            "cpu_s_by_process": {k: v for k, v in sorted(cpu_by_process.items(),
                                                         key=lambda kv: -kv[1]) if v > 0},
            "peak_rss_mb": round(sum(peaks.values()) / 1024, 1),
            "max_pss_mb": round(pss_max[0] / 1024, 1),
            "peak_rss_kib_by_process": {k: v for k, v in sorted(peaks.items(),
                                                                key=lambda kv: -kv[1])},
            "rss_at_start_kib_by_process": at_reset,
            "load_start": load_start, "load_end": loadavg(), "connections": len(ranges)}


def main():
    os.makedirs(WORK, exist_ok=True)
    mbox, maildir = prepare_corpus()
    coffer_setup(mbox)
    runs = []
    for r in range(RUNS):
        order = ("coffer", "dovecot") if r % 2 == 0 else ("dovecot", "coffer")
        for side in order:
            res = measure(side, maildir)
            res["run"] = r + 1
            runs.append(res)
            top = ", ".join("%s %.1f" % (k, v / 1024)
                            for k, v in list(res["peak_rss_kib_by_process"].items())[:4])
            top_cpu = ", ".join("%s %.2f" % kv for kv in list(res["cpu_s_by_process"].items())[:4])
            print("run %d %-8s %d msgs in %.2f s: %d msg/s %.1f MB/s (%d conns); CPU %.2f s = "
                  "%.1f ms/1,000 msgs (%s); peak RSS %.1f MB (%s), PSS sampled max %.1f MB; "
                  "load %s -> %s"
                  % (r + 1, side, res["messages"], res["wall_s"], res["msgs_per_s"],
                     res["mb_per_s"], res["connections"], res["cpu_s"], res["cpu_ms_per_1000"],
                     top_cpu, res["peak_rss_mb"], top, res["max_pss_mb"], res["load_start"],
                     res["load_end"]),
                  flush=True)
    med = {}
    for side in SIDES:
        mine = [x for x in runs if x["side"] == side]
        med[side] = {k: statistics.median(x[k] for x in mine)
                     for k in ("cpu_ms_per_1000", "peak_rss_mb", "max_pss_mb", "msgs_per_s")}
    cpu = med["coffer"]["cpu_ms_per_1000"] / med["dovecot"]["cpu_ms_per_1000"]
    rss = med["coffer"]["peak_rss_mb"] / med["dovecot"]["peak_rss_mb"]
    speed = med["coffer"]["msgs_per_s"] / med["dovecot"]["msgs_per_s"]
    pss = med["coffer"]["max_pss_mb"] / med["dovecot"]["max_pss_mb"]
    print("medians over %d runs: CPU/1,000 msgs %.1f vs %.1f ms = %.2fx (target <= 0.8x: %s); "
          "peak RSS %.1f vs %.1f MB = %.2fx (target <= 1.0x: %s); msg/s %.0f vs %.0f = %.2fx"
          % (RUNS, med["coffer"]["cpu_ms_per_1000"], med["dovecot"]["cpu_ms_per_1000"], cpu,
             "met" if cpu <= 0.8 else "NOT met", med["coffer"]["peak_rss_mb"],
             med["dovecot"]["peak_rss_mb"], rss, "met" if rss <= 1.0 else "NOT met",
             med["coffer"]["msgs_per_s"], med["dovecot"]["msgs_per_s"], speed))
    print("(not a target: summed PSS, largest of 10 samples/s, %.1f vs %.1f MB = %.2fx: shared "
          "library pages counted once, not once per process as RSS counts them)"
          % (med["coffer"]["max_pss_mb"], med["dovecot"]["max_pss_mb"], pss))
    with open(os.path.join(WORK, "fetch-report.json"), "w") as f:
        json.dump({"runs": runs, "medians": med, "ratios": {"cpu": cpu, "rss": rss, "pss": pss,
                                                            "msgs_per_s": speed}}, f, indent=1)


if __name__ == "__main__":
    main()
