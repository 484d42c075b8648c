"""The Management API and its command-line clients behave as docs/api.md and
docs/operations.md say (issue 11, section 4)."""
import base64
import http.client
import json
import os
import re
import signal
import ssl
import subprocess
import time

from daemonfix import COFFER, all_connected, free_port, wait_for
from test_instances import data_dir, state

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def post(s, function, body, ctype="application/json", password="pw-single", user="admin"):
    """One request with a JSON or form body: (status, headers, envelope)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", s.ports["mhttp"], context=ctx, timeout=60)
    auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    c.request("POST", "/api/invoke/" + function, body=body,
              headers={"Content-Type": ctype, "Authorization": "Basic " + auth})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), json.loads(data)


def with_instance(s, iid="acme"):
    wait_for(all_connected(s.api), what="every role connected")
    s.api.call("CreateInstance", "instanceID=" + iid, "instanceHost=127.0.0.1",
               "baseDirectory=" + data_dir(s, iid))
    wait_for(lambda: state(s, iid) == "running", what=iid + " running")


def test_list_arguments_as_json_text_form_text_and_json_arrays(single):
    with_instance(single)
    api = single.api
    # JSON text in a form field, as docs/api.md says structured values go.
    u = api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1",
                 'privileges=["login","export"]', 'loginPrivileges=["web","api"]',
                 'emailAddresses=["alice@acme.test","a@acme.test"]')
    assert u["privileges"] == ["login", "export"] and u["loginPrivileges"] == ["web", "api"]
    assert u["emailAddresses"] == ["alice@acme.test", "a@acme.test"]
    # Comma-separated text still works.
    u = api.call("SetUserPrivileges", "instanceID=acme", "userName=alice", "privileges=login, archive")
    info = api.call("GetUserInfo", "instanceID=acme", "userName=alice")
    assert info["privileges"] == ["login", "archive"], info
    # A JSON body with arrays.
    st, _, env = post(single, "CreateUser", json.dumps({
        "instanceID": "acme", "userName": "bob", "password": "bob-pass-22",
        "privileges": ["login", "archive", "export"], "loginPrivileges": ["imap"]}))
    assert st == 200 and env["statusCode"] == "succeeded", env
    assert env["result"]["privileges"] == ["login", "archive", "export"]
    assert env["result"]["loginPrivileges"] == ["imap"]
    st, _, env = post(single, "SetUserLoginPrivileges", json.dumps(
        {"instanceID": "acme", "userName": "bob", "loginPrivileges": ["web", "imap", "api"]}))
    assert env["statusCode"] == "succeeded", env
    assert api.call("GetUserInfo", "instanceID=acme", "userName=bob")["loginPrivileges"] == ["web", "imap", "api"]
    # Not a list of strings: refused before it reaches the instance.
    for bad in ([1, 2], ["login", None], {"a": "login"}, [["login"]]):
        st, _, env = post(single, "SetUserPrivileges", json.dumps(
            {"instanceID": "acme", "userName": "bob", "privileges": bad}))
        assert st == 400 and "privileges" in env["error"]["message"], (bad, env)
    p = api.call_raw("SetUserPrivileges", "instanceID=acme", "userName=bob", 'privileges=["login",')
    assert p.returncode == 1 and "JSON" in json.loads(p.stdout)["error"]["message"]
    assert api.call("GetUserInfo", "instanceID=acme", "userName=bob")["privileges"] == ["login", "archive", "export"]


def test_nul_and_duplicate_keys_are_refused(single):
    with_instance(single)
    def instances():  # what a call could have changed (not the live status fields)
        return sorted((i["instanceID"], i["baseDirectory"]) for i in single.api.call("GetInstances"))
    before = instances()
    cases = [
        # A NUL cut the instance ID after it had been checked, and an import path.
        ('{"instanceID": "acme\\u0000../../etc", "userName": "x"}', "GetUserInfo"),
        ('{"instanceID": "acme", "userName": "alice", "path": "import/a\\u0000/../../x"}', "ImportFiles"),
        ('{"instanceID": "nul\\u0000id", "instanceHost": "127.0.0.1", "baseDirectory": "/tmp/x"}',
         "CreateInstance"),
        # A key given twice: which one counts would depend on the reader.
        ('{"instanceID": "dup1", "instanceID": "dup2", "instanceHost": "127.0.0.1", '
         '"baseDirectory": "/tmp/x"}', "CreateInstance"),
        ('{"instanceID": "acme", "userName": "a", "userName": "b"}', "GetUserInfo"),
    ]
    for body, function in cases:
        st, _, env = post(single, function, body)
        assert st == 400 and env["statusCode"] == "failed", (body, env)
        assert "JSON" in env["error"]["message"], (body, env)
    # The form encoding refuses %00 too.
    st, _, env = post(single, "GetUserInfo", "instanceID=acme%00x&userName=a",
                      "application/x-www-form-urlencoded")
    assert st == 400, env
    assert instances() == before
    users = single.api.call("GetUsers", "instanceID=acme")
    assert users == [], users


def test_security_headers_on_every_answer(single):
    for password in ("pw-single", "wrong-password"):
        st, headers, _ = post(single, "GetEnvironmentInfo", "", "application/x-www-form-urlencoded",
                              password=password)
        assert st in (200, 401)
        assert headers.get("Strict-Transport-Security") == "max-age=31536000", headers
        assert headers.get("X-Content-Type-Options") == "nosniff", headers


def test_failed_logins_do_not_write_a_line_each(single):
    log_path = os.path.join(single.dir, "log", "management-server.log")

    def failures():
        with open(log_path, errors="replace") as f:
            return [l for l in f if "API authentication failed" in l]
    before = len(failures())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # 300 wrong logins over one keep-alive connection (most of them answered
    # 429 by the throttle, each a failure to log all the same).
    c = http.client.HTTPSConnection("127.0.0.1", single.ports["mhttp"], context=ctx, timeout=60)
    statuses = set()
    started = time.time()
    auth = "Basic " + base64.b64encode(b"admin:guess").decode()
    for i in range(300):
        c.request("POST", "/api/invoke/GetEnvironmentInfo", body="",
                  headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        r.read()
        statuses.add(r.status)
    c.close()
    assert statuses <= {401, 429} and 429 in statuses, statuses
    # The requests take a few seconds; on a very slow machine they may span
    # more than one minute's window, each with its own burst and summary.
    windows = int(time.time() - started) // 60 + 1
    lines = failures()[before:]
    # At most the burst of 10 logged one by one (the summary comes when the minute ends).
    assert 1 <= len(lines) <= 11 * windows, lines
    # Stopping the Management Server writes the summary of the minute still open.
    os.kill(single.pid("management-server"), signal.SIGTERM)
    wait_for(lambda: "stopped" in single.config("status", "management-server", check=False).stdout
             or "not running" in single.config("status", "management-server", check=False).stdout,
             timeout=60, what="management server stopped")
    lines = failures()[before:]
    summaries = [l for l in lines if "more time(s)" in l]
    assert 1 <= len(summaries) <= windows and len(lines) <= 11 * windows, lines
    counted = sum(int(re.search(r"failed (\d+) more time", l).group(1)) for l in summaries)
    # Every failure is accounted for: logged on its own or counted in a summary.
    assert counted + len(lines) - len(summaries) == 300, lines


def test_times_are_iso_8601_everywhere(single):
    with_instance(single)
    st = single.api.status()
    assert ISO.match(st["managementServer"]["startedAt"]), st
    for h in st["instanceHosts"] + st["clientAccessServers"]:
        assert ISO.match(h["startedAt"]) and ISO.match(h["lastContact"]), h
    inst = single.api.call("GetInstances")[0]
    assert ISO.match(inst["created"]), inst
    assert ISO.match(single.api.call("GetEnvironmentInfo")["systemTime"])
    live = single.api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")

    def no_epoch_seconds(value, path):
        if isinstance(value, dict):
            for k, v in value.items():
                no_epoch_seconds(v, path + "." + k)
        elif isinstance(value, list):
            for v in value:
                no_epoch_seconds(v, path)
        elif isinstance(value, int) and not isinstance(value, bool) and \
                not re.search(r"(?i)byte|rss|pss|memory|size|count", path):
            assert not (1.6e9 < value < 2.2e9), (path, value)  # seconds since 1970, 2020-2039
    for answer in (st, inst, live, single.api.call("GetInstances")):
        no_epoch_seconds(answer, "")
    admins = single.api.call("GetSystemAdministrators")
    assert all(ISO.match(a["created"]) for a in admins), admins


def test_api_pins_only_the_server_it_was_pointed_at(single):
    wait_for(all_connected(single.api), what="every role connected")
    cas = "127.0.0.1:%d" % single.ports["chttp"]  # another HTTPS server on this machine
    base = [COFFER, "api", "--config-dir", single.dir, "--password", "pw-single"]
    p = subprocess.run(base + ["--server", cas, "GetInstances"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "not the Management Server configured in" in p.stderr and "--trust-on-first-use" in p.stderr
    # Asked to, it trusts what it finds (and says which fingerprint).
    p = subprocess.run(base + ["--server", cas, "--trust-on-first-use", "GetInstances"],
                       capture_output=True, text=True, timeout=60)
    assert "trusting %s on first use" % cas in p.stderr, p.stderr
    # The local Management Server itself: its own fingerprint, no flag needed.
    p = subprocess.run(base + ["--server", "127.0.0.1:%d" % single.ports["mhttp"], "GetInstances"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # A wrong fingerprint given explicitly is refused before credentials go out.
    p = subprocess.run(base + ["--server", "127.0.0.1:%d" % single.ports["mhttp"], "--fingerprint", "ab" * 32,
                               "GetInstances"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "fingerprint" in p.stderr.lower(), p.stderr


def test_cli_errors_and_help(single):
    wait_for(all_connected(single.api), what="every role connected")
    for command in (["init"], ["role", "add"], ["role", "configure"], ["role", "show"], ["role", "remove"],
                    ["start"], ["stop"], ["restart"], ["status"], ["pair"], ["cert"], ["cert", "show"],
                    ["rename"], ["show"]):
        p = single.config(*command, "--help", check=False)
        assert p.returncode == 0 and p.stdout.startswith("usage: coffer config"), (command, p.stdout, p.stderr)
        # Its own usage, not the whole list.
        assert len(p.stdout.split("\n")) < 15 and command[-1 if command[0] == "role" else 0] in p.stdout, \
            (command, p.stdout)
    assert "start|stop|restart|status" in single.config("status", "--help").stdout
    assert "cert renew" in single.config("cert", "--help").stdout
    # An unknown option says so, and does not take the next word as its value.
    p = single.config("status", "--verbose", check=False)
    assert p.returncode == 2 and "unknown option --verbose" in p.stderr, p.stderr
    p = single.config("cert", "show", "management-server", "--colour", "red", check=False)
    assert p.returncode == 2 and "unknown option --colour" in p.stderr, p.stderr
    p = single.api.call_raw("GetInstances", extra=["--verbose"])
    assert p.returncode == 2 and "unknown option --verbose" in p.stderr, p.stderr
    p = subprocess.run([COFFER, "api", "GetInstances", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("usage: coffer api")
    # A wrong administrator password says that.
    p = single.api.call_raw("GetInstances", password="not-the-password")
    assert p.returncode == 1
    assert "refused the login of administrator 'admin'" in p.stderr, p.stderr
    assert "wrong administrator name or password" in p.stderr
    # A failed function: its message, no "(HTTP status 200)".
    p = single.api.call_raw("GetInstanceConfiguration", "instanceID=nope")
    assert p.returncode == 1 and "HTTP status" not in p.stderr and "nope" in p.stderr, p.stderr
    # Connection refused names the role to start.
    port = free_port()
    p = subprocess.run([COFFER, "api", "--server", "127.0.0.1:%d" % port, "--fingerprint", "ab" * 32,
                        "--password", "x", "GetInstances"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "connection refused" in p.stderr
    assert "coffer config start management-server" in p.stderr, p.stderr
