"""The Console's archiving profiles and moving instances, in Chromium
(tests/web/console-pages.mjs; desktop and phone sizes, axe-core).

One system for the module: the single server mode system (Management
Server, Instance Host, Client Access Server on 127.0.0.1), a second
Instance Host on 127.0.0.6 with its own config directory (paired as in
test_move_instance.py), and a real Dovecot on loopback (test_sources.py's
Dovecot, here with one mailbox of a few messages). In the browser: an IMAP
profile created and run from the Console, its progress and result with the
archived count, the messages then found in the instance; a profile with a
wrong password failing with its reason in the job result and its report;
one for many mailboxes with Dovecot's master user (a folder excluded), then
deleted after a confirmation; a password never in the page nor in any API answer; a move of an instance to
the other Instance Host cancelled from its Move tab, then done, and back
with the Move instances form, each checked on the server; a search exported
to a zip and restored into Dovecot by IMAP APPEND from the Export and
restore tab, the bytes compared with what was archived.

Time bounds: the browser waits up to 30 s for a run or a move (a few
messages, a small instance: a second or two on an idle machine). Moving
in to the second host waits READ_DELAY_MS (5 s) before each read (test knob of
src/host/host-move.c), so a move there lasts several seconds (a read or two): long enough
to press Cancel while it copies even on a loaded machine (300 ms once
was not: the move ended before the click)."""
import json
import os
import pathlib
import pwd
import shutil
import subprocess
import tempfile
import time
import zipfile

import pytest

from daemonfix import Api, Server, all_connected, free_port, wait_for
from netnsfix import run_browser
from test_console import ARTIFACTS, CHROMIUM, _missing
from test_instances import data_dir, state
from test_sources import DOVECOT, MASTER, MASTER_PASSWORD, Dovecot, write_maildir

IH2 = "127.0.0.6"
MESSAGES = 6
SUBJECT = "consolerun"
SECRET = "alice-imap-Secret-42"
READ_DELAY_MS = 5000


def messages(n):
    return [("From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: %s %d\r\n"
             "Date: Fri, 4 Dec 2026 10:%02d:00 +0000\r\nMessage-ID: <c%d@example.org>\r\n\r\n"
             "Body of message %d.\r\n" % (SUBJECT, i, i, i, i)).encode() for i in range(n)]


def start_dovecot(top):
    d = Dovecot(top)
    w = d.work
    for sub in ("run", "state", "mail", "home"):
        (w / sub).mkdir(parents=True)
    write_maildir(w / "mail" / "alice", "", messages(MESSAGES - 2), 0)
    write_maildir(w / "mail" / "alice", "Lists", messages(MESSAGES)[MESSAGES - 2:], MESSAGES - 2)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(w / "key.pem"), "-out", str(w / "cert.pem")],
                   check=True, capture_output=True)
    (w / "users").write_text("alice:{PLAIN}%s\n" % SECRET)
    (w / "masters").write_text("%s:{PLAIN}%s\n" % (MASTER, MASTER_PASSWORD))
    (w / "dovecot.conf").write_text(d.conf())
    nobody = pwd.getpwnam("nobody")
    subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid),
                    str(w / "mail"), str(w / "home")], check=True)
    fp = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in",
                         str(w / "cert.pem")], check=True, capture_output=True, text=True)
    d.fingerprint = fp.stdout.strip().split("=", 1)[1]
    d.start()
    return d


@pytest.fixture(scope="module")
def world():
    if _missing():
        pytest.fail(_missing())
    if not os.path.exists(DOVECOT) or os.geteuid() != 0:
        pytest.skip("Dovecot (started as root) is needed for the profile runs")
    base = tempfile.mkdtemp(prefix="coffer-console-pages-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    ih2 = Server(base, "ih2", IH2)
    dovecot = None
    try:
        s.config("init", "--mode", "single", "--server-name", "single.test", "--admin-password", "pw-single")
        s.ports = p = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps")}
        s.config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % p["mtcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["mhttp"])
        s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % p["itcp"])
        s.config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % p["ctcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["chttp"], "--imap-listeners",
                 "127.0.0.1:%d" % p["cimap"], "--imaps-listeners", "127.0.0.1:%d" % p["cimaps"])
        s.config("start")
        s.api = Api(s, "127.0.0.1", p["mhttp"], "pw-single")
        dovecot = start_dovecot(pathlib.Path(base))
        wait_for(all_connected(s.api), timeout=60, what="every role connected")
        ih2.config("init", "--mode", "multi")
        ih2.config("role", "add", "instance-host", "--server-name", IH2,
                   "--tcp-listeners", "%s:%d" % (IH2, free_port(IH2)))
        ih2.config("pair", "--management-server", "127.0.0.1", "--api-port", p["mhttp"],
                   "--admin-name", "admin", "--admin-password", "pw-single", "--trust-on-first-use")
        # moving in is slowed down on the second host (src/host/host-move.c,
        # for tests only), so that a move lasts long enough to be cancelled
        os.environ["COFFER_TEST_MOVE_READ_DELAY_MS"] = str(READ_DELAY_MS)
        try:
            ih2.config("start")
        finally:
            del os.environ["COFFER_TEST_MOVE_READ_DELAY_MS"]
        s.data2 = os.path.join(base, "data2")
        os.makedirs(s.data2)
        subprocess.run(["chown", "coffer", s.data2], check=False)
        for iid in ("acme", "mover"):
            s.api.call("CreateInstance", "instanceID=" + iid, "instanceHost=127.0.0.1",
                       "baseDirectory=" + data_dir(s, iid))
        s.api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
        wait_for(all_connected(s.api, hosts=2), timeout=60, what="both Instance Hosts connected")
        wait_for(lambda: state(s, "acme") == "running" and state(s, "mover") == "running",
                 timeout=60, what="acme and mover running")
        s.dovecot = dovecot
        yield s
    finally:
        if dovecot is not None:
            dovecot.stop()
        s.stop_all()
        ih2.stop_all()
        time.sleep(0.3)
        problems = []
        for path in __import__("glob").glob(os.path.join(base, "*", "log", "*.stderr")):
            text = open(path, errors="replace").read()
            if "AddressSanitizer" in text or "runtime error:" in text:
                problems.append("%s:\n%s" % (path, text[-4000:]))
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "sanitizer reports:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def browser_run(world):
    s = world
    os.makedirs(ARTIFACTS, exist_ok=True)
    results_file = os.path.join(os.path.dirname(s.dir), "console-pages-results.json")
    cfg = {
        "baseUrl": "https://127.0.0.1:%d" % s.ports["mhttp"],
        "artifacts": ARTIFACTS,
        "chromium": CHROMIUM,
        "resultsFile": results_file,
        "adminUser": "admin",
        "adminPassword": "pw-single",
        "imapPort": s.dovecot.imaps_port,
        "fingerprint": s.dovecot.fingerprint,
        "secret": SECRET,
        "master": MASTER,
        "masterPassword": MASTER_PASSWORD,
        "messages": MESSAGES,
        "subject": SUBJECT,
        "sourceHost": "127.0.0.1",
        "targetHost": IH2,
        "targetDir": os.path.join(s.data2, "mover"),
        "backDir": os.path.dirname(data_dir(s, "mover")),
    }
    run = run_browser("console-pages.mjs", "COFFER_CONSOLE_TEST", cfg, timeout=300)
    results = json.load(open(results_file)) if os.path.exists(results_file) else {}
    return {"results": results, "output": run.stdout + run.stderr}


def scenario(browser_run, name):
    r = browser_run["results"].get(name)
    assert r is not None, "the scenario did not run:\n" + browser_run["output"][-3000:]
    assert r["ok"], r.get("error")
    return r


def test_profile_created_and_run_from_the_console(world, browser_run):
    r = scenario(browser_run, "profile_run")
    # what the page showed is what the server holds
    profiles = world.api.call("GetProfiles", "instanceID=acme")
    good = [p for p in profiles if p["name"] == "dovecot alice"]
    assert len(good) == 1 and good[0]["hasPassword"] is True and "password" not in good[0]
    assert SECRET not in json.dumps(profiles)
    runs = world.api.call("GetWorkerResults", "instanceID=acme", "profileID=" + good[0]["profileID"])
    # newest first: the run after the edit, which logged in (the password
    # kept) and found nothing new (runs are incremental), and the first run
    assert [r["state"] for r in runs] == ["succeeded", "succeeded"], runs
    assert runs[1]["result"]["archived"] == MESSAGES, runs
    assert runs[0]["result"]["archived"] == 0 and runs[0]["result"]["failed"] == 0, runs
    assert r["archived"] == MESSAGES
    found = world.api.call("Search", "instanceID=acme", "query=subject:%s" % SUBJECT)
    assert found["total"] == MESSAGES, found


def test_wrong_password_fails_with_its_reason(world, browser_run):
    r = scenario(browser_run, "profile_wrong_password")
    bad = [p for p in world.api.call("GetProfiles", "instanceID=acme") if p["name"] == "wrong password"]
    runs = world.api.call("GetWorkerResults", "instanceID=acme", "profileID=" + bad[0]["profileID"])
    assert runs[0]["state"] == "failed" and runs[0]["error"], runs
    assert runs[0]["error"] in r["reason"]


def test_master_user_profile_and_delete(world, browser_run):
    scenario(browser_run, "profile_master_and_delete")
    names = [p["name"] for p in world.api.call("GetProfiles", "instanceID=acme")]
    assert "master user" not in names and "dovecot alice" in names, names
    runs = [r for r in world.api.call("GetWorkerResults", "instanceID=acme")
            if r["arguments"]["name"] == "master user"]
    assert runs[0]["state"] == "succeeded" and runs[0]["result"]["duplicates"] == MESSAGES - 2, runs


def test_password_never_returned(browser_run):
    scenario(browser_run, "password_never_returned")


def test_instance_moved_from_the_console(world, browser_run):
    scenario(browser_run, "move_cancelled")
    scenario(browser_run, "move_instance")
    scenario(browser_run, "move_instances_back")
    conf = world.api.call("GetInstanceConfiguration", "instanceID=mover")
    # moved to 127.0.0.6 from its Move tab, then back with the Move instances form
    assert conf["instanceHost"] == "127.0.0.1" and conf["status"] == "running", conf
    assert browser_run["results"]["move_instance"]["host"] == IH2


def test_export_and_restore_from_the_console(world, browser_run):
    scenario(browser_run, "export_restore")
    base = world.api.call("GetInstanceConfiguration", "instanceID=acme")["baseDirectory"]
    with zipfile.ZipFile(os.path.join(base, "export", "console-export.zip")) as z:
        exported = sorted(z.read(n) for n in z.namelist())
    assert exported == sorted(messages(MESSAGES))
    # in Dovecot, read back over IMAP: the same bytes
    c = world.dovecot.login("alice")
    c.select("Restored", readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
    c.logout()
    assert sorted(d[1] for d in data if isinstance(d, tuple)) == sorted(messages(MESSAGES))
    audit = json.dumps(world.api.call("GetInstanceAuditLog", "instanceID=acme"))
    assert "ExportMessages" in audit and "RestoreMessages" in audit and SECRET not in audit


def test_pages_accessible_on_desktop_and_phone(browser_run):
    scenario(browser_run, "accessibility")
