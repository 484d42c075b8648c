"""The "Moving roles" procedures of docs/operations.md, run as written there.

Each "server" is a config directory of its own bound to its own loopback
address: the Management Server on 127.0.0.2, the Instance Host on 127.0.0.3,
the Client Access Server on 127.0.0.4, and the server a role moves to on
127.0.0.6 (a Client Access Server) or 127.0.0.7 (a Management Server). The
Management Server and Client Access Server moves also run (their "netns"
variants, skipped where namespaces cannot be made) with each server a
network namespace of its own (netnsfix: own address, host name, config
directory), registered under and reached by its host name:
mgmt.example.test moves to mgmt2.example.test, cas.example.test to
cas2.example.test.
Mail is imported before each move and read back byte-identical over IMAP
after it."""
import hashlib
import imaplib
import os
import pwd
import socket
import subprocess
import ssl

import pytest

from daemonfix import Api, all_connected, free_port, wait_for
from mailgen import message, write_mbox

ADMIN_PW = "move-admin-secret"
USER_PW = "alice-move-pass"
P12_PW = "p12 moving secret"
MESSAGES = 12


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def der_fingerprint(der):
    return hashlib.sha256(der).hexdigest()


def norm(fp):
    return fp.replace(":", "").lower()


def tls_fingerprint(addr, port):
    """The SHA-256 fingerprint of the certificate a client sees on a TLS port."""
    with socket.create_connection((addr, port), timeout=30) as raw:
        with tls_context().wrap_socket(raw) as s:
            return der_fingerprint(s.getpeercert(binary_form=True))


def starttls_fingerprint(addr, port):
    m = imaplib.IMAP4(addr, port, timeout=30)
    m.starttls(ssl_context=tls_context())
    fp = der_fingerprint(m.sock.getpeercert(binary_form=True))
    m.logout()
    return fp


def read_mail(addr, imaps_port):
    """alice's archived messages over IMAPS, as IMAP serves them (CRLF)."""
    m = imaplib.IMAP4_SSL(addr, imaps_port, ssl_context=tls_context(), timeout=30)
    m.login("alice@acme", USER_PW)
    typ, data = m.select("INBOX", readonly=True)
    assert typ == "OK", data
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK", data
    m.logout()
    return sorted(d[1].rstrip(b"\r\n") for d in data if isinstance(d, tuple))


def expected_mail():
    return sorted(message(i).encode().replace(b"\n", b"\r\n").rstrip(b"\r\n") for i in range(MESSAGES))


def cas_ports(s):
    return {k: free_port(s.addr) for k in ("tcp", "http", "imap", "imaps")}


def add_cas(s):
    s.ports = cas_ports(s)
    s.config("init", "--mode", "multi")
    s.config("role", "add", "client-access-server", *s.server_name_args(),
             "--tcp-listeners", "%s:%d" % (s.addr, s.ports["tcp"]),
             "--http-listeners", "%s:%d" % (s.addr, s.ports["http"]),
             "--imap-listeners", "%s:%d" % (s.addr, s.ports["imap"]),
             "--imaps-listeners", "%s:%d" % (s.addr, s.ports["imaps"]))
    return s


def pair(s, mgmt):
    s.config("pair", "--management-server", mgmt.server_name, "--api-port", mgmt.ports["http"],
             "--admin-name", "admin", "--admin-password", ADMIN_PW,
             "--fingerprint", mgmt.fingerprint("management-server", "http"))


def add_instance_host(s, mgmt):
    s.ports = {"tcp": free_port(s.addr)}
    s.config("init", "--mode", "multi")
    s.config("role", "add", "instance-host", *s.server_name_args(),
             "--tcp-listeners", "%s:%d" % (s.addr, s.ports["tcp"]))
    pair(s, mgmt)
    s.config("start")
    return s


def start_system(net):
    """A running multi server setup: Management Server, Instance Host and
    Client Access Server. Each server on its own loopback address or, where
    a test is parametrized with net "netns", in its own network namespace
    (netnsfix) with its host name as its server name (mgmt.example.test,
    ih.example.test, cas.example.test), which the others resolve."""
    mgmt = net.server("mgmt", "127.0.0.2")
    mgmt.ports = {"http": free_port(mgmt.addr), "tcp": free_port(mgmt.addr)}
    mgmt.config("init", "--mode", "multi")
    mgmt.config("role", "add", "management-server", *mgmt.server_name_args(),
                "--tcp-listeners", "%s:%d" % (mgmt.addr, mgmt.ports["tcp"]),
                "--http-listeners", "%s:%d" % (mgmt.addr, mgmt.ports["http"]),
                "--admin-name", "admin", "--admin-password", ADMIN_PW)
    mgmt.config("start")
    mgmt.api = Api(mgmt, mgmt.addr, mgmt.ports["http"], ADMIN_PW)

    ih = add_instance_host(net.server("ih", "127.0.0.3"), mgmt)

    cas = add_cas(net.server("cas", "127.0.0.4"))
    pair(cas, mgmt)
    cas.config("start")
    wait_for(all_connected(mgmt.api), timeout=40, what="IH and CAS connected")
    net.assert_placed(mgmt, "management-server")
    net.assert_placed(ih, "instance-host")
    net.assert_placed(cas, "client-access-server")
    return mgmt, ih, cas


@pytest.fixture
def system(net):
    """start_system's servers, one instance with alice and her mail."""
    mgmt, ih, cas = start_system(net)
    data = os.path.join(os.path.dirname(ih.dir), "data")
    os.makedirs(data, exist_ok=True)
    coffer = pwd.getpwnam("coffer")
    os.chown(data, coffer.pw_uid, coffer.pw_gid)
    api = mgmt.api
    api.call("CreateInstance", "instanceID=acme", "instanceHost=" + ih.server_name,
             "baseDirectory=%s/acme" % data)
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=30, what="acme running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=" + USER_PW)
    write_mbox(os.path.join(data, "acme", "import", "m.mbox"), MESSAGES)
    r = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/m.mbox", "folder=INBOX")
    assert r["archived"] == MESSAGES
    # The Client Access Server reaches the instance (routes take a moment).
    wait_for(lambda: _try_read(cas), timeout=40, what="alice's mail over the first CAS")
    return mgmt, ih, cas


def _try_read(cas):
    try:
        return read_mail(cas.addr, cas.ports["imaps"]) == expected_mail()
    except (imaplib.IMAP4.error, OSError):
        return False


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_moving_a_client_access_server(net, system, tmp_path):
    """docs/operations.md, "Moving a Client Access Server" (netns variant:
    cas.example.test moves to cas2.example.test, another server)."""
    mgmt, ih, old = system
    seen = {
        "https": tls_fingerprint(old.addr, old.ports["http"]),
        "imaps": tls_fingerprint(old.addr, old.ports["imaps"]),
        "imap": starttls_fingerprint(old.addr, old.ports["imap"]),
    }
    assert seen["https"] == norm(old.fingerprint("client-access-server", "http"))
    assert seen["imaps"] == seen["imap"] == norm(old.fingerprint("client-access-server", "imap"))

    # On the old server: export what end users see, password from a file.
    pwfile = tmp_path / "p12-password"
    pwfile.write_text(P12_PW + "\n")
    http_p12, imap_p12 = str(tmp_path / "cas-http.p12"), str(tmp_path / "cas-imap.p12")
    old.config("cert", "export", "client-access-server", "http", http_p12, "--password-file", pwfile)
    # ... or from standard input.
    old.config("cert", "export", "client-access-server", "imap", imap_p12, "--password-file", "-",
               input=P12_PW + "\n")
    assert os.stat(http_p12).st_mode & 0o077 == 0, "the PKCS#12 file holds a private key"
    # An export without a password (and no terminal to ask on) is refused.
    p = old.config("cert", "export", "client-access-server", "http", str(tmp_path / "x.p12"),
                   check=False, input="")
    assert p.returncode == 1 and "needs a password" in p.stderr
    assert not os.path.exists(tmp_path / "x.p12")

    # On the new server: the role, the certificates, the pairing.
    new = add_cas(net.server("cas-new", "127.0.0.6", hostname="cas2.example.test"))
    own = new.fingerprint("client-access-server", "http")
    bad = tmp_path / "wrong-password"
    bad.write_text("not the password\n")
    p = new.config("cert", "import", "client-access-server", "http", http_p12, "--password-file", bad,
                   check=False)
    assert p.returncode == 1 and "wrong PKCS#12 password" in p.stderr, p.stderr
    assert new.fingerprint("client-access-server", "http") == own, "a refused import changes nothing"
    p = new.config("cert", "import", "client-access-server", "http", http_p12, "--password-file", "-",
                   check=False, input="")
    assert p.returncode == 1 and "password-file" in p.stderr
    new.config("cert", "import", "client-access-server", "http", http_p12, "--password-file", pwfile)
    new.config("cert", "import", "client-access-server", "imap", imap_p12, "--password-file", "-",
               input=P12_PW + "\n")
    pair(new, mgmt)
    new.config("start")
    wait_for(all_connected(mgmt.api, hosts=1, cas=2), timeout=40, what="both CAS connected")
    net.assert_placed(new, "client-access-server")

    # End users see the old certificates on the new server.
    assert tls_fingerprint(new.addr, new.ports["http"]) == seen["https"]
    assert tls_fingerprint(new.addr, new.ports["imaps"]) == seen["imaps"]
    assert starttls_fingerprint(new.addr, new.ports["imap"]) == seen["imap"]
    # Its role-to-role certificate stays its own.
    assert new.fingerprint("client-access-server", "tcp") != old.fingerprint("client-access-server", "tcp")
    wait_for(lambda: _try_read(new), timeout=40, what="alice's mail over the new CAS")

    # The old one is removed.
    old.config("stop")
    old.config("role", "remove", "client-access-server")
    mgmt.api.call("DeleteClientAccessServer", "serverName=" + old.server_name)
    st = wait_for(all_connected(mgmt.api, hosts=1, cas=1), timeout=40, what="only the new CAS")
    assert [c["serverName"] for c in st["clientAccessServers"]] == [new.server_name]
    assert read_mail(new.addr, new.ports["imaps"]) == expected_mail()
    # The password went through files only: no log or setting holds it.
    for s in (old, new, mgmt):
        for root, _, files in os.walk(s.dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert P12_PW.encode() not in fh.read(), os.path.join(root, f)


def totp(secret, offset=0):
    args = ["oathtool", "--totp", "-b", secret]
    if offset:
        args += ["-N", "now + %d seconds" % offset]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def states(status):
    return [s["state"] for kind in ("instanceHosts", "clientAccessServers") for s in status[kind]]


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_moving_the_management_server(net, system, tmp_path):
    """docs/operations.md, "Moving the Management Server": the new one on
    127.0.0.7 (or, in the netns variant, in a namespace of its own named
    mgmt2.example.test); the Instance Host is pointed at it with `role
    configure`, the Client Access Server by pairing again."""
    old, ih, cas = system
    api = old.api
    # What must survive the move: an administrator with MFA, an SMTP password.
    api.call("CreateSystemAdministrator", "userName=carol", "password=carol-secret-1")
    secret = api.call("InitializeSystemAdministratorMFA", "userName=carol")["secret"]
    carol = Api(old, old.addr, old.ports["http"], "carol-secret-1", user="carol")
    assert carol.call("Ping", extra=["--totp", totp(secret)]) == "pong"  # activates MFA
    api.call("SetSystemSmtpConfiguration", "host=127.0.0.1", "port=2525", "security=none",
             "fromAddress=coffer@example.test", "userName=relay", "password=smtp-secret-7")

    # The old server: stop, pack what the Management Server needs.
    bundle = str(tmp_path / "management-server.tgz")
    old.config("stop", "management-server")
    subprocess.run(["tar", "-C", old.dir, "-czf", bundle, "management-database.json", "secrets.key",
                    "management-audit.log"], check=True)

    # The new server. Without secrets.key the role is refused before it starts.
    new = net.server("mgmt-new", "127.0.0.7", hostname="mgmt2.example.test")
    new.ports = {"http": free_port(new.addr), "tcp": free_port(new.addr)}
    new.config("init", "--mode", "multi")
    subprocess.run(["tar", "-C", new.dir, "-xzf", bundle, "management-database.json"], check=True)
    add = ["role", "add", "management-server", *new.server_name_args(),
           "--tcp-listeners", "%s:%d" % (new.addr, new.ports["tcp"]),
           "--http-listeners", "%s:%d" % (new.addr, new.ports["http"])]
    p = new.config(*add, check=False)
    assert p.returncode == 1 and "secrets.key" in p.stderr and "MFA secret of administrator carol" in p.stderr, \
        p.stderr
    # A secrets.key that is not the one the database was written with: the
    # service refuses to start, and says why.
    with open(os.path.join(new.dir, "secrets.key"), "wb") as f:
        f.write(os.urandom(32))
    new.config(*add)
    p = new.config("start", "management-server", check=False)
    assert p.returncode != 0 and "does not open" in p.stdout + p.stderr, p.stdout + p.stderr
    # The right one, as the documented procedure unpacks it.
    subprocess.run(["tar", "-C", new.dir, "-xzf", bundle], check=True)
    new.config("start", "management-server")
    new.api = Api(new, new.addr, new.ports["http"], ADMIN_PW)
    tcp_fp = new.fingerprint("management-server", "tcp")
    assert tcp_fp != old.fingerprint("management-server", "tcp")

    # Each Instance Host and Client Access Server points at the new one.
    ih.config("stop", "instance-host")
    ih.config("role", "configure", "instance-host", "--management-server", new.server_name,
              "--management-port", new.ports["tcp"], "--management-fingerprint", tcp_fp)
    ih.config("start", "instance-host")
    pair(cas, new)
    st = wait_for(all_connected(new.api), timeout=60, what="every role connected to the new one")
    assert [h["serverName"] for h in st["instanceHosts"]] == [ih.server_name]
    assert [c["serverName"] for c in st["clientAccessServers"]] == [cas.server_name]
    net.assert_placed(new, "management-server")
    if net.kind == "netns":
        assert new.show("management-server")["serverName"] == "mgmt2.example.test"

    # Administrators log in as before, with MFA; the SMTP password opens.
    new_carol = Api(new, new.addr, new.ports["http"], "carol-secret-1", user="carol")
    assert new_carol.call_raw("Ping").returncode == 1, "MFA is still required"
    assert new_carol.call("Ping", extra=["--totp", totp(secret, 30)]) == "pong"
    assert new.api.call("GetSystemSmtpConfiguration")["passwordSet"] is True
    assert [i["status"] for i in new.api.call("GetInstances")] == ["running"]
    assert read_mail(cas.addr, cas.ports["imaps"]) == expected_mail()
    new.api.call("StopInstances", "instanceFilter=acme")
    new.api.call("StartInstances", "instanceFilter=acme")
    wait_for(lambda: _try_read(cas), timeout=40, what="mail after a restart through the new one")

    # The old Management Server, started again, is refused by every role.
    old_fp = norm(old.fingerprint("management-server", "tcp"))
    old.config("start", "management-server")
    seen = []

    def old_refused():
        st = old.api.status()
        seen.append([(s["serverName"], s["state"], s.get("eventLink"), s.get("error"))
                     for kind in ("instanceHosts", "clientAccessServers") for s in st[kind]])
        return "connected" not in states(st) and "refusedByPeer" in states(st)
    try:
        wait_for(old_refused, timeout=60, what="the old Management Server refused")
    except AssertionError:
        raise AssertionError("old Management Server's view: %r" % seen[-3:])
    for s in (ih, cas):
        wait_for(lambda: [line for line in s.logs().splitlines()
                          if "refused" in line and old_fp in line], timeout=30,
                 what="%s logs the refusal" % s.name)
    # ... and the new one still has them all.
    st = wait_for(all_connected(new.api), timeout=30, what="still connected to the new one")
    assert st
    old.config("stop", "management-server")
    old.config("role", "remove", "management-server")


def test_backup_of_a_running_server_and_restore(single, make_server, tmp_path):
    """docs/operations.md, "Backup and restore": a running single server
    setup (127.0.0.1) is backed up with its instance frozen, then lost, and
    restored from the backup onto fresh directories."""
    from test_instances import data_dir
    wait_for(all_connected(single.api), timeout=40, what="every role connected")
    api = single.api
    base = data_dir(single, "acme")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=30, what="acme running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=" + USER_PW)
    write_mbox(os.path.join(base, "import", "m.mbox"), MESSAGES)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/m.mbox",
                    "folder=INBOX")["archived"] == MESSAGES
    imaps = single.ports["cimaps"]
    wait_for(lambda: _try_read_at("127.0.0.1", imaps), timeout=40, what="mail over IMAP")

    # The backup, while everything runs: freeze, copy, thaw.
    backup = tmp_path / "backup"
    backup.mkdir()
    config_tgz, data_tgz = str(backup / "config.tgz"), str(backup / "instances.tgz")
    bases = [i["baseDirectory"] for i in api.call("GetInstances")]
    assert bases == [base]
    assert api.call("FreezeInstances", "instanceFilter=*")[0]["status"] == "frozen"
    subprocess.run(["tar", "-C", single.dir, "--exclude=./run", "--exclude=./log", "-czf", config_tgz, "."],
                   check=True)
    subprocess.run(["tar", "-C", "/", "-czf", data_tgz] + [b.lstrip("/") for b in bases], check=True)
    assert api.call("ThawInstances", "instanceFilter=*")[0]["status"] == "running"
    # Work after the backup is not in it.
    write_mbox(os.path.join(base, "import", "later.mbox"), 3, start=500)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/later.mbox",
                    "folder=Later")["archived"] == 3

    # The server is lost: services, config directory and data all gone.
    single.config("stop")
    subprocess.run(["rm", "-rf", single.dir, base], check=True)

    # Restore onto a fresh config directory (another path) and the base
    # directories where they were.
    new = make_server("restored")
    os.makedirs(new.dir, mode=0o700)
    subprocess.run(["tar", "-C", new.dir, "-xzf", config_tgz], check=True)
    subprocess.run(["tar", "-C", "/", "-xzf", data_tgz], check=True)
    p = new.config("start", check=False)
    assert p.returncode == 0, p.stderr + new.logs()
    new.api = Api(new, "127.0.0.1", single.ports["mhttp"], "pw-single")
    wait_for(all_connected(new.api), timeout=60, what="every role connected after the restore")
    wait_for(lambda: new.api.call("GetInstanceConfiguration", "instanceID=acme")["status"] == "running",
             timeout=30, what="acme running after the restore")
    # The mail as it was at the backup, byte for byte; nothing from after it.
    wait_for(lambda: _try_read_at("127.0.0.1", imaps), timeout=40, what="mail over IMAP after the restore")
    m = imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=tls_context(), timeout=30)
    m.login("alice@acme", USER_PW)
    assert not any(b"Later" in line for line in m.list()[1])
    m.logout()
    assert new.api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    # The restored instance takes writes again.
    write_mbox(os.path.join(base, "import", "after.mbox"), 2, start=700)
    assert new.api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/after.mbox",
                        "folder=After")["archived"] == 2


def _try_read_at(addr, port):
    try:
        return read_mail(addr, port) == expected_mail()
    except (imaplib.IMAP4.error, OSError):
        return False
