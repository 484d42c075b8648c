#!/usr/bin/python3
"""move-bench.py [WORKDIR]: MoveInstance of an instance holding corpus A between
two Instance Hosts, beside `cp -a` of the same base directory (issue 12,
Targets).

Setup (once, kept in WORKDIR): a single server mode Coffer on 127.0.0.1 (its
Instance Host is "127.0.0.1") and a second Instance Host "127.0.0.7" with its
own config directory, paired to it, both on fixed high loopback ports; one
instance "bench" holding corpus A (or its first BENCH_MESSAGES messages, or
BENCH_BYTES bytes) in one user's folder, imported with ImportFiles.

Then RUNS runs (at least 2), each side once per run, alternating which side
goes first:

  move  MoveInstance of "bench" to the other Instance Host (the direction
        alternates: the instance ends where the last move took it), waited
        for as a job. Wall: from the call to the job's end. CPU: the change of
        utime+stime+cutime+cstime (/proc/PID/stat, bench/serverprocs.py) summed
        over the Management Server, both Instance Hosts and all their
        descendants (the instance processes that stop and start), and split
        into the Management Server's, the source host's and the target
        host's (each with its descendants). Also, with
        POLL=1 (default): a client logs in over IMAPS through the Client Access
        Server and selects the folder every 100 ms; the longest stretch without
        an answer is the time users saw the instance "unavailable". Its
        logins cost the instance process CPU that counts in the move's CPU
        (POLL=0 for the CPU alone). And the job's own figure of how long
        writes were paused (the instance frozen on the source).
  cp    `cp -a` of the instance's current base directory to a new directory
        next to it, then `sync` (timed apart: MoveInstance fsyncs every file,
        cp -a does not). Wall, and CPU as the child's user+sys (wait4). The
        copy is removed afterwards (not timed).

Before each side: `sync` and the load average (/proc/loadavg) printed; the
page cache is filled with the base directory (warm), or with COLD=1 it is
dropped (`echo 3 > /proc/sys/vm/drop_caches`): both sides read the base
directory from the disk, as a migration of an instance larger than the
memory that caches it would. Warm (COLD=0), the base directory is read
once through the page cache before each side, so both find all of it
there (a move writes its copy around the cache).

Targets: the move's wall time at most 1.5 x cp -a's, "unavailable" at most
2 s (medians over the runs).

  RUNS            runs (default 3, at least 2)
  POLL            1 (default) poll IMAP during the move, 0 not
  COLD            1: drop the page cache before each side (default 0)
  PREFAULT_MB     memory touched and freed just before each side (default
                  2048; 0: none), see prefault_memory()
  BENCH_MESSAGES  use only the first N messages of corpus A (default: all)
  BENCH_BYTES     use only the first N bytes of corpus A (default: all)
  COFFER_BIN      coffer binary (default build/src/cli/coffer)
  SHARED          the shared folder (default ../shared next to the repository)
Needs zstd; run as root (the daemons run as the user coffer). Writes
WORKDIR/move-report.json."""
import imaplib
import json
import mmap
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import threading
import time

from serverprocs import cpu_seconds, cpu_ticks, loadavg, process_tree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COFFER = os.environ.get("COFFER_BIN", os.path.join(REPO, "build", "src", "cli", "coffer"))
WORK = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "/tmp/coffer-move-bench")
CORPUS = os.path.join(SHARED, "corpus", "linux-mips.mboxrd.zst")
RUNS = max(2, int(os.environ.get("RUNS", "3")))
POLL = os.environ.get("POLL", "1") == "1"
COLD = os.environ.get("COLD", "0") == "1"
PREFAULT_MB = int(os.environ.get("PREFAULT_MB", "2048"))
HOST1, HOST2 = "127.0.0.1", "127.0.0.7"
PORTS = {"mtcp": 19771, "mhttp": 19743, "itcp": 19772, "ctcp": 19773, "chttp": 19744,
         "cimap": 19443, "cimaps": 19894, "itcp2": 19775}
ADMIN_PW = "bench-admin"


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return p.stdout


def cfg(name):
    return os.path.join(WORK, name)


def api_raw(*args):
    return run(COFFER, "api", "--config-dir", cfg("coffer"), "--server",
               "127.0.0.1:%d" % PORTS["mhttp"], "--user", "admin", "--password", ADMIN_PW,
               *args, timeout=7200)


def api_job(*args):
    """A call with --no-wait: its envelope (`coffer api` exits non-zero
    while the job still runs)."""
    p = subprocess.run([COFFER, "api", "--config-dir", cfg("coffer"), "--server",
                        "127.0.0.1:%d" % PORTS["mhttp"], "--user", "admin", "--password",
                        ADMIN_PW] + list(args) + ["--no-wait"],
                       capture_output=True, text=True, timeout=600)
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise SystemExit("coffer api %s: %s%s" % (" ".join(args), p.stdout, p.stderr))


def api(*args):
    return json.loads(api_raw(*args))["result"]


def wait(predicate, what, secs=120):
    end = time.time() + secs
    while time.time() < end:
        try:
            if predicate():
                return
        except SystemExit:
            pass  # the API is not up yet
        time.sleep(0.2)
    raise SystemExit("timed out waiting for " + what)


def connected():
    st = api("GetServiceStatus")
    ih = [h for h in st["instanceHosts"] if h["state"] == "connected"]
    ca = [c for c in st["clientAccessServers"] if c["state"] == "connected"]
    return len(ih) == 2 and len(ca) == 1


def instance():
    return api("GetInstanceConfiguration", "instanceID=bench")


# ---- setup ----

def prepare_corpus():
    """The corpus as an mbox, cut at a From_ line after BENCH_MESSAGES
    messages or BENCH_BYTES bytes (streamed: the rest is never read)."""
    mbox = os.path.join(WORK, "corpus-a.mbox")
    if os.path.exists(mbox):
        return mbox
    max_bytes = int(os.environ.get("BENCH_BYTES", "0"))
    max_messages = int(os.environ.get("BENCH_MESSAGES", "0"))
    z = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
    messages = written = 0
    with open(mbox + ".part", "wb") as out:
        for line in z.stdout:
            if line.startswith(b"From "):
                if (max_messages and messages == max_messages) or \
                        (max_bytes and written + len(line) > max_bytes and messages > 0):
                    break
                messages += 1
            out.write(line)
            written += len(line)
    z.kill()
    z.wait()
    os.rename(mbox + ".part", mbox)
    return mbox


def start_all():
    for name in ("coffer", "ih2"):
        subprocess.run([COFFER, "config", "--config-dir", cfg(name), "stop"], capture_output=True)
    run(COFFER, "config", "--config-dir", cfg("coffer"), "start")
    run(COFFER, "config", "--config-dir", cfg("ih2"), "start")
    wait(connected, "both Instance Hosts and the Client Access Server connected")


def stop_all():
    for name in ("coffer", "ih2"):
        subprocess.run([COFFER, "config", "--config-dir", cfg(name), "stop"], capture_output=True)


def setup(mbox):
    done = os.path.join(WORK, "imported")
    if os.path.exists(done) and open(done).read() == json.dumps(PORTS):
        start_all()
        return
    stop_all()
    for d in ("coffer", "ih2", "data1", "data2"):
        shutil.rmtree(cfg(d), ignore_errors=True)
    conf = [COFFER, "config", "--config-dir", cfg("coffer")]
    run(*conf, "init", "--mode", "single", "--server-name", "bench.test",
        "--admin-password", ADMIN_PW)
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
    conf2 = [COFFER, "config", "--config-dir", cfg("ih2")]
    run(*conf2, "init", "--mode", "multi")
    run(*conf2, "role", "add", "instance-host", "--server-name", HOST2,
        "--tcp-listeners", "%s:%d" % (HOST2, PORTS["itcp2"]))
    run(*conf2, "pair", "--management-server", "127.0.0.1", "--api-port", PORTS["mhttp"],
        "--admin-name", "admin", "--admin-password", ADMIN_PW, "--trust-on-first-use")
    run(*conf2, "start")
    wait(connected, "both Instance Hosts and the Client Access Server connected")
    os.chmod(WORK, 0o755)
    for d in ("data1", "data2"):
        os.makedirs(cfg(d))
        subprocess.run(["chown", "coffer", cfg(d)], check=False)  # the daemons' user
    base = os.path.join(cfg("data1"), "bench")
    api("CreateInstance", "instanceID=bench", "instanceHost=" + HOST1, "baseDirectory=" + base)
    wait(lambda: instance()["status"] == "running", "the instance running")
    api("CreateUser", "instanceID=bench", "userName=bench", "password=bench-pass")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    shutil.copyfile(mbox, os.path.join(base, "import", "corpus.mbox"))
    t = time.time()
    r = api("ImportFiles", "instanceID=bench", "userName=bench", "path=import/corpus.mbox",
            "folder=corpus")
    print("import: %d messages in %.1f s" % (r["archived"], time.time() - t), flush=True)
    os.remove(os.path.join(base, "import", "corpus.mbox"))
    with open(done, "w") as f:
        f.write(json.dumps(PORTS))  # a setup made with other ports is made anew


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


# ---- the two sides ----

class Poller(threading.Thread):
    """IMAPS login + SELECT every 100 ms; the longest stretch without an answer."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.longest = 0.0
        self.polls = self.failures = 0

    def once(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        m = imaplib.IMAP4_SSL("127.0.0.1", PORTS["cimaps"], ssl_context=ctx, timeout=30)
        try:
            m.login("bench@bench", "bench-pass")
            return m.select("corpus", readonly=True)[0] == "OK"
        finally:
            try:
                m.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def run(self):
        last_ok = time.monotonic()
        while not self.stop.is_set():
            try:
                ok = self.once()
            except (imaplib.IMAP4.error, OSError):
                ok = False
            now = time.monotonic()
            self.polls += 1
            if ok:
                last_ok = now
            else:
                self.failures += 1
                self.longest = max(self.longest, now - last_ok)
            time.sleep(0.1)


def pid_of(name, role):
    with open(os.path.join(cfg(name), "run", role + ".pid")) as f:
        return int(f.read())


def cache_base_directory():
    """Reads the instance's base directory through the page cache, so that
    a warm side finds all of it there: a move writes its copy around the
    cache, so without this the side after a move would read from the disk."""
    for root, _, files in os.walk(instance()["baseDirectory"]):
        for name in files:
            with open(os.path.join(root, name), "rb", buffering=0) as f:
                while f.read(1 << 20):
                    pass


def prefault_memory():
    """Touches PREFAULT_MB of memory and frees it, just before a side starts.
    This VM hands memory it has freed back to its hypervisor (virtio-balloon
    free page reporting, about 2 s after the free), and a page it then
    allocates costs a fault in the hypervisor: cp -a, which fills the page
    cache, took 0.8-0.9 s instead of 0.25 s when it ran more than 2 s after
    the page cache was dropped, with the difference all system time. The
    move reads and writes around the page cache (O_DIRECT) and barely
    allocates. Touching the memory first gives both sides memory the
    hypervisor backs, as on a server that has been running a while."""
    if PREFAULT_MB <= 0:
        return
    # MAP_POPULATE faults every page in at once (writing the mapping from
    # Python left some of cp -a's runs slow). 2 GiB cover cp -a (twice the
    # base directory) and take 0.5 s; 4 GiB took 20 s, the hypervisor
    # backing pages anew.
    mmap.mmap(-1, PREFAULT_MB << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
              | mmap.MAP_POPULATE).close()


def prepare_side():
    """The same start for either side: synced, the base directory cached
    (warm) or the page cache dropped (COLD=1), memory prefaulted."""
    subprocess.run(["sync"], check=True)
    if COLD:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    else:
        cache_base_directory()
    prefault_memory()


def settle(roots, secs=20):
    """Waits until the roles and their instance processes use no CPU for
    0.5 s: an instance just started (setup, or a restart of the roles)
    works a while, and that work would count as the move's."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        before = cpu_ticks(process_tree(roots))
        time.sleep(0.5)
        if cpu_seconds(before, cpu_ticks(process_tree(roots))) <= 0.02:
            return


def side_move():
    conf = instance()
    source = conf["instanceHost"]
    target = HOST2 if source == HOST1 else HOST1
    target_dir = os.path.join(cfg("data2" if target == HOST2 else "data1"), "bench")
    roots = [pid_of("coffer", "management-server"), pid_of("coffer", "instance-host"),
             pid_of("ih2", "instance-host")]
    poller = Poller() if POLL else None
    if poller:
        poller.start()
        time.sleep(0.5)
    settle(roots)
    before = cpu_ticks(process_tree(roots))
    before_by = [cpu_ticks(process_tree([r])) for r in roots]
    t = time.monotonic()
    env = api_job("MoveInstance", "instanceID=bench", "targetInstanceHost=" + target,
                  "baseDirectory=" + target_dir)
    token = env["token"]
    while env["statusCode"] == "running":
        env = api_job("/api/get-status", "token=" + token,
                      "lastKnownStatusVersion=%d" % env["statusVersion"],
                      "millisecondsTimeout=20000")
    wall = time.monotonic() - t
    after = cpu_ticks(process_tree(roots))
    after_by = [cpu_ticks(process_tree([r])) for r in roots]
    # each side's share: the Management Server, the source Instance Host and
    # the target's, each with its descendants (instance processes)
    hosts = {HOST1: 1, HOST2: 2}
    split = {"management": cpu_seconds(before_by[0], after_by[0]),
             "source": cpu_seconds(before_by[hosts[source]], after_by[hosts[source]]),
             "target": cpu_seconds(before_by[hosts[target]], after_by[hosts[target]])}
    if poller:
        time.sleep(1)
        poller.stop.set()
        poller.join(60)
    if env["statusCode"] != "succeeded":
        raise SystemExit("MoveInstance failed: %r" % env)
    paused = re.search(r"writes were paused for (\d+) ms", env.get("logOutput") or "")
    passes = [line for line in (env.get("logOutput") or "").splitlines() if line.startswith("pass ")]
    return {"side": "move", "from": source, "to": target, "wall": wall,
            "cpu": cpu_seconds(before, after), "cpuSplit": split,
            "pausedMs": int(paused.group(1)) if paused else None,
            "unavailable": poller.longest if poller else None,
            "polls": poller.polls if poller else None,
            "failedPolls": poller.failures if poller else None, "passes": passes}


def side_cp():
    base = instance()["baseDirectory"]
    dest = base + ".cp"
    shutil.rmtree(dest, ignore_errors=True)
    t = time.monotonic()
    p = subprocess.Popen(["cp", "-a", base, dest])
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    if status != 0:
        raise SystemExit("cp -a failed")
    t = time.monotonic()
    subprocess.run(["sync"], check=True)
    sync_wall = time.monotonic() - t
    shutil.rmtree(dest)
    return {"side": "cp", "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "syncWall": sync_wall}


def main():
    if not os.path.exists(CORPUS):
        raise SystemExit("move-bench: %s is absent" % CORPUS)
    os.makedirs(WORK, exist_ok=True)
    mbox = prepare_corpus()
    setup(mbox)
    conf = instance()
    size = dir_bytes(conf["baseDirectory"])
    messages = api("GetInstanceStatistics", "instanceID=bench")["messages"]
    print("instance: %d messages, base directory %.1f MB on %s; page cache %s" %
          (messages, size / 1e6, conf["instanceHost"],
           "dropped before each side" if COLD else "warm"), flush=True)
    results = []
    for n in range(RUNS):
        order = (side_move, side_cp) if n % 2 == 0 else (side_cp, side_move)
        for side in order:
            prepare_side()
            load = loadavg()
            r = side()
            r["run"] = n + 1
            r["load"] = load
            results.append(r)
            if r["side"] == "move":
                print("run %d move %s -> %s: wall %.2f s, CPU %.2f s, writes paused %s ms, "
                      "unavailable %s (%s of %s polls failed), load %s"
                      % (n + 1, r["from"], r["to"], r["wall"], r["cpu"], r["pausedMs"],
                         "%.2f s" % r["unavailable"] if r["unavailable"] is not None else "-",
                         r["failedPolls"], r["polls"], load), flush=True)
                print("    CPU: Management Server %.2f s, source host %.2f s, target host "
                      "%.2f s (each with its instance processes)"
                      % (r["cpuSplit"]["management"], r["cpuSplit"]["source"],
                         r["cpuSplit"]["target"]), flush=True)
                for line in r["passes"]:
                    print("    " + line, flush=True)
            else:
                print("run %d cp -a: wall %.2f s (+ sync %.2f s), CPU %.2f s, load %s"
                      % (n + 1, r["wall"], r["syncWall"], r["cpu"], load), flush=True)
    print("load at the end: %s" % loadavg())

    def med(side, key):
        vals = [r[key] for r in results if r["side"] == side and r[key] is not None]
        return statistics.median(vals) if vals else None

    summary = {"messages": messages, "baseDirectoryBytes": size, "runs": RUNS, "cold": COLD,
               "moveWall": med("move", "wall"), "moveCpu": med("move", "cpu"),
               "cpWall": med("cp", "wall"), "cpCpu": med("cp", "cpu"),
               "cpSyncWall": med("cp", "syncWall"),
               "pausedMs": med("move", "pausedMs"), "unavailable": med("move", "unavailable")}
    summary["wallRatio"] = summary["moveWall"] / summary["cpWall"]
    summary["wallRatioWithSync"] = summary["moveWall"] / (summary["cpWall"] + summary["cpSyncWall"])
    summary["cpuRatio"] = summary["moveCpu"] / summary["cpCpu"] if summary["cpCpu"] else None
    print("medians: move wall %.2f s, CPU %.2f s; cp -a wall %.2f s (+ sync %.2f s), CPU %.2f s"
          % (summary["moveWall"], summary["moveCpu"], summary["cpWall"], summary["cpSyncWall"],
             summary["cpCpu"]))
    print("move / cp -a: wall %.2fx (target <= 1.5x; %.2fx against cp -a + sync), CPU %s"
          % (summary["wallRatio"], summary["wallRatioWithSync"],
             "%.2fx" % summary["cpuRatio"] if summary["cpuRatio"] else "-"))
    if summary["unavailable"] is not None:
        print("unavailable (longest stretch without an IMAP answer): %.2f s (target <= 2 s); "
              "writes paused %s ms" % (summary["unavailable"], summary["pausedMs"]))
    with open(os.path.join(WORK, "move-report.json"), "w") as f:
        json.dump({"summary": summary, "results": results}, f, indent=1)
    stop_all()


if __name__ == "__main__":
    main()
