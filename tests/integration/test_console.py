"""The Management Console: its page and login sessions on the Management
Server's HTTPS listener (through the Management API, as `coffer api` sees
it), and in Chromium (playwright-core, tests/web/console.mjs; desktop and
phone sizes): login with and without MFA, a wrong password, CSRF refused,
the dashboard following a stopped role and a refused fingerprint without a
reload, manual pairing on
the Infrastructure page, administrators, an instance's life cycle, SMTP
settings with a test mail to a real SMTP server (aiosmtpd), creating an
instance with the directory picker and its own pages (users, import,
search, audit log), axe-core on every page, and the idle timeout. The
system is set up once for the module; each browser scenario is one test
here. Screenshots are kept in tests/web/artifacts/console-*.png."""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import base64

import pytest

from daemonfix import COFFER, ROOT, Api, Server, all_connected, free_port, wait_for
from netnsfix import run_browser
from test_instances import data_dir, state

WEB_TESTS = os.path.join(ROOT, "tests", "web")
ARTIFACTS = os.environ.get("COFFER_WEB_ARTIFACTS", os.path.join(WEB_TESTS, "artifacts"))
CHROMIUM = "/usr/bin/chromium"
SCENARIOS = ["login_without_mfa", "wrong_password_refused", "login_with_mfa", "csrf_refused",
             "dashboard_live", "dashboard_hidden_backoff", "dashboard_fingerprint_refused", "infrastructure_manual_pairing",
             "administrators", "instance_lifecycle", "instance_create_and_pages", "instance_pages_phone",
             "smtp_settings_and_test_mail", "accessibility", "idle_timeout"]
SHORT_IDLE = 4  # seconds, for the idle-timeout scenario (it restarts the Management Server)


def _missing():
    if not os.path.exists(CHROMIUM):
        return "Chromium is not installed (scripts/install-deps.sh installs it)"
    for pkg in ("playwright-core", "axe-core"):
        if not os.path.isdir(os.path.join(WEB_TESTS, "node_modules", pkg)):
            return "%s is not installed (npm ci in tests/web; scripts/install-deps.sh does it)" % pkg
    return None


class Https:
    """Requests to the Management Server as a browser would make them."""

    def __init__(self, port):
        self.port = port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def request(self, method, path, headers=None, body=None, basic=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        h = dict(headers or {})
        if basic:
            h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % basic).encode()).decode()
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        r.data = data
        try:
            r.json = json.loads(data)
        except ValueError:
            r.json = None
        return r

    def login(self, user, password, totp=None):
        h = {"X-Coffer-Console": "1"}
        if totp:
            h["X-Coffer-TOTP"] = totp
        r = self.request("POST", "/api/invoke/CreateConsoleSession", h, basic=(user, password))
        cookie = None
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("coffer_console="):
                cookie = v
        return r, cookie


@pytest.fixture(scope="module")
def system():
    base = tempfile.mkdtemp(prefix="coffer-console-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    try:
        s.config("init", "--mode", "single", "--server-name", "single.test", "--admin-password", "pw-single")
        s.ports = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps", "spare")}
        p = s.ports
        s.config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % p["mtcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["mhttp"])
        s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % p["itcp"])
        s.config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % p["ctcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["chttp"], "--imap-listeners",
                 "127.0.0.1:%d" % p["cimap"], "--imaps-listeners", "127.0.0.1:%d" % p["cimaps"])
        s.config("start")
        s.api = Api(s, "127.0.0.1", p["mhttp"], "pw-single")
        wait_for(all_connected(s.api), timeout=60, what="every role connected")
        s.https = Https(p["mhttp"])
        yield s
    finally:
        s.stop_all()
        time.sleep(0.3)
        problems = []
        for path in __import__("glob").glob(os.path.join(s.dir, "log", "*.stderr")):
            text = open(path, errors="replace").read()
            if "AddressSanitizer" in text or "runtime error:" in text:
                problems.append("%s:\n%s" % (path, text[-4000:]))
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "sanitizer reports:\n" + "\n".join(problems)


# ---- the page and the session functions, without a browser ----

def test_console_page_is_served_with_a_strict_csp(system):
    r = system.https.request("GET", "/")
    assert r.status == 200 and r.getheader("Content-Type").startswith("text/html")
    csp = r.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "unsafe" not in csp and "frame-ancestors 'none'" in csp
    assert b"<script type=\"module\" src=\"/_static/console-main.js\">" in r.data
    assert b"<script>" not in r.data and b"onclick" not in r.data  # no inline code
    js = system.https.request("GET", "/_static/console-main.js")
    assert js.status == 200 and js.getheader("Content-Type").startswith("text/javascript")
    for bad in ("/_static/../meson.build", "/_static/.hidden", "/_static/nope.js", "/other"):
        assert system.https.request("GET", bad).status == 404, bad
    assert system.https.request("POST", "/").status == 405


def test_session_login_csrf_and_logout(system):
    https = system.https
    r, cookie = https.login("admin", "pw-single")
    assert r.status == 200, r.data
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    token = cookie.split(";")[0]
    csrf = r.json["result"]["csrfToken"]
    assert r.json["result"]["userName"] == "admin"
    # every POST of the session needs the token
    ok = https.request("POST", "/api/invoke/GetConsoleSession", {"Cookie": token, "X-CSRF-Token": csrf})
    assert ok.status == 200 and ok.json["result"]["userName"] == "admin"
    bad = https.request("POST", "/api/invoke/CreateSystemAdministrator", {"Cookie": token},
                        body={"userName": "no-csrf", "password": "no-csrf-pass"})
    assert bad.status == 403
    names = [a["userName"] for a in system.api.call("GetSystemAdministrators")]
    assert "no-csrf" not in names
    # GET of the metadata reads only: no token needed; anything else needs it
    assert https.request("GET", "/api/get-metadata", {"Cookie": token}).status == 200
    assert https.request("GET", "/api/cancel-async", {"Cookie": token}).status == 403
    assert https.request("POST", "/api/get-status", {"Cookie": token}, body={"token": "x"}).status == 403
    # logout ends the session on the server
    out = https.request("POST", "/api/invoke/DeleteConsoleSession", {"Cookie": token, "X-CSRF-Token": csrf})
    assert out.status == 200 and "Max-Age=0" in out.getheader("Set-Cookie")
    gone = https.request("POST", "/api/invoke/GetConsoleSession", {"Cookie": token, "X-CSRF-Token": csrf})
    assert gone.status == 401
    # an invented session is no session
    fake = https.request("POST", "/api/invoke/GetConsoleSession",
                         {"Cookie": "coffer_console=" + "0" * 64, "X-CSRF-Token": csrf})
    assert fake.status == 401


def test_session_needs_the_password_not_an_api_password(system):
    system.api.call("CreateSystemAdministrator", "userName=scripter", "password=scripter-pass-1")
    api_pw = system.api.call("CreateSystemAdministratorAPIPassword", "userName=scripter")["apiPassword"]
    r, cookie = system.https.login("scripter", api_pw)
    assert cookie is None and "API password" in r.json["error"]["message"]
    # a wrong password: 401, and no Basic dialog for the Console's own login
    r, cookie = system.https.login("scripter", "wrong-password")
    assert r.status == 401 and cookie is None and r.getheader("WWW-Authenticate") is None
    # a password change ends the administrator's sessions
    r, cookie = system.https.login("scripter", "scripter-pass-1")
    token, csrf = cookie.split(";")[0], r.json["result"]["csrfToken"]
    system.api.call("SetSystemAdministratorPassword", "userName=scripter", "password=scripter-pass-2")
    assert system.https.request("POST", "/api/invoke/GetConsoleSession",
                                {"Cookie": token, "X-CSRF-Token": csrf}).status == 401


def test_mfa_code_is_asked_for_without_counting_a_failure(system):
    system.api.call("CreateSystemAdministrator", "userName=mfa-probe", "password=mfa-probe-pass")
    secret = system.api.call("InitializeSystemAdministratorMFA", "userName=mfa-probe")["secret"]
    # this step's code, then the next step's: both stay valid for at least
    # 30 s (one step either side), however slow the sanitized CLI starts
    step = int(time.time()) // 30
    p = system.api.call_raw("Ping", user="mfa-probe", password="mfa-probe-pass",
                            extra=("--totp", _totp(secret, step)))
    assert p.returncode == 0, p.stdout + p.stderr
    # more than the three free failures: the right password without a code
    # is answered "code required" every time, never throttled
    for _ in range(5):
        r, cookie = system.https.login("mfa-probe", "mfa-probe-pass")
        assert r.status == 401 and r.getheader("X-Coffer-MFA") == "required" and cookie is None
    r, cookie = system.https.login("mfa-probe", "mfa-probe-pass", _totp(secret, step + 1))
    assert r.status == 200 and cookie, r.data


def test_a_web_access_session_is_no_console_session(system):
    """The two web apps' sessions do not open each other: a Web Access
    session (its cookie and CSRF token) is refused by the Management
    Server, and a Console session by the Client Access Server, even for a
    user and an administrator of the same name and password."""
    from webfix import Web
    s = system
    s.api.call("CreateInstance", "instanceID=walk", "instanceHost=127.0.0.1",
               "baseDirectory=" + data_dir(s, "walk"))
    try:
        wait_for(lambda: state(s, "walk") == "running", what="walk running")
        s.api.call("CreateUser", "instanceID=walk", "userName=admin", "password=pw-single")
        web = Web("127.0.0.1", s.ports["chttp"])
        assert web.login("walk", "admin", "pw-single").status == 200
        assert web.get("/walk/api/session").status == 200
        wa_cookie = "; ".join("%s=%s" % kv for kv in web.cookies.items())
        for fn in ("GetConsoleSession", "GetInstances"):
            r = s.https.request("POST", "/api/invoke/" + fn,
                                {"Cookie": wa_cookie, "X-CSRF-Token": web.csrf})
            assert r.status == 401, (fn, r.status, r.data)
        r, cookie = s.https.login("admin", "pw-single")
        assert r.status == 200 and cookie, r.data
        console_cookie = cookie.split(";")[0]
        csrf = r.json["result"]["csrfToken"]
        assert s.https.request("POST", "/api/invoke/GetConsoleSession",
                               {"Cookie": console_cookie, "X-CSRF-Token": csrf}).status == 200
        stranger = Web("127.0.0.1", s.ports["chttp"], source="127.0.0.21")
        for path in ("/walk/api/session", "/walk/api/folders"):
            r = stranger.get(path, headers={"Cookie": console_cookie, "X-CSRF-Token": csrf})
            assert r.status == 401, (path, r.status, r.raw[:200])
    finally:
        s.api.call("StopInstances", "instanceFilter=walk")
        s.api.call("DeleteInstances", "instanceFilter=walk", "deleteData=true")


def _totp(secret, step):
    import hashlib
    import hmac
    import struct
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000)


# ---- in Chromium ----

@pytest.fixture(scope="module")
def browser_run(system):
    if _missing():
        pytest.fail(_missing())
    s = system
    s.api.call("CreateSystemAdministrator", "userName=mfa-admin", "password=mfa-admin-pass")
    secret = s.api.call("InitializeSystemAdministratorMFA", "userName=mfa-admin")["secret"]
    api_password = s.api.call("CreateSystemAdministratorAPIPassword", "userName=admin")["apiPassword"]
    s.api.call("CreateInstance", "instanceID=acme", "displayName=<b>ACME</b> & Co", "instanceHost=127.0.0.1",
               "baseDirectory=" + data_dir(s, "acme"))
    wait_for(lambda: state(s, "acme") == "running", timeout=60, what="acme running")
    os.makedirs(ARTIFACTS, exist_ok=True)
    # the SMTP test peer, as in test_admins.py
    smtp_port = free_port()
    maildir = os.path.join(os.path.dirname(s.dir), "maildir")
    smtp = subprocess.Popen(["/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % smtp_port,
                             "-c", "aiosmtpd.handlers.Mailbox", maildir])
    results_file = os.path.join(os.path.dirname(s.dir), "console-results.json")
    cfg = {
        "baseUrl": "https://127.0.0.1:%d" % s.ports["mhttp"],
        "artifacts": ARTIFACTS,
        "chromium": CHROMIUM,
        "resultsFile": results_file,
        "coffer": COFFER,
        "configDir": s.dir,
        "apiServer": "127.0.0.1:%d" % s.ports["mhttp"],
        "adminUser": "admin",
        "adminPassword": "pw-single",
        "apiPassword": api_password,
        "mfaUser": "mfa-admin",
        "mfaPassword": "mfa-admin-pass",
        "mfaSecret": secret,
        "casName": "127.0.0.1:%d" % s.ports["ctcp"],
        "casServerName": "127.0.0.1",
        "webBase": "https://127.0.0.1:%d" % s.ports["chttp"],
        "casFingerprint": s.fingerprint("client-access-server"),
        "spareCasPort": s.ports["spare"],
        "shortIdle": SHORT_IDLE,
        "smtpPort": smtp_port,
        "smtpMaildir": maildir,
        "dataDir": os.path.dirname(data_dir(s, "beta")),
    }
    try:
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", smtp_port)) == 0, what="aiosmtpd")
        run = run_browser("console.mjs", "COFFER_CONSOLE_TEST", cfg, timeout=400)
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)
    results = json.load(open(results_file)) if os.path.exists(results_file) else {}
    return {"results": results, "output": run.stdout + run.stderr}


@pytest.mark.parametrize("name", SCENARIOS)
def test_browser(browser_run, name):
    r = browser_run["results"].get(name)
    assert r is not None, "the scenario did not run:\n" + browser_run["output"][-3000:]
    assert r["ok"], r.get("error")
