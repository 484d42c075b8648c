"""System administrators, MFA, API passwords, throttling, SMTP, audit, async work."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from daemonfix import Api, free_port, wait_for

ADMIN = "pw-single"


def totp(secret, offset=0):
    args = ["oathtool", "--totp", "-b", secret]
    if offset:
        args += ["-N", "now + %d seconds" % offset]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def test_administrators_and_passwords(single):
    api = single.api
    admins = api.call("GetSystemAdministrators")
    assert [a["userName"] for a in admins] == ["admin"] and admins[0]["mfa"] == "disabled"
    assert "password" not in json.dumps(admins).lower().replace("apipassword", "")
    p = api.call_raw("CreateSystemAdministrator", "userName=bob", "password=short")
    assert p.returncode == 1 and "8 to 1024" in p.stdout
    api.call("CreateSystemAdministrator", "userName=bob", "password=bob-secret-1", "fullName=Bob B")
    bob = Api(single, api.host, api.port, "bob-secret-1", user="bob")
    assert bob.call("Ping") == "pong"
    api.call("SetSystemAdministratorConfiguration", "userName=bob", "fullName=Robert")
    assert [a["fullName"] for a in api.call("GetSystemAdministrators") if a["userName"] == "bob"] == ["Robert"]
    api.call("SetSystemAdministratorPassword", "userName=bob", "password=bob-secret-2")
    assert bob.call_raw("Ping").returncode == 1  # old password, at once (no stale cache)
    bob.password = "bob-secret-2"
    assert bob.call("Ping") == "pong"
    api.call("DeleteSystemAdministrator", "userName=bob")
    assert bob.call_raw("Ping").returncode == 1
    p = api.call_raw("DeleteSystemAdministrator", "userName=admin")
    assert "last system administrator" in p.stdout
    # No secret lies in the database in clear.
    db = open(os.path.join(single.dir, "management-database.json")).read()
    assert "bob-secret" not in db and "pw-single" not in db


def test_failed_logins_are_throttled(single):
    api = single.api
    throttled = None
    for _ in range(10):  # three failures are free; then the waits begin
        p = api.call_raw("Ping", password="wrong-password")
        assert p.returncode == 1
        if "too many failed logins" in p.stdout:
            throttled = p.stdout
            break
    assert throttled is not None, "repeated failures are throttled"
    p = api.call_raw("Ping")  # while throttled, even the right password waits
    if "too many failed logins" in p.stdout:
        wait = int(p.stdout.split("try again in ")[1].split()[0])
        time.sleep(wait + 0.5)
    assert api.call("Ping") == "pong"


def test_mfa_enrolment_codes_and_api_password(single):
    api = single.api
    api.call("CreateSystemAdministrator", "userName=carol", "password=carol-secret")
    carol = Api(single, api.host, api.port, "carol-secret", user="carol")
    r = api.call("InitializeSystemAdministratorMFA", "userName=carol")
    secret = r["secret"]
    assert r["uri"].startswith("otpauth://totp/") and "secret=" + secret in r["uri"]
    assert r["qrCodeSvg"].startswith("<?xml") or r["qrCodeSvg"].startswith("<svg")
    assert secret not in open(os.path.join(single.dir, "management-database.json")).read()
    # Pending: the password alone still works; the first valid code activates MFA.
    assert carol.call("Ping") == "pong"
    now = totp(secret)
    assert carol.call("Ping", extra=["--totp", now]) == "pong"
    assert [a["mfa"] for a in api.call("GetSystemAdministrators") if a["userName"] == "carol"] == ["active"]
    p = carol.call_raw("Ping")
    assert p.returncode == 1 and "MFA" in p.stdout
    assert carol.call_raw("Ping", extra=["--totp", now]).returncode == 1, "a used code is refused"
    assert carol.call_raw("Ping", extra=["--totp", "000000"]).returncode == 1
    time.sleep(0.5)
    nxt = totp(secret, 30)
    assert carol.call("Ping", extra=["--totp", nxt]) == "pong"
    assert carol.call_raw("Ping", extra=["--totp", nxt]).returncode == 1
    # An API password works without a code while MFA is on.
    apipw = api.call("CreateSystemAdministratorAPIPassword", "userName=carol")["apiPassword"]
    scripted = Api(single, api.host, api.port, apipw, user="carol")
    assert scripted.call("Ping") == "pong"
    assert apipw not in open(os.path.join(single.dir, "management-database.json")).read()
    api.call("DeactivateSystemAdministratorMFA", "userName=carol")
    assert carol.call("Ping") == "pong"


class Blackhole:
    """A TCP server that accepts and never says a word (a stuck SMTP server)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return


def test_smtp_settings_and_test_mail(single, tmp_path):
    api = single.api
    pytest.importorskip("aiosmtpd", reason="python3-aiosmtpd (Debian) is the SMTP test peer")
    maildir = str(tmp_path / "maildir")
    port = free_port()
    server = subprocess.Popen([sys.executable if os.path.exists("/usr/bin/python3") is False else "/usr/bin/python3",
                               "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % port,
                               "-c", "aiosmtpd.handlers.Mailbox", maildir])
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, what="aiosmtpd")
        p = api.call_raw("TestSystemSmtpConfiguration", "to=ops@example.test")
        assert p.returncode == 1 and "no SMTP settings" in p.stdout
        r = api.call("SetSystemSmtpConfiguration", "host=127.0.0.1", "port=%d" % port, "security=none",
                     "fromAddress=coffer@example.test", "userName=relay", "password=smtp-secret-9")
        assert r["passwordSet"] is True and "password" not in r
        assert "smtp-secret-9" not in open(os.path.join(single.dir, "management-database.json")).read()
        assert api.call("GetSystemSmtpConfiguration")["host"] == "127.0.0.1"
        # aiosmtpd offers no AUTH here: set the settings again without a user.
        api.call("SetSystemSmtpConfiguration", "host=127.0.0.1", "port=%d" % port, "security=none",
                 "fromAddress=coffer@example.test", "userName=", "password=")
        assert api.call("TestSystemSmtpConfiguration", "to=ops@example.test")["sentTo"] == "ops@example.test"
        mails = [os.path.join(maildir, "new", f) for f in os.listdir(os.path.join(maildir, "new"))]
        assert len(mails) == 1
        text = open(mails[0], errors="replace").read()
        assert "Subject: Coffer test message" in text and "ops@example.test" in text
        p = api.call_raw("SetSystemSmtpConfiguration", "host=127.0.0.1", "security=carrier-pigeon",
                         "fromAddress=x@example.test")
        assert p.returncode == 1 and "carrier-pigeon" in p.stdout
    finally:
        server.terminate()
        server.wait()


def test_long_work_reports_status_and_can_be_cancelled(single):
    """A test mail to a server that never answers takes longer than an API
    client should wait: the call answers with a token; get-status long-polls
    it; cancel-async ends it."""
    api = single.api
    hole = Blackhole()
    api.call("SetSystemSmtpConfiguration", "host=127.0.0.1", "port=%d" % hole.port, "security=none",
             "fromAddress=coffer@example.test")
    t0 = time.time()
    p = api.call_raw("TestSystemSmtpConfiguration", "to=ops@example.test", extra=["--no-wait"])
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running" and env["token"], env
    assert time.time() - t0 < 15
    import base64, http.client, ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def post(path, body):
        c = http.client.HTTPSConnection("127.0.0.1", single.ports["mhttp"], context=ctx, timeout=60)
        c.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(b"admin:" + ADMIN.encode()).decode()})
        r = c.getresponse()
        return r.status, json.loads(r.read())

    t1 = time.time()
    st, status = post("/api/get-status", "token=%s&lastKnownStatusVersion=%d&millisecondsTimeout=1500"
                      % (env["token"], env["statusVersion"]))
    assert st == 200 and status["statusCode"] == "running" and time.time() - t1 >= 1.2
    st, cancelled = post("/api/cancel-async", "token=" + env["token"])
    assert cancelled["statusCode"] == "cancelled"
    st, after = post("/api/get-status", "token=" + env["token"])
    assert after["statusCode"] == "cancelled"
    st, unknown = post("/api/get-status", "token=feedface")
    assert st == 404


def test_audit_log_records_changes_and_detects_tampering(single):
    api = single.api
    api.call("CreateSystemAdministrator", "userName=dave", "password=dave-secret")
    api.call("SetSystemAdministratorPassword", "userName=dave", "password=dave-secret-2")
    r = api.call("VerifyAuditLog")
    assert r["intact"] and r["entries"] >= 2
    path = os.path.join(single.dir, "management-audit.log")
    lines = open(path).read().splitlines()
    entries = [json.loads(l) for l in lines]
    create = [e for e in entries if e["action"] == "CreateSystemAdministrator"][0]
    assert create["user"] == "admin" and create["address"].startswith("127.0.0.1")
    assert create["details"] == {"userName": "dave"}
    assert "dave-secret" not in open(path).read()
    entries[0]["user"] = "mallory"
    lines[0] = json.dumps(entries[0], separators=(",", ":"))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    p = api.call_raw("VerifyAuditLog")
    assert p.returncode == 1 and "line 1" in p.stdout
