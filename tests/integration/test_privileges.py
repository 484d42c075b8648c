"""Privileges and folder rights take effect (src/instance/instance-rights.h),
through every way in where the operation exists: the client API as Web
Access uses it (session) and as scripts do (HTTP Basic), IMAP, and the
Management API. Each privilege and right is tried with and without, and its
absence must refuse. Deleting messages has no way in yet: its rule is
covered by the unit test src/instance/test-instance-rights.c.

One system serves the module; every test makes users of its own (so one
test's failed logins never throttle another's) and comes from an address of
its own in 127.0.0.0/8."""
import glob
import imaplib
import io
import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import zipfile

import pytest

from daemonfix import Api, Server, all_connected, free_port, wait_for
from netnsfix import browser_running
from mailgen import message, write_mbox
from test_instances import data_dir, state
from webfix import Web

PASSWORD = "subject-pass-1"
WAYS = ("web", "api", "imap")
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def system():
    """acme with alice (Inbox), bob (Work, Private) and root (admin, who
    files test mail into the subjects' archives)."""
    base = tempfile.mkdtemp(prefix="coffer-priv-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    try:
        s.config("init", "--mode", "single", "--server-name", "single.test",
                 "--admin-password", "pw-single")
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
        s.api = api = Api(s, "127.0.0.1", ports["mhttp"], "pw-single")
        wait_for(all_connected(api), what="every role connected")
        s.base = data_dir(s, "acme")
        api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + s.base)
        wait_for(lambda: state(s, "acme") == "running", what="acme running")
        os.makedirs(os.path.join(s.base, "import"), exist_ok=True)
        api.call("CreateUser", "instanceID=acme", "userName=root", "password=" + PASSWORD,
                 "privileges=admin", "loginPrivileges=api")
        for user in ("alice", "bob"):
            api.call("CreateUser", "instanceID=acme", "userName=" + user, "password=" + PASSWORD)
        for user, folder, count, start in (("alice", "Inbox", 3, 0), ("bob", "Work", 2, 100),
                                           ("bob", "Private", 1, 200)):
            file_mail(s, user, folder, count, start)
        s.bob_ids = {}
        root = web_client(s)
        wait_for(lambda: root.get("/acme/api/folders", basic=("root", PASSWORD)).status == 200,
                 timeout=30, what="acme reachable through the Client Access Server")
        for folder in ("Work", "Private"):
            r = root.get("/acme/api/messages?owner=bob&path=" + folder, basic=("root", PASSWORD))
            s.bob_ids[folder] = [m["id"] for m in r.json["messages"]]
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
    """An address of its own for each client: failed logins are throttled
    per address."""
    n = next(_serial)
    return "127.0.%d.%d" % (10 + n // 200, 1 + n % 200)


def web_client(s):
    return Web("127.0.0.1", s.ports["chttp"], source=source())


def file_mail(s, owner, folder, count, start):
    """File `count` new messages into owner's archive (root, an admin, does it)."""
    name = "m%d.mbox" % next(_serial)
    write_mbox(os.path.join(s.base, "import", name), count, start=start)
    r = s.api.call("ImportFiles", "instanceID=acme", "userName=root", "archive=" + owner,
                   "path=import/" + name, "folder=" + folder)
    assert r["archived"] == count, r


def subject(s, privileges, login_privileges="web,imap,api", rights=None, mail=0):
    """A new user with these privileges and folder rights (and `mail`
    messages of their own in Own)."""
    user = "tess%d" % next(_serial)
    s.api.call("CreateUser", "instanceID=acme", "userName=" + user, "password=" + PASSWORD,
               "privileges=" + privileges, "loginPrivileges=" + login_privileges)
    for folder, granted in (rights or {}).items():
        s.api.call("SetUserPrivilegesOnFolder", "instanceID=acme", "userName=" + user,
                   "folder=" + folder, "privileges=" + granted)
    if mail:
        file_mail(s, user, "Own", mail, 1000 * next(_serial))
    return user


class Imap(imaplib.IMAP4_SSL):
    """imaplib over TLS from a source address of our own."""

    def __init__(self, s):
        self.source = source()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", s.ports["cimaps"], ssl_context=ctx, timeout=30)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self.source, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class Way:
    """One way in, logged in as a user: `ok` says whether the login worked;
    `folders()` is what the user may read (owner/path), or None if refused."""

    def __init__(self, s, way, user):
        self.way, self.user = way, user
        if way == "imap":
            self.imap = Imap(s)
            try:
                self.imap.login(user + "@acme", PASSWORD)
                self.ok = True
            except imaplib.IMAP4.error:
                self.ok = False
            return
        self.web = web_client(s)
        self.basic = (user, PASSWORD) if way == "api" else None
        if way == "web":
            self.ok = self.web.login("acme", user, PASSWORD).status == 200
        else:
            self.ok = self.get("/acme/api/session").status == 200

    def get(self, path):
        return self.web.get(path, basic=self.basic)

    def folders(self):
        if self.way == "imap":
            typ, data = self.imap.list()
            if typ != "OK":
                return None
            out = set()
            for line in (d.decode() for d in data if d):
                if "\\Noselect" in line:
                    continue
                name = line.rsplit(' "/" ', 1)[1].strip('"')
                out.add(name[len("Other Users/"):] if name.startswith("Other Users/")
                        else self.user + "/" + name)
            return out
        r = self.get("/acme/api/folders")
        if r.status != 200:
            return None
        return {f["owner"] + "/" + f["path"] for f in r.json}

    def read(self, owner, path, ids):
        """The raw bytes of the messages `ids` in owner/path, or None if the
        folder or a message cannot be read."""
        if self.way == "imap":
            name = path if owner == self.user else "Other Users/%s/%s" % (owner, path)
            try:
                typ, _ = self.imap.select('"%s"' % name, readonly=True)
            except imaplib.IMAP4.error:
                return None
            if typ != "OK":
                return None
            out = []
            for i in ids:
                typ, data = self.imap.uid("FETCH", str(i), "(BODY.PEEK[])")
                parts = [d[1] for d in data if isinstance(d, tuple)]
                if typ != "OK" or not parts:
                    return None
                out.append(parts[0])
            return out
        if self.get("/acme/api/messages?owner=%s&path=%s" % (owner, path)).status != 200:
            return None
        out = []
        for i in ids:
            r = self.get("/acme/api/messages/%d/raw" % i)
            if r.status != 200:
                return None
            out.append(r.raw)
        return out


# ---- login and the login privileges ----

@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("has", [True, False], ids=["with", "without"])
def test_login_privilege(system, way, has):
    user = subject(system, "login,archive" if has else "archive")
    assert Way(system, way, user).ok is has


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("has", [True, False], ids=["with", "without"])
def test_login_privilege_of_each_way(system, way, has):
    others = [w for w in WAYS if w != way]
    user = subject(system, "login", ",".join(([way] if has else []) + others))
    w = Way(system, way, user)
    assert w.ok is has
    if not has:
        return
    assert w.folders() is not None
    # Taken away, it ends what is under way: the next call is refused.
    system.api.call("SetUserLoginPrivileges", "instanceID=acme", "userName=" + user,
                    "loginPrivileges=" + ",".join(others))
    assert w.folders() is None


@pytest.mark.parametrize("way", WAYS)
def test_login_privilege_taken_away(system, way):
    user = subject(system, "login")
    w = Way(system, way, user)
    assert w.ok and w.folders() is not None
    system.api.call("SetUserPrivileges", "instanceID=acme", "userName=" + user, "privileges=")
    assert w.folders() is None


# ---- reading: own archive, auditor, admin, the read right ----

@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("privilege", ["auditor", "admin", None])
def test_reading_every_archive(system, way, privilege):
    user = subject(system, "login" + ("," + privilege if privilege else ""), mail=1)
    w = Way(system, way, user)
    seen = w.folders()
    assert user + "/Own" in seen  # one's own archive, always
    every = privilege is not None
    assert ({"bob/Work", "bob/Private", "alice/Inbox"} <= seen) is every
    assert ("bob/Work" in seen) is every
    work = w.read("bob", "Work", system.bob_ids["Work"])
    assert (work is not None) is every
    if every:
        assert sorted(b.replace(b"\r\n", b"\n").rstrip(b"\n") for b in work) == \
            sorted(message(i).encode().rstrip(b"\n") for i in (100, 101))


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("right", ["read", "write", None])
def test_read_right_on_a_folder(system, way, right):
    user = subject(system, "login", rights={"bob/Work": right} if right else {})
    w = Way(system, way, user)
    seen = w.folders()
    has = right == "read"
    assert ("bob/Work" in seen) is has
    assert "bob/Private" not in seen and "alice/Inbox" not in seen
    assert (w.read("bob", "Work", system.bob_ids["Work"]) is not None) is has
    # A message beside the folder stays out of reach, whatever its id.
    if way != "imap":
        r = w.get("/acme/api/messages/%d/raw" % system.bob_ids["Private"][0])
        assert r.status == 404
        hits = w.get("/acme/api/messages?limit=500").json["messages"]
        assert {m["owner"] + "/" + m["folder"] for m in hits} <= {"bob/Work"}
        assert (len(hits) == 2) is has


# ---- export ----

@pytest.mark.parametrize("way", ["web", "api"])
@pytest.mark.parametrize("privilege", ["export", "admin", None])
def test_export_privilege(system, way, privilege):
    user = subject(system, "login" + ("," + privilege if privilege else ""), mail=2)
    w = Way(system, way, user)
    ids = [m["id"] for m in w.get("/acme/api/messages?owner=%s&path=Own" % user).json["messages"]]
    assert len(ids) == 2
    has = privilege is not None
    session = w.get("/acme/api/session").json["user"]
    assert ("export" in session["effectivePrivileges"]) is has
    for fmt in ("zip", "mbox"):
        r = w.get("/acme/api/export?format=%s&ids=%s" % (fmt, ",".join(map(str, ids))))
        if has:
            assert r.status == 200, r.raw
        else:
            assert r.status == 403 and r.json["error"]["code"] == "forbidden", r.raw
    if has:
        with zipfile.ZipFile(io.BytesIO(w.get("/acme/api/export?format=zip&ids=%d" % ids[0]).raw)) as z:
            assert len(z.namelist()) == 1
    # One original is a download of what the user reads (IMAP gives the same bytes).
    assert w.get("/acme/api/messages/%d/raw" % ids[0]).status == 200


def test_session_follows_privilege_changes(system):
    """What the page is told to offer follows a change at once."""
    user = subject(system, "login")
    w = Way(system, "web", user)
    before = w.get("/acme/api/session").json["user"]
    assert before["effectivePrivileges"] == ["login"] and before["folderRights"] == {}
    system.api.call("SetUserPrivileges", "instanceID=acme", "userName=" + user, "privileges=login,export")
    system.api.call("SetUserPrivilegesOnFolder", "instanceID=acme", "userName=" + user,
                    "folder=bob/Work", "privileges=read")
    after = w.get("/acme/api/session").json["user"]
    assert after["effectivePrivileges"] == ["login", "export"]
    assert after["folderRights"] == {"bob/Work": ["read"]} and after["readsOtherArchives"] is True


# ---- archiving (Management API): the archive privilege and the write right ----

@pytest.mark.parametrize("privileges,rights,target,allowed", [
    ("login,archive", {}, "self", True),
    ("login", {}, "self", False),
    ("login,archive", {"bob/Shared": "write"}, "bob", True),
    ("login,archive", {"bob/Shared": "read"}, "bob", False),
    ("login,archive", {}, "bob", False),
    ("login", {"bob/Shared": "write"}, "bob", False),
    ("admin", {}, "bob", True),
], ids=["archive-own", "no-archive-own", "write-right", "read-right-only", "no-right",
        "write-right-without-archive", "admin"])
def test_archive_privilege_and_write_right(system, privileges, rights, target, allowed):
    user = subject(system, privileges, rights=rights)
    owner = user if target == "self" else target
    name = "w%d.mbox" % next(_serial)
    write_mbox(os.path.join(system.base, "import", name), 1, start=1000 * next(_serial))
    root = web_client(system)

    def filed():
        r = root.get("/acme/api/messages?owner=%s&path=Shared" % owner, basic=("root", PASSWORD))
        return r.json["total"] if r.status == 200 else 0
    before = filed()
    p = system.api.call_raw("ImportFiles", "instanceID=acme", "userName=" + user,
                            "path=import/" + name, "folder=Shared",
                            *(["archive=" + owner] if target != "self" else []))
    if allowed:
        assert p.returncode == 0, p.stdout + p.stderr
        assert filed() == before + 1
    else:
        lacks_archive = "archive" not in privileges.split(",")
        assert p.returncode != 0
        assert ("lacks the archive privilege" if lacks_archive else "no write right") in p.stdout + p.stderr
        assert filed() == before


# ---- Web Access offers only what the user may do (Chromium) ----

WEB_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.parametrize("has", [True, False], ids=["with", "without"])
def test_web_access_shows_export_only_with_the_privilege(system, has, tmp_path):
    if not os.path.exists(CHROMIUM) or not os.path.isdir(os.path.join(WEB_TESTS, "node_modules", "playwright-core")):
        pytest.fail("Chromium and playwright-core are needed (scripts/install-deps.sh installs them)")
    user = subject(system, "login,export" if has else "login", login_privileges="web", mail=1)
    cfg = {"chromium": CHROMIUM, "baseUrl": "https://127.0.0.1:%d" % system.ports["chttp"],
           "instance": "acme", "user": user, "password": PASSWORD,
           "readyFile": str(tmp_path / "ready"), "reloadFile": str(tmp_path / "reload")}
    with browser_running():
        node = subprocess.Popen(["node", "privileges.mjs"], cwd=WEB_TESTS, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, COFFER_WEB_TEST=json.dumps(cfg)))
        try:
            wait_for(lambda: os.path.exists(cfg["readyFile"]) or node.poll() is not None,
                     timeout=120, what="the page signed in")
            # The other way round, while the page is open: shown after a reload.
            system.api.call("SetUserPrivileges", "instanceID=acme", "userName=" + user,
                            "privileges=" + ("login" if has else "login,export"))
            open(cfg["reloadFile"], "w").close()
            out, _ = node.communicate(timeout=120)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
    result = json.loads(out.strip().splitlines()[-1])
    assert "error" not in result, result.get("error")
    assert result["before"] == [has, has] and result["after"] == [not has, not has]
