"""The instance's audit log (src/instance/instance-audit.h, docs/compliance.md)
as a provider's auditor uses it: every login (IMAP, Web Access, API; right and
wrong), every message read or downloaded, every search by an auditor and
every administrator's change appears once, with who and from where, and never
a password; an auditor can search it in Web Access and an administrator
through the Management API; the hash chain verifies and a changed byte is
found; a frozen instance leaves its files untouched and writes the entries
when thawed; a killed instance keeps its entries and continues the chain.

One system serves the module; each test makes its own users so that one
test's entries never meet another's filters."""
import glob
import hashlib
import imaplib
import itertools
import os
import shutil
import signal
import socket
import ssl
import tempfile
import time

import pytest

from daemonfix import Api, Server, all_connected, free_port, wait_for
from mailgen import write_mbox
from test_instances import data_dir, instance_pid, restarted, state
from webfix import Web

PASSWORD = "audit-pass-1"
ADMIN_PASSWORD = "pw-single"
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def system():
    base = tempfile.mkdtemp(prefix="coffer-audit-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    try:
        s.config("init", "--mode", "single", "--server-name", "single.test",
                 "--admin-password", ADMIN_PASSWORD)
        ports = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps")}
        s.config("role", "configure", "management-server", "--tcp-listeners",
                 "127.0.0.1:%d" % ports["mtcp"], "--http-listeners", "127.0.0.1:%d" % ports["mhttp"])
        s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % ports["itcp"])
        s.config("role", "configure", "client-access-server",
                 "--tcp-listeners", "127.0.0.1:%d" % ports["ctcp"],
                 "--http-listeners", "127.0.0.1:%d" % ports["chttp"],
                 "--imap-listeners", "127.0.0.1:%d" % ports["cimap"],
                 "--imaps-listeners", "127.0.0.1:%d" % ports["cimaps"])
        s.config("start")
        s.ports = ports
        s.api = api = Api(s, "127.0.0.1", ports["mhttp"], ADMIN_PASSWORD)
        wait_for(all_connected(api), what="every role connected")
        s.base = data_dir(s, "acme")
        api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + s.base)
        wait_for(lambda: state(s, "acme") == "running", what="acme running")
        os.makedirs(os.path.join(s.base, "import"), exist_ok=True)
        s.log = os.path.join(s.base, "audit.log")
        yield s
    finally:
        s.stop_all()
        time.sleep(0.3)
        problems = []
        for path in glob.glob(os.path.join(s.dir, "log", "*.stderr")):
            with open(path, errors="replace") as f:
                text = f.read()
            if "AddressSanitizer" in text or "runtime error:" in text:
                problems.append("%s:\n%s" % (path, text[-4000:]))
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "sanitizer reports:\n" + "\n".join(problems)


def source():
    n = next(_serial)
    return "127.0.%d.%d" % (30 + n // 200, 1 + n % 200)


def user_with_mail(s, privileges="login,archive,export", count=3):
    """A new user with `count` messages in Inbox; returns (name, ids)."""
    user = "u%d" % next(_serial)
    s.api.call("CreateUser", "instanceID=acme", "userName=" + user, "password=" + PASSWORD,
               "privileges=" + privileges, "loginPrivileges=web,imap,api")
    if count:
        name = "%s.mbox" % user
        write_mbox(os.path.join(s.base, "import", name), count, start=100 * next(_serial))
        r = s.api.call("ImportFiles", "instanceID=acme", "userName=" + user,
                       "path=import/" + name, "folder=Inbox")
        assert r["archived"] == count, r
    web = Web("127.0.0.1", s.ports["chttp"], source=source())
    r = wait_for(lambda: web.get("/acme/api/messages?path=Inbox", basic=(user, PASSWORD)),
                 timeout=30, what="the user reachable")
    ids = [m["id"] for m in r.json["messages"]] if count else []
    return user, ids


def audit(s, **filters):
    args = ["%s=%s" % kv for kv in filters.items()]
    return s.api.call("GetInstanceAuditLog", "instanceID=acme", *args)


class Imap(imaplib.IMAP4_SSL):
    def __init__(self, s, src):
        self.source = src
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", s.ports["cimaps"], ssl_context=ctx, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def test_logins_and_reads_are_recorded_once_with_who_and_where(system):
    s = system
    user, ids = user_with_mail(s)
    src = source()
    imap = Imap(s, src)
    imap.login(user + "@acme", PASSWORD)
    imap.select("INBOX", readonly=True)
    typ, data = imap.uid("SEARCH", "ALL")
    uids = data[0].split()
    imap.uid("FETCH", b",".join(uids), "(FLAGS ENVELOPE)")  # not the content: not recorded
    typ, data = imap.uid("FETCH", uids[0], "(BODY.PEEK[])")
    assert typ == "OK"
    imap.logout()
    wrong = Imap(s, src)
    with pytest.raises(imaplib.IMAP4.error):
        wrong.login(user + "@acme", "not-the-password")
    wrong.logout()
    web_src = source()
    web = Web("127.0.0.1", s.ports["chttp"], source=web_src)
    assert web.login("acme", user, PASSWORD).status == 200
    assert web.get("/acme/api/messages/%d" % ids[1]).status == 200
    assert web.get("/acme/api/messages?path=Inbox&query=to:archive@acme.test").status == 200

    entries = audit(s, user=user)["entries"]
    by_action = {}
    for e in entries:
        by_action.setdefault(e["action"], []).append(e)
    logins = sorted((e["details"]["service"], e["details"]["outcome"], e["address"])
                    for e in by_action["ClientLogin"])
    # user_with_mail() looked with HTTP Basic first: one "api" login
    assert [x for x in logins if x[0] != "api"] == [
        ("imap", "auth-failed", src), ("imap", "ok", src), ("web", "ok", web_src)]
    assert len([x for x in logins if x[0] == "api"]) == 1
    fetches = by_action["ClientFetch"]
    assert len(fetches) == 1 and fetches[0]["address"] == src
    assert fetches[0]["details"]["ids"] == [int(uids[0])]
    views = by_action["ClientMessageView"]
    assert len(views) == 1 and views[0]["details"]["id"] == ids[1] and views[0]["address"] == web_src
    # a user searching their own mail is not news
    assert "ClientMessages" not in by_action and "ClientSearchUids" not in by_action
    # newest first
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)


def test_auditor_searches_and_reads_the_log_in_web_access(system):
    s = system
    user, _ = user_with_mail(s)
    auditor, _ = user_with_mail(s, privileges="login,auditor", count=0)
    w = Web("127.0.0.1", s.ports["chttp"], source=source())
    assert w.login("acme", auditor, PASSWORD).status == 200
    r = w.get("/acme/api/messages?owner=%s&path=Inbox&query=to:archive@acme.test" % user)
    assert r.status == 200 and r.json["total"] == 3
    searches = audit(s, user=auditor, action="ClientMessages")["entries"]
    assert len(searches) == 1 and searches[0]["details"]["query"] == "to:archive@acme.test"
    assert searches[0]["details"]["owner"] == user
    # the auditor reads the log; a user without the privilege is refused
    r = w.get("/acme/api/audit?user=%s&action=ClientLogin" % user)
    assert r.status == 200 and r.json["total"] >= 1
    assert {e["user"] for e in r.json["entries"]} == {user}
    plain = Web("127.0.0.1", s.ports["chttp"], source=source())
    assert plain.login("acme", user, PASSWORD).status == 200
    r = plain.get("/acme/api/audit")
    assert r.status == 403, r.raw
    # paging: offset skips the newest
    everything = w.get("/acme/api/audit?user=%s&limit=5" % user).json
    second = w.get("/acme/api/audit?user=%s&limit=2&offset=2" % user).json
    assert second["entries"] == everything["entries"][2:4]
    assert w.get("/acme/api/audit?limit=x").status == 400


def test_administrators_changes_name_the_administrator_and_no_secret(system):
    s = system
    user, _ = user_with_mail(s, count=0)
    secret = "brand-new-secret-77"
    s.api.call("SetUserPassword", "instanceID=acme", "userName=" + user, "password=" + secret)
    s.api.call("SetUserPrivileges", "instanceID=acme", "userName=" + user,
               "privileges=login,archive,delete")
    entries = audit(s, text=user, user="admin")["entries"]
    actions = [e["action"] for e in entries]
    assert actions.count("SetUserPassword") == 1 and actions.count("SetUserPrivileges") == 1
    assert actions.count("CreateUser") == 1
    for e in entries:
        assert e["user"] == "admin" and e["address"].startswith("127.0.0.1")
    with open(s.log, "rb") as f:
        raw = f.read()
    for word in (secret.encode(), PASSWORD.encode(), ADMIN_PASSWORD.encode()):
        assert word not in raw
    # reading the log is itself recorded
    assert audit(s, action="GetInstanceAuditLog")["total"] == 0
    assert audit(s, action="GetAuditLog", user="admin")["total"] >= 1


def test_chain_verifies_and_a_changed_byte_is_found(system):
    s = system
    user_with_mail(s, count=1)
    r = s.api.call("VerifyInstanceAuditLog", "instanceID=acme")
    assert r["verified"] is True and r["entries"] > 5
    with open(s.log, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    target = 2  # the third line
    pos = sum(len(line) + 1 for line in lines[:target]) + lines[target].index(b'"action":"') + 10
    changed = data[:pos] + bytes([data[pos] ^ 0x20]) + data[pos + 1:]
    with open(s.log, "r+b") as f:
        f.write(changed[:pos + 1])
    try:
        p = s.api.call_raw("VerifyInstanceAuditLog", "instanceID=acme")
        assert p.returncode != 0 and "line 3" in p.stdout + p.stderr, p.stdout + p.stderr
    finally:
        with open(s.log, "r+b") as f:
            f.seek(pos)
            f.write(data[pos:pos + 1])
    assert s.api.call("VerifyInstanceAuditLog", "instanceID=acme")["verified"] is True


def test_frozen_instance_holds_entries_until_thawed(system):
    s = system
    user, ids = user_with_mail(s, count=2)
    web = Web("127.0.0.1", s.ports["chttp"], source=source())
    assert web.login("acme", user, PASSWORD).status == 200
    s.api.call("FreezeInstances", "instanceFilter=acme")
    try:
        with open(s.log, "rb") as f:
            before = hashlib.sha256(f.read()).hexdigest()
        assert web.get("/acme/api/messages/%d" % ids[0]).status == 200
        with open(s.log, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == before, "a frozen instance wrote"
    finally:
        s.api.call("ThawInstances", "instanceFilter=acme")
    views = wait_for(lambda: audit(s, user=user, action="ClientMessageView")["entries"],
                     timeout=30, what="the held entry written after the thaw")
    assert len(views) == 1 and views[0]["details"]["id"] == ids[0]
    assert s.api.call("VerifyInstanceAuditLog", "instanceID=acme")["verified"] is True


def test_killed_instance_keeps_its_entries_and_the_chain(system):
    s = system
    user, ids = user_with_mail(s, count=1)
    web = Web("127.0.0.1", s.ports["chttp"], source=source())
    assert web.login("acme", user, PASSWORD).status == 200
    assert web.get("/acme/api/messages/%d" % ids[0]).status == 200
    pid = instance_pid(s, "acme")
    os.kill(pid, signal.SIGKILL)
    wait_for(restarted(s, "acme", pid), timeout=60, what="acme restarted")
    assert len(audit(s, user=user, action="ClientMessageView")["entries"]) == 1
    web2 = Web("127.0.0.1", s.ports["chttp"], source=source())
    wait_for(lambda: web2.login("acme", user, PASSWORD).status == 200, timeout=30,
             what="login after the restart")
    logins = audit(s, user=user, action="ClientLogin")["entries"]
    assert [e["details"]["service"] for e in logins] == ["web", "web", "api"]
    assert s.api.call("VerifyInstanceAuditLog", "instanceID=acme")["verified"] is True
