"""Web Access in Chromium (playwright-core, tests/web/web-access.mjs) against
real daemons: login with and without MFA, browsing, search, an HTML mail in
its sandbox (a remote image is not fetched, a script does not run),
downloads, export, password change, MFA enrolment and a phone-sized
viewport. The system is set up once for the module; each browser scenario
is one test here. Screenshots are kept in tests/web/artifacts/ (the good
ones are copied into docs/images/ for docs/web-access.md)."""
import glob
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ROOT, Api, Server, free_port
from webfix import Web, setup_web

WEB_TESTS = os.path.join(ROOT, "tests", "web")
ARTIFACTS = os.environ.get("COFFER_WEB_ARTIFACTS", os.path.join(WEB_TESTS, "artifacts"))
CHROMIUM = "/usr/bin/chromium"
SCENARIOS = ["login_page_and_failure", "login_and_browse", "search_and_filters",
             "html_mail_is_sandboxed", "download_original", "download_attachment",
             "export_zip_and_mbox", "change_password", "mfa_enrolment_and_login",
             "phone_viewport"]


class Remote(http.server.BaseHTTPRequestHandler):
    """Stands for the internet: a mail's remote image or script would call it."""
    hits = []

    def do_GET(self):
        Remote.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def _missing():
    if not os.path.exists(CHROMIUM):
        return "Chromium is not installed (scripts/install-deps.sh installs it)"
    if not os.path.isdir(os.path.join(WEB_TESTS, "node_modules", "playwright-core")):
        return "playwright-core is not installed (npm ci in tests/web; scripts/install-deps.sh does it)"
    return None


@pytest.fixture(scope="module")
def browser_run():
    if _missing():
        pytest.fail(_missing())
    base = tempfile.mkdtemp(prefix="coffer-web-", dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    remote = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Remote)
    threading.Thread(target=remote.serve_forever, daemon=True).start()
    try:
        s.config("init", "--mode", "single", "--server-name", "single.test", "--admin-password", "pw-single")
        s.ports = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps")}
        p = s.ports
        s.config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % p["mtcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["mhttp"])
        s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % p["itcp"])
        s.config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % p["ctcp"],
                 "--http-listeners", "127.0.0.1:%d" % p["chttp"], "--imap-listeners",
                 "127.0.0.1:%d" % p["cimap"], "--imaps-listeners", "127.0.0.1:%d" % p["cimaps"])
        s.config("start")
        s.api = Api(s, "127.0.0.1", p["mhttp"], "pw-single")
        env = setup_web(s, remote_url="http://127.0.0.1:%d" % remote.server_address[1])
        s.api.call("CreateUser", "instanceID=acme", "userName=dave", "password=dave-pass-44",
                   "loginPrivileges=web")
        original = os.path.join(base, "original.eml")
        with open(original, "wb") as f:
            f.write(env["rich"]["HTML newsletter"])
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        os.makedirs(ARTIFACTS)
        results_file = os.path.join(base, "results.json")
        cfg = {
            "baseUrl": "https://127.0.0.1:%d" % p["chttp"],
            "artifacts": ARTIFACTS,
            "chromium": CHROMIUM,
            "resultsFile": results_file,
            "originalFile": original,
            "alicePassword": "alice-pass-1",
            "bobPassword": "bob-pass-22",
            "davePassword": "dave-pass-44",
        }
        run = subprocess.run(["node", "web-access.mjs"], cwd=WEB_TESTS, capture_output=True, text=True,
                             timeout=400, env=dict(os.environ, COFFER_WEB_TEST=json.dumps(cfg)))
        results = json.load(open(results_file)) if os.path.exists(results_file) else {}
        yield {"results": results, "output": run.stdout + run.stderr, "remote_hits": list(Remote.hits),
               "server": s}
    finally:
        remote.shutdown()
        s.stop_all()
        time.sleep(0.3)
        problems = []
        for path in glob.glob(os.path.join(s.dir, "log", "*.stderr")):
            text = open(path, errors="replace").read()
            if "AddressSanitizer" in text or "runtime error:" in text:
                problems.append("%s:\n%s" % (path, text[-4000:]))
        shutil.rmtree(base, ignore_errors=True)
        assert not problems, "sanitizer reports:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", SCENARIOS)
def test_browser(browser_run, name):
    r = browser_run["results"].get(name)
    assert r is not None, "the scenario did not run:\n" + browser_run["output"][-3000:]
    assert r["ok"], r.get("error")


def test_mail_content_reached_nothing_outside(browser_run):
    # Neither the remote image, nor the script, nor an onerror handler of the
    # HTML newsletter made a request (the browser opened that mail twice).
    assert browser_run["results"].get("html_mail_is_sandboxed", {}).get("ok")
    assert browser_run["remote_hits"] == []


def test_exported_zip_is_valid(browser_run):
    import zipfile
    path = os.path.join(ARTIFACTS, "export.zip")
    assert os.path.exists(path)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None and len(z.namelist()) == 3
