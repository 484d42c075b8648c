"""Branding, the API reference's try-form and failed jobs on the dashboard
(issue 13): the Management API calls through `coffer api` (GetBranding,
SetBranding, ReloadBranding, GetJobs with a state filter) and what the
Client Access Server serves of the branding, pushed without a restart; then
the Console and Web Access in Chromium (tests/web/console-settings.mjs,
desktop and phone sizes, axe-core). The system is set up once for the
module (test_console's fixture)."""
import base64
import json
import os
import struct
import zlib

import pytest

from daemonfix import COFFER, wait_for
from netnsfix import run_browser
from test_console import ARTIFACTS, CHROMIUM, Https, _missing, system  # noqa: F401
from test_instances import data_dir, state


def png(width=2, height=2, rgb=(200, 30, 120)):
    """A real PNG (Chromium decodes it)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


def api_error(api, function, *args, **kw):
    p = api.call_raw(function, *args, **kw)
    assert p.returncode != 0, "%s should fail: %s" % (function, p.stdout)
    return p.stdout + p.stderr


@pytest.fixture(scope="module", autouse=True)
def brandco(system):
    system.api.call("CreateInstance", "instanceID=brandco", "instanceHost=127.0.0.1",
                    "baseDirectory=" + data_dir(system, "brandco"))
    wait_for(lambda: state(system, "brandco") == "running", timeout=60, what="brandco running")
    system.api.call("CreateUser", "instanceID=brandco", "userName=boss", "password=boss-pass-1",
                    "privileges=admin,login")


def cas(system):
    return Https(system.ports["chttp"])


def cas_branding(system):
    return cas(system).request("GET", "/_branding/branding.json").json


def test_branding_is_set_stored_and_pushed_without_a_restart(system):
    s = system
    api = s.api
    default = api.call("GetBranding")
    assert default["productName"] == "Coffer" and default["logo"] == "/_static/logo.svg"
    logo = png()
    r = api.call("SetBranding", "productName=Acme Vault", "accentColor=#8A1C7C", "headerColor=#102030",
                 "logo=" + b64(logo))
    assert r["productName"] == "Acme Vault" and r["logoType"] == "image/png" and r["logoBytes"] == len(logo)
    version = r["version"]
    assert version > default["version"]
    # stored durably in the config directory
    stored = json.load(open(os.path.join(s.dir, "management-branding.json")))
    assert stored["productName"] == "Acme Vault"
    # the Client Access Server serves it (pushed; no restart)
    wait_for(lambda: cas_branding(s)["version"] == version, what="the branding pushed to the CAS")
    b = cas_branding(s)
    assert b["productName"] == "Acme Vault" and b["accentColor"] == "#8A1C7C" and b["headerColor"] == "#102030"
    got = cas(s).request("GET", b["logo"])
    assert got.status == 200 and got.getheader("Content-Type") == "image/png" and got.data == logo
    assert "sandbox" in got.getheader("Content-Security-Policy")
    assert got.getheader("X-Content-Type-Options") == "nosniff"
    # and the Management Server for the Console
    mine = s.https.request("GET", "/_branding/branding.json").json
    assert mine["productName"] == "Acme Vault" and mine["version"] == version
    assert s.https.request("GET", mine["logo"]).data == logo
    # an SVG is served with a CSP that runs nothing
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="#123456"/></svg>'
    r = api.call("SetBranding", "logo=" + b64(svg))
    assert r["logoType"] == "image/svg+xml" and r["productName"] == "Acme Vault"
    wait_for(lambda: cas_branding(s)["version"] == r["version"], what="the SVG pushed")
    got = cas(s).request("GET", cas_branding(s)["logo"])
    assert got.getheader("Content-Type") == "image/svg+xml" and got.data == svg
    assert "default-src 'none'" in got.getheader("Content-Security-Policy")
    # reset: the defaults everywhere, the built-in logo
    r = api.call("SetBranding", "reset=true")
    assert r["productName"] == "Coffer" and r["logoType"] is None and r["accentColor"] is None
    wait_for(lambda: cas_branding(s)["version"] == r["version"], what="the reset pushed")
    assert cas_branding(s)["logo"] == "/_static/logo.svg"
    assert cas(s).request("GET", "/_branding/logo").status == 404


def test_bad_branding_is_refused_and_changes_nothing(system):
    api = system.api
    before = api.call("GetBranding")
    assert "accentColor: 'red' is not a colour of the form #rrggbb" in api_error(api, "SetBranding", "accentColor=red")
    assert "headerColor" in api_error(api, "SetBranding", "headerColor=#12345g")
    assert "productName" in api_error(api, "SetBranding", "productName=<b>x</b>")
    assert "productName" in api_error(api, "SetBranding", "productName=" + "x" * 65)
    assert "logo: not base64" in api_error(api, "SetBranding", "logo=***")
    assert "neither a PNG nor an SVG" in api_error(api, "SetBranding", "logo=" + b64(b"GIF89a...."))
    for evil in (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                 b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>',
                 b'<svg><a href="javascript:alert(1)"><rect/></a></svg>',
                 b'<!DOCTYPE svg [<!ENTITY x "y">]><svg>&x;</svg>',
                 b'<svg><foreignObject><iframe src="x"/></foreignObject></svg>'):
        assert "logo: " in api_error(api, "SetBranding", "logo=" + b64(evil)), evil
    big = os.path.join(os.path.dirname(system.dir), "big-logo.b64")
    with open(big, "w") as f:
        f.write(b64(png() + b"\0" * 300000))
    assert "larger than 256 KiB" in api_error(api, "SetBranding", "logo=@" + big)
    assert api.call("GetBranding") == before


def test_reload_branding_reads_the_file_and_pushes_it(system):
    s = system
    api = s.api
    path = os.path.join(s.dir, "management-branding.json")
    api.call("SetBranding", "productName=Before Reload")
    assert os.path.exists(path), os.listdir(s.dir)
    b = json.load(open(path))
    b["productName"] = "Edited By Hand"
    b["accentColor"] = "#004400"
    with open(path, "w") as f:
        json.dump(b, f)
    r = api.call("ReloadBranding")
    assert r["productName"] == "Edited By Hand" and r["clientAccessServers"] == 1
    wait_for(lambda: cas_branding(s)["productName"] == "Edited By Hand", what="the reloaded branding pushed")
    # a file that does not pass is refused and the current branding kept
    with open(path, "w") as f:
        json.dump(dict(b, accentColor="green"), f)
    assert "accentColor" in api_error(api, "ReloadBranding")
    assert api.call("GetBranding")["accentColor"] == "#004400"
    api.call("SetBranding", "reset=true")


def test_only_administrators_set_branding(system):
    s = system
    api = s.api
    # a wrong password, and no credentials at all
    p = api.call_raw("SetBranding", "productName=Hijacked", password="wrong")
    assert p.returncode != 0
    r = s.https.request("POST", "/api/invoke/SetBranding", body={"productName": "Hijacked"})
    assert r.status == 401
    # an instance's user (even its admin) is no system administrator
    assert api.call_raw("SetBranding", "productName=Hijacked", user="boss", password="boss-pass-1").returncode != 0
    # a Console session without its CSRF token
    login, cookie = s.https.login("admin", "pw-single")
    r = s.https.request("POST", "/api/invoke/SetBranding", {"Cookie": cookie.split(";")[0]},
                        body={"productName": "Hijacked"})
    assert r.status == 403
    # the Client Access Server takes the branding only from its Management Server
    assert cas(s).request("POST", "/_branding/branding.json", body={"productName": "Hijacked"}).status == 404
    assert api.call("GetBranding")["productName"] != "Hijacked"


def test_failed_jobs_are_listed_by_state(system):
    s = system
    api = s.api
    p = api.call_raw("ImportFiles", "instanceID=brandco", "userName=boss", "path=import/no-such-file.mbox")
    assert p.returncode != 0
    failed = api.call("GetJobs", "state=failed")
    mine = [j for j in failed if j["function"] == "ImportFiles" and j["instanceID"] == "brandco"]
    assert mine and mine[0]["error"] and mine[0]["user"] == "admin" and mine[0]["finishedAt"]
    assert all(j["state"] == "failed" for j in failed)
    assert not [j for j in api.call("GetJobs", "state=succeeded") if j["function"] == "ImportFiles"]
    assert "state: 'broken'" in api_error(api, "GetJobs", "state=broken")
    # an instance's own jobs, filtered the same way
    assert all(j["state"] == "failed" for j in api.call("GetJobs", "instanceID=brandco", "state=failed"))


# ---- in Chromium ----

SCENARIOS = ["branding_console_and_web_access", "api_try_form", "dashboard_failed_job", "accessibility"]


@pytest.fixture(scope="module")
def browser_run(system):
    if _missing():
        pytest.fail(_missing())
    s = system
    results_file = os.path.join(os.path.dirname(s.dir), "console-settings-results.json")
    cfg = {
        "baseUrl": "https://127.0.0.1:%d" % s.ports["mhttp"],
        "webUrl": "https://127.0.0.1:%d" % s.ports["chttp"],
        "artifacts": ARTIFACTS,
        "chromium": CHROMIUM,
        "resultsFile": results_file,
        "coffer": COFFER,
        "configDir": s.dir,
        "apiServer": "127.0.0.1:%d" % s.ports["mhttp"],
        "adminUser": "admin",
        "adminPassword": "pw-single",
        "instance": "brandco",
        "waUser": "boss",
        "waPassword": "boss-pass-1",
        "pngBase64": b64(png(16, 16)),
    }
    s.api.call("SetBranding", "reset=true")
    run = run_browser("console-settings.mjs", "COFFER_CONSOLE_TEST", cfg, timeout=300)
    results = json.load(open(results_file)) if os.path.exists(results_file) else {}
    return {"results": results, "output": run.stdout + run.stderr}


@pytest.mark.parametrize("name", SCENARIOS)
def test_browser(browser_run, name):
    r = browser_run["results"].get(name)
    assert r is not None, "scenario did not run:\n" + browser_run["output"][-3000:]
    assert r["ok"], r.get("error", "") + "\n" + browser_run["output"][-2000:]
