"""The journal receiver set through the Management API (docs/sources.md,
"Journal receiver"; docs/api.md): the Instance Host's listeners, limits and
SMTP AUTH logins, and per instance the addresses and domains it takes,
recipients mapped to users and the unknown-recipient policy. Every change
takes effect without a restart of the Instance Host, which is checked by
its process ID; every effect is checked with real deliveries by swaks
(SMTP and LMTP).

One system for the module (module_single). Time bounds: each wait is at
most 30 s (a delivery takes well under a second on an idle machine)."""
import json
import os
import socket

import pytest

from daemonfix import all_connected, free_port, wait_for
from netnsfix import run_browser
from test_instances import data_dir, state
from test_journal import read_folder, swaks

DOMAIN = "acme.example"
SECRET = "feed-Secret-pass-42"


def host_pid(s):
    with open(os.path.join(s.dir, "run", "instance-host.pid")) as f:
        return int(f.read().strip())


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def journal_count(s, user):
    folders = {f["folder"]: f["messages"] for f in s.api.call("GetFolderStatistics", "instanceID=acme")}
    return folders.get(user + "/Journal", 0)


def set_host(s, **settings):
    return s.api.call("SetInstanceHostJournalConfiguration", "serverName=127.0.0.1",
                      "settings=" + json.dumps(settings))


@pytest.fixture(scope="module")
def system(module_single):
    s = module_single
    wait_for(all_connected(s.api), what="every role connected")
    s.base = data_dir(s, "acme")
    s.api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + s.base)
    wait_for(lambda: state(s, "acme") == "running", what="acme running")
    users = [{"userName": u, "emailAddresses": ["%s@%s" % (u, DOMAIN)]} for u in ("alice", "bob")]
    users.append({"userName": "root", "emailAddresses": [], "privileges": ["admin"],
                  "loginPrivileges": ["api"]})
    s.api.call("SyncUsers", "instanceID=acme", "users=" + json.dumps(users))
    s.pid = host_pid(s)
    s.smtp, s.lmtp = free_port(), free_port()
    return s


def test_listeners_and_mapping_without_restart(system):
    s = system
    got = s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1")
    assert got["instances"] == [] and "smtpListeners" not in got
    assert not port_open(s.smtp)
    set_host(s, smtpListeners="127.0.0.1:%d" % s.smtp, lmtpListeners="127.0.0.1:%d" % s.lmtp,
             maxRecipients=5)
    assert port_open(s.smtp) and port_open(s.lmtp), "listening at once"
    # journal@ goes to bob by the mapping, alice@ to alice by her address
    got = s.api.call("SetJournalSettings", "instanceID=acme", "domains=" + DOMAIN,
                     "recipients=" + json.dumps({"Journal@acme.example": "bob"}))
    assert got["recipients"] == {"Journal@acme.example": "bob"} and got["unknownRecipients"] == "refuse"
    assert s.api.call("GetJournalSettings", "instanceID=acme") == got
    body = "Subject: mapped\r\nMessage-ID: <mapped@test>\r\n\r\nfor the journal\r\n"
    p = swaks(s.lmtp, "--protocol", "LMTP", "--to", "journal@%s,alice@%s" % (DOMAIN, DOMAIN),
              "--data", body[:-2])
    assert p.stdout.count("250 2.0.0 Archived") == 2, p.stdout
    assert journal_count(s, "bob") == 1 and journal_count(s, "alice") == 1
    # unknown recipients: refused, then (policy changed) to the catch-all user
    p = swaks(s.smtp, "--to", "nobody@" + DOMAIN, "--data", "Subject: x\r\n\r\nx")
    assert "550 5.1.1" in p.stdout, p.stdout
    r = s.api.call_raw("SetJournalSettings", "instanceID=acme", "unknownRecipients=catch-all")
    assert r.returncode != 0 and "catchAllUser" in r.stdout + r.stderr, "catch-all needs a user"
    s.api.call("SetJournalSettings", "instanceID=acme", "unknownRecipients=catch-all", "catchAllUser=alice")
    p = swaks(s.smtp, "--to", "nobody@" + DOMAIN, "--data", "Subject: y\r\nMessage-ID: <y@test>\r\n\r\ny")
    assert "250 2.0.0 Archived" in p.stdout, p.stdout
    assert journal_count(s, "alice") == 2
    # a limit in force at once: 6 recipients, the 6th answered 452
    tos = ",".join("r%d@%s" % (i, DOMAIN) for i in range(6))
    p = swaks(s.smtp, "--to", tos, "--data", "Subject: many\r\nMessage-ID: <many@test>\r\n\r\nmany")
    assert "452 4.5.3" in p.stdout, p.stdout
    # the listener moves: the old port is closed, the new one answers
    new = free_port()
    set_host(s, smtpListeners="127.0.0.1:%d" % new)
    assert not port_open(s.smtp) and port_open(new)
    s.smtp = new
    assert host_pid(s) == s.pid, "no restart of the Instance Host"
    # kept for the next start, as `coffer config journal show` reads it
    shown = json.loads(s.config("journal", "show").stdout)
    assert shown["smtpListeners"] == "127.0.0.1:%d" % new
    assert shown["instances"][0]["recipients"] == {"Journal@acme.example": "bob"}


def test_bad_settings_change_nothing(system):
    s = system
    before = s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1")
    for settings, words in (({"smtpListeners": "nonsense"}, "nonsense"),
                            ({"allowedNetworks": ["10.0.0.0/99"]}, "prefix"),
                            ({"maxRecipients": 0}, "maxRecipients"),
                            ({"instances": []}, "SetJournalSettings"),
                            ({"bogus": 1}, "bogus"),
                            ({"smtpListeners": 5}, "expected a string"),
                            ({"authRequired": True}, "authUsers")):
        r = s.api.call_raw("SetInstanceHostJournalConfiguration", "serverName=127.0.0.1",
                           "settings=" + json.dumps(settings))
        assert r.returncode != 0 and words in r.stdout + r.stderr, (settings, r.stdout, r.stderr)
    r = s.api.call_raw("SetJournalSettings", "instanceID=acme",
                       "recipients=" + json.dumps({"no-at-sign": "bob"}))
    assert r.returncode != 0
    # a user the instance does not have: refused now, not 550 at every delivery
    r = s.api.call_raw("SetJournalSettings", "instanceID=acme",
                       "recipients=" + json.dumps({"x@acme.example": "bob", "y@acme.example": "nosuchuser"}))
    assert r.returncode != 0 and "no user 'nosuchuser'" in r.stdout + r.stderr, r.stdout + r.stderr
    r = s.api.call_raw("SetJournalSettings", "instanceID=acme", "catchAllUser=typo")
    assert r.returncode != 0 and "no user 'typo'" in r.stdout + r.stderr, r.stdout + r.stderr
    r = s.api.call_raw("GetJournalSettings", "instanceID=nosuch")
    assert r.returncode != 0 and "nosuch" in r.stdout + r.stderr
    assert s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1") == before
    assert port_open(s.smtp), "the listeners stay"


def test_smtp_auth_password_write_only(system):
    s = system
    s.api.call("SetInstanceHostJournalAuthUser", "serverName=127.0.0.1", "userName=feed",
               "password=" + SECRET)
    got = s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1")
    assert got["authUsers"] == ["feed"]
    set_host(s, authRequired=True)
    body = "Subject: auth\r\nMessage-ID: <auth@test>\r\n\r\nauth"
    p = swaks(s.smtp, "--to", "bob@" + DOMAIN, "--data", body)
    assert "530 5.7.0" in p.stdout, p.stdout
    p = swaks(s.smtp, "--auth", "PLAIN", "--auth-user", "feed", "--auth-password", SECRET,
              "--to", "bob@" + DOMAIN, "--data", body)
    assert "250 2.0.0 Archived" in p.stdout, p.stdout
    # the password is in no answer, the audit log nor the settings file
    audit = open(os.path.join(s.dir, "management-audit.log")).read()
    assert "SetInstanceHostJournalAuthUser" in audit and "SetJournalSettings" in audit
    journal_file = open(os.path.join(s.dir, "journal.json")).read()
    for text in (json.dumps(got), audit, journal_file):
        assert SECRET not in text
    set_host(s, authRequired=None)
    s.api.call("DeleteInstanceHostJournalAuthUser", "serverName=127.0.0.1", "userName=feed")
    assert s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1")["authUsers"] == []
    assert host_pid(s) == s.pid


def test_callers_without_the_privilege_are_refused(system):
    """Only a system administrator may: an instance's own administrator (an
    instance user with the admin privilege and API login) and a wrong
    password are refused, and nothing changes."""
    s = system
    before = s.api.call("GetJournalSettings", "instanceID=acme")
    s.api.call("SetUserPassword", "instanceID=acme", "userName=root", "password=root-pass-123")
    calls = (["SetJournalSettings", "instanceID=acme", "unknownRecipients=refuse"],
             ["SetInstanceHostJournalAuthUser", "serverName=127.0.0.1", "userName=x",
              "password=" + SECRET],
             ["GetInstanceHostJournalConfiguration", "serverName=127.0.0.1"])
    # (fewer than three failures for admin: its address must not be slowed down)
    for user, password, call in [("root", "root-pass-123", c) for c in calls] + \
            [("admin", "wrong-password", calls[0])]:
        r = s.api.call_raw(*call, user=user, password=password)
        assert r.returncode != 0, (user, call, r.stdout)
        assert "refused the login" in r.stderr, r.stdout + r.stderr
    assert s.api.call("GetJournalSettings", "instanceID=acme") == before
    assert s.api.call("GetInstanceHostJournalConfiguration", "serverName=127.0.0.1")["authUsers"] == []


def test_console_maps_a_recipient_and_the_mail_goes_there(system):
    """The Journal tab in Chromium (tests/web/console-journal.mjs): a
    recipient mapped to bob and an SMTP AUTH login added in the page; then a
    real delivery by swaks over LMTP lands in bob's archive, byte for byte,
    and the login's password works for SMTP AUTH."""
    from test_console import ARTIFACTS, CHROMIUM, _missing
    if _missing():
        pytest.fail(_missing())
    s = system
    results_file = os.path.join(os.path.dirname(s.dir), "console-journal-results.json")
    password = "console-Login-pass-7"
    cfg = {"baseUrl": "https://127.0.0.1:%d" % s.ports["mhttp"], "artifacts": ARTIFACTS,
           "chromium": CHROMIUM, "resultsFile": results_file, "adminUser": "admin",
           "adminPassword": "pw-single", "mappedAddress": "ledger@" + DOMAIN, "mappedUser": "bob",
           "loginName": "consolefeed", "loginPassword": password}
    run = run_browser("console-journal.mjs", "COFFER_CONSOLE_TEST", cfg, timeout=240)
    results = json.load(open(results_file)) if os.path.exists(results_file) else {}
    for name in ("map_recipient_and_login", "bad_receiver_setting", "accessibility"):
        assert results.get(name, {}).get("ok"), "%s: %s\n%s" % (
            name, results.get(name, {}).get("error"), (run.stdout + run.stderr)[-3000:])
    assert s.api.call("GetJournalSettings", "instanceID=acme")["recipients"]["ledger@" + DOMAIN] == "bob"
    before = journal_count(s, "bob")
    body = "Subject: ledger\r\nMessage-ID: <ledger@test>\r\n\r\nmapped in the Console\r\n"
    p = swaks(s.lmtp, "--protocol", "LMTP", "--to", "ledger@" + DOMAIN, "--data", body[:-2])
    assert "250 2.0.0 Archived" in p.stdout, p.stdout
    assert journal_count(s, "bob") == before + 1
    assert body.encode() in read_folder(s, "bob/Journal"), "the bytes as sent"
    p = swaks(s.smtp, "--auth", "PLAIN", "--auth-user", "consolefeed", "--auth-password", password,
              "--to", "alice@" + DOMAIN, "--data", "Subject: login\r\nMessage-ID: <login@test>\r\n\r\nx")
    assert "235" in p.stdout and "250 2.0.0 Archived" in p.stdout, p.stdout
    assert password not in open(os.path.join(s.dir, "management-audit.log")).read()
