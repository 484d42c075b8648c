"""The README's main command, scripts/demo.sh, on a machine that never saw Coffer.

Everything runs in namespaces this test creates: a mount namespace where
/etc, /var/lib, /usr/local and /srv are overlays with an empty upper layer and no
Coffer files (so /etc/coffer, /var/lib/coffer, /usr/local/bin/coffer and
/usr/local/share/coffer do not exist, and the coffer user is created afresh;
nothing reaches the real directories), a network namespace with only `lo`
(the demo's fixed ports 443, 993, 143, 8470-8473 never meet anything on this
machine) and a PID namespace (ending it ends every daemon). The build
directory of COFFER_BIN is what the demo builds and installs from.

Then it checks what the README promises, with exactly what the demo printed:
the logins, IMAP (imaplib on 993 and 143 with STARTTLS, and the README's curl
line), Web Access over HTTPS (the certificate validates for `localhost`),
the README's app password command and client-API example, the README's tour
command by command, a second run printing the logins that work now, and the
installed `coffer` serving Web Access from its installed files, also with the
checkout hidden.

Duration: 55-80 s on a loaded 2-core machine (the first run of the demo
takes 11-27 s of it: start, 400 sample messages imported; the three-server
walkthrough and two more demo runs most of the rest). Waits are bounded
generously (demo runs 600 s, restarts 120 s) for a loaded machine.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COFFER_BIN = os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "src", "cli", "coffer"))
BUILD_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(COFFER_BIN))))

HOLDER = r"""
set -eu
R=$1
mount -t tmpfs tmpfs "$R"
for d in /etc /var/lib /usr/local /srv; do
	n=$(echo "$d" | tr / _)
	mkdir -p "$R/$n/upper" "$R/$n/work"
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$R/$n/upper,workdir=$R/$n/work" "$d"
done
# Whiteouts in the upper layers: the real files stay as they are.
rm -rf /srv/coffer /etc/coffer /var/lib/coffer /usr/local/bin/coffer /usr/local/share/coffer \
	/usr/local/lib/systemd/system/coffer-*.service
userdel coffer >/dev/null 2>&1 || true
# No systemd here: the demo's roles run as its own daemons in this namespace.
if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; fi
ip link set lo up
echo ready
exec sleep 100000
"""


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (namespaces, mounts, the demo installs to /usr/local)"
    for tool in ("unshare", "nsenter", "ip", "curl", "openssl"):
        if shutil.which(tool) is None:
            return "needs %s" % tool
    if os.environ.get("COFFER_SANITIZED") == "1":
        return "the demo builds and installs a plain binary; run with the plain build"
    if not os.path.exists(os.path.join(BUILD_DIR, "build.ninja")):
        return "COFFER_BIN is not in a meson build directory (%s)" % BUILD_DIR
    # Only /usr/local is an overlay: a build for another prefix would install
    # for real.
    opts = subprocess.run(["meson", "introspect", BUILD_DIR, "--buildoptions"], capture_output=True, text=True)
    prefix = [o["value"] for o in json.loads(opts.stdout or "[]") if o["name"] == "prefix"]
    if prefix != ["/usr/local"]:
        return "the build directory's prefix is %s, not /usr/local" % prefix
    # Inside the namespace /var/lib is an overlay: apt-get there would change
    # /usr for real while dpkg's records stay in the overlay. So every package
    # must be there already (scripts/test.sh installs them first).
    p = subprocess.run([os.path.join(ROOT, "scripts", "install-deps.sh"), "--check"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "run scripts/install-deps.sh first (%s)" % p.stdout.strip()
    return None


class FreshMachine:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="coffer-demo-", dir="/tmp")
        root = os.path.join(self.tmp, "root")
        os.mkdir(root)
        script = os.path.join(self.tmp, "holder.sh")
        with open(script, "w") as f:
            f.write(HOLDER)
        self.unshare = subprocess.Popen(
            ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private",
             "sh", script, root], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.unshare.stdout.readline()
        if line.strip() != "ready":
            err = self.unshare.stderr.read() if self.unshare.poll() is not None else ""
            self.close()
            pytest.skip("cannot create the namespaces here: %s %s" % (line, err))
        with open("/proc/%d/task/%d/children" % (self.unshare.pid, self.unshare.pid)) as f:
            self.pid = int(f.read().split()[0])  # PID 1 of the new PID namespace

    def run(self, script, timeout=120, check=True, env=None):
        """Run a shell script on the fresh machine, as root, in the checkout."""
        cmd = ["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "--", "sh", "-c", "cd %s && %s" % (ROOT, script)]
        full_env = dict(os.environ, PATH="/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
        full_env.pop("COFFER_CONFIG_DIR", None)
        full_env.update(env or {})
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\nstdout: %s\nstderr: %s\nlogs: %s"
                                 % (script, p.returncode, p.stdout, p.stderr, self.logs()))
        return p

    def python(self, code, **kw):
        return self.run("/usr/bin/python3 -c '%s'" % code.replace("'", "'\"'\"'"), **kw)

    def logs(self):
        p = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-n", "-p", "--", "sh", "-c",
                            "tail -n 30 /etc/coffer/log/* 2>/dev/null"], capture_output=True, text=True)
        return p.stdout[-6000:]

    def close(self):
        if getattr(self, "pid", None):
            try:
                os.kill(self.pid, 9)  # the namespace's init: every process in it ends
            except OSError:
                pass
        try:
            self.unshare.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.unshare.kill()
            self.unshare.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def parse_demo_output(out):
    admin = re.search(r"^  Administrator +admin / (\S+)$", out, re.M)
    user = re.search(r"^  Demo user +demo / (\S+)$", out, re.M)
    assert admin and user, out
    return admin.group(1), user.group(1)


def code_blocks(text):
    """Indented blocks of Markdown text; blank lines inside a block stay in it."""
    blocks, current = [], []
    for line in text.split("\n"):
        if line.startswith("    "):
            current.append(line[4:])
        elif line.strip() == "":
            if current:
                current.append("")
        elif current:
            blocks.append("\n".join(current).strip("\n"))
            current = []
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return blocks


def readme_blocks():
    """The README's indented command blocks of the tour, in order."""
    text = open(os.path.join(ROOT, "README.md")).read()
    tour = text[text.index("## A short tour"):text.index("Each instance runs as its own process")]
    blocks, current = [], []
    for line in tour.split("\n"):
        if line.startswith("    "):
            current.append(line[4:])
        elif current and line.strip() == "":
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


@pytest.fixture(scope="module")
def machine():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    m = FreshMachine()
    yield m
    m.close()


@pytest.fixture(scope="module")
def demo(machine):
    start = time.time()
    p = machine.run("scripts/demo.sh", timeout=600, env={"COFFER_BUILD_DIR": BUILD_DIR})
    out = p.stdout + p.stderr
    # install-deps.sh is idempotent: nothing to install, no network.
    assert "installing:" not in out, out
    admin_pw, user_pw = parse_demo_output(p.stdout)
    return {"admin": admin_pw, "user": user_pw, "out": p.stdout, "secs": time.time() - start}


def test_first_run_prints_logins_and_where_they_are_kept(machine, demo):
    out = demo["out"]
    assert "400 messages archived" in out, out
    assert "/etc/coffer/demo-admin-password" in out and "/etc/coffer/demo-user-password" in out
    kept = machine.run("cat /etc/coffer/demo-admin-password /etc/coffer/demo-user-password").stdout.split()
    assert kept == [demo["admin"], demo["user"]]
    # The parent of the instances' directory is reachable by the run-as user
    # (it was 0700 root under the old umask 077), the secrets stay root's.
    modes = machine.run("stat -c '%a %U %n' /var/lib/coffer /var/lib/coffer/instances "
                        "/etc/coffer/demo-admin-password").stdout.split("\n")
    assert modes[0].startswith("755 root"), modes
    assert modes[1].split()[1] == "coffer", modes
    assert modes[2].startswith("600 root"), modes
    # The demo user has what the README's examples need.
    info = machine.run("coffer api GetUserInfo instanceID=demo userName=demo",
                       env={"COFFER_API_PASSWORD": demo["admin"]}).stdout
    assert "api" in json.loads(info)["result"]["loginPrivileges"], info


def test_imap_with_the_printed_login(machine, demo):
    script = r"""
import imaplib, os, ssl
pw = os.environ["PW"]
ctx = ssl.create_default_context(cafile="/etc/coffer/certs/client-access-server-imap.pem")
for starttls in (False, True):
    if starttls:
        c = imaplib.IMAP4("localhost", 143)
        c.starttls(ssl_context=ctx)
    else:
        c = imaplib.IMAP4_SSL("localhost", 993, ssl_context=ctx)
    c.login("demo@demo", pw)
    typ, data = c.select("INBOX", readonly=True)
    assert typ == "OK" and int(data[0]) == 400, data
    typ, data = c.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK" and b"Subject:" in data[0][1], data
    c.logout()
print("imap ok")
"""
    p = machine.python(script, env={"PW": demo["user"]})
    assert "imap ok" in p.stdout


def test_web_access_certificates_name_localhost_and_the_host(machine, demo):
    host = machine.run("hostname -f 2>/dev/null || hostname").stdout.strip()
    for role, kind in (("client-access-server", "http"), ("client-access-server", "imap"),
                       ("management-server", "http")):
        san = machine.run("openssl x509 -noout -ext subjectAltName -in /etc/coffer/certs/%s-%s.pem"
                          % (role, kind)).stdout
        assert "DNS:localhost" in san and "DNS:%s" % host in san, (role, kind, san)
        assert "IP Address:127.0.0.1" in san, san
    # No -k: the self-signed certificate, given as the CA, is valid for localhost.
    page = machine.run("curl -sS --fail --cacert /etc/coffer/certs/client-access-server-http.pem "
                       "https://localhost/demo/").stdout
    assert "<html" in page.lower()


def test_readme_client_examples_work_as_written(machine, demo):
    blocks = readme_blocks()
    client = [b for b in blocks if "app-passwords" in b]
    assert len(client) == 1, blocks
    before, after = client[0].split("APP_PASSWORD=...", 1)
    after = after.split("\n", 1)[1]
    first = machine.run("set -e\n" + before)
    assert "Subject: " in first.stdout  # the IMAP message
    app = re.findall(r'\{"name":"my-script","password":"([^"]+)"\}', first.stdout)
    assert len(app) == 1, first.stdout
    # The demo's password, as the README's first line reads it, must be the printed one.
    second = machine.run("set -e\nPASSWORD=$(cat /etc/coffer/demo-user-password)\n" + after,
                         env={"APP_PASSWORD": app[0]})
    answer = json.loads(second.stdout)
    assert answer["total"] > 0 and len(answer["messages"]) > 0, answer
    # The app password is a login of its own: a wrong one is refused.
    bad = machine.run("curl -sk -o /dev/null -w '%{http_code}' --user demo:wrong-app-password "
                      "https://localhost/demo/api/folders", check=False)
    assert bad.stdout == "401"
    mgmt = [b for b in readme_blocks_all() if "8470/api/invoke/GetEnvironmentInfo" in b]
    assert mgmt, "the README's Management API curl example"
    env = json.loads(machine.run(mgmt[0]).stdout)
    assert env["statusCode"] == "succeeded" and env["result"]["mode"] == "single"
    # The Console the README and the demo point at answers its page.
    page = machine.run("curl -sk https://localhost:8470/").stdout
    assert "<title>Management Console</title>" in page and "console-main.js" in page


def readme_blocks_all():
    text = open(os.path.join(ROOT, "README.md")).read()
    return [m.group(0) for m in re.finditer(r"(?m)^    \S.*$", text)]


def test_readme_tour_command_by_command(machine, demo):
    tour = readme_blocks()[0]
    lines = [line for line in tour.split("\n") if line.strip()]
    assert lines[0].startswith("export COFFER_API_PASSWORD=")
    for line in lines[1:]:
        p = machine.run("%s\n%s" % (lines[0], line), check=False)
        assert p.returncode == 0, (line, p.stdout, p.stderr)
        if line.startswith("coffer api"):
            assert json.loads(p.stdout)["statusCode"] == "succeeded", (line, p.stdout)
    status = machine.run("%s\ncoffer api GetServiceStatus" % lines[0]).stdout
    st = json.loads(status)["result"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", st["managementServer"]["startedAt"])


def test_operations_walkthrough_runs_beside_the_demo(machine, demo):
    """docs/operations.md's three servers on one machine, while the demo runs."""
    text = open(os.path.join(ROOT, "docs", "operations.md")).read()
    section = text[text.index("## Trying multi server mode on one machine"):text.index("## Services")]
    blocks = code_blocks(section)
    assert len(blocks) == 2, blocks
    setup, instance = blocks
    p = machine.run("set -e\n" + setup, timeout=300)
    status = json.loads(p.stdout[p.stdout.index("{"):])["result"]
    assert len(status["instanceHosts"]) == 1 and len(status["clientAccessServers"]) == 1, status
    api = "coffer api --config-dir /srv/coffer/mgmt --server 127.0.0.2:9470 --password demo-password"
    machine.run("for i in $(seq 1 120); do %s GetServiceStatus | grep -c '\"state\": \"connected\"' "
                "| grep -qx 2 && exit 0; sleep 0.5; done; exit 1" % api, timeout=120)
    created = machine.run("set -e\n" + instance, timeout=180)
    assert json.loads(created.stdout)["statusCode"] == "succeeded", created.stdout
    machine.run("test -d /srv/coffer/instances/trial")
    # The demo was not disturbed.
    st = json.loads(machine.run("coffer api GetServiceStatus", env={"COFFER_API_PASSWORD": demo["admin"]}).stdout)
    assert all(h["state"] == "connected" for h in st["result"]["instanceHosts"]), st
    stop = re.search(r"Stop everything with `([^`]+)`", section.replace("\n", " ")).group(1)
    machine.run('M="coffer config --config-dir /srv/coffer/mgmt"; I="coffer config --config-dir /srv/coffer/ih1"; '
                'C="coffer config --config-dir /srv/coffer/cas1"; ' + stop, timeout=180)


def test_second_run_prints_the_logins_that_work_now(machine, demo):
    # Someone changed the demo user's password since the first run: the old
    # one kept in the file no longer works, so the second run must not print it.
    machine.run("coffer api SetUserPassword instanceID=demo userName=demo password=changed-meanwhile-1",
                env={"COFFER_API_PASSWORD": demo["admin"]})
    p = machine.run("scripts/demo.sh", timeout=600, env={"COFFER_BUILD_DIR": BUILD_DIR})
    admin_pw, user_pw = parse_demo_output(p.stdout)
    assert admin_pw == demo["admin"]
    assert user_pw != demo["user"]
    assert "kept in /etc/coffer/demo-admin-password" in p.stdout
    assert machine.run("cat /etc/coffer/demo-user-password").stdout.strip() == user_pw
    login = machine.run("curl -sS --fail -k --user 'demo@demo:%s' 'imaps://localhost/INBOX;UID=1'" % user_pw)
    assert "Subject:" in login.stdout
    # A third run keeps the password that works.
    p = machine.run("scripts/demo.sh", timeout=600, env={"COFFER_BUILD_DIR": BUILD_DIR})
    assert parse_demo_output(p.stdout) == (admin_pw, user_pw)


def test_installed_coffer_serves_its_installed_web_files(machine, demo):
    log = machine.run("grep -rh 'Web Access on' /etc/coffer/log/ | tail -n 1").stdout
    assert "files from /usr/local/share/coffer/web" in log, log
    installed = machine.run("cat /usr/local/share/coffer/web/index.html").stdout
    # Hide the checkout (and its build directory) entirely, then restart the
    # Client Access Server from the installed binary: Web Access still works.
    machine.run("mount -t tmpfs tmpfs %s && [ ! -e %s/README.md ]" % (ROOT, ROOT))
    machine.run("coffer config restart client-access-server", timeout=120)
    page = machine.run("for i in $(seq 1 60); do curl -sSk --fail https://localhost/demo/ && exit 0; "
                       "sleep 0.5; done; exit 1").stdout
    assert page == installed
    css = machine.run("curl -sSk --fail https://localhost/_static/style.css").stdout
    assert css == machine.run("cat /usr/local/share/coffer/web/style.css").stdout
