#!/usr/bin/python3
"""imap-bench.py [WORKDIR]: Coffer's IMAP beside Dovecot, same corpus, same run.

Corpus A (linux-mips, 84,096 messages) is imported into one user's archive
(folder "corpus") of a single server mode Coffer on loopback, and split into a
Maildir that Dovecot serves (../shared/peers/dovecot-serve.sh). Then, in turn
against both, with ../shared/peers/imap-fetch-bench.py in its raw mode over
implicit TLS:
  - FETCH 1:* (BODY.PEEK[]) of every message: messages/s, MB/s (3 runs; the
    best is reported, the first warms the caches), and the EXAMINE time;
  - full-text IMAP SEARCH (TEXT, SUBJECT, FROM): wall time per command;
  - 1,000 idle IMAP sessions (logged in, mailbox selected): the Client Access
    Server's resident and proportional memory.

  COFFER_BIN  coffer binary (default build/src/cli/coffer)
  SHARED      the shared folder (default ../shared next to the repository)
  BENCH_BYTES use only the first N bytes of the corpus (default: all)
Needs dovecot-imapd (scripts/install-deps.sh installs it), zstd, curl."""
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COFFER = os.environ.get("COFFER_BIN", os.path.join(REPO, "build", "src", "cli", "coffer"))
WORK = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "/tmp/coffer-imap-bench")
PEERS = os.path.join(SHARED, "peers")
CORPUS = os.path.join(SHARED, "corpus", "linux-mips.mboxrd.zst")
PORTS = {"mtcp": 19471, "mhttp": 19443, "itcp": 19472, "ctcp": 19473, "chttp": 19444,
         "cimap": 19143, "cimaps": 19993, "dovecot": 19150}


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return p.stdout


def coffer_config(*args):
    return run(COFFER, "config", "--config-dir", os.path.join(WORK, "coffer"), *args)


def api(*args):
    out = run(COFFER, "api", "--config-dir", os.path.join(WORK, "coffer"), "--server",
              "127.0.0.1:%d" % PORTS["mhttp"], "--user", "admin", "--password", "bench-admin", *args,
              timeout=7200)
    return json.loads(out)["result"]


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
        print(run("/usr/bin/python3", os.path.join(PEERS, "mbox2maildir.py"), maildir, mbox).strip(),
              "messages/bytes in the Maildir")
    return mbox, maildir


def start_coffer(mbox):
    cfg = os.path.join(WORK, "coffer")
    if os.path.isdir(cfg):  # a previous run's daemons
        subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    shutil.rmtree(cfg, ignore_errors=True)
    coffer_config("init", "--mode", "single", "--server-name", "bench.test", "--admin-password", "bench-admin")
    coffer_config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % PORTS["mtcp"],
                  "--http-listeners", "127.0.0.1:%d" % PORTS["mhttp"])
    coffer_config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % PORTS["itcp"])
    coffer_config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % PORTS["ctcp"],
                  "--http-listeners", "127.0.0.1:%d" % PORTS["chttp"],
                  "--imap-listeners", "127.0.0.1:%d" % PORTS["cimap"],
                  "--imaps-listeners", "127.0.0.1:%d" % PORTS["cimaps"])
    coffer_config("start")
    for _ in range(100):
        st = api("GetServiceStatus")
        if all(s["state"] == "connected" for s in st["instanceHosts"] + st["clientAccessServers"]):
            break
        time.sleep(0.2)
    data = os.path.join(WORK, "data")
    base = os.path.join(data, "bench")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    os.chmod(WORK, 0o755)
    # the Instance Host runs as the coffer user and makes the base directory
    subprocess.run(["chown", "coffer", data], check=False)
    api("CreateInstance", "instanceID=bench", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    for _ in range(100):
        if api("GetInstanceConfiguration", "instanceID=bench")["status"] == "running":
            break
        time.sleep(0.2)
    api("CreateUser", "instanceID=bench", "userName=bench", "password=bench-pass",
        "loginPrivileges=web,imap,api")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    shutil.copyfile(mbox, os.path.join(base, "import", "corpus.mbox"))
    t = time.time()
    r = api("ImportFiles", "instanceID=bench", "userName=bench", "path=import/corpus.mbox", "folder=corpus")
    print("coffer import: %d messages in %.1f s" % (r["archived"], time.time() - t))
    return cfg


def start_remote_host(mbox):
    """Multi server mode: a second Instance Host, its own server (config
    directory, 127.0.0.3), paired with the Management Server; an instance on
    it with the same corpus, reached through the same Client Access Server."""
    cfg = os.path.join(WORK, "ih2")
    if os.path.isdir(cfg):
        subprocess.run([COFFER, "config", "--config-dir", cfg, "stop"], capture_output=True)
    shutil.rmtree(cfg, ignore_errors=True)
    ih = [COFFER, "config", "--config-dir", cfg]
    run(*ih, "init", "--mode", "multi")
    run(*ih, "role", "add", "instance-host", "--server-name", "127.0.0.3", "--tcp-listeners", "127.0.0.3:19472")
    run(*ih, "pair", "--management-server", "127.0.0.1", "--api-port", PORTS["mhttp"], "--admin-password", "bench-admin",
        "--trust-on-first-use")
    run(*ih, "start")
    for _ in range(100):
        st = api("GetServiceStatus")
        if all(s["state"] == "connected" for s in st["instanceHosts"] + st["clientAccessServers"]) and \
                len(st["instanceHosts"]) == 2:
            break
        time.sleep(0.2)
    data = os.path.join(WORK, "data2")
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    subprocess.run(["chown", "coffer", data], check=False)
    api("CreateInstance", "instanceID=remote", "instanceHost=127.0.0.3", "baseDirectory=" + data + "/remote")
    for _ in range(100):
        if api("GetInstanceConfiguration", "instanceID=remote")["status"] == "running":
            break
        time.sleep(0.2)
    api("CreateUser", "instanceID=remote", "userName=bench", "password=bench-pass")
    os.makedirs(os.path.join(data, "remote", "import"), exist_ok=True)
    shutil.copyfile(mbox, os.path.join(data, "remote", "import", "corpus.mbox"))
    t = time.time()
    r = api("ImportFiles", "instanceID=remote", "userName=bench", "path=import/corpus.mbox", "folder=corpus")
    print("coffer import on the second Instance Host: %d messages in %.1f s" % (r["archived"], time.time() - t))
    return cfg


def start_dovecot(maildir):
    work = os.path.join(WORK, "dovecot")
    subprocess.run(["doveadm", "-c", os.path.join(work, "dovecot.conf"), "stop"], capture_output=True)
    # the daemon keeps the script's output open: send it to a file, not a pipe
    with open(os.path.join(WORK, "dovecot-serve.log"), "w") as log:
        subprocess.run(["sh", os.path.join(PEERS, "dovecot-serve.sh"), maildir, work,
                        str(PORTS["dovecot"])], stdout=log, stderr=subprocess.STDOUT, check=True)
    time.sleep(1)
    return work


def fetch_bench(port, user, password, box, runs=3):
    results = []
    for _ in range(runs):
        out = run("/usr/bin/python3", os.path.join(PEERS, "imap-fetch-bench.py"), "127.0.0.1", port,
                  user, password, box, "raw", "tls", timeout=3600)
        m = re.search(r"messages=(\d+) bytes=(\d+) .*select=([\d.]+)s fetch=([\d.]+)s -> (\d+) msg/s ([\d.]+) MB/s", out)
        results.append({"messages": int(m.group(1)), "select_s": float(m.group(3)),
                        "fetch_s": float(m.group(4)), "msgs_per_s": int(m.group(5)),
                        "mb_per_s": float(m.group(6))})
    return results


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Session:
    def __init__(self, port):
        self.s = tls_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)))
        self.f = self.s.makefile("rwb")
        self.f.readline()

    def cmd(self, tag, text):
        self.f.write(("%s %s\r\n" % (tag, text)).encode())
        self.f.flush()
        lines = []
        while True:
            line = self.f.readline()
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                self.f.read(int(m.group(1)))
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines


def search_bench(port, user, password, box):
    s = Session(port)
    s.cmd("l", "LOGIN %s %s" % (user, password))
    s.cmd("e", "EXAMINE %s" % box)
    out = {}
    for q in ('TEXT "cache flush"', "SUBJECT PATCH", "FROM ralf@linux-mips.org", "BODY octeon"):
        times = []
        hits = 0
        for i in range(4):
            t = time.perf_counter()
            lines = s.cmd("s%d" % i, "SEARCH " + q)
            times.append(time.perf_counter() - t)
            hits = len(lines[0].split()) - 2 if lines[0].startswith(b"* SEARCH") else 0
        out[q] = {"hits": hits, "first_ms": round(times[0] * 1000, 1),
                  "warm_median_ms": round(statistics.median(times[1:]) * 1000, 1)}
    s.cmd("o", "LOGOUT")
    return out


def web_search_bench():
    """The client API call behind Web Access's first page of search results
    (the 50 newest matches and the total), over HTTPS with Basic auth."""
    import base64
    import http.client
    import urllib.parse
    auth = "Basic " + base64.b64encode(b"bench:bench-pass").decode()
    conn = http.client.HTTPSConnection("127.0.0.1", PORTS["chttp"], context=tls_ctx())
    # the first request checks the password (Argon2id, then remembered for a
    # minute, as a signed-in page's session would be): not part of a search
    conn.request("GET", "/bench/api/folders", headers={"Authorization": auth})
    conn.getresponse().read()
    out = {}
    for q in ("kernel panic", "subject:PATCH", "from:ralf@linux-mips.org", '"cache flush"', "*"):
        times = []
        total = None
        for _ in range(5):
            t = time.perf_counter()
            conn.request("GET", "/bench/api/messages?" + urllib.parse.urlencode({"query": q, "limit": 50}),
                         headers={"Authorization": auth})
            r = conn.getresponse()
            body = r.read()
            times.append(time.perf_counter() - t)
            if r.status != 200:
                raise SystemExit("web search %r: HTTP %d %s" % (q, r.status, body[:200]))
            total = json.loads(body).get("total")
        out[q] = {"total": total, "first_ms": round(times[0] * 1000, 1),
                  "warm_median_ms": round(statistics.median(times[1:]) * 1000, 1)}
    return out


def memory_kib(pid):
    rss = pss = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


def idle_sessions_bench(cfg, n=1000):
    pid = int(open(os.path.join(cfg, "run", "client-access-server.pid")).read())
    before = memory_kib(pid)
    sessions = []
    for i in range(n):
        s = Session(PORTS["cimaps"])
        s.cmd("l", "LOGIN bench@bench bench-pass")
        s.cmd("e", "EXAMINE corpus")
        sessions.append(s)
    time.sleep(2)
    after = memory_kib(pid)
    for s in sessions:
        s.s.close()
    return {"sessions": n, "rss_before_kib": before[0], "rss_after_kib": after[0],
            "pss_after_kib": after[1], "added_kib_per_session": round((after[0] - before[0]) / n, 1)}


def main():
    if not os.path.exists(CORPUS):
        raise SystemExit("imap-bench: %s is absent" % CORPUS)
    os.makedirs(WORK, exist_ok=True)
    mbox, maildir = prepare_corpus()
    cfg = start_coffer(mbox)
    dove = start_dovecot(maildir)
    try:
        report = {}

        def step(name, value):
            report[name] = value
            print(name, json.dumps(value), flush=True)
        step("dovecot_fetch", fetch_bench(PORTS["dovecot"] + 1, "bench", "pass", "INBOX"))
        step("coffer_fetch", fetch_bench(PORTS["cimaps"], "bench@bench", "bench-pass", "corpus"))
        best_d = max(r["msgs_per_s"] for r in report["dovecot_fetch"])
        best_c = max(r["msgs_per_s"] for r in report["coffer_fetch"])
        step("fetch_ratio", round(best_c / best_d, 2))
        step("coffer_search", search_bench(PORTS["cimaps"], "bench@bench", "bench-pass", "corpus"))
        step("dovecot_search", search_bench(PORTS["dovecot"] + 1, "bench", "pass", "INBOX"))
        step("web_search", web_search_bench())
        step("idle_sessions", idle_sessions_bench(cfg))
        if os.environ.get("SKIP_MULTI") != "1":
            ih2 = start_remote_host(mbox)
            try:
                step("coffer_fetch_multi", fetch_bench(PORTS["cimaps"], "bench@remote", "bench-pass", "corpus"))
                step("dovecot_fetch_again", fetch_bench(PORTS["dovecot"] + 1, "bench", "pass", "INBOX"))
                best_m = max(r["msgs_per_s"] for r in report["coffer_fetch_multi"])
                best_d2 = max(r["msgs_per_s"] for r in report["dovecot_fetch_again"])
                step("fetch_ratio_multi", round(best_m / best_d2, 2))
            finally:
                subprocess.run([COFFER, "config", "--config-dir", ih2, "stop"], capture_output=True)
        print(json.dumps(report, indent=1))
        with open(os.path.join(WORK, "report.json"), "w") as f:
            json.dump(report, f, indent=1)
    finally:
        subprocess.run(["doveadm", "-c", os.path.join(dove, "dovecot.conf"), "stop"], capture_output=True)
        coffer_config("stop")


if __name__ == "__main__":
    main()
