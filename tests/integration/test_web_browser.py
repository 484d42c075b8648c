"""Web Access in Chromium (playwright-core, tests/web/web-access.mjs) against
real daemons: login with and without MFA, browsing, search, an HTML mail in
its sandbox (a remote image is not fetched, a script does not run),
downloads, export, password change, MFA enrolment, phone-sized
viewports (every button inside a 375 px wide screen), the attachment
indicator, senders by display name (never parsed as HTML), answers that
arrive out of order, loading feedback and a query that does not parse. The system is set up once for the module; each browser scenario
is one test here. Screenshots are kept in tests/web/artifacts/ (the good
ones are copied into docs/images/ for docs/web-access.md)."""
import glob
import http.server
import json
import os
import shutil
import tempfile
import threading
import time

import pytest

from daemonfix import ROOT, Api, Server, free_port, wait_for
from netnsfix import run_browser
from webfix import Web, setup_web
from test_instances import data_dir

WEB_TESTS = os.path.join(ROOT, "tests", "web")
ARTIFACTS = os.environ.get("COFFER_WEB_ARTIFACTS", os.path.join(WEB_TESTS, "artifacts"))
CHROMIUM = "/usr/bin/chromium"
SCENARIOS = ["login_page_and_failure", "login_and_browse", "search_and_filters",
             "html_mail_is_sandboxed", "download_original", "download_attachment",
             "export_zip_and_mbox", "change_password", "mfa_enrolment_and_login",
             "phone_viewport", "attachment_indicator", "sender_display_name",
             "out_of_order_list", "out_of_order_message", "loading_indicator",
             "bad_query_message", "phone_layout_fits", "desktop_layout",
             "shared_components"]


class Remote(http.server.BaseHTTPRequestHandler):
    """Stands for the internet: a mail's remote image or script would call it."""
    hits = []

    def do_GET(self):
        Remote.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


# Erin's mail: a sender whose display name looks like HTML, and one that is
# a bare address (the list must show both as text).
ERIN_MBOX = (
    "From x@example.org Thu Jan  1 00:00:00 2024\n"
    "From: \"<img src=x onerror=alert(1)> Evil & Co\" <evil@example.org>\n"
    "To: erin@acme.test\nSubject: <b>not bold</b>\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n"
    "Message-ID: <erin-1@coffer.test>\n\nHello.\n\n"
    "From x@example.org Thu Jan  1 00:00:00 2024\n"
    "From: plain@example.org\nTo: erin@acme.test\nSubject: bare address\n"
    "Date: Tue, 5 Mar 2024 10:00:00 +0000\nMessage-ID: <erin-2@coffer.test>\n\nHi.\n\n")


def add_erin(s, port):
    s.api.call("CreateUser", "instanceID=acme", "userName=erin", "password=erin-pass-55",
               "loginPrivileges=web")
    with open(os.path.join(data_dir(s, "acme"), "import", "erin.mbox"), "w") as f:
        f.write(ERIN_MBOX)
    s.api.call("ImportFiles", "instanceID=acme", "userName=erin", "path=import/erin.mbox",
               "folder=Inbox")
    web = Web("127.0.0.1", port, source="127.0.0.251")
    assert web.login("acme", "erin", "erin-pass-55").status == 200
    wait_for(lambda: web.get("/acme/api/messages").json["total"] == 2, timeout=60,
             what="erin's mail imported")


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
        add_erin(s, p["chttp"])
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
            "erinPassword": "erin-pass-55",
        }
        run = run_browser("web-access.mjs", "COFFER_WEB_TEST", cfg, timeout=400)
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
