"""The HTTP client API of the Client Access Server (docs/client-api.md) and
the Web Access pages, against real daemons: logins and sessions, folders,
listing and search, message views, downloads, exports, password and MFA
changes, and isolation between users and instances."""
import io
import re
import mailbox
import subprocess
import tempfile
import time
import zipfile

import pytest

import os

from mailgen import message as mailgen_message, write_mbox
from daemonfix import ROOT
from webfix import Web, setup_web


@pytest.fixture(scope="module")
def web_system(module_single):
    """One system for the module: its tests use users, sources and state of
    their own (throttling is per address, the password change its own user)."""
    env = setup_web(module_single)
    env["single"] = module_single
    return env


@pytest.fixture
def web(web_system):
    # a client of its own for every test (cookies, CSRF token)
    return dict(web_system, web=Web("127.0.0.1", web_system["port"]))


def ids_of(r):
    return [m["id"] for m in r.json["messages"]]


def test_pages_and_headers(web):
    w = web["web"]
    for path in ("/", "/acme/", "/no-such-instance/"):
        r = w.get(path)
        assert r.status == 200 and b"<script type=\"module\" src=\"/_static/wa-main.js\"" in r.raw, path
        csp = r.getheader("Content-Security-Policy")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert r.getheader("X-Content-Type-Options") == "nosniff"
        assert r.getheader("Referrer-Policy") == "no-referrer"
    # The page is the same for every name: it tells nobody which instances exist.
    assert w.get("/acme/").raw == w.get("/no-such-instance/").raw
    r = w.get("/acme")
    assert r.status == 301 and r.getheader("Location") == "/acme/"
    for name in ("style.css", "logo.svg"):
        assert w.get("/_static/" + name).status == 200
    # Every ES module of web/ is served as JavaScript (a module with another
    # type is refused by the browser), and every module it imports is a
    # plain name of web/ itself (the server serves no subdirectories).
    web_dir = os.path.join(ROOT, "web")
    modules = sorted(n for n in os.listdir(web_dir) if n.endswith(".js"))
    assert "wa-main.js" in modules and "api.js" in modules
    for name in modules:
        r = w.get("/_static/" + name)
        assert r.status == 200 and r.getheader("Content-Type").startswith("text/javascript"), name
        for imported in re.findall(r"^import .* from '([^']+)';$", r.raw.decode(), re.M):
            assert re.fullmatch(r"\./[a-z0-9-]+\.js", imported) and imported[2:] in modules, (name, imported)
    for bad in ("/_static/../meson.build", "/_static/.hidden", "/_static/nope.js", "/_static/a/b.js"):
        assert w.get(bad).status == 404, bad
    # No inline script or style anywhere in the page (the CSP would block it).
    page = w.get("/acme/").raw.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page) and not re.search(r"<style|\sstyle=", page)
    assert not re.search(r"\son[a-z]+=", page)


def test_login_session_logout(web):
    w = Web("127.0.0.1", web["port"], source="127.0.0.11")
    r = w.login("acme", "alice", "alice-pass-1")
    assert r.status == 200, r.raw
    assert r.json["user"]["userName"] == "alice" and r.json["user"]["fullName"] == "Alice Archer"
    cookie = r.getheader("Set-Cookie")
    for attr in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/acme/"):
        assert attr in cookie
    s = w.get("/acme/api/session")
    assert s.status == 200 and s.json["user"]["userName"] == "alice" and s.json["csrfToken"] == w.csrf
    # The alias works too, with a session of its own cookie path.
    a = Web("127.0.0.1", web["port"], source="127.0.0.11")
    assert a.login("acme-corp", "alice", "alice-pass-1").status == 200
    assert a.get("/acme-corp/api/folders").status == 200
    # A POST without the CSRF token is refused; with it, it works.
    r = w.request("POST", "/acme/api/logout", headers={"X-CSRF-Token": "wrong"})
    assert r.status == 403 and r.json["error"]["code"] == "csrf"
    assert w.request("POST", "/acme/api/logout").status == 200
    assert w.get("/acme/api/session").status == 401
    # A session of one instance is worth nothing in another.
    b = Web("127.0.0.1", web["port"], source="127.0.0.11")
    assert b.login("acme", "alice", "alice-pass-1").status == 200
    token = b.cookies["coffer_session"]
    c = Web("127.0.0.1", web["port"], source="127.0.0.11")
    c.cookies["coffer_session"] = token
    r = c.get("/globex/api/folders")
    assert r.status == 401 and r.json["error"]["code"] == "auth-failed"


def test_failed_logins_look_alike_and_are_throttled(web):
    w = Web("127.0.0.1", web["port"], source="127.0.0.12")
    answers = []
    for inst, user, pw in (("acme", "alice", "wrong-password"), ("acme", "nobody", "alice-pass-1"),
                           ("no-such-instance", "alice", "alice-pass-1")):
        t = time.time()
        r = w.login(inst, user, pw)
        answers.append((r.status, r.raw))
        assert time.time() - t >= 0.35  # every failure waits the same
        assert "Set-Cookie" not in dict(r.getheaders())
    assert len(set(answers)) == 1 and answers[0][0] == 401, answers
    # Not as alice from this address for a while (after the fourth failure
    # of the pair: 1 s, then 2 s, ... counted in whole seconds).
    # Tries made within a block are refused unchecked and do not lengthen
    # it; a failure after it has run out doubles it. So wait each block out
    # (a count of tries raced the clock on a loaded machine).
    deadline = time.time() + 60
    while True:
        r = w.login("acme", "alice", "wrong-again")
        if r.status == 429 and int(r.getheader("Retry-After")) >= 2:
            break
        assert time.time() < deadline, "no block of 2 s or more within 60 s"
        if r.status == 429:
            time.sleep(int(r.getheader("Retry-After")))
    assert r.status == 429
    r = w.login("acme", "alice", "alice-pass-1")
    assert r.status == 429 and int(r.getheader("Retry-After")) >= 1
    # Another address is not affected, nor is the user there.
    other = Web("127.0.0.1", web["port"], source="127.0.0.13")
    assert other.login("acme", "bob", "bob-pass-22").status == 200


def test_folders_messages_search(web):
    w = web["web"]
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    folders = w.get("/acme/api/folders").json
    assert {(f["owner"], f["path"], f["messages"]) for f in folders} == \
        {("alice", "Inbox", 120), ("alice", "Inbox/Newsletters", 2)}
    r = w.get("/acme/api/messages?owner=alice&path=Inbox&limit=10&offset=5")
    assert r.status == 200 and r.json["total"] == 120 and len(r.json["messages"]) == 10
    dates = [m["date"] for m in r.json["messages"]]
    assert dates == sorted(dates, reverse=True)
    r = w.get("/acme/api/messages?query=subject:invoice")
    assert r.json["total"] == 24 and all("invoice" in m["subject"] for m in r.json["messages"])
    everything = w.get("/acme/api/messages?limit=500").json
    assert everything["total"] == 122  # bob's mail is not alice's
    assert w.get("/acme/api/messages?query=has:attachment").json["total"] >= 1
    # Lists say which messages have attachments (the catalog's flag from ingest).
    assert all(m["internalDate"] > 0 for m in everything["messages"])
    flags = {m["subject"]: m["hasAttachment"] for m in everything["messages"]}
    assert flags["Contract with attachment"] is True
    assert [s for s, f in flags.items() if f] == ["Contract with attachment"]
    # A query that does not parse: the user is told what and where, not "failed".
    r = w.get("/acme/api/messages?query=%28broken")
    assert r.status == 400 and r.json["error"]["code"] == "bad-request"
    assert r.json["error"]["message"] == "query: ')' expected at position 8", r.json
    r = w.get("/acme/api/messages?query=date:yesterday")
    assert r.status == 400 and r.json["error"]["message"].startswith("query: date: expects"), r.json
    assert w.get("/acme/api/messages?limit=5000").status == 400
    # Bob's folder through alice's session: the same as no such folder.
    r = w.get("/acme/api/messages?owner=bob&path=Inbox")
    assert r.status == 404 and r.json["error"]["code"] == "not-found"
    nope = w.get("/acme/api/messages?owner=alice&path=Nope")
    assert nope.status == 404 and nope.raw == r.raw
    # An auditor reads every archive of the instance.
    aud = Web("127.0.0.1", web["port"])
    assert aud.login("acme", "audrey", "audrey-pass-3").status == 200
    owners = {f["owner"] for f in aud.get("/acme/api/folders").json}
    assert owners == {"alice", "bob"}
    assert aud.get("/acme/api/messages?owner=bob&path=Inbox").json["total"] == 7
    # ... and searches all of them (no folder list: every folder is in scope).
    assert aud.get("/acme/api/messages?limit=1").json["total"] == 129
    assert aud.get("/acme/api/messages?query=subject:contract").json["total"] == 1


def test_view_html_parts_and_raw(web):
    w = web["web"]
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    hits = w.get("/acme/api/messages?query=subject:newsletter").json["messages"]
    assert len(hits) == 1
    mid = hits[0]["id"]
    v = w.get("/acme/api/messages/%d" % mid)
    assert v.status == 200 and v.json["subject"] == "HTML newsletter"
    assert "Spring offers" in v.json["html"] and "Spring offers" in v.json["text"]
    # The HTML frame: its own policy, a sandbox, no scripts, no remote images.
    h = w.get("/acme/api/messages/%d/html" % mid)
    csp = h.getheader("Content-Security-Policy")
    assert h.status == 200 and "default-src 'none'" in csp and "sandbox" in csp
    assert "script-src" not in csp and "img-src data:" in csp
    assert b"data:image/png;base64," in h.raw  # the inline logo, not cid:
    # Download the original: the same bytes as imported.
    raw = w.get("/acme/api/messages/%d/raw" % mid)
    assert raw.status == 200 and raw.getheader("Content-Type") == "message/rfc822"
    assert "attachment" in raw.getheader("Content-Disposition")
    assert raw.raw == web["rich"]["HTML newsletter"]
    # An attachment.
    hit = w.get("/acme/api/messages?query=subject:contract").json["messages"][0]
    v = w.get("/acme/api/messages/%d" % hit["id"]).json
    assert v["attachments"] == [{"part": "2", "filename": "contract.pdf",
                                 "contentType": "application/pdf", "size": 24}]
    p = w.get("/acme/api/messages/%d/parts/2" % hit["id"])
    assert p.status == 200 and p.raw == b"%PDF-1.4\n% the contract\n"
    assert p.getheader("Content-Type") == "application/pdf"
    assert "filename=\"contract.pdf\"" in p.getheader("Content-Disposition")
    assert w.get("/acme/api/messages/%d/parts/9" % hit["id"]).status == 404
    assert w.get("/acme/api/messages/%d/raw" % hit["id"]).raw == web["rich"]["Contract with attachment"]


def test_other_users_and_instances_messages_are_not_found(web):
    w = web["web"]
    bob = Web("127.0.0.1", web["port"])
    assert bob.login("acme", "bob", "bob-pass-22").status == 200
    bob_ids = ids_of(bob.get("/acme/api/messages"))
    assert len(bob_ids) == 7
    g = Web("127.0.0.1", web["port"])
    assert g.login("globex", "alice", "globex-pass-4").status == 200
    globex_ids = ids_of(g.get("/globex/api/messages"))
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    missing = w.get("/acme/api/messages/999999")
    assert missing.status == 404
    for mid in bob_ids[:2] + [i for i in globex_ids if i not in ids_of(w.get("/acme/api/messages?limit=500"))][:2]:
        for suffix in ("", "/html", "/raw", "/parts/1"):
            r = w.get("/acme/api/messages/%d%s" % (mid, suffix))
            assert r.status == 404 and r.raw == missing.raw, (mid, suffix, r.raw)
        r = w.get("/acme/api/export?format=zip&ids=%d" % mid)
        assert r.status == 404 and r.raw == missing.raw
    # globex's alice sees only globex mail, whatever ids she names.
    for mid in ids_of(w.get("/acme/api/messages?limit=3")):
        r = g.get("/globex/api/messages/%d/raw" % mid)
        if r.status == 200:  # the same id exists in globex: then it is globex's own message
            assert b"coffer.test" in r.raw and b"gen-9" in r.raw
        else:
            assert r.status == 404


def test_export_zip_and_mbox(web):
    w = web["web"]
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    msgs = w.get("/acme/api/messages?owner=alice&path=Inbox&limit=30").json["messages"]
    ids = [m["id"] for m in msgs]
    z = w.get("/acme/api/export?format=zip&ids=" + ",".join(map(str, ids)))
    assert z.status == 200 and z.getheader("Content-Type") == "application/zip"
    with zipfile.ZipFile(io.BytesIO(z.raw)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert len(names) == 30 and all(n.startswith("Inbox/") and n.endswith(".eml") for n in names)
        first = zf.read("Inbox/%d.eml" % ids[0])
    assert first == w.get("/acme/api/messages/%d/raw" % ids[0]).raw
    m = w.get("/acme/api/export?format=mbox&ids=" + ",".join(map(str, ids)))
    assert m.status == 200
    with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
        f.write(m.raw)
        f.flush()
        box = mailbox.mbox(f.name)
        subjects = sorted(msg["Subject"] for msg in box)
    assert subjects == sorted(x["subject"] for x in msgs)
    assert w.get("/acme/api/export?format=tar&ids=1").status == 400
    assert w.get("/acme/api/export?format=zip&ids=").status == 400
    assert w.get("/acme/api/export?format=zip&ids=" + ",".join(["1"] * 1001)).status == 400


def totp_at(secret, step):
    """oathtool's code for the 30-second TOTP step `step`."""
    return subprocess.run(["oathtool", "--totp", "-b", secret, "-N", "@%d" % (step * 30)],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_basic_auth_app_password_and_mfa(web):
    w = web["web"]
    # Scripts: HTTP Basic with the account password while MFA is off.
    r = w.get("/acme/api/folders", basic=("alice", "alice-pass-1"))
    assert r.status == 200
    # Turn MFA on through the API (as the page does).
    s = Web("127.0.0.1", web["port"], source="127.0.0.14")
    assert s.login("acme", "alice", "alice-pass-1").status == 200
    r = s.request("POST", "/acme/api/mfa/begin", {"password": "wrong-one"})
    assert r.status == 403
    r = s.request("POST", "/acme/api/mfa/begin", {"password": "alice-pass-1"})
    assert r.status == 200 and r.json["uri"].startswith("otpauth://") and "<svg" in r.json["qrCodeSvg"]
    secret = r.json["secret"]
    # A code is accepted once, and one step (30 s) either side of the
    # server's clock: the three codes below are those of the steps before,
    # at and after this one, so nothing waits for the next step. Only the
    # first must reach the server within this step: not in its last 10 s.
    if 30 - time.time() % 30 < 10:
        time.sleep(30.5 - time.time() % 30)
    step = int(time.time()) // 30
    code = totp_at(secret, step - 1)
    assert s.request("POST", "/acme/api/mfa/activate", {"code": "000000" if code != "000000" else "111111"}).status == 403
    assert s.request("POST", "/acme/api/mfa/activate", {"code": code}).status == 200
    assert s.get("/acme/api/session").json["user"]["mfaEnabled"] is True
    # Now the web login needs a code, and scripts need an app password.
    n = Web("127.0.0.1", web["port"], source="127.0.0.15")
    r = n.login("acme", "alice", "alice-pass-1")
    assert r.status == 401 and r.json["error"]["code"] == "mfa-required"
    code = totp_at(secret, step)
    assert n.login("acme", "alice", "alice-pass-1", totp=code).status == 200
    a = Web("127.0.0.1", web["port"], source="127.0.0.16")
    assert a.get("/acme/api/folders", basic=("alice", "alice-pass-1")).status == 401
    r = n.request("POST", "/acme/api/app-passwords", {"name": "script", "password": "alice-pass-1"})
    assert r.status == 200
    app = r.json["password"]
    assert [p["name"] for p in n.get("/acme/api/app-passwords").json] == ["script"]
    r = a.get("/acme/api/messages?query=subject:invoice&limit=3", basic=("alice", app))
    assert r.status == 200 and r.json["total"] == 24
    assert n.request("DELETE", "/acme/api/app-passwords/script").status == 200
    b = Web("127.0.0.1", web["port"], source="127.0.0.17")
    assert b.get("/acme/api/folders", basic=("alice", app)).status == 401
    # Turning it off needs the password and a fresh code.
    code = totp_at(secret, step + 1)
    assert n.request("POST", "/acme/api/mfa/disable", {"password": "alice-pass-1", "code": code}).status == 200
    assert Web("127.0.0.1", web["port"], source="127.0.0.18").login("acme", "alice", "alice-pass-1").status == 200


def test_change_password(web):
    # a user of its own: the module's other tests log in as bob
    web["single"].api.call("CreateUser", "instanceID=acme", "userName=bert", "password=bert-pass-22",
                           "privileges=login,archive", "loginPrivileges=web,api")
    s = Web("127.0.0.1", web["port"], source="127.0.0.19")
    other = Web("127.0.0.1", web["port"], source="127.0.0.19")
    assert s.login("acme", "bert", "bert-pass-22").status == 200
    assert other.login("acme", "bert", "bert-pass-22").status == 200
    r = s.request("POST", "/acme/api/password", {"oldPassword": "wrong-pass", "newPassword": "bert-new-pass"})
    assert r.status == 403
    r = s.request("POST", "/acme/api/password", {"oldPassword": "bert-pass-22", "newPassword": "short"})
    assert r.status == 400
    r = s.request("POST", "/acme/api/password", {"oldPassword": "bert-pass-22", "newPassword": "bert-new-pass"})
    assert r.status == 200
    # This session goes on, the other one ended; the new password works.
    assert s.get("/acme/api/folders").status == 200
    assert other.get("/acme/api/folders").status == 401
    n = Web("127.0.0.1", web["port"], source="127.0.0.20")
    assert n.login("acme", "bert", "bert-new-pass").status == 200
    assert n.get("/acme/api/folders", basic=("bert", "bert-pass-22")).status == 401


def test_bad_requests(web):
    w = web["web"]
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    r = w.request("POST", "/acme/api/login", b"userName=alice&password=x", json_body=False,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 415
    r = w.request("POST", "/acme/api/password", b"{not json", json_body=False)
    assert r.status == 400
    for path in ("/acme/api/nope", "/acme/api/messages/abc", "/acme/api/messages/1/nope",
                 "/acme/api/messages/-1", "/acme/api/messages/99999999999999999999"):
        assert w.get(path).status == 404, path
    assert w.request("GET", "/acme/api/login").status == 405
    r = w.request("DELETE", "/acme/api/login")
    assert r.status == 405 and r.json["error"]["message"] == "login takes POST", r.raw
    assert w.get("/acme/api/messages?query=%ZZ").status == 400
    # the route table (api_routes[]): a route answers its own method only (GET
    # also HEAD), "*" is one non-empty path segment
    r = w.request("POST", "/acme/api/folders", {})
    assert r.status == 404 and r.json["error"]["message"] == "no endpoint POST folders", r.raw
    assert w.request("HEAD", "/acme/api/folders").status == 200
    assert w.request("DELETE", "/acme/api/folders").status == 404
    for path in ("/acme/api/app-passwords/", "/acme/api/app-passwords/a/b"):
        assert w.request("DELETE", path).status == 404, path
    hit = w.get("/acme/api/messages?limit=1").json["messages"][0]
    for suffix in ("/", "/parts/", "/parts/" + "1" * 121, "/html/x", "/raw/x"):
        r = w.get("/acme/api/messages/%d%s" % (hit["id"], suffix))
        assert r.status == 404, suffix
    # Not logged in: every endpoint answers the same.
    anon = Web("127.0.0.1", web["port"])
    a = anon.get("/acme/api/folders")
    b = anon.get("/nonexistent/api/folders")
    assert a.status == b.status == 401 and a.raw == b.raw


def test_large_message_download_in_pieces(web):
    # Larger than one answer from the instance (12 MiB): fetched in pieces.
    api = web["single"].api
    from test_instances import data_dir
    base = data_dir(web["single"], "acme")
    write_mbox(os.path.join(base, "import", "big.mbox"), 1, size_pad=1100000, start=7000)
    api.call("ImportFiles", "instanceID=acme", "userName=bob", "path=import/big.mbox", "folder=Big")
    w = Web("127.0.0.1", web["port"])
    assert w.login("acme", "bob", "bob-pass-22").status == 200
    mid = w.get("/acme/api/messages?owner=bob&path=Big").json["messages"][0]["id"]
    raw = w.get("/acme/api/messages/%d/raw" % mid)
    assert raw.status == 200 and len(raw.raw) > 13 * 1024 * 1024
    expected = mailgen_message(7000, size_pad=1100000).encode() + b"\n"  # as the mbox held it
    assert raw.raw == expected
    z = w.get("/acme/api/export?format=zip&ids=%d" % mid)
    with zipfile.ZipFile(io.BytesIO(z.raw)) as zf:
        assert zf.read("Big/%d.eml" % mid) == expected


def test_restore_to_mailbox(web, tmp_path):
    pytest.importorskip("aiosmtpd", reason="python3-aiosmtpd (Debian) is the SMTP test peer")
    import socket
    from daemonfix import free_port, wait_for
    single = web["single"]
    w = Web("127.0.0.1", web["port"], source="127.0.0.14")
    assert w.login("acme", "alice", "alice-pass-1").status == 200
    hit = w.get("/acme/api/messages?query=subject:contract").json["messages"][0]
    # Without the system's SMTP settings: a clear answer, nothing sent.
    r = w.request("POST", "/acme/api/restore", {"id": hit["id"]})
    assert r.status == 503 and "SMTP" in r.json["error"]["message"], r.raw
    maildir = str(tmp_path / "maildir")
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % port,
                               "-c", "aiosmtpd.handlers.Mailbox", maildir])
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, what="aiosmtpd")
        single.api.call("SetSystemSmtpConfiguration", "host=127.0.0.1", "port=%d" % port,
                        "security=none", "fromAddress=archive@acme.test", "userName=", "password=")
        r = w.request("POST", "/acme/api/restore", {"id": hit["id"]})
        assert r.status == 200 and r.json["sentTo"] == "alice@acme.test", r.raw
        mails = [os.path.join(maildir, "new", f) for f in os.listdir(os.path.join(maildir, "new"))]
        assert len(mails) == 1
        stored = open(mails[0], "rb").read().replace(b"\r\n", b"\n")
        original = web["rich"]["Contract with attachment"].replace(b"\r\n", b"\n")
        # the archived bytes went out unchanged (aiosmtpd adds its X- headers)
        added = (b"X-Peer: ", b"X-MailFrom: ", b"X-RcptTo: ")
        assert b"X-RcptTo: alice@acme.test\n" in stored and b"X-MailFrom: archive@acme.test\n" in stored
        kept = b"".join(l for l in stored.splitlines(True) if not l.startswith(added))
        assert kept.rstrip(b"\n") == original.rstrip(b"\n")
        # Another user's message: the same answer as one that does not exist.
        b = Web("127.0.0.1", web["port"], source="127.0.0.14")
        assert b.login("acme", "bob", "bob-pass-22").status == 200
        r = b.request("POST", "/acme/api/restore", {"id": hit["id"]})
        r2 = b.request("POST", "/acme/api/restore", {"id": 99999999})
        assert r.status == r2.status == 404 and r.json == r2.json, (r.raw, r2.raw)
        assert len(os.listdir(os.path.join(maildir, "new"))) == 1
        # Every restore is in the audit log.
        log = open(os.path.join(single.dir, "management-audit.log")).read()
        assert log.count('"RestoreMessage"') == 3 and "alice@acme.test" in log
        r = single.api.call("VerifyAuditLog")
        assert r["intact"] and r["entries"] >= 3
    finally:
        server.terminate()
        server.wait()
