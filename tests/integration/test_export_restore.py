"""ExportMessages and RestoreMessages through the Management API (`coffer
api`), with real peers: the exported zip, mbox and EML files hold every
message's archived bytes; a restore by IMAP APPEND into a Dovecot started
here (implicit TLS and STARTTLS, the certificate pinned by fingerprint)
reads back byte for byte; a wrong fingerprint and an untrusted certificate
are refused; a restore by SMTP with the instance's own SMTP settings
reaches an SMTP listener (aiosmtpd) byte for byte; the audit log names each
export and restore; names that would leave export/ are refused; a user of
the instance is not an administrator of the Management API.

Time: one system and one Dovecot for the module; 16 small messages."""
import imaplib
import json
import os
import pathlib
import pwd
import re
import shutil
import subprocess
import tempfile
import time
import zipfile

import pytest

from daemonfix import free_port, wait_for
from test_retention import PASSWORD, new_user, start_system, stop_system
from test_sources import DOVECOT, MASTER, MASTER_PASSWORD, Dovecot

IMAP_PASSWORD = "restore-secret-7"
RECEIVED = 1709290800  # 2024-03-01 11:00:00 UTC


def message(i, subject, body=""):
    """A CRLF message with a unique Message-ID; some lines an mbox must escape."""
    lines = ["From: Sender %d <sender%d@example.org>" % (i, i),
             "To: someone@example.net",
             "Subject: %s %d" % (subject, i),
             "Date: Mon, 1 Dec 2025 10:%02d:00 +0000" % i,
             "Message-ID: <m%d@example.org>" % i,
             "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8",
             "Content-Transfer-Encoding: 8bit",
             "",
             "Hello %d, gr\u00fc\u00dfe." % i,
             "From here on a line an mbox reader would split at.",
             ">From an already quoted line.",
             body,
             "."]
    return ("\r\n".join(lines) + "\r\n").encode()


def message_id(data):
    return re.search(rb"Message-ID: <([^>]+)>", data).group(1).decode()


@pytest.fixture(scope="module")
def system():
    s = start_system("coffer-transfer-")
    try:
        s.user = new_user(s, "login,archive")
        s.originals = {}
        for folder, subject, count, start in (("Inbox", "hello", 10, 0),
                                              ("Projects/X", "projectx", 6, 10)):
            d = pathlib.Path(s.base, "import", "%s-%d" % (s.user, start))
            d.mkdir(parents=True)
            for i in range(start, start + count):
                m = message(i, subject, "line %d" % i * (i + 1))
                s.originals[message_id(m)] = m
                (d / ("%d.eml" % i)).write_bytes(m)
            for i in range(start, start + count):  # the internal date: the file's time
                os.utime(d / ("%d.eml" % i), (RECEIVED + i * 3600, RECEIVED + i * 3600))
            r = s.api.call("ImportFiles", "instanceID=acme", "userName=" + s.user,
                           "path=import/" + d.name, "folder=" + folder)
            assert r["archived"] == count, r
        yield s
    finally:
        stop_system(s)


def call(s, function, *args):
    return s.api.call(function, "instanceID=acme", *args)


def refused(s, function, *args, **kw):
    p = s.api.call_raw(function, "instanceID=acme", *args, **kw)
    assert p.returncode != 0, "%s should have been refused: %s" % (function, p.stdout)
    return p.stdout + p.stderr


def by_id(blobs):
    out = {}
    for b in blobs:
        out[message_id(b)] = b
    return out


def mboxrd_messages(data):
    """The messages of an mboxrd file, unescaped."""
    out, cur = [], None
    for line in data.splitlines(keepends=True):
        if line.startswith(b"From MAILER-DAEMON "):
            if cur is not None:
                out.append(b"".join(cur)[:-1])  # the blank line after each message
            cur = []
            continue
        if re.match(rb"^>+From ", line):
            line = line[1:]
        cur.append(line)
    if cur is not None:
        out.append(b"".join(cur)[:-1])
    return out


def exported(s, r, fmt):
    path = os.path.join(s.base, r["path"])
    if fmt == "zip":
        with zipfile.ZipFile(path) as z:
            return [z.read(n) for n in z.namelist()]
    if fmt == "mbox":
        return mboxrd_messages(pathlib.Path(path).read_bytes())
    return [p.read_bytes() for p in pathlib.Path(path).iterdir()]


def expected(s, subject):
    return {k: v for k, v in s.originals.items() if (b"Subject: %s " % subject.encode()) in v}


def test_export_folder_and_search_in_every_format(system):
    s = system
    for fmt in ("zip", "mbox", "eml"):
        r = call(s, "ExportMessages", "format=" + fmt, "name=inbox-" + fmt,
                 "folder=%s/Inbox" % s.user)
        assert r["path"] == "export/inbox-" + fmt and r["messages"] == 10, r
        assert r["exported"] == 10 and r["failed"] == 0 and r["jobID"], r
        assert by_id(exported(s, r, fmt)) == expected(s, "hello"), fmt
        r = call(s, "ExportMessages", "format=" + fmt, "name=search-" + fmt,
                 "query=subject:projectx")
        assert r["messages"] == 6 and r["exported"] == 6, r
        assert by_id(exported(s, r, fmt)) == expected(s, "projectx"), fmt
    job = call(s, "GetJob", "jobID=" + r["jobID"])
    assert job["kind"] == "export" and job["state"] == "succeeded" and job["percentProgress"] == 100
    # listed IDs; an existing name is never overwritten
    ids = [m["id"] for m in call(s, "Search", "query=subject:hello")["messages"]][:3]
    # what an export killed half-way left (its process gone) is cleared
    left = pathlib.Path(s.base, "export", ".three.tmp-99999")
    left.mkdir()
    (left / "1.eml").write_bytes(b"partial")
    pathlib.Path(s.base, "export", ".inbox.tmp-99999.Ab12Cd").write_bytes(b"libzip's")
    owner = os.stat(os.path.join(s.base, "export"))
    for p in (left, left / "1.eml", pathlib.Path(s.base, "export", ".inbox.tmp-99999.Ab12Cd")):
        os.chown(p, owner.st_uid, owner.st_gid)  # as the instance's process wrote them
    r = call(s, "ExportMessages", "format=eml", "name=three",
             "messageIDs=" + ",".join(map(str, ids + ids[:1])))
    assert r["exported"] == 3 and r["messages"] == 3, r
    assert "exists" in refused(s, "ExportMessages", "format=eml", "name=three",
                               "messageIDs=%d" % ids[0])
    # nothing left behind but the exports
    assert sorted(os.listdir(os.path.join(s.base, "export"))) == sorted(
        ["inbox-zip", "inbox-mbox", "inbox-eml", "search-zip", "search-mbox", "search-eml", "three"])


def test_names_that_would_leave_export_are_refused(system):
    s = system
    before = set(os.listdir(s.base))
    for name in ("../escaped", "a/b", "/tmp/abs", ".hidden", "..", "", "x" * 200, "a\nb"):
        out = refused(s, "ExportMessages", "format=zip", "name=" + name, "folder=%s/Inbox" % s.user)
        assert "name" in out, (name, out)
    assert set(os.listdir(s.base)) == before
    assert not os.path.exists(os.path.join(os.path.dirname(s.base), "escaped"))
    assert "one of folder" in refused(s, "ExportMessages", "format=zip", "name=none")
    assert "format" in refused(s, "ExportMessages", "format=tar", "name=t", "query=*")
    assert "no folder" in refused(s, "ExportMessages", "format=zip", "name=nofolder",
                                  "folder=%s/Nowhere" % s.user)
    assert not os.path.exists(os.path.join(s.base, "export", "nofolder"))


@pytest.fixture(scope="module")
def dovecot():
    if not os.path.exists(DOVECOT):
        pytest.skip("Dovecot (dovecot-imapd) is not installed")
    if os.geteuid() != 0:
        pytest.skip("Dovecot with listeners and a master user is started as root")
    top = pathlib.Path(tempfile.mkdtemp(prefix="coffer-restore-", dir="/tmp"))
    os.chmod(top, 0o755)
    d = Dovecot(top)
    d.pop3 = False
    w = d.work
    for sub in ("run", "state", "mail/alice", "home"):
        (w / sub).mkdir(parents=True)
    for name in ("", "other-"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(w / (name + "key.pem")), "-out", str(w / (name + "cert.pem"))],
                       check=True, capture_output=True)
    (w / "users").write_text("alice:{PLAIN}%s\n" % IMAP_PASSWORD)
    (w / "masters").write_text("%s:{PLAIN}%s\n" % (MASTER, MASTER_PASSWORD))
    (w / "dovecot.conf").write_text(d.conf())
    nobody = pwd.getpwnam("nobody")
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid),
                    str(w / "mail"), str(w / "home")], check=True)

    def fingerprint(name):
        p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                            str(w / name)], check=True, capture_output=True, text=True)
        return p.stdout.strip().split("=", 1)[1]
    d.fingerprint = fingerprint("cert.pem")
    d.other_fingerprint = fingerprint("other-cert.pem")
    d.start()
    yield d
    d.stop()
    shutil.rmtree(top, ignore_errors=True)


def folder_bytes(d, folder):
    c = d.login("alice")
    typ, _ = c.select('"%s"' % folder, readonly=True)
    assert typ == "OK", folder
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    c.logout()
    return [x[1] for x in data if isinstance(x, tuple)]


def internal_dates(d, folder):
    """Message-ID -> INTERNALDATE (seconds) of a folder."""
    c = d.login("alice")
    c.select('"%s"' % folder, readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    c.logout()
    out = {}
    for x in data:
        if isinstance(x, tuple):
            out[message_id(x[1])] = int(time.mktime(imaplib.Internaldate2tuple(x[0])))
    return out


def imap_target(d, **over):
    t = {"host": "127.0.0.1", "port": d.imaps_port, "security": "tls",
         "fingerprint": d.fingerprint, "login": "alice", "folder": "Restored/Inbox"}
    t.update(over)
    return "target=" + json.dumps(t)


def test_restore_by_imap_append(system, dovecot):
    s, d = system, dovecot
    r = call(s, "RestoreMessages", "method=imap", imap_target(d), "password=" + IMAP_PASSWORD,
             "folder=%s/Inbox" % s.user)
    assert r["messages"] == 10 and r["restored"] == 10 and r["failed"] == 0, r
    assert by_id(folder_bytes(d, "Restored.Inbox")) == expected(s, "hello")
    # STARTTLS, a search, into an existing folder
    r = call(s, "RestoreMessages", "method=imap",
             imap_target(d, port=d.imap_port, security="starttls", folder="Restored/Inbox"),
             "password=" + IMAP_PASSWORD, "query=subject:projectx")
    assert r["restored"] == 6, r
    got = folder_bytes(d, "Restored.Inbox")
    assert len(got) == 16 and by_id(got) == s.originals
    # the archived internal date (here: the imported file's time) came along
    dates = internal_dates(d, "Restored.Inbox")
    assert dates == {"m%d@example.org" % i: RECEIVED + i * 3600 for i in range(16)}, dates
    job = call(s, "GetJob", "jobID=" + r["jobID"])
    assert job["kind"] == "restore" and job["state"] == "succeeded"
    assert IMAP_PASSWORD not in json.dumps(job)


def test_restore_refuses_an_unverified_server(system, dovecot):
    s, d = system, dovecot
    out = refused(s, "RestoreMessages", "method=imap", imap_target(d, fingerprint=d.other_fingerprint),
                  "password=" + IMAP_PASSWORD, "folder=%s/Inbox" % s.user)
    assert "fingerprint mismatch" in out, out
    # no pin: the system's CAs decide, and they do not know this certificate
    out = refused(s, "RestoreMessages", "method=imap", imap_target(d, fingerprint=""),
                  "password=" + IMAP_PASSWORD, "folder=%s/Inbox" % s.user)
    assert "not trusted" in out, out
    jobs = call(s, "GetJobs")
    failed = [j for j in jobs if j["kind"] == "restore" and j["state"] == "failed"]
    assert len(failed) == 2 and "fingerprint mismatch" in failed[1]["error"], failed
    assert "not trusted" in failed[0]["error"]
    assert "security" in refused(s, "RestoreMessages", "method=imap", imap_target(d, security="none"),
                                 "password=" + IMAP_PASSWORD, "folder=%s/Inbox" % s.user)
    assert "password" in refused(s, "RestoreMessages", "method=imap", imap_target(d),
                                 "folder=%s/Inbox" % s.user)
    assert "target.folder" in refused(s, "RestoreMessages", "method=imap", imap_target(d, folder="a/*"),
                                      "password=" + IMAP_PASSWORD, "folder=%s/Inbox" % s.user)
    assert IMAP_PASSWORD not in json.dumps(jobs)
    assert len(folder_bytes(d, "Restored.Inbox")) == 16  # nothing more arrived


class Sink:
    """An SMTP listener (aiosmtpd) that keeps each message's bytes as sent."""

    def __init__(self):
        from aiosmtpd.controller import Controller
        self.mails = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_DATA(self, server, session, envelope):
        self.mails.append((envelope.mail_from, envelope.rcpt_tos, envelope.original_content))
        return "250 OK"

    def stop(self):
        self.controller.stop()


def test_restore_by_smtp_with_the_instance_settings(system):
    pytest.importorskip("aiosmtpd", reason="python3-aiosmtpd (Debian) is the SMTP test peer")
    s = system
    assert call(s, "GetSmtpSettings")["configured"] is False
    assert "no SMTP settings" in refused(s, "TestSmtpSettings", "to=ops@example.test")
    sink = Sink()
    try:
        r = call(s, "SetSmtpSettings", "host=127.0.0.1", "port=%d" % sink.port, "security=none",
                 "fromAddress=archive@example.test", "userName=relay", "password=smtp-secret-5")
        assert r["passwordSet"] is True and "password" not in r
        g = call(s, "GetSmtpSettings")
        assert g["host"] == "127.0.0.1" and g["passwordSet"] and "password" not in g
        assert b"smtp-secret-5" not in pathlib.Path(s.base, "smtp.sealed").read_bytes()
        # the sink offers no AUTH: the same settings without a login
        call(s, "SetSmtpSettings", "host=127.0.0.1", "port=%d" % sink.port, "security=none",
             "fromAddress=archive@example.test", "userName=", "password=")
        assert call(s, "GetSmtpSettings")["passwordSet"] is False
        assert call(s, "TestSmtpSettings", "to=ops@example.test")["sentTo"] == "ops@example.test"
        assert len(sink.mails) == 1 and b"Coffer test message" in sink.mails[0][2]
        r = call(s, "RestoreMessages", "method=smtp", 'target={"to": "alice@example.test"}',
                 "query=subject:projectx")
        assert r["restored"] == 6 and r["failed"] == 0, r
        mails = sink.mails[1:]
        assert all(m[0] == "archive@example.test" and m[1] == ["alice@example.test"] for m in mails)
        assert by_id([m[2] for m in mails]) == expected(s, "projectx")
        assert "target.to" in refused(s, "RestoreMessages", "method=smtp", 'target={"to": "nobody"}',
                                      "query=*")
    finally:
        sink.stop()


def test_audit_names_exports_and_restores(system):
    s = system
    log = call(s, "GetInstanceAuditLog", "action=ExportMessagesDone", "limit=100")
    entries = log["entries"] if isinstance(log, dict) else log
    text = json.dumps(entries)
    assert "export/inbox-zip" in text and "subject:projectx" in text
    started = json.dumps(call(s, "GetInstanceAuditLog", "action=ExportMessages", "limit=100"))
    assert "inbox-mbox" in started and "admin" in started
    restores = json.dumps(call(s, "GetInstanceAuditLog", "action=RestoreMessagesDone", "limit=100"))
    assert '"restored": 10' in restores.replace('":10', '": 10') or '"restored":10' in restores
    assert "fingerprint mismatch" in restores
    everything = json.dumps(call(s, "GetInstanceAuditLog", "limit=1000"))
    assert IMAP_PASSWORD not in everything and "smtp-secret-5" not in everything
    # nowhere on disk in clear: logs, the Management Server's audit log and
    # database, the instance's base directory (jobs, settings: sealed)
    for root, _, files in os.walk(s.tmp):
        for f in files:
            path = pathlib.Path(root, f)
            if not path.is_file() or path.is_symlink():
                continue  # sockets
            data = path.read_bytes()
            assert IMAP_PASSWORD.encode() not in data and b"smtp-secret-5" not in data, f


def test_only_administrators_and_not_while_frozen(system):
    s = system
    # an instance user (even an admin of the instance) is no Management API user
    admin = new_user(s, "login,archive,admin,export")
    for user in (s.user, admin):
        out = refused(s, "ExportMessages", "format=zip", "name=by-" + user,
                      "folder=%s/Inbox" % s.user, user=user, password=PASSWORD)
        assert "wrong administrator name or password" in out, out
        assert not os.path.exists(os.path.join(s.base, "export", "by-" + user)), out
    refused(s, "ExportMessages", "format=zip", "name=badpw", "query=*", password="wrong-password")
    s.api.call("FreezeInstances", "instanceFilter=acme")
    try:
        assert "frozen" in refused(s, "ExportMessages", "format=zip", "name=frozen", "query=*")
    finally:
        s.api.call("ThawInstances", "instanceFilter=acme")
    assert not os.path.exists(os.path.join(s.base, "export", "frozen"))


@pytest.fixture(scope="module")
def slow_system():
    """Each progress report of a job sleeps 1 s (COFFER_TEST_JOB_STEP_DELAY_MS,
    passed on by the daemons): an export of 8 messages is still running
    when it is cancelled, however fast the machine."""
    os.environ["COFFER_TEST_JOB_STEP_DELAY_MS"] = "1000"
    try:
        s = start_system("coffer-transfer-slow-")
    finally:
        del os.environ["COFFER_TEST_JOB_STEP_DELAY_MS"]
    try:
        s.user = new_user(s, "login,archive")
        d = pathlib.Path(s.base, "import", "slow")
        d.mkdir(parents=True)
        for i in range(8):
            (d / ("%d.eml" % i)).write_bytes(message(i, "slow"))
        assert s.api.call("ImportFiles", "instanceID=acme", "userName=" + s.user,
                          "path=import/slow", "folder=Inbox")["archived"] == 8
        yield s
    finally:
        stop_system(s)


def test_progress_and_cancel(slow_system):
    s = slow_system
    p = s.api.call_raw("ExportMessages", "instanceID=acme", "format=zip", "name=cut",
                       "folder=%s/Inbox" % s.user, extra=["--no-wait"])
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running" and env["token"], env

    def running():
        for j in call(s, "GetJobs"):
            if j["kind"] == "export" and j["state"] == "running" and \
                    j["result"].get("exported", 0) >= 1:
                return j
        return None
    job = wait_for(running, timeout=60, interval=0.1, what="the export under way")
    assert 0 < job["percentProgress"] < 100 and job["result"]["messages"] == 8, job
    call(s, "CancelJob", "jobID=" + job["jobID"])
    done = wait_for(lambda: (lambda j: j if j["state"] != "running" else None)(
        call(s, "GetJob", "jobID=" + job["jobID"])), timeout=60, what="the export to stop")
    assert done["state"] == "cancelled" and done["result"]["exported"] < 8, done
    assert os.listdir(os.path.join(s.base, "export")) == []
    log = json.dumps(call(s, "GetInstanceAuditLog", "action=ExportMessagesDone"))
    assert "cancelled" in log
