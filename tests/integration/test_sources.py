"""Archiving sources: profiles through the Management API, and an IMAP
server's mail arriving in an instance's archive by itself.

The peer is a real Dovecot on loopback, started by this module (as root, its
mail processes run as nobody): implicit TLS and STARTTLS with a certificate
made here, a master user (login "mailbox*admin", and SASL PLAIN with an
authorization identity), two mailboxes holding 2,400 real messages of corpus
A (../shared/corpus, linux-mips) in nested folders, one whose messages are
expunged between the listing and the FETCH (through a TLS relay that reads
the commands), and a third mailbox for
deleting after archiving (one test appends to one, for a continuous profile
to pick up by itself), and a fourth read over POP3 (RETR compared with
poplib's). What the archive holds is compared byte for byte
with what Dovecot returns for BODY.PEEK[] (fetched here with imaplib).

Time: the corpus slice is read once per module and Dovecot started once;
each test starts its own Coffer deployment (a few seconds). A run of 2,400
messages takes a few seconds on a quiet machine; waits are bounded at 300 s
for a loaded one (sanitizer builds are several times slower)."""
import collections
import hashlib
import imaplib
import json
import os
import pathlib
import poplib
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from daemonfix import COFFER, ROOT, all_connected, free_port, wait_for
from test_instances import data_dir, state

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "linux-mips.mboxrd.zst")
DOVECOT = "/usr/sbin/dovecot"
DOVECOT_POP3 = "/usr/lib/dovecot/pop3"
# mailbox -> Maildir++ folder ("" is INBOX) -> how many messages
LAYOUT = {
    "alice": [("", 700), ("Lists", 100), ("Lists.mips", 600), ("Lists.mips.old", 300),
              ("Sent", 150), ("Trash", 50)],
    "bob": [("", 350), ("Archive", 150)],
}
EXCLUDED = ("Trash",)
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret",
             "dave": "dave-secret", "erin": "erin-secret", "frank": "frank-secret"}
# a message whose lines start with dots: POP3 stuffs and the client unstuffs them
DOTS = (b"From: dots@example.org\r\nSubject: dots\r\n\r\n.leading dot\r\n"
        b"..two dots\r\n.\r\nafter a lone dot\r\n")
MASTER, MASTER_PASSWORD = "archiver", "master-secret"
# erin: a journal (catch-all) mailbox whose messages go to users by recipient
JOURNAL = [
    b"From: a@else.example\r\nTo: Alice <alice@acme.example>\r\nSubject: j1\r\n\r\none\r\n",
    b"From: a@else.example\r\nTo: bob@acme.example\r\nCc: \"A\" <ALICE@Acme.Example>\r\n"
    b"Subject: j2\r\n\r\nboth\r\n",
    b"From: a@else.example\r\nTo: stranger@else.example\r\nSubject: j3\r\n\r\nnobody\r\n",
    b"From: a@else.example\r\nTo: list@lists.example\r\nX-Original-To: bob@acme.example\r\n"
    b"Subject: j4\r\n\r\nenvelope\r\n",
    b"From: a@else.example\r\nTo: undisclosed-recipients:;\r\nBcc: alice@acme.example\r\n"
    b"Subject: j5\r\n\r\nbcc\r\n",
]
RUN_TIMEOUT = 300
STEP_DELAY_MS = 3000


def corpus_messages(count):
    """The first `count` messages of linux-mips, unescaped from mboxrd."""
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
    zstd.kill()
    zstd.wait()
    # the blank line before the next envelope belongs to the mbox, not the message
    return [m[:-1] if m.endswith(b"\n\n") else m for m in out]


def write_maildir(root, folder, messages, start):
    d = root if folder == "" else root / ("." + folder)
    for sub in ("cur", "new", "tmp"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    if folder:
        (d / "maildirfolder").write_bytes(b"")
    for i, m in enumerate(messages):
        (d / "cur" / ("%d.coffer:2,S" % (start + i))).write_bytes(m)


class Dovecot:
    def __init__(self, top):
        self.top = top
        self.work = top / "dovecot"
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.pop3_port, self.pop3s_port = free_port(), free_port()
        self.pop3 = os.path.exists(DOVECOT_POP3)

    def conf(self):
        w = self.work
        return f"""base_dir = {w}/run
state_dir = {w}/state
log_path = {w}/dovecot.log
protocols = imap{" pop3" if self.pop3 else ""}
listen = 127.0.0.1
ssl = yes
ssl_cert = <{w}/cert.pem
ssl_key = <{w}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_master_user_separator = *
mail_location = maildir:{w}/mail/%u
first_valid_uid = 1
default_login_user = dovenull
default_internal_user = dovecot
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
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
""" + (f"""service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
""" if self.pop3 else "")

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.work / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up():
            try:
                self.login("alice").logout()
                return True
            except (OSError, imaplib.IMAP4.error):
                return False
        wait_for(up, timeout=30, what="Dovecot answering on %d" % self.imaps_port)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def login(self, mailbox):
        ctx = ssl.create_default_context(cafile=str(self.work / "cert.pem"))
        c = imaplib.IMAP4_SSL("127.0.0.1", self.imaps_port, ssl_context=ctx)
        c.login("%s*%s" % (mailbox, MASTER), MASTER_PASSWORD)
        return c

    def pop3_messages(self, mailbox):
        """RETR of every message (dot-stuffing undone, CRLF line ends)."""
        ctx = ssl.create_default_context(cafile=str(self.work / "cert.pem"))
        c = poplib.POP3_SSL("127.0.0.1", self.pop3s_port, context=ctx)
        c.user("%s*%s" % (mailbox, MASTER))
        c.pass_(MASTER_PASSWORD)
        count = c.stat()[0]
        out = [b"".join(line + b"\r\n" for line in c.retr(i + 1)[1]) for i in range(count)]
        c.quit()
        return out

    def contents(self, mailbox, skip=()):
        """folder -> [BODY.PEEK[] bytes] of a mailbox, as Dovecot serves them."""
        c = self.login(mailbox)
        out = {}
        typ, lines = c.list('""', '"*"')
        for line in lines:
            name = line.decode().rsplit(' "." ', 1)[1].strip('"')
            if name in skip:
                continue
            c.select('"%s"' % name, readonly=True)
            typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
            out[name.replace(".", "/")] = [d[1] for d in data if isinstance(d, tuple)]
        c.logout()
        return out


@pytest.fixture(scope="module")
def dovecot():
    if not os.path.exists(CORPUS):
        pytest.skip("corpus A is absent (%s): these tests need real mail" % CORPUS)
    if not os.path.exists(DOVECOT):
        pytest.skip("Dovecot (dovecot-imapd) is not installed")
    if os.geteuid() != 0:
        pytest.skip("Dovecot with listeners and a master user is started as root")
    top = pathlib.Path(tempfile.mkdtemp(prefix="coffer-sources-", dir="/tmp"))
    os.chmod(top, 0o755)
    d = Dovecot(top)
    w = d.work
    for sub in ("run", "state", "mail", "home"):
        (w / sub).mkdir(parents=True)
    total = sum(n for folders in LAYOUT.values() for _, n in folders)
    messages = corpus_messages(total + 150)
    pos = 0
    for mailbox, folders in LAYOUT.items():
        for folder, n in folders:
            write_maildir(w / "mail" / mailbox, folder, messages[pos:pos + n], pos)
            pos += n
    # carol: for deleting after archiving; one entry that is not a message
    carol = messages[pos:pos + 20]
    write_maildir(w / "mail" / "carol", "", carol, pos)
    (w / "mail" / "carol" / "cur" / "99999.coffer:2,S").write_bytes(b"\x00\x01binary\x00" * 50)
    write_maildir(w / "mail" / "erin", "", JOURNAL, 900000)
    # dave: for POP3
    write_maildir(w / "mail" / "dave", "", messages[pos + 20:pos + 50] + [DOTS], pos + 20)
    # frank: messages expunged between the listing and the FETCH
    write_maildir(w / "mail" / "frank", "", messages[pos + 50:pos + 150], pos + 50)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(w / "key.pem"), "-out", str(w / "cert.pem")],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(w / "other-key.pem"), "-out", str(w / "other.pem")],
                   check=True, capture_output=True)
    (w / "users").write_text("".join("%s:{PLAIN}%s\n" % kv for kv in PASSWORDS.items()))
    (w / "masters").write_text("%s:{PLAIN}%s\n" % (MASTER, MASTER_PASSWORD))
    (w / "dovecot.conf").write_text(d.conf())
    nobody = pwd.getpwnam("nobody")
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid),
                    str(w / "mail"), str(w / "home")], check=True)
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                         str(w / "cert.pem")], check=True, capture_output=True, text=True)
    d.fingerprint = fp.stdout.strip().split("=", 1)[1]
    d.start()
    yield d
    d.stop()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def coffer(request):
    single = request.getfixturevalue("single")
    wait_for(all_connected(single.api), what="every role connected")
    base = data_dir(single, "acme")
    single.api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1",
                    "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    single.base = base
    single.key = os.path.join(single.dir, "instance-keys", "acme.key")
    return single


def call(api, function, *args):
    return api.call(function, "instanceID=acme", *args)


def create(api, **fields):
    return call(api, "CreateProfile", "profile=" + json.dumps(fields))


def profile_fields(d, **over):
    p = {"name": "mail server", "type": "imap", "host": "127.0.0.1", "port": d.imaps_port,
         "security": "tls", "fingerprint": d.fingerprint, "login": MASTER,
         "password": MASTER_PASSWORD, "adminMode": "master", "mailboxes": ["alice", "bob"],
         "exclude": list(EXCLUDED)}
    p.update(over)
    return p


def run(api, profile_id, timeout=RUN_TIMEOUT):
    job = call(api, "RunProfile", "profileID=" + profile_id)["jobID"]
    return wait_for(lambda: ended(api, job), timeout=timeout, interval=0.5,
                    what="the run of %s" % profile_id)


def ended(api, job):
    p = api.call_raw("GetWorkerResults", "instanceID=acme")
    if p.returncode != 0:
        return None  # the instance is restarting (after a kill)
    for r in json.loads(p.stdout)["result"]:
        if r["jobID"] == job and r["state"] != "running":
            return r
    return None


def archived_bytes(c, query="*"):
    """Every message in the archive (one per user and folder), as bytes."""
    out = tempfile.mkdtemp(prefix="coffer-export-", dir="/tmp")
    try:
        shutil.rmtree(out)
        p = subprocess.run([COFFER, "archive", "--base-dir", c.base, "--key-file", c.key,
                            "export", "--format", "eml", query, out],
                           capture_output=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return [pathlib.Path(out, f).read_bytes() for f in os.listdir(out)]
    finally:
        shutil.rmtree(out, ignore_errors=True)


def digests(blobs):
    return collections.Counter(hashlib.sha256(b).hexdigest() for b in blobs)


def source_bytes(d, mailboxes=("alice", "bob")):
    out = {}
    for m in mailboxes:
        for folder, blobs in d.contents(m, skip=EXCLUDED).items():
            out[(m, folder)] = blobs
    return out


def test_profiles_and_an_imap_run(dovecot, coffer):
    api = coffer.api
    # the API: a profile is checked field by field, its password never shown
    bad = api.call_raw("CreateProfile", "instanceID=acme",
                       "profile=" + json.dumps(profile_fields(dovecot, colour="red")))
    assert bad.returncode != 0 and "profile.colour" in bad.stdout + bad.stderr
    bad = api.call_raw("CreateProfile", "instanceID=acme",
                       "profile=" + json.dumps(profile_fields(dovecot, security="none")))
    assert bad.returncode != 0 and "tls|starttls" in bad.stdout + bad.stderr
    p = create(api, **profile_fields(dovecot))
    pid = p["profileID"]
    assert "password" not in p and p["hasPassword"] is True
    listed = call(api, "GetProfiles")
    assert [x["profileID"] for x in listed] == [pid]
    assert MASTER_PASSWORD not in json.dumps(listed)
    with open(os.path.join(coffer.base, "profiles.sealed"), "rb") as f:
        assert MASTER_PASSWORD.encode() not in f.read()

    expected = source_bytes(dovecot)
    total = sum(len(b) for b in expected.values())
    assert total == sum(n for f in LAYOUT.values() for name, n in f if name not in EXCLUDED)
    r = run(api, pid)
    assert r["state"] == "succeeded", r
    assert r["result"]["archived"] == total and r["result"]["failed"] == 0, r
    # byte for byte what Dovecot serves, each once per user and folder
    got = archived_bytes(coffer)
    assert digests(got) == digests(b for blobs in expected.values() for b in blobs)
    # the folder tree is kept (Maildir++ "Lists.mips.old" is Lists/mips/old)
    nested = archived_bytes(coffer, "folder:Lists/mips/old")
    assert digests(nested) == digests(expected[("alice", "Lists/mips/old")])

    # the instance's CPU time (GetInstanceProcessLiveStatistics) is its
    # process's, every thread's, as the kernel counts it in /proc/PID/stat
    # (utime + stime in clock ticks; the two round differently: 50 ms)
    def ticks_ms(pid):
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")
    ipid = instance_pid(api)
    before = ticks_ms(ipid)
    cpu = api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["cpuMilliseconds"]
    after = ticks_ms(ipid)
    assert before > 200 and before - 50 <= cpu <= after + 50, (before, cpu, after)

    # incremental: nothing new, nothing fetched again
    again = run(api, pid)
    assert again["state"] == "succeeded", again
    res = again["result"]
    assert (res["archived"], res["duplicates"], res["failed"]) == (0, 0, 0), again

    # the same server through STARTTLS, SASL PLAIN with an authorization
    # identity, the certificate checked against a CA (not pinned): the mail
    # is all there already
    ca = (dovecot.work / "cert.pem").read_text()
    p2 = create(api, **profile_fields(dovecot, port=dovecot.imap_port, security="starttls",
                                      fingerprint=None, caCertificate=ca, adminMode="authzid",
                                      mailboxes=["bob"]))
    r2 = run(api, p2["profileID"])
    assert r2["state"] == "succeeded", r2
    bob = sum(len(b) for (m, _), b in expected.items() if m == "bob")
    assert (r2["result"]["archived"], r2["result"]["duplicates"]) == (0, bob), r2

    # failures are clear in the job result
    call(api, "SetProfile", "profileID=" + p2["profileID"],
         "profile=" + json.dumps({"password": "wrong"}))
    r3 = run(api, p2["profileID"])
    assert r3["state"] == "failed" and "login refused" in r3["error"], r3
    assert "AUTHENTICATIONFAILED" in r3["error"] or "failed" in r3["error"].lower(), r3
    other = (dovecot.work / "other.pem").read_text()
    call(api, "SetProfile", "profileID=" + p2["profileID"],
         "profile=" + json.dumps({"password": MASTER_PASSWORD, "caCertificate": other}))
    r4 = run(api, p2["profileID"])
    assert r4["state"] == "failed" and "not trusted" in r4["error"], r4
    bad_pin = "ab" * 32
    call(api, "SetProfile", "profileID=" + pid, "profile=" + json.dumps({"fingerprint": bad_pin}))
    r5 = run(api, pid)
    assert r5["state"] == "failed", r5
    assert "fingerprint mismatch" in r5["error"] and bad_pin in r5["error"], r5
    report = call(api, "GetWorkerResultReport", "jobID=" + r5["jobID"])
    assert report["error"] == r5["error"]
    # nothing was archived by the failed runs
    assert len(archived_bytes(coffer)) == total

    call(api, "DeleteProfile", "profileID=" + p2["profileID"])
    assert [x["profileID"] for x in call(api, "GetProfiles")] == [pid]
    assert not os.path.exists(os.path.join(coffer.base,
                                           "profile-%s.state.sealed" % p2["profileID"]))


def instance_pid(api):
    return api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["pid"]


@pytest.fixture
def slow_coffer(monkeypatch, request):
    """Each committed batch's progress report of a job sleeps STEP_DELAY_MS
    (COFFER_TEST_JOB_STEP_DELAY_MS, set before the daemons start: they pass
    it on), so that a kill after the first batch lands in the middle of the
    run however fast the machine."""
    monkeypatch.setenv("COFFER_TEST_JOB_STEP_DELAY_MS", str(STEP_DELAY_MS))
    return request.getfixturevalue("coffer")


def test_killed_run_loses_nothing_and_stores_nothing_twice(dovecot, slow_coffer):
    coffer = slow_coffer
    api = coffer.api
    pid = create(api, **profile_fields(dovecot))["profileID"]
    expected = source_bytes(dovecot)
    total = sum(len(b) for b in expected.values())
    job = call(api, "RunProfile", "profileID=" + pid)["jobID"]

    def committed():
        for r in call(api, "GetWorkerResults"):
            if r["jobID"] == job and r["result"].get("archived", 0) > 0:
                return r
        return None
    # killed once the first batch is committed: its progress report sleeps
    # STEP_DELAY_MS, the rest is still to come
    first = wait_for(committed, timeout=RUN_TIMEOUT, interval=0.1, what="a first committed batch")
    assert first["state"] == "running" and first["result"]["archived"] < total, first
    os.kill(instance_pid(api), signal.SIGKILL)
    killed = wait_for(lambda: ended(api, job), timeout=120, what="the killed run to be reported")
    assert killed["state"] == "interrupted", killed
    wait_for(lambda: state(coffer, "acme") == "running", timeout=60, what="acme back")
    r = run(api, pid)
    assert r["state"] == "succeeded", r
    got = archived_bytes(coffer)
    # everything, each exactly once per user and folder
    assert len(got) == total
    assert digests(got) == digests(b for blobs in expected.values() for b in blobs)


def test_delete_after_archive_removes_only_what_was_archived(dovecot, coffer):
    api = coffer.api
    before = dovecot.contents("carol")["INBOX"]
    assert len(before) == 21
    p = create(api, **profile_fields(dovecot, login="carol", password=PASSWORDS["carol"],
                                     adminMode="none", mailboxes=None, user="carol",
                                     deleteAfterArchive=True))
    r = run(api, p["profileID"])
    assert r["state"] == "succeeded", r
    res = r["result"]
    assert (res["archived"], res["failed"], res["deletedFromSource"]) == (20, 1, 1 * 20), r
    report = call(api, "GetWorkerResultReport", "jobID=" + r["jobID"])["result"]["report"]
    assert len(report) == 1 and "not-a-message" in report[0], report
    left = dovecot.contents("carol")["INBOX"]
    # the one entry that is not a message stays on the server, the rest is gone
    # (Dovecot serves its NUL bytes as 0x80)
    assert len(left) == 1 and b"\x01binary" in left[0]
    assert digests(archived_bytes(coffer)) == digests(b for b in before
                                                       if b"\x01binary" not in b)
    # again: nothing more to archive, the failure reported again, nothing deleted
    r = run(api, p["profileID"])
    res = r["result"]
    assert (res["archived"], res["failed"], res.get("deletedFromSource", 0)) == (0, 1, 0), r
    assert len(dovecot.contents("carol")["INBOX"]) == 1


def test_continuous_schedule_brings_new_mail_by_itself(dovecot, coffer):
    api = coffer.api
    p = create(api, **profile_fields(dovecot, mailboxes=["bob"], schedule="continuous",
                                     pauseSeconds=1))
    pid = p["profileID"]
    bob = sum(len(b) for b in dovecot.contents("bob").values())

    def archived_runs():
        return [r for r in call(api, "GetWorkerResults", "profileID=" + pid)
                if r["state"] == "succeeded" and r["result"]["archived"] > 0]
    # no RunProfile: the schedule starts it (the timer looks every 5 s)
    first = wait_for(archived_runs, timeout=RUN_TIMEOUT, interval=0.5, what="a scheduled run")
    assert [r["result"]["archived"] for r in first] == [bob], first
    new = (b"From: someone@example.org\r\nTo: bob@example.org\r\n"
           b"Subject: arrived while the profile runs on\r\n\r\nhello\r\n")
    c = dovecot.login("bob")
    typ, _ = c.append("Archive", None, None, new)
    assert typ == "OK"
    c.logout()
    later = wait_for(lambda: [r for r in archived_runs() if r["jobID"] != first[0]["jobID"]],
                     timeout=RUN_TIMEOUT, interval=0.5, what="the new message archived")
    assert [r["result"]["archived"] for r in later] == [1], later
    served = dovecot.contents("bob")["Archive"]
    got = archived_bytes(coffer, "folder:Archive")
    assert digests(got) == digests(served) and len(got) == 151
    # back to manual: no more runs start
    call(api, "SetProfile", "profileID=" + pid, "profile=" + json.dumps({"schedule": "manual"}))
    wait_for(lambda: all(r["state"] != "running"
                         for r in call(api, "GetWorkerResults", "profileID=" + pid)),
             timeout=RUN_TIMEOUT, what="the last run to end")
    runs = {r["jobID"] for r in call(api, "GetWorkerResults", "profileID=" + pid)}
    time.sleep(7)  # more than the timer's 5 s period and the pause
    assert {r["jobID"] for r in call(api, "GetWorkerResults", "profileID=" + pid)} == runs


def test_a_failed_scheduled_run_reaches_the_failed_jobs(dovecot, coffer):
    """Nobody watches a scheduled run: when one fails, the Management
    Server's failed jobs (GetJobs state=failed, the Console dashboard's
    messages) show it with its instance and reason; a failed run started by
    hand (RunProfile, which its caller follows) is not added there."""
    api = coffer.api
    manual = create(api, **profile_fields(dovecot, password="not the password"))
    r = run(api, manual["profileID"])
    assert r["state"] == "failed", r

    def scheduler_failures():
        return [j for j in api.call("GetJobs", "state=failed") if j["user"] == "scheduler"]
    assert scheduler_failures() == []
    p = create(api, **profile_fields(dovecot, password="not the password",
                                     schedule="continuous", pauseSeconds=3600))
    pid = p["profileID"]
    failed = wait_for(scheduler_failures, timeout=RUN_TIMEOUT, interval=0.5,
                      what="the scheduled run's failure among the failed jobs")
    call(api, "SetProfile", "profileID=" + pid, "profile=" + json.dumps({"schedule": "manual"}))
    assert len(failed) == 1, failed
    j = failed[0]
    run_of = [r for r in call(api, "GetWorkerResults", "profileID=" + pid)]
    assert len(run_of) == 1 and run_of[0]["state"] == "failed", run_of
    assert j["function"] == "scheduled run of profile %s" % pid, j
    assert j["instanceID"] == "acme" and j["state"] == "failed", j
    assert run_of[0]["jobID"] in j["error"], j
    assert "AUTHENTICATIONFAILED" in j["error"] or "login" in j["error"].lower(), j


def test_pop3_by_uidl_with_stls_and_delete(dovecot, coffer):
    if not dovecot.pop3:
        pytest.skip("Dovecot's POP3 (dovecot-pop3d) is not installed")
    api = coffer.api
    served = dovecot.pop3_messages("dave")
    assert len(served) == 31 and DOTS in served
    p = create(api, **profile_fields(dovecot, type="pop3", port=dovecot.pop3_port,
                                     security="starttls", mailboxes=["dave"], exclude=None,
                                     folders=["Mail/POP3"]))
    pid = p["profileID"]
    r = run(api, pid)
    assert r["state"] == "succeeded", r
    assert (r["result"]["archived"], r["result"]["failed"]) == (31, 0), r
    got = archived_bytes(coffer, "folder:Mail/POP3")
    assert digests(got) == digests(served)
    # incremental by UIDL: nothing new
    r = run(api, pid)
    assert (r["result"]["archived"], r["result"]["duplicates"]) == (0, 0), r
    # a pin that does not match: a clear failure
    call(api, "SetProfile", "profileID=" + pid, "profile=" + json.dumps({"fingerprint": "cd" * 32}))
    r = run(api, pid)
    assert r["state"] == "failed" and "fingerprint mismatch" in r["error"], r
    # deleting: what is there is recognised as archived, then removed
    call(api, "SetProfile", "profileID=" + pid,
         "profile=" + json.dumps({"fingerprint": dovecot.fingerprint, "deleteAfterArchive": True}))
    r = run(api, pid)
    res = r["result"]
    assert (res["archived"], res["duplicates"], res["deletedFromSource"]) == (0, 31, 31), r
    assert dovecot.pop3_messages("dave") == []
    assert len(archived_bytes(coffer, "folder:Mail/POP3")) == 31


class Relay:
    """A relay to Dovecot, a thread per direction. Subclasses say how a
    connection is opened (open) and what passes each way (forwarders:
    data -> (bytes to pass on, go on?)); the n-th connection is numbered."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stopping = False
        threading.Thread(target=self.accept, daemon=True).start()

    @staticmethod
    def whole(data):
        return data, True

    def forwarders(self, n):
        return self.whole, self.whole

    def accept(self):
        while not self.stopping:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                client, server = self.open(raw)
            except OSError:
                raw.close()
                continue
            self.connections += 1
            up, down = self.forwarders(self.connections)
            threading.Thread(target=self.pipe, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self.pipe, args=(server, client, down), daemon=True).start()

    @staticmethod
    def pipe(src, dst, forward):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                out, go_on = forward(data)
                dst.sendall(out)
                if not go_on:
                    break
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.stopping = True
        self.listener.close()


class CuttingProxy(Relay):
    """A TCP relay to Dovecot that closes its first connection after `cut`
    bytes from the server (in the middle of a FETCH), and relays the later
    ones whole: the real server, with a connection that drops."""

    def __init__(self, port, cut):
        self.target, self.cut = port, cut
        super().__init__()

    def open(self, raw):
        return raw, socket.create_connection(("127.0.0.1", self.target))

    def forwarders(self, n):
        if n != 1:
            return self.whole, self.whole
        sent = [0]

        def cut(data):
            if sent[0] + len(data) >= self.cut:
                return data[:self.cut - sent[0]], False
            sent[0] += len(data)
            return data, True
        return self.whole, cut


def test_connection_dropped_mid_fetch_then_the_next_run_carries_on(dovecot, coffer):
    api = coffer.api
    # bob's 500 messages: each round trip passes two Python threads
    expected = dovecot.contents("bob")
    total = sum(len(b) for b in expected.values())
    proxy = CuttingProxy(dovecot.imaps_port, cut=600_000)
    try:
        p = create(api, **profile_fields(dovecot, port=proxy.port, mailboxes=["bob"]))
        first = run(api, p["profileID"])
        assert first["state"] == "failed", first
        assert "closed the connection" in first["error"] or "read failed" in first["error"], first
        # what came whole before the drop is committed and kept
        done = first["result"]["archived"]
        assert 0 < done < total, first
        second = run(api, p["profileID"])
        assert second["state"] == "succeeded", second
        # nothing lost, nothing twice: the state went up to the message cut
        # off and no further, so nothing committed is fetched again
        assert second["result"]["archived"] + done == total, (first, second)
        assert second["result"]["duplicates"] == 0, second
        got = archived_bytes(coffer)
        assert len(got) == total
        assert digests(got) == digests(b for blobs in expected.values() for b in blobs)
    finally:
        proxy.close()


def subjects(api, folder):
    got = call(api, "GetMessages", "folder=" + folder)
    return sorted(m["subject"] for m in (got["messages"] if isinstance(got, dict) else got))


def test_a_journal_mailbox_goes_to_users_by_recipient(dovecot, coffer):
    api = coffer.api
    for user in ("alice", "bob"):
        call(api, "CreateUser", "userName=" + user,
             "emailAddresses=%s@acme.example" % user)
    call(api, "CreateUser", "userName=rest")
    bad = api.call_raw("CreateProfile", "instanceID=acme", "profile=" + json.dumps(
        profile_fields(dovecot, mailboxes=["erin"], distribute="recipients",
                       unknownRecipients="catch-all")))
    assert bad.returncode != 0 and "catchAllUser" in bad.stdout + bad.stderr
    p = create(api, **profile_fields(dovecot, mailboxes=["erin"], distribute="recipients"))
    r = run(api, p["profileID"])
    assert r["state"] == "succeeded", r
    # j2 is stored once and appears for both; j3 is nobody's: reported, not archived
    assert (r["result"]["archived"], r["result"]["failed"]) == (5, 1), r
    report = call(api, "GetWorkerResultReport", "jobID=" + r["jobID"])["result"]["report"]
    assert len(report) == 1 and "no-recipient" in report[0], report
    assert subjects(api, "alice/INBOX") == ["j1", "j2", "j5"]
    assert subjects(api, "bob/INBOX") == ["j2", "j4"]
    served = dovecot.contents("erin")["INBOX"]
    want = [served[i] for i in (0, 1, 4, 1, 3)]  # alice's three, bob's two
    assert digests(archived_bytes(coffer)) == digests(want)
    # the unknown recipient to a catch-all user: a catch-all user that is
    # not there stops the run before it starts
    call(api, "SetProfile", "profileID=" + p["profileID"], "profile=" + json.dumps(
        {"unknownRecipients": "catch-all", "catchAllUser": "nobody-here"}))
    job = api.call_raw("RunProfile", "instanceID=acme", "profileID=" + p["profileID"])
    assert job.returncode != 0 and "nobody-here" in job.stdout + job.stderr
    p2 = create(api, **profile_fields(dovecot, mailboxes=["erin"], distribute="recipients",
                                      unknownRecipients="catch-all", catchAllUser="rest"))
    r2 = run(api, p2["profileID"])
    assert r2["state"] == "succeeded", r2
    assert (r2["result"]["archived"], r2["result"]["duplicates"],
            r2["result"]["failed"]) == (1, 5, 0), r2
    assert subjects(api, "rest/INBOX") == ["j3"]


def test_journal_delivery_during_a_profile_run(dovecot, slow_coffer):
    """A profile's run holds the archive's writer; a journal message that
    arrives meanwhile goes through the run's own pipeline and is answered
    250 within seconds, instead of 451 for as long as the run lasts."""
    from test_journal import swaks, write_journal
    coffer = slow_coffer
    api = coffer.api
    call(api, "CreateUser", "userName=jo", "emailAddresses=jo@acme.example")
    smtp, lmtp = free_port(), free_port()
    write_journal(coffer, {
        "smtpListeners": "127.0.0.1:%d" % smtp, "lmtpListeners": "127.0.0.1:%d" % lmtp,
        "smtpPort": smtp, "lmtpPort": lmtp,
        "instances": [{"instanceID": "acme", "domains": ["acme.example"],
                       "unknownRecipients": "refuse"}]})
    pid = create(api, **profile_fields(dovecot))["profileID"]
    job = call(api, "RunProfile", "profileID=" + pid)["jobID"]
    total = sum(n for f in LAYOUT.values() for name, n in f if name not in EXCLUDED)

    def committed():
        for r in call(api, "GetWorkerResults"):
            if r["jobID"] == job and r["result"].get("archived", 0) > 0:
                return r
        return None
    first = wait_for(committed, timeout=RUN_TIMEOUT, interval=0.1, what="a first committed batch")
    assert first["state"] == "running" and first["result"]["archived"] < total, first
    body = "Subject: during a run\r\nMessage-ID: <run@test>\r\n\r\nwhile a profile runs\r\n"
    t0 = time.time()
    p = swaks(lmtp, "--protocol", "LMTP", "--to", "jo@acme.example", "--data", body[:-2])
    took = time.time() - t0
    assert p.stdout.count("250 2.0.0 Archived") == 1, p.stdout
    assert took < 30, "answered in %.1f s" % took
    assert ended(api, job) is None, "the run was still going: the delivery did not wait for it"
    call(api, "CancelJob", "jobID=" + job)
    r = wait_for(lambda: ended(api, job), timeout=RUN_TIMEOUT, what="the run cancelled")
    # the run counts its own messages only; the journal message is jo's
    got = call(api, "GetMessages", "folder=jo/Journal")["messages"]
    assert [m["subject"] for m in got] == ["during a run"], got
    assert r["result"]["archived"] == len(archived_bytes(coffer)) - 1, r


class ExpungingProxy(Relay):
    """A TLS relay to Dovecot that reads the client's commands: before the
    first batched `UID FETCH ... BODY.PEEK[]` reaches Dovecot, it expunges
    some of the UIDs asked for through a session of its own, so Dovecot
    (which listed them a moment ago) leaves them out of its answers. It
    presents Dovecot's own certificate, so the profile's pin holds."""

    def __init__(self, d, mailbox, pick):
        self.d, self.mailbox, self.pick = d, mailbox, pick
        self.expunged = []
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(str(d.work / "cert.pem"), str(d.work / "key.pem"))
        self.client_ctx = ssl.create_default_context(cafile=str(d.work / "cert.pem"))
        super().__init__()

    def open(self, raw):
        client = self.server_ctx.wrap_socket(raw, server_side=True)
        server = self.client_ctx.wrap_socket(
            socket.create_connection(("127.0.0.1", self.d.imaps_port)),
            server_hostname="127.0.0.1")
        return client, server

    def forwarders(self, n):
        def commands(data):
            self.expunge_before(data)
            return data, True
        return commands, self.whole

    def expunge_before(self, data):
        m = re.search(rb"UID FETCH ([0-9,]+) \(UID BODY\.PEEK\[\]\)", data)
        if m is None or self.expunged:
            return
        uids = [int(u) for u in m.group(1).split(b",")]
        self.expunged = [uids[i] for i in self.pick(len(uids))]
        c = self.d.login(self.mailbox)
        c.select("INBOX")
        c.uid("STORE", ",".join(map(str, self.expunged)), "+FLAGS.SILENT", r"(\Deleted)")
        c.expunge()
        c.logout()


def test_messages_left_out_of_a_fetch_are_reported_and_nothing_is_lost(dovecot, coffer):
    """Messages expunged in Dovecot between the UID listing and the batched
    FETCH: one in the middle of the first batch and the batch's last.
    Dovecot (2.3) answers each `BODY[] NIL` and the FETCH `OK
    [EXPUNGEISSUED]`; a server that leaves them out instead is handled by
    the same code (source_imap_fetch(), held_uid). The run reports each as
    no longer on the server, archives everything else byte for byte, and
    the next run carries on with new mail and nothing twice."""
    api = coffer.api
    proxy = ExpungingProxy(dovecot, "frank", lambda n: [2, n - 1])
    try:
        before = dovecot.contents("frank")["INBOX"]
        p = create(api, **profile_fields(dovecot, port=proxy.port, adminMode="none", mailboxes=None,
                                         login="frank", password=PASSWORDS["frank"], user="frank"))
        r = run(api, p["profileID"])
        assert len(proxy.expunged) == 2, proxy.expunged
        assert r["state"] == "succeeded", r
        report = call(api, "GetWorkerResultReport", "jobID=" + r["jobID"])["result"]["report"]
        gone = [line for line in report if "no longer on the server" in line]
        assert len(gone) == 2, report
        for uid in proxy.expunged:
            assert any(":%d:" % uid in line for line in gone), (uid, report)
        assert r["result"]["failed"] == 2, r
        left = dovecot.contents("frank")["INBOX"]
        assert len(left) == len(before) - 2
        # everything still on the server is archived, each once
        want = left
        assert r["result"]["archived"] == len(want), r
        assert digests(archived_bytes(coffer)) == digests(want)
        # the next run: the new message, nothing again
        c = dovecot.login("frank")
        new = corpus_messages(1)[0]
        c.append("INBOX", None, None, new)
        c.logout()
        r2 = run(api, p["profileID"])
        assert r2["state"] == "succeeded", r2
        assert r2["result"]["archived"] == 1 and r2["result"]["duplicates"] == 0, r2
        assert digests(archived_bytes(coffer)) == digests(want + [dovecot.contents("frank")["INBOX"][-1]])
    finally:
        proxy.close()
