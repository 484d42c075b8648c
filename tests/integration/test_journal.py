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
import glob
import hashlib
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from daemonfix import ROOT, all_connected, free_port, wait_for
from test_instances import data_dir, state

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "linux-mips.mboxrd.zst")
DOMAIN = "acme.example"
USERS = ["u%d" % i for i in range(10)]


def swaks(port, *args, timeout=60):
    """swaks ends the DATA it is given with one CRLF of its own: callers give
    their message without its last line end."""
    cmd = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--helo", "client.test",
           "--from", "sender@outside.example", "--timeout", "30"] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def key_file(single, iid):
    return os.path.join(single.dir, "instance-keys", iid + ".key")


def read_folder(single, folder):
    """The raw bytes of every message of a folder, oldest first."""
    api = single.api
    page = api.call("GetMessages", "instanceID=acme", "folder=" + folder, "limit=1000")
    out = []
    for m in reversed(page["messages"]):
        p = subprocess.run([os.environ.get("COFFER_BIN", "coffer"), "archive", "--base-dir", single.base,
                            "--key-file", key_file(single, "acme"), "show", str(m["id"])],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        out.append(p.stdout)
    return out


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
    body = "Subject: one\r\nMessage-ID: <one@test>\r\n\r\n.leading dot\r\nline two\r\n"
    p = swaks(s.smtp, "--to", "u1@" + DOMAIN, "--data", body[:-2])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "250 2.0.0 Archived" in p.stdout
    got = read_folder(s, "u1/Journal")
    assert got == [body.encode()], "dot-stuffing undone, bytes as sent"

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
