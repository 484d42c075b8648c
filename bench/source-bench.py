#!/usr/bin/python3
"""source-bench.py imap|journal [WORKDIR]: the archiving sources of issue 14
against their peers, on the same machine in the same run (docs/benchmarks.md,
"Archiving sources").

imap     corpus A (its first COUNT messages, default 20,000) in one Dovecot
         mailbox (Maildir, implicit TLS, a master user) pulled by a Coffer
         profile (CreateProfile + RunProfile: TLS with a pinned certificate,
         adminMode master, every archive feature as by default) into a new
         instance's archive, versus mbsync (isync) pulling the same INBOX
         from the same Dovecot into a Maildir (FSync on, its default).
         Wall: Coffer from RunProfile to the job's end (polled every 0.2 s);
         mbsync: its process. Dovecot's index is built before the first run
         (one UID FETCH of every message's size) and its mail files are in the
         page cache for both sides.
journal  Postfix's smtp-source, SESSIONS (20) parallel LMTP sessions sending
         MESSAGES (20,000) messages of corpus A's mean size to one recipient,
         into Coffer's journal receiver (LMTP listener of the Instance Host:
         250 only once durably archived) versus Dovecot's LMTP delivering into
         a Maildir with mail_fsync = always. Wall: smtp-source's process.

Each run measures each side once; the order alternates (RUNS, default 2, at
least 2). CPU = user+sys of every process of the side: for Coffer the
Management Server, Instance Host, instance process and Client Access Server
trees (utime+stime+cutime+cstime of /proc/PID/stat, bench/serverprocs.py) plus
the `coffer api` calls the bench makes during the run; for the peer side
Dovecot's master and all its children, plus mbsync. The client (smtp-source)
is in neither. The instance process's peak RSS is its VmHWM, reset before each
run. Load averages at the start and end of each measurement are reported.

  COUNT      imap: messages of corpus A (default 20000; 0 = all 84,096)
  MESSAGES   journal: messages sent (default 20000)
  SESSIONS   journal: parallel sessions (default 20)
  RUNS       runs, each side once per run (default 2)
  COFFER_BIN coffer binary (default build/src/cli/coffer)
  SHARED     the shared folder (default ../shared next to the repository)
Needs dovecot-imapd, dovecot-lmtpd, isync, postfix (smtp-source), zstd; run
as root (Dovecot with listeners, mail processes as nobody). Writes
WORKDIR/<mode>-report.json. WORKDIR default /tmp/coffer-srcbench-<mode>."""
import json
import os
import pwd
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time

from serverprocs import TICK, cpu_ticks, loadavg, process_tree, reset_peaks, status_kib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from daemonfix import free_port  # noqa: E402  (ports locked against the tests')

SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COFFER = os.environ.get("COFFER_BIN", os.path.join(REPO, "build", "src", "cli", "coffer"))
CORPUS = os.path.join(SHARED, "corpus", "linux-mips.mboxrd.zst")
MODE = sys.argv[1] if len(sys.argv) > 1 else ""
if MODE not in ("imap", "journal"):
    raise SystemExit(__doc__)
WORK = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "/tmp/coffer-srcbench-" + MODE)
RUNS = max(2, int(os.environ.get("RUNS", "2")))
COUNT = int(os.environ.get("COUNT", "20000"))
MESSAGES = int(os.environ.get("MESSAGES", "20000"))
SESSIONS = int(os.environ.get("SESSIONS", "20"))
MASTER, MASTER_PASSWORD = "archiver", "master-secret"
DOMAIN = "acme.example"
NOBODY = pwd.getpwnam("nobody")


def run(*args, **kw):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise SystemExit("%s failed:\n%s%s" % (" ".join(map(str, args)), p.stdout, p.stderr))
    return p.stdout


def wait(predicate, what, secs=120, interval=0.2):
    end = time.time() + secs
    while time.time() < end:
        try:
            r = predicate()
            if r:
                return r
        except (SystemExit, OSError):
            pass
        time.sleep(interval)
    raise SystemExit("timed out waiting for " + what)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---- corpus A ----

def corpus_messages(count):
    """The first `count` messages of corpus A (all with 0), unescaped from mboxrd."""
    zstd = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
    out, cur = [], None
    for line in zstd.stdout:
        if line.startswith(b"From "):
            if cur is not None:
                out.append(b"".join(cur))
                if len(out) == count:
                    break
            cur = []
            continue
        if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
            line = line[1:]
        cur.append(line)
    if cur is not None and (count == 0 or len(out) < count):
        out.append(b"".join(cur))
    zstd.kill()
    zstd.wait()
    return [m[:-1] if m.endswith(b"\n\n") else m for m in out]


def mean_size():
    """Corpus A's mean message size (all of it), cached."""
    path = os.path.join(os.path.dirname(WORK), "coffer-srcbench-corpus-a-mean")
    if not os.path.exists(path):
        n = total = 0
        zstd = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
        for line in zstd.stdout:  # the mbox's From_ lines and blank separators left out
            if line.startswith(b"From "):
                n += 1
                total -= 1
            else:
                total += len(line) - (line.startswith(b">") and
                                      line.lstrip(b">").startswith(b"From "))
        zstd.wait()
        with open(path, "w") as f:
            f.write("%d %d\n" % (n, (total + 1) // n))
    with open(path) as f:
        return [int(x) for x in f.read().split()]


# ---- Dovecot (IMAP with a master user, or LMTP with fsync) ----

class Dovecot:
    def __init__(self, mode):
        self.dir = os.path.join(WORK, "dovecot")
        self.port = free_port()
        self.mode = mode
        self.proc = None

    def conf(self):
        w = self.dir
        common = f"""base_dir = {w}/run
state_dir = {w}/state
log_path = {w}/dovecot.log
listen = 127.0.0.1
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
"""
        if self.mode == "imap":
            return common + f"""protocols = imap
ssl = yes
ssl_cert = <{w}/cert.pem
ssl_key = <{w}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:{w}/mail/%u:INDEX={w}/index/%u
passdb {{
  driver = passwd-file
  master = yes
  args = scheme=PLAIN {w}/masters
  pass = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {w}/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={w}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
"""
        return common + f"""protocols = lmtp
ssl = no
mail_fsync = always
mail_location = maildir:{w}/mail/%n
lmtp_save_to_detail_mailbox = no
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={w}/home/%n allow_all_users=yes
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
"""

    def setup(self, messages=None):
        w = self.dir
        shutil.rmtree(w, ignore_errors=True)
        for sub in ("run", "state", "mail", "home", "index"):
            os.makedirs(os.path.join(w, sub))
        os.chmod(WORK, 0o755)
        if self.mode == "imap":
            cur = os.path.join(w, "mail", "bench", "cur")
            os.makedirs(cur)
            for sub in ("new", "tmp"):
                os.makedirs(os.path.join(w, "mail", "bench", sub))
            for i, m in enumerate(messages):
                with open(os.path.join(cur, "%d.srcbench:2,S" % i), "wb") as f:
                    f.write(m)
            run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", os.path.join(w, "key.pem"), "-out", os.path.join(w, "cert.pem"))
            with open(os.path.join(w, "users"), "w") as f:
                f.write("bench:{PLAIN}bench-secret\n")
            with open(os.path.join(w, "masters"), "w") as f:
                f.write("%s:{PLAIN}%s\n" % (MASTER, MASTER_PASSWORD))
            fp = run("openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                     os.path.join(w, "cert.pem"))
            self.fingerprint = fp.strip().split("=", 1)[1]
        with open(os.path.join(w, "dovecot.conf"), "w") as f:
            f.write(self.conf())
        run("chown", "-R", "%d:%d" % (NOBODY.pw_uid, NOBODY.pw_gid), os.path.join(w, "mail"),
            os.path.join(w, "home"), os.path.join(w, "index"))

    def start(self):
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c",
                                      os.path.join(self.dir, "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=2).close() or True,
             "Dovecot on %d" % self.port)
        return [self.proc.pid]

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None

    def imap_warm(self):
        """Log in and fetch every message's size: Dovecot's index built."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.dir, "cert.pem"))
        import imaplib
        c = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ctx)
        c.login("bench*" + MASTER, MASTER_PASSWORD)
        typ, data = c.select("INBOX", readonly=True)
        n = int(data[0])
        c.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE)")
        c.logout()
        return n


# ---- Coffer (single server mode, every role on free ports) ----

class Coffer:
    def __init__(self):
        self.cfg = os.path.join(WORK, "coffer")
        self.ports = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp")}
        self.instance = None

    def api(self, *args, raw=False):
        p = subprocess.run([COFFER, "api", "--config-dir", self.cfg, "--server",
                            "127.0.0.1:%d" % self.ports["mhttp"], "--user", "admin",
                            "--password", "bench-admin"] + list(args),
                           capture_output=True, text=True, timeout=600)
        if raw:
            return p
        if p.returncode != 0:
            raise SystemExit("coffer api %s: %s%s" % (args[0], p.stdout, p.stderr))
        return json.loads(p.stdout)["result"]

    def config(self, *args):
        return run(COFFER, "config", "--config-dir", self.cfg, *args, timeout=300)

    def connected(self):
        st = self.api("GetServiceStatus")
        return all(s["state"] == "connected"
                   for s in st["instanceHosts"] + st["clientAccessServers"])

    def setup(self):
        if os.path.isdir(self.cfg):
            subprocess.run([COFFER, "config", "--config-dir", self.cfg, "stop"],
                           capture_output=True)
        shutil.rmtree(self.cfg, ignore_errors=True)
        p = self.ports
        self.config("init", "--mode", "single", "--server-name", "bench.test",
                    "--admin-password", "bench-admin")
        self.config("role", "configure", "management-server",
                    "--tcp-listeners", "127.0.0.1:%d" % p["mtcp"],
                    "--http-listeners", "127.0.0.1:%d" % p["mhttp"])
        self.config("role", "configure", "instance-host",
                    "--tcp-listeners", "127.0.0.1:%d" % p["itcp"])
        self.config("role", "configure", "client-access-server",
                    "--tcp-listeners", "127.0.0.1:%d" % p["ctcp"],
                    "--http-listeners", "127.0.0.1:%d" % p["chttp"])
        if MODE == "journal":
            self.lmtp = free_port()
            settings = {"lmtpListeners": "127.0.0.1:%d" % self.lmtp, "starttls": False,
                        "maxConnectionsPerClient": SESSIONS + 10,
                        "instances": [{"instanceID": "j%d" % r, "addresses":
                                       ["rcpt%d@%s" % (r, DOMAIN)], "unknownRecipients": "refuse"}
                                      for r in range(1, RUNS + 1)]}
            path = os.path.join(WORK, "journal.json")
            with open(path, "w") as f:
                json.dump(settings, f)
            self.config("journal", "set", path)
        self.config("start")
        wait(self.connected, "Coffer's roles connected")
        data = os.path.join(WORK, "data")
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(data)
        os.chmod(WORK, 0o755)
        subprocess.run(["chown", "coffer", data], check=False)  # the Instance Host's user

    def roots(self):
        out = []
        for name in ("management-server", "instance-host", "client-access-server"):
            with open(os.path.join(self.cfg, "run", name + ".pid")) as f:
                out.append(int(f.read()))
        return out

    def new_instance(self, iid, users):
        """A fresh instance for one run (the last one stopped)."""
        if self.instance:
            self.api("StopInstances", "instanceFilter=" + self.instance)
        base = os.path.join(WORK, "data", iid)
        self.api("CreateInstance", "instanceID=" + iid, "instanceHost=127.0.0.1",
                 "baseDirectory=" + base)
        wait(lambda: self.api("GetInstanceConfiguration", "instanceID=" + iid)["status"]
             == "running", "instance %s running" % iid)
        self.api("SyncUsers", "instanceID=" + iid, "users=" + json.dumps(users))
        self.instance = iid
        return self.api("GetInstanceProcessLiveStatistics", "instanceID=" + iid)["pid"]

    def stop(self):
        subprocess.run([COFFER, "config", "--config-dir", self.cfg, "stop"], capture_output=True)


# ---- measuring one side ----

class Meter:
    """CPU of the process trees under roots plus this script's children, and
    the peak RSS of one process (VmHWM, reset at the start)."""

    def __init__(self, roots, rss_pid=None):
        self.roots = roots
        self.rss_pid = rss_pid
        self.load_start = loadavg()
        tree = process_tree(roots)
        if rss_pid:
            reset_peaks([rss_pid])
        self.before = cpu_ticks(tree)
        self.children = children_cpu()
        self.t0 = time.monotonic()

    def stop(self, client_s=0.0):
        """client_s: CPU of a child that is the load generator, not a side."""
        self.wall = time.monotonic() - self.t0
        self.tree = process_tree(self.roots)
        after = cpu_ticks(self.tree)
        self.by_process = {}
        for pid, t in after.items():
            name = "%s[%d]" % (self.tree[pid], pid)
            self.by_process[name] = round((t - self.before.get(pid, 0)) / TICK, 2)
        self.children_s = children_cpu() - self.children - client_s
        self.client_s = client_s
        self.cpu_s = sum(self.by_process.values()) + self.children_s
        self.peak_kib = status_kib(self.rss_pid, "VmHWM") if self.rss_pid else None
        self.load_end = loadavg()

    def report(self, side, messages, wall, extra=None):
        r = {"side": side, "messages": messages, "wall_s": round(wall, 2),
             "msgs_per_s": round(messages / wall), "cpu_s": round(self.cpu_s, 2),
             "cpu_ms_per_msg": round(self.cpu_s * 1000 / messages, 3),
             "cpu_s_client_processes": round(self.children_s, 2),
             "cpu_s_load_generator": round(self.client_s, 2),
             "cpu_s_by_process": {k: v for k, v in sorted(self.by_process.items(),
                                                          key=lambda kv: -kv[1]) if v > 0},
             "load_start": self.load_start, "load_end": self.load_end}
        if self.peak_kib is not None:
            r["instance_peak_rss_mb"] = round(self.peak_kib / 1024, 1)
        r.update(extra or {})
        return r


def imap_coffer(coffer, dovecot, r, count):
    iid = "pull%d" % r
    ipid = coffer.new_instance(iid, [{"userName": "bench", "emailAddresses": []}])
    profile = {"name": "bench pull", "type": "imap", "host": "127.0.0.1", "port": dovecot.port,
               "security": "tls", "fingerprint": dovecot.fingerprint, "login": MASTER,
               "password": MASTER_PASSWORD, "adminMode": "master", "mailboxes": ["bench"],
               "timeoutSeconds": 300}
    pid = coffer.api("CreateProfile", "instanceID=" + iid,
                     "profile=" + json.dumps(profile))["profileID"]
    m = Meter(coffer.roots() + dovecot_roots(dovecot), ipid)
    job = coffer.api("RunProfile", "instanceID=" + iid, "profileID=" + pid)["jobID"]

    # the job's start and end as the instance logs them (ms): polled in the
    # log file, so that no `coffer api` process is started meanwhile
    log = os.path.join(coffer.cfg, "log", "instances.log")
    pat = re.compile(r"^(\S+)Z .*instance=%s: job %s \(profile\) (\w+)$" % (iid, re.escape(job)),
                     re.M)

    def logged():
        with open(log) as f:
            found = pat.findall(f.read())
        return found if len(found) >= 2 else None
    found = wait(logged, "the profile's run", secs=3600, interval=0.05)
    m.stop()
    t0, t1 = (time.mktime(time.strptime(t[0][:19], "%Y-%m-%dT%H:%M:%S")) + float(t[0][19:])
              for t in found[:2])
    res = [x for x in coffer.api("GetWorkerResults", "instanceID=" + iid, "profileID=" + pid)
           if x["jobID"] == job][0]
    if res["state"] != "succeeded" or res["result"]["archived"] != count:
        raise SystemExit("the run did not archive %d messages: %s" % (count, res))
    return m.report("coffer", count, t1 - t0, {"result": res["result"]})


def dovecot_roots(dovecot):
    return [dovecot.proc.pid]


def imap_mbsync(dovecot, r, count):
    d = os.path.join(WORK, "mbsync%d" % r)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(os.path.join(d, "maildir"))
    rc = os.path.join(d, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(f"""IMAPAccount dovecot
Host 127.0.0.1
Port {dovecot.port}
User bench*{MASTER}
Pass {MASTER_PASSWORD}
SSLType IMAPS
CertificateFile {dovecot.dir}/cert.pem
PipelineDepth 50

IMAPStore remote
Account dovecot

MaildirStore local
Path {d}/maildir/
Inbox {d}/maildir/INBOX
SubFolders Verbatim

Channel pull
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
""")
    m = Meter(dovecot_roots(dovecot))
    p = subprocess.run(["mbsync", "-c", rc, "-q", "pull"], capture_output=True, text=True)
    m.stop()
    if p.returncode != 0:
        raise SystemExit("mbsync failed: %s%s" % (p.stdout, p.stderr))
    got = len(os.listdir(os.path.join(d, "maildir", "INBOX", "cur"))) + \
        len(os.listdir(os.path.join(d, "maildir", "INBOX", "new")))
    if got != count:
        raise SystemExit("mbsync fetched %d of %d" % (got, count))
    shutil.rmtree(d, ignore_errors=True)
    return m.report("mbsync", count, m.wall)


def smtp_source(port, rcpt, size):
    t, c = time.monotonic(), children_cpu()
    p = subprocess.run(["/usr/sbin/smtp-source", "-L", "-s", str(SESSIONS), "-m", str(MESSAGES),
                        "-l", str(size), "-M", "client.test", "-f", "sender@outside.example",
                        "-t", rcpt, "127.0.0.1:%d" % port], capture_output=True, text=True)
    wall, cpu = time.monotonic() - t, children_cpu() - c
    if p.returncode != 0:
        raise SystemExit("smtp-source: %s%s" % (p.stdout, p.stderr))
    return wall, cpu


def journal_coffer(coffer, r, size):
    iid = "j%d" % r
    ipid = coffer.new_instance(iid, [{"userName": "rcpt", "emailAddresses":
                                      ["rcpt%d@%s" % (r, DOMAIN)]}])
    m = Meter(coffer.roots(), ipid)
    wall, client = smtp_source(coffer.lmtp, "rcpt%d@%s" % (r, DOMAIN), size)
    m.stop(client)
    n = {f["folder"]: f["messages"] for f in
         coffer.api("GetFolderStatistics", "instanceID=" + iid)}.get("rcpt/Journal", 0)
    if n != MESSAGES:
        raise SystemExit("coffer archived %d of %d: %s" % (n, MESSAGES, n))
    return m.report("coffer", MESSAGES, wall)


def journal_dovecot(dovecot, r, size):
    m = Meter(dovecot_roots(dovecot))
    wall, client = smtp_source(dovecot.port, "rcpt%d@%s" % (r, DOMAIN), size)
    m.stop(client)
    md = os.path.join(dovecot.dir, "mail", "rcpt%d" % r)
    n = sum(len(os.listdir(os.path.join(md, s))) for s in ("new", "cur"))
    if n != MESSAGES:
        raise SystemExit("dovecot delivered %d of %d" % (n, MESSAGES))
    return m.report("dovecot-lmtp", MESSAGES, wall)


def main():
    os.makedirs(WORK, exist_ok=True)
    coffer, dovecot = Coffer(), Dovecot(MODE)
    runs = []
    try:
        if MODE == "imap":
            t = time.time()
            msgs = corpus_messages(COUNT)
            count = len(msgs)
            dovecot.setup(msgs)
            del msgs
            dovecot.start()
            assert dovecot.imap_warm() == count
            print("corpus A: %d messages in Dovecot (%.0f s)" % (count, time.time() - t),
                  flush=True)
        else:
            total, size = mean_size()
            print("corpus A: %d messages of %d bytes on average: smtp-source -l %d"
                  % (total, size, size), flush=True)
            dovecot.setup()
            dovecot.start()
        coffer.setup()
        for r in range(1, RUNS + 1):
            order = ("coffer", "peer") if r % 2 == 1 else ("peer", "coffer")
            for side in order:
                subprocess.run(["sync"])
                if MODE == "imap":
                    res = (imap_coffer(coffer, dovecot, r, count) if side == "coffer"
                           else imap_mbsync(dovecot, r, count))
                else:
                    res = (journal_coffer(coffer, r, size) if side == "coffer"
                           else journal_dovecot(dovecot, r, size))
                res["run"] = r
                runs.append(res)
                top = ", ".join("%s %.2f" % kv for kv in list(res["cpu_s_by_process"].items())[:5])
                print("run %d %-12s %d msgs in %.1f s = %d msg/s; CPU %.1f s = %.2f ms/msg "
                      "(client processes %.1f; %s; not counted: load generator %.1f)%s; load %s -> %s"
                      % (r, res["side"], res["messages"], res["wall_s"], res["msgs_per_s"],
                         res["cpu_s"], res["cpu_ms_per_msg"], res["cpu_s_client_processes"], top,
                         res["cpu_s_load_generator"],
                         "; instance peak RSS %.1f MB" % res["instance_peak_rss_mb"]
                         if "instance_peak_rss_mb" in res else "",
                         res["load_start"], res["load_end"]), flush=True)
    finally:
        coffer.stop()
        dovecot.stop()
    med = {}
    for side in sorted({x["side"] for x in runs}):
        mine = [x for x in runs if x["side"] == side]
        med[side] = {k: statistics.median(x[k] for x in mine)
                     for k in ("msgs_per_s", "cpu_ms_per_msg")}
    c = med.pop("coffer")
    (peer, p), = med.items()
    print("medians over %d runs: msg/s %d vs %s %d = %.2fx; CPU/msg %.2f vs %.2f ms = %.2fx "
          "(Coffer/peer)" % (RUNS, c["msgs_per_s"], peer, p["msgs_per_s"],
                             c["msgs_per_s"] / p["msgs_per_s"], c["cpu_ms_per_msg"],
                             p["cpu_ms_per_msg"], c["cpu_ms_per_msg"] / p["cpu_ms_per_msg"]))
    with open(os.path.join(WORK, MODE + "-report.json"), "w") as f:
        json.dump({"runs": runs, "medians": {"coffer": c, peer: p}}, f, indent=1)


if __name__ == "__main__":
    main()
