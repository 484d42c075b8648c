"""The journal receiver of the Instance Host (docs/sources.md, "Journal
receiver"): SMTP and LMTP listeners that answer 250 only once a message is
durably archived for its recipients' users.

Real peers on loopback: swaks for single cases (limits, refusals, AUTH,
STARTTLS) and a private Postfix instance (its own config and queue
directories under the test's tmp dir) relaying real messages of corpus A
through a transport to the receiver. What each archived message must be:
the bytes the receiver got (the sender's message after SMTP's dot-stuffing
is undone, plus the Received header Postfix adds on its way), so the tests
compare the archive's bytes with a copy a second, plain SMTP sink of the same
Postfix transaction would have kept; for swaks, with the exact DATA sent.

Time bounds: every wait is at most 60 s (a loaded 2-core machine runs a
delivery in well under a second; Postfix's retry is forced with
`postqueue -f`)."""
import hashlib
import json
import os
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from daemonfix import ROOT, all_connected, free_port, wait_for
from mailgen import write_mbox
from test_instances import data_dir, restarted, state

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "linux-mips.mboxrd.zst")
DOMAIN = "acme.example"
USERS = ["u%d" % i for i in range(10)]


def swaks_cmd(port, *args):
    """swaks ends the DATA it is given with one CRLF of its own: callers give
    their message without its last line end."""
    return ["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.test",
            "--from", "sender@outside.example", "--timeout", "30"] + list(args)


def swaks(port, *args, timeout=60):
    return subprocess.run(swaks_cmd(port, *args), capture_output=True, text=True,
                          timeout=timeout)


def key_file(single, iid):
    return os.path.join(single.dir, "instance-keys", iid + ".key")


def read_folder(single, folder):
    """The raw bytes of every message of a folder, oldest first. Read from the
    base directory by `coffer archive show` while the instance is frozen
    (its catalog flushed and closed: another process sees every commit)."""
    api = single.api
    page = api.call("GetMessages", "instanceID=acme", "folder=" + folder, "limit=1000")
    out = []
    api.call("FreezeInstances", "instanceFilter=acme")
    try:
        for m in reversed(page["messages"]):
            out.append(_show(single, m["id"]))
    finally:
        api.call("ThawInstances", "instanceFilter=acme")
    return out


def _show(single, message_id):
    p = subprocess.run([os.environ.get("COFFER_BIN", "coffer"), "archive", "--base-dir", single.base,
                        "--key-file", key_file(single, "acme"), "show", str(message_id)],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def folder_counts(single):
    return {f["folder"]: f["messages"] for f in single.api.call("GetFolderStatistics", "instanceID=acme")}


def write_journal(single, settings, auth_user=None):
    """Install the settings with `coffer config journal`; returns the SMTP AUTH
    password made for auth_user, if any."""
    path = os.path.join(single.dir, "journal-settings.json")
    with open(path, "w") as f:
        json.dump(settings, f)
    single.config("journal", "set", path)
    password = None
    if auth_user is not None:
        password = single.config("journal", "password", auth_user).stdout.strip()
    single.config("restart", "instance-host")
    wait_for(all_connected(single.api), timeout=60, what="links after an Instance Host restart")
    wait_for(lambda: state(single, "acme") == "running", timeout=60, what="acme running")
    for port in (settings["smtpPort"], settings["lmtpPort"]):
        wait_for(lambda: _port_open(port), timeout=30, what="journal port %d" % port)
    return password


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def journal(single):
    wait_for(all_connected(single.api), what="every role connected")
    base = data_dir(single, "acme")
    single.api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    users = [{"userName": u, "emailAddresses": ["%s@%s" % (u, DOMAIN)]} for u in USERS]
    users.append({"userName": "catchall", "emailAddresses": []})
    single.api.call("SyncUsers", "instanceID=acme", "users=" + json.dumps(users))
    single.base = base
    single.smtp, single.lmtp = free_port(), free_port()
    single.journal = {
        "smtpListeners": "127.0.0.1:%d" % single.smtp,
        "lmtpListeners": "127.0.0.1:%d" % single.lmtp,
        "smtpPort": single.smtp, "lmtpPort": single.lmtp,
        "maxMessageSize": 200000,
        "maxRecipients": 12,
        "maxConnectionsPerClient": 30,
        "instances": [{"instanceID": "acme", "domains": [DOMAIN], "unknownRecipients": "refuse"}],
    }
    write_journal(single, single.journal)
    return single


def test_swaks_single_cases(journal):
    s = journal
    # a spool file an earlier Instance Host left behind is swept on first use
    spool = os.path.join(s.base, "journal-spool")
    os.makedirs(spool, exist_ok=True)
    with open(os.path.join(spool, "m-0123456789abcdef.eml"), "w") as f:
        f.write("Subject: half\r\n")
    subprocess.run(["chown", "-R", "coffer", spool], check=False)  # as the Instance Host made it
    body = "Subject: one\r\nMessage-ID: <one@test>\r\n\r\n.leading dot\r\nline two\r\n"
    p = swaks(s.smtp, "--to", "u1@" + DOMAIN, "--data", body[:-2])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0 Archived" in p.stdout
    got = read_folder(s, "u1/Journal")
    assert got == [body.encode()], "dot-stuffing undone, bytes as sent"
    assert os.listdir(spool) == []

    # unknown recipient of a refusing instance, and an address no instance takes
    p = swaks(s.smtp, "--to", "nobody@" + DOMAIN, "--data", body)
    assert "550 5.1.1" in p.stdout, p.stdout
    p = swaks(s.smtp, "--to", "x@elsewhere.example", "--data", body)
    assert "550 5.1.1" in p.stdout, p.stdout

    # too large: refused at MAIL by SIZE, and (no SIZE given) at the end of DATA
    big = "Subject: big\r\n\r\n" + ("x" * 998 + "\r\n") * 300
    big_file = os.path.join(s.dir, "big.eml")
    with open(big_file, "w") as f:
        f.write(big)
    p = swaks(s.smtp, "--to", "u2@" + DOMAIN, "--data", big_file)
    assert "552 5.3.4" in p.stdout, p.stdout
    assert "u2/Journal" not in folder_counts(s)

    # too many recipients: the 13th is answered 452, the first 12 are taken
    tos = ",".join("%s@%s" % (u, DOMAIN) for u in USERS) + ",u0@%s,u1@%s,u2@%s" % (DOMAIN, DOMAIN, DOMAIN)
    p = swaks(s.smtp, "--to", tos, "--data", "Subject: many\r\n\r\nmany\r\n")
    assert "452 4.5.3" in p.stdout, p.stdout


def test_ten_recipients_one_copy(journal):
    s = journal
    before = s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"]
    body = "Subject: ten\r\nMessage-ID: <ten@test>\r\n\r\nfor ten users\r\n"
    tos = ",".join("%s@%s" % (u, DOMAIN) for u in USERS)
    p = swaks(s.lmtp, "--protocol", "LMTP", "--to", tos, "--data", body[:-2])
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("250 2.0.0 Archived") == 10, p.stdout
    for u in USERS:
        assert read_folder(s, u + "/Journal") == [body.encode()]
    after = s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"]
    assert after == before + 1, "one stored copy for ten users"


def test_networks_and_auth(journal):
    s = journal
    settings = dict(s.journal, allowedNetworks=["127.0.0.1/32"], authRequired=True)
    password = write_journal(s, settings, auth_user="feed")
    assert len(password) == 32
    body = "Subject: auth\r\nMessage-ID: <auth@test>\r\n\r\nbody\r\n"
    to = ["--to", "u3@" + DOMAIN, "--data", body[:-2]]

    # a client outside the allowed networks is refused before any command
    p = swaks(s.smtp, "--local-interface", "127.0.0.2", *to)
    assert "554 5.7.1" in p.stdout + p.stderr, p.stdout + p.stderr
    # no login: 530 at MAIL; a wrong password: 535
    p = swaks(s.smtp, *to)
    assert "530 5.7.0" in p.stdout, p.stdout
    p = swaks(s.smtp, "--auth", "PLAIN", "--auth-user", "feed", "--auth-password", "wrong", *to)
    assert "535 5.7.8" in p.stdout, p.stdout
    assert "u3/Journal" not in folder_counts(s)
    # the right password: archived
    p = swaks(s.smtp, "--auth", "PLAIN", "--auth-user", "feed", "--auth-password", password, *to)
    assert "250 2.0.0 Archived" in p.stdout, p.stdout
    assert read_folder(s, "u3/Journal") == [body.encode()]


def test_starttls(journal):
    """STARTTLS with the Instance Host's own certificate (its TCP one)."""
    s = journal
    write_journal(s, dict(s.journal, starttls=True))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    body = b"Subject: tls\r\nMessage-ID: <tls@test>\r\n\r\nover TLS\r\n"
    with smtplib.SMTP("127.0.0.1", s.smtp, timeout=30) as c:
        c.ehlo("client.test")
        assert c.has_extn("starttls")
        c.starttls(context=ctx)
        fp = hashlib.sha256(c.sock.getpeercert(binary_form=True)).hexdigest()
        c.ehlo("client.test")
        assert not c.has_extn("starttls"), "offered once"
        c.sendmail("sender@outside.example", ["u4@" + DOMAIN], body)
    assert fp.lower() == s.fingerprint("instance-host").replace(":", "").lower()
    assert read_folder(s, "u4/Journal") == [body]


# ---- Postfix ----

POSTFIX_MAIN = """\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mta.test
mydestination =
mynetworks = 127.0.0.0/8
relay_domains = {domain}
transport_maps = inline:{{ {domain}={transport}:{nexthop} }}
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = {d}/maillog
maillog_file_prefixes = {d}
smtputf8_enable = no
# the message as sent: no header rewriting, no dropped headers, no line
# breaking or MIME conversion on the way out
local_header_rewrite_clients =
message_drop_headers =
disable_mime_output_conversion = yes
smtp_line_length_limit = 0
lmtp_line_length_limit = 0
smtp_tls_security_level = may
smtp_tls_loglevel = 1
lmtp_tls_security_level = none
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

POSTFIX_MASTER = """\
127.0.0.1:{smtp} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
tlsmgr unix - - n 1000? 1 tlsmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    def __init__(self, d, transport, port):
        self.dir = d
        self.port = free_port()
        os.makedirs(os.path.join(d, "queue"))
        os.makedirs(os.path.join(d, "data"))
        with open(os.path.join(d, "main.cf"), "w") as f:
            nexthop = ("inet:127.0.0.1:%d" if transport == "lmtp" else "[127.0.0.1]:%d") % port
            f.write(POSTFIX_MAIN.format(d=d, domain=DOMAIN, transport=transport, nexthop=nexthop))
        with open(os.path.join(d, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER.format(smtp=self.port))
        subprocess.run(["chown", "postfix", os.path.join(d, "data")], check=True)
        self.cmd("postfix", "check")
        self.cmd("postfix", "start")
        wait_for(lambda: _port_open(self.port), timeout=30, what="Postfix listening")

    def cmd(self, prog, *args):
        p = subprocess.run(["/usr/sbin/" + prog, "-c", self.dir] + list(args), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, "%s %s: %s %s" % (prog, args, p.stdout, p.stderr)
        return p.stdout

    def send(self, msg, rcpts):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as c:
            c.sendmail("sender@outside.example", rcpts, msg)

    def queue_empty(self):
        return "Mail queue is empty" in self.cmd("postqueue", "-p")

    def log(self):
        try:
            with open(os.path.join(self.dir, "maillog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        subprocess.run(["/usr/sbin/postfix", "-c", self.dir, "stop"], capture_output=True, timeout=60)


@pytest.fixture
def postfix_factory(journal):
    if not os.path.exists("/usr/sbin/postfix"):
        pytest.skip("Postfix is not installed (/usr/sbin/postfix)")
    made = []

    def make(transport, port):
        # beside the config directories: a tree Postfix's own user can reach
        d = os.path.join(os.path.dirname(journal.dir), "postfix%d" % len(made))
        pf = Postfix(d, transport, port)
        made.append(pf)
        return pf
    yield make
    for pf in made:
        pf.stop()


def corpus_messages(n):
    """The first n messages of corpus A, each as the bytes an SMTP client
    sends (CRLF line ends, a last line end)."""
    if not os.path.exists(CORPUS):
        pytest.skip("corpus A is absent (%s): this test needs real mail" % CORPUS)
    zstd = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
    msgs, cur = [], None
    for line in zstd.stdout:
        if line.startswith(b"From "):
            if cur is not None:
                msgs.append(cur)
                if len(msgs) == n:
                    break
            cur = []
            continue
        if re.match(rb"^>+From ", line):
            line = line[1:]  # mboxrd
        cur.append(line)
    zstd.kill()
    zstd.wait()
    out = []
    for lines in msgs:
        if lines and lines[-1].strip() == b"":
            lines = lines[:-1]  # the blank line mbox puts between messages
        text = b"".join(l.rstrip(b"\r\n") + b"\r\n" for l in lines)
        out.append(text)
    return out


RECEIVED = re.compile(rb"^(Received: [^\r\n]*\r\n([ \t][^\r\n]*\r\n)*)+$")


def assert_as_sent(archived, sent):
    """What the receiver got: the message as sent, below the Received header
    Postfix adds."""
    assert archived.endswith(sent), "the sent message's bytes, unchanged"
    assert RECEIVED.match(archived[:len(archived) - len(sent)]), archived[:400]


@pytest.mark.parametrize("transport", ["lmtp", "smtp"])
def test_postfix_delivers_corpus(journal, postfix_factory, transport):
    s = journal
    msgs = corpus_messages(30)
    pf = postfix_factory(transport, s.lmtp if transport == "lmtp" else s.smtp)
    before = s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"]
    expect = {u: [] for u in USERS}
    for i, m in enumerate(msgs):
        rcpts = [USERS[i % 10], USERS[(i + 3) % 10]]
        pf.send(m, ["%s@%s" % (u, DOMAIN) for u in rcpts])
        for u in rcpts:
            expect[u].append(m)
    want = {u + "/Journal": len(v) for u, v in expect.items()}
    try:
        wait_for(lambda: folder_counts(s) == want, timeout=60, what="every message archived")
        wait_for(pf.queue_empty, timeout=60, what="Postfix done with its queue")
    except AssertionError as e:
        raise AssertionError("%s\nPostfix's log:\n%s\nCoffer's log:\n%s\ncounts %r" %
                             (e, pf.log()[-3000:], s.logs()[-6000:], folder_counts(s)))
    for u, sent in expect.items():
        got = read_folder(s, u + "/Journal")
        # oldest first on both sides; messages may be committed out of order
        assert len(got) == len(sent)
        for m in sent:
            assert any(g.endswith(m) for g in got), "a message is missing for " + u
        for g in got:
            assert any(g.endswith(m) and assert_as_sent(g, m) is None for m in sent)
    after = s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"]
    assert after - before == len(msgs), "each journal copy stored once for its two users"
    if transport == "smtp":
        # smtp_tls_security_level = may: Postfix took the STARTTLS offered
        assert "TLS connection established to 127.0.0.1" in pf.log(), pf.log()[-2000:]
    # Postfix pipelines QUIT after the end of DATA: every answer before the
    # close reached it (under TLS they once did not, and Postfix sent the
    # message again, in plain text, or deferred it for minutes)
    assert "while sending end of data" not in pf.log(), pf.log()[-3000:]


@pytest.fixture
def slow_answer(monkeypatch):
    # before the daemons start: the Instance Host passes it on to instances
    monkeypatch.setenv("COFFER_TEST_JOURNAL_DELAY_MS", "3000")


def test_instance_killed_between_commit_and_250(slow_answer, journal, postfix_factory):
    """SIGKILL of the instance process after its commit, before the 250:
    Postfix is told to try later (no 250), retries, and the message is
    archived once for each user; killed again after the 250, it stays."""
    s = journal
    msg = corpus_messages(1)[0]
    pf = postfix_factory("lmtp", s.lmtp)
    pid = s.api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["pid"]
    unique = s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"]
    pf.send(msg, ["u5@" + DOMAIN, "u6@" + DOMAIN])
    # committed for both users; the answer is held back for 3 s
    try:
        wait_for(lambda: "journal message archived for 2 user(s)" in s.logs(), timeout=60,
                 interval=0.1, what="the delivery committed")
    except AssertionError:
        raise AssertionError("Postfix:\n%s\nCoffer:\n%s" % (pf.log()[-2000:], s.logs()[-4000:]))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: "status=deferred" in pf.log(), timeout=60, what="Postfix told to retry")
    assert "status=sent" not in pf.log(), "no 250 for a delivery whose instance died"
    wait_for(lambda: state(s, "acme") == "running", timeout=60, what="acme restarted")
    pf.cmd("postqueue", "-f")
    wait_for(pf.queue_empty, timeout=60, what="Postfix's queue delivered")
    assert "status=sent (250 2.0.0 Archived)" in pf.log()
    assert folder_counts(s) == {"u5/Journal": 1, "u6/Journal": 1}, "archived once per user"
    assert s.api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"] == unique + 1
    for u in ("u5", "u6"):
        got = read_folder(s, u + "/Journal")
        assert_as_sent(got[0], msg)

    # killed right after the 250: the message is there
    pid = s.api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(restarted(s, "acme", pid), timeout=60, what="acme restarted in a new process")
    assert folder_counts(s) == {"u5/Journal": 1, "u6/Journal": 1}
    assert os.listdir(os.path.join(s.base, "journal-spool")) == [], "no spool file left behind"


@pytest.fixture
def slow_commit(monkeypatch):
    # before the daemons start: each journal batch's commit holds the
    # archive's writer this much longer, on the committer's thread
    monkeypatch.setenv("COFFER_TEST_JOURNAL_COMMIT_DELAY_MS", "6000")


def test_loop_answers_while_a_batch_commits(slow_commit, journal):
    """The group commit runs off the instance's event loop: while a
    delivery's batch commits (held 6 s longer by the test hook), the
    instance answers calls at once (each within 3 s, where a commit on the
    loop would hold them all 6 s), reads the archive, and a write waits for
    that one commit instead of being refused; the delivery is answered 250
    only after it."""
    s = journal
    spool = os.path.join(s.base, "journal-spool")
    t0 = time.time()
    held = subprocess.Popen(["swaks", "--server", "127.0.0.1", "--port", str(s.lmtp), "--protocol", "LMTP",
                             "--from", "a@outside.example", "--to", "u1@" + DOMAIN, "--timeout", "90",
                             "--data", "Subject: held\r\n\r\nheld"], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.isdir(spool) and os.listdir(spool), timeout=60, interval=0.05,
                 what="the copy spooled")
        seen = time.time()
        calls = 0
        while time.time() - seen < 3 and held.poll() is None:
            t = time.time()
            s.api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")
            assert time.time() - t < 3, "a call waited for the journal's commit"
            calls += 1
        t = time.time()
        s.api.call("GetFolderStatistics", "instanceID=acme")
        assert time.time() - t < 3, "a read waited for the journal's commit"
        assert held.poll() is None, "the delivery is still being committed"
        assert calls >= 2
        s.api.call("CreateStore", "instanceID=acme")
    finally:
        out, _ = held.communicate(timeout=90)
    assert "250 2.0.0 Archived" in out, out
    assert time.time() - t0 >= 6, "answered only after the (held) commit"
    assert folder_counts(s) == {"u1/Journal": 1}


@pytest.fixture
def slow_jobs(monkeypatch):
    # before the daemons start: each progress report of a job sleeps this long
    monkeypatch.setenv("COFFER_TEST_JOB_STEP_DELAY_MS", "300")


def test_delivery_during_import(slow_jobs, journal):
    """An import job holds the archive's writer; a journal message arriving
    meanwhile goes through the job's own pipeline and is answered 250 within
    seconds (bound: 30 s on a loaded machine; the pipeline commits at least
    every two seconds), while the import goes on."""
    s = journal
    if not os.path.exists(CORPUS):
        pytest.skip("corpus A is absent (%s): this test needs real mail" % CORPUS)
    os.makedirs(os.path.join(s.base, "import"), exist_ok=True)
    mbox = os.path.join(s.base, "import", "lists.mbox")
    zstd = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
    count = 0
    with open(mbox, "wb") as out:
        for line in zstd.stdout:
            if line.startswith(b"From "):
                count += 1
                if count > 20000:
                    break
            out.write(line)
    zstd.kill()
    zstd.wait()
    subprocess.run(["chown", "-R", "coffer", os.path.join(s.base, "import")], check=False)
    p = s.api.call_raw("ImportFiles", "instanceID=acme", "userName=u9", "path=import/lists.mbox",
                       extra=["--no-wait"])
    assert json.loads(p.stdout)["statusCode"] == "running", p.stdout

    def running_import():
        jobs = s.api.call("GetJobs", "instanceID=acme")
        return [j["jobID"] for j in jobs if j["kind"] == "import" and j["state"] == "running"]
    job = wait_for(running_import, timeout=30, what="the import running")[0]
    running = lambda: s.api.call("GetJob", "instanceID=acme", "jobID=" + job)["state"] == "running"
    body = "Subject: during\r\nMessage-ID: <during@test>\r\n\r\nwhile importing\r\n"
    t0 = time.time()
    p = swaks(s.lmtp, "--protocol", "LMTP", "--to", "u7@%s,u8@%s" % (DOMAIN, DOMAIN), "--data", body[:-2])
    took = time.time() - t0
    assert p.stdout.count("250 2.0.0 Archived") == 2, p.stdout
    assert took < 30, "answered in %.1f s" % took
    assert running(), "the import was still running: the delivery did not wait for it"
    s.api.call("CancelJob", "instanceID=acme", "jobID=" + job)
    wait_for(lambda: not running(), timeout=60, what="the import cancelled")
    # the job counts its own input, not the journal message it carried
    result = s.api.call("GetJob", "instanceID=acme", "jobID=" + job)["result"]
    imported = sum(n for f, n in folder_counts(s).items() if f.startswith("u9/"))
    assert result["archived"] == imported, (result, folder_counts(s))
    for u in ("u7", "u8"):
        assert read_folder(s, u + "/Journal") == [body.encode()]


@pytest.fixture
def short_hold(monkeypatch):
    # before the daemons start: a delivery waits 6 s for a job, not 90
    monkeypatch.setenv("COFFER_TEST_JOURNAL_HOLD_SECS", "6")


def test_delivery_during_a_job_that_takes_no_mail(slow_jobs, short_hold, journal):
    """A job that takes no messages (here VerifyStores; a compaction or a
    retention run likewise) holds the archive's writer to itself: a journal
    copy arriving meanwhile waits for it, unanswered, and is archived and
    answered 250 once the job ends; one that waits longer than the hold
    (6 s here, 90 s in production) is answered 451, never 250, and its
    retry is archived once (docs/sources.md)."""
    s = journal
    os.makedirs(os.path.join(s.base, "import"), exist_ok=True)
    write_mbox(os.path.join(s.base, "import", "mail.mbox"), 3000)
    subprocess.run(["chown", "-R", "coffer", os.path.join(s.base, "import")], check=False)
    s.api.call("ImportFiles", "instanceID=acme", "userName=u9", "path=import/mail.mbox")

    def running_verify():
        jobs = s.api.call("GetJobs", "instanceID=acme")
        return [j["jobID"] for j in jobs if j["kind"] == "verify" and j["state"] == "running"]

    def start_verify():
        # slowed down (slow_jobs): a progress report every 64 units sleeps 0.3 s
        p = s.api.call_raw("VerifyStores", "instanceID=acme", extra=["--no-wait"])
        assert json.loads(p.stdout)["statusCode"] == "running", p.stdout
        return wait_for(running_verify, timeout=30, what="the verify running")[0]

    def deliver(body, user):
        # in the background: the answer may wait for the job
        return subprocess.Popen(swaks_cmd(s.lmtp, "--protocol", "LMTP",
                                          "--to", "%s@%s" % (user, DOMAIN), "--data", body[:-2]),
                                stdout=subprocess.PIPE, text=True)

    def cancel(job):
        s.api.call("CancelJob", "instanceID=acme", "jobID=" + job)
        wait_for(lambda: not running_verify(), timeout=60, what="the verify cancelled")

    # waits, unanswered, while the job runs; archived once it has ended
    job = start_verify()
    held_body = "Subject: held\r\nMessage-ID: <held@test>\r\n\r\nwaited for the job\r\n"
    held = deliver(held_body, "u7")
    time.sleep(2)
    assert held.poll() is None, "answered while the job ran: " + held.communicate()[0]
    assert running_verify() == [job]
    cancel(job)
    out, _ = held.communicate(timeout=30)
    assert "250 2.0.0 Archived" in out, out

    # longer than the hold: 451, and the retry after the job is archived
    job = start_verify()
    body = "Subject: too long\r\nMessage-ID: <long@test>\r\n\r\nheld back\r\n"
    t0 = time.time()
    out, _ = deliver(body, "u8").communicate(timeout=60)
    assert "250 2.0.0" not in out and "451 4.3.0" in out, out
    assert time.time() - t0 >= 5, "answered before the hold ran out"
    assert running_verify() == [job], "the verify ended before the hold ran out"
    cancel(job)
    out, _ = deliver(body, "u8").communicate(timeout=60)
    assert "250 2.0.0 Archived" in out, out
    assert read_folder(s, "u7/Journal") == [held_body.encode()]
    assert read_folder(s, "u8/Journal") == [body.encode()]


class Raw:
    """A hand-driven SMTP client, for what well-behaved clients never send."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """One (possibly multi-line) reply: its last line."""
        while True:
            line = self.line()
            if line[3:4] != "-":
                return line

    def send(self, data):
        self.sock.sendall(data)

    @classmethod
    def in_data(cls, port, rcpt):
        """A session past its 354, for one recipient, message data next."""
        c = cls(port)
        c.reply()
        for cmd in (b"EHLO x", b"MAIL FROM:<>", b"RCPT TO:<%s>" % rcpt.encode(), b"DATA"):
            c.send(cmd + b"\r\n")
            c.reply()
        return c

    def closed(self):
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def host_rss_kib(single):
    with open("/proc/%d/status" % single.pid("instance-host")) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_bad_input(journal):
    s = journal
    # pipelining: the whole transaction in one write, answered in order
    c = Raw(s.smtp)
    assert c.reply().startswith("220")
    c.send(b"EHLO x\r\nMAIL FROM:<a@outside.example>\r\nRCPT TO:<u1@acme.example>\r\n"
           b"RCPT TO:<nobody@acme.example>\r\nDATA\r\nSubject: pipe\r\n\r\npipelined\r\n.\r\nQUIT\r\n")
    got = [c.reply() for _ in range(7)]
    assert [g[:3] for g in got] == ["250", "250", "250", "550", "354", "250", "221"], got
    assert read_folder(s, "u1/Journal") == [b"Subject: pipe\r\n\r\npipelined\r\n"]

    # bare LFs in the data are kept as they are; only CRLF.CRLF ends it
    c = Raw.in_data(s.smtp, "u2@acme.example")
    c.send(b"Subject: lf\nX-A: b\n\nbody\n.\nnot the end\r\n.\r\n")
    assert c.reply().startswith("250 2.0.0"), "archived"
    assert read_folder(s, "u2/Journal") == [b"Subject: lf\nX-A: b\n\nbody\n.\nnot the end\r\n"]

    # a client gone in the middle of DATA: nothing archived, no spool file
    # left, and one log line that says where the session ended
    c = Raw.in_data(s.smtp, "u4@acme.example")
    c.send(b"Subject: half\r\n\r\nhalf a")
    c.sock.close()
    wait_for(lambda: "session ended: closed by the client during DATA, 0 delivery(ies) "
             "unanswered" in s.logs(), what="the end of the session logged")
    assert "u4/Journal" not in folder_counts(s)
    assert os.listdir(os.path.join(s.base, "journal-spool")) == []

    # an overlong command line: 500 and closed
    c = Raw(s.smtp)
    c.reply()
    c.send(b"EHLO " + b"x" * 5000)
    assert c.reply().startswith("500 5.5.2")
    assert c.closed()

    # megabytes in one line past the size limit: 552, and the Instance Host
    # keeps its memory (bound: 20 MiB growth for 8 MiB sent)
    rss = host_rss_kib(s)
    c = Raw.in_data(s.smtp, "u3@acme.example")
    chunk = b"y" * 65536
    for _ in range(128):
        c.send(chunk)
    c.send(b"\r\n.\r\n")
    assert c.reply().startswith("552 5.3.4")
    assert host_rss_kib(s) - rss < 20 * 1024
    assert "u3/Journal" not in folder_counts(s)
    assert os.listdir(os.path.join(s.base, "journal-spool")) == []


def test_connection_limits_and_slow_clients(journal):
    s = journal
    write_journal(s, dict(s.journal, maxConnectionsPerClient=5, timeoutSeconds=3))
    # (a probe's connection may still count for a moment: open until 5 are held)
    held = []
    end = time.time() + 30
    while len(held) < 5 and time.time() < end:
        c = Raw(s.smtp)
        if c.reply().startswith("220"):
            held.append(c)
        else:
            c.sock.close()
            time.sleep(0.2)
    assert len(held) == 5
    extra = Raw(s.smtp)
    assert extra.reply().startswith("421 4.7.0")
    # the held connections do not stop a delivery from elsewhere... nor does
    # a client that sends half a command and then nothing: after the
    # timeout (3 s; waited up to 30 s) it is told 421 and disconnected
    held[0].send(b"EHLO x")
    t0 = time.time()
    assert held[0].reply().startswith("421 4.4.2")
    assert time.time() - t0 < 30
    for c in held[1:]:
        c.sock.close()
    wait_for(lambda: swaks(s.smtp, "--to", "u4@" + DOMAIN, "--data", "Subject: x\r\n\r\nx").stdout.count(
        "250 2.0.0 Archived") == 1, timeout=30, what="a delivery once slots are free")


def test_client_that_does_not_read(journal):
    """Commands pipelined by a client that never reads its answers wait in
    the socket once 64 KiB of answers are queued: the Instance Host's memory
    stays put (bound: 20 MiB growth; the kernel's socket buffers take some
    megabytes first, so the client sends until it has been blocked for 2 s,
    within 60 s)."""
    s = journal
    rss = host_rss_kib(s)
    c = Raw(s.smtp)
    c.reply()
    c.sock.setblocking(False)
    chunk = b"NOOP\r\n" * 10000
    blocked_since, end = None, time.time() + 60
    while time.time() < end:
        try:
            c.sock.send(chunk)
            blocked_since = None
        except BlockingIOError:
            blocked_since = blocked_since or time.time()
            if time.time() - blocked_since > 2:
                break
            time.sleep(0.05)
    assert blocked_since is not None, "the receiver stopped reading"
    assert host_rss_kib(s) - rss < 20 * 1024
    # and it goes on once the client reads
    c.sock.setblocking(True)
    c.sock.settimeout(30)
    for _ in range(1000):
        assert c.reply().startswith("250 2.0.0")


def test_catch_all(journal):
    s = journal
    settings = dict(s.journal, instances=[{"instanceID": "acme", "domains": [DOMAIN],
                                           "unknownRecipients": "catch-all", "catchAllUser": "catchall"}])
    write_journal(s, settings)
    body = "Subject: all\r\nMessage-ID: <all@test>\r\n\r\nfor the catch-all\r\n"
    tos = "x1@{d},x2@{d},u1@{d},x3@{d}".format(d=DOMAIN)
    p = swaks(s.lmtp, "--protocol", "LMTP", "--to", tos, "--data", body[:-2])
    assert p.stdout.count("250 2.0.0 Archived") == 4, p.stdout
    assert folder_counts(s) == {"catchall/Journal": 1, "u1/Journal": 1}
    assert read_folder(s, "catchall/Journal") == [body.encode()]


def test_slow_instance_does_not_slow_another(journal):
    """acme's process stopped (SIGSTOP: it takes calls and answers none) while
    a delivery to it waits; a delivery to beta meanwhile is answered as usual
    (bound: 20 s, on a loaded machine a fraction of that), and acme's is
    answered once its process runs again."""
    s = journal
    base = data_dir(s, "beta")
    s.api.call("CreateInstance", "instanceID=beta", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(s, "beta") == "running", what="beta running")
    s.api.call("CreateUser", "instanceID=beta", "userName=bea", 'emailAddresses=["bea@beta.example"]')
    settings = dict(s.journal, instances=s.journal["instances"] + [
        {"instanceID": "beta", "domains": ["beta.example"]}])
    write_journal(s, settings)
    wait_for(lambda: state(s, "beta") == "running", what="beta running")
    pid = s.api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        slow = subprocess.Popen(["swaks", "--server", "127.0.0.1", "--port", str(s.lmtp), "--protocol", "LMTP",
                                 "--from", "a@outside.example", "--to", "u1@" + DOMAIN, "--timeout", "90",
                                 "--data", "Subject: slow\r\n\r\nslow"], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        t0 = time.time()
        p = swaks(s.lmtp, "--protocol", "LMTP", "--to", "bea@beta.example", "--data", "Subject: quick\r\n\r\nquick")
        assert "250 2.0.0 Archived" in p.stdout, p.stdout
        assert time.time() - t0 < 20
        assert slow.poll() is None, "acme's delivery is still waiting"
    finally:
        os.kill(pid, signal.SIGCONT)
    out, _ = slow.communicate(timeout=90)
    assert "250 2.0.0 Archived" in out, out
