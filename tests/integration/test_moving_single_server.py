"""docs/operations.md, "Moving roles" / "Moving a whole single server": a
running single server setup is moved, command for command as documented, to
a new server with another address, another host name and another base path
for the instances' data.

It runs twice (netnsfix): with the two "servers" network namespaces of
their own ("netns": each its own address on a bridged LAN and its own host
name, old.example.test and new.example.test, which the single server setup
takes as its server name; the test process reaches them as a client on that
LAN, and the SMTP relay listens there too), and as separate config
directories on distinct loopback addresses ("loopback": the old one on
127.0.0.1, the new one on 127.0.0.8). The netns variant skips where
namespaces cannot be made, saying why. Waits are generous (up to 60 s)
because the suite runs on a loaded 2-core machine."""
import imaplib
import os
import socket
import subprocess

import pytest

from daemonfix import Api, all_connected, free_port, start_single, wait_for
from test_moving_hosts import chown_coffer
from test_moving_roles import tls_context, totp
from mailgen import write_mbox
from webfix import Web

NEW_ADDR = "127.0.0.8"
ROLES = ("management-server", "instance-host", "client-access-server")
SMTP_PW = "smtp-relay-secret-5"

# An SMTP sink that takes mail only after AUTH with the right password, so
# the test mail proves the password survived the move.
SMTP_SINK = r"""
import sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, out, password = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()
def auth(server, session, envelope, mechanism, data):
    ok = data.login == b"relay" and data.password == password
    with open(out, "ab") as f:
        f.write(b"AUTH " + data.login + (b" ok\n" if ok else b" refused\n"))
    return AuthResult(success=ok)
class Sink:
    async def handle_DATA(self, server, session, envelope):
        with open(out, "ab") as f:
            f.write(envelope.content + b"\n.\n")
        return "250 OK"
c = Controller(Sink(), hostname=sys.argv[4], port=port, authenticator=auth,
               auth_required=True, auth_require_tls=False)
c.start()
while True:
    time.sleep(3600)
"""


def imap_fetch_all(addr, port, login, password):
    m = imaplib.IMAP4_SSL(addr, port, ssl_context=tls_context(), timeout=30)
    try:
        m.login(login, password)
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        typ, data = m.fetch("1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [d[1] for d in data if isinstance(d, tuple)]
    finally:
        m.logout()


def try_fetch(*args):
    try:
        return imap_fetch_all(*args)
    except (imaplib.IMAP4.error, OSError):
        return None


@pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)
def test_moving_a_whole_single_server(net, make_server, tmp_path):
    if net.kind == "loopback":
        single = start_single(make_server)
    else:
        single = start_single(make_server, net.server("old", hostname="old.example.test"))
    api = single.api
    p = single.ports
    wait_for(all_connected(api), timeout=60, what="every role connected")
    net.assert_placed(single, *ROLES)
    if net.kind == "netns":  # init took the server's own host name
        assert single.show("management-server")["serverName"] == "old.example.test"
    old_top = os.path.join(os.path.dirname(single.dir), "srv")
    new_top = os.path.join(os.path.dirname(single.dir), "data")
    os.makedirs(os.path.join(old_top, "coffer"))
    chown_coffer(os.path.join(old_top, "coffer"))
    for iid in ("acme", "globex"):
        api.call("CreateInstance", "instanceID=" + iid, "instanceHost=" + single.addr,
                 "baseDirectory=%s/coffer/%s" % (old_top, iid))
        wait_for(lambda: api.call("GetInstanceConfiguration", "instanceID=" + iid)["status"] == "running",
                 timeout=60, what=iid + " running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1",
             "loginPrivileges=web,imap,api", "privileges=login,archive,export")
    api.call("CreateUser", "instanceID=globex", "userName=bob", "password=bob-pass-2",
             "loginPrivileges=web,imap,api", "privileges=login,archive,export")
    write_mbox(os.path.join(old_top, "coffer", "acme", "import", "a.mbox"), 9)
    write_mbox(os.path.join(old_top, "coffer", "globex", "import", "b.mbox"), 4, start=300)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/a.mbox",
                    "folder=INBOX")["archived"] == 9
    assert api.call("ImportFiles", "instanceID=globex", "userName=bob", "path=import/b.mbox",
                    "folder=INBOX")["archived"] == 4

    # alice turns MFA on and makes an app password (Web Access); bob keeps a password.
    w = Web(single.addr, p["chttp"], source=net.client_addr)
    wait_for(lambda: w.login("acme", "alice", "alice-pass-1").status == 200, timeout=60,
             what="alice's web login")
    user_secret = w.request("POST", "/acme/api/mfa/begin", {"password": "alice-pass-1"}).json["secret"]
    assert w.request("POST", "/acme/api/mfa/activate", {"code": totp(user_secret)}).status == 200
    r = w.request("POST", "/acme/api/app-passwords", {"name": "mail-client", "password": "alice-pass-1"})
    assert r.status == 200
    app_pw = r.json["password"]
    acme_mail = wait_for(lambda: try_fetch(single.addr, p["cimaps"], "alice@acme", app_pw), timeout=60,
                         what="alice's mail over IMAP with her app password")
    globex_mail = wait_for(lambda: try_fetch(single.addr, p["cimaps"], "bob@globex", "bob-pass-2"),
                           timeout=60, what="bob's mail over IMAP")
    assert len(acme_mail) == 9 and len(globex_mail) == 4
    # An administrator with MFA, and SMTP settings with a password.
    api.call("CreateSystemAdministrator", "userName=carol", "password=carol-secret-1")
    admin_secret = api.call("InitializeSystemAdministratorMFA", "userName=carol")["secret"]
    carol = Api(single, single.addr, p["mhttp"], "carol-secret-1", user="carol")
    assert carol.call("Ping", extra=["--totp", totp(admin_secret)]) == "pong"
    smtp_port, sink_out = free_port(), str(tmp_path / "smtp-sink.txt")
    api.call("SetSystemSmtpConfiguration", "host=" + net.client_addr, "port=%d" % smtp_port, "security=none",
             "fromAddress=coffer@example.test", "userName=relay", "password=" + SMTP_PW)

    # ---- the procedure, as docs/operations.md has it ----
    backup = tmp_path / "move"
    backup.mkdir()
    config_tgz, data_tgz = str(backup / "config.tgz"), str(backup / "instances.tgz")
    # On the old server.
    single.config("stop")
    subprocess.run(["tar", "-C", single.dir, "--exclude=./run", "--exclude=./log", "-czf", config_tgz, "."],
                   check=True)
    subprocess.run(["tar", "-C", old_top, "-czf", data_tgz, "coffer"], check=True)
    # On the new server: the config directory, the data under another path.
    new = net.server("new-server", NEW_ADDR, hostname="new.example.test")
    new_addr = new.addr
    subprocess.run(["install", "-d", "-m", "0700", new.dir], check=True)
    subprocess.run(["tar", "-C", new.dir, "-xzf", config_tgz], check=True)
    subprocess.run(["install", "-d", new_top], check=True)
    subprocess.run(["tar", "-C", new_top, "-xzf", data_tgz], check=True)
    out = new.config("relocate", "--from", old_top + "/coffer", "--to", new_top + "/coffer").stdout
    assert "relocated 2 instance(s)" in out, out
    if net.kind == "netns":  # the server's own host name, as the roles would take it
        assert new.sh("hostname").stdout.strip() == "new.example.test"
    new.config("rename", "new.example.test")
    assert new.show("instance-host")["serverName"] == "new.example.test"
    # Its listeners name its own address (with '*:PORT' listeners, skip this).
    new.config("role", "configure", "management-server",
               "--tcp-listeners", "%s:%d" % (new_addr, p["mtcp"]),
               "--http-listeners", "%s:%d" % (new_addr, p["mhttp"]))
    new.config("role", "configure", "instance-host", "--tcp-listeners", "%s:%d" % (new_addr, p["itcp"]))
    new.config("role", "configure", "client-access-server",
               "--tcp-listeners", "%s:%d" % (new_addr, p["ctcp"]),
               "--http-listeners", "%s:%d" % (new_addr, p["chttp"]),
               "--imap-listeners", "%s:%d" % (new_addr, p["cimap"]),
               "--imaps-listeners", "%s:%d" % (new_addr, p["cimaps"]))
    r = new.config("start", check=False)
    assert r.returncode == 0, r.stdout + r.stderr + new.logs()
    net.assert_placed(new, *ROLES)

    # ---- afterwards ----
    new.api = Api(new, new_addr, p["mhttp"], "pw-single")
    st = wait_for(all_connected(new.api), timeout=60, what="every role connected on the new server")
    assert [h["serverName"] for h in st["instanceHosts"]] == [new_addr], st
    for iid in ("acme", "globex"):
        wait_for(lambda: new.api.call("GetInstanceConfiguration", "instanceID=" + iid)["status"] == "running",
                 timeout=60, what=iid + " running on the new server")
        conf = new.api.call("GetInstanceConfiguration", "instanceID=" + iid)
        assert conf["baseDirectory"] == "%s/coffer/%s" % (new_top, iid) and conf["instanceHost"] == new_addr
        assert new.api.call("VerifyStores", "instanceID=" + iid)["problems"] == 0
    # IMAP: the mail byte for byte, with the app password and the plain password.
    assert wait_for(lambda: try_fetch(new_addr, p["cimaps"], "alice@acme", app_pw), timeout=60,
                    what="alice over IMAP on the new server") == acme_mail
    assert try_fetch(new_addr, p["cimaps"], "bob@globex", "bob-pass-2") == globex_mail
    # Failed logins are throttled per address: on loopback these come from one of their own.
    source = new_addr if net.kind == "loopback" else net.client_addr
    # MFA still holds: alice's password alone does not open IMAP or Web Access.
    assert try_fetch(new_addr, p["cimaps"], "alice@acme", "alice-pass-1") is None
    w2 = Web(new_addr, p["chttp"], source=source)
    r = w2.login("acme", "alice", "alice-pass-1")
    assert r.status == 401 and r.json["error"]["code"] == "mfa-required", r.status
    assert w2.login("acme", "alice", "alice-pass-1", totp=totp(user_secret, 30)).status == 200
    assert w2.get("/acme/api/session").json["user"]["mfaEnabled"] is True
    assert Web(new_addr, p["chttp"], source=source).login("globex", "bob", "bob-pass-2").status == 200
    # The administrator with MFA.
    carol2 = Api(new, new_addr, p["mhttp"], "carol-secret-1", user="carol")
    assert carol2.call_raw("Ping").returncode == 1, "MFA is still required"
    assert carol2.call("Ping", extra=["--totp", totp(admin_secret, 30)]) == "pong"
    # The SMTP test mail goes out with the stored password (the sink requires AUTH).
    sink = subprocess.Popen(["/usr/bin/python3", "-c", SMTP_SINK, str(smtp_port), sink_out, SMTP_PW,
                             net.client_addr])
    try:
        wait_for(lambda: socket.socket().connect_ex((net.client_addr, smtp_port)) == 0, timeout=30,
                 what="the SMTP sink")
        assert new.api.call("TestSystemSmtpConfiguration", "to=ops@example.test")["sentTo"] == "ops@example.test"
        text = open(sink_out, "rb").read()
        assert text.startswith(b"AUTH relay ok\n") and b"ops@example.test" in text, text[:300]
    finally:
        sink.terminate()
        sink.wait()
    # Nothing is left of the old server's paths in the new one's registry.
    for name in ("management-database.json", "instance-host-instances.json"):
        assert old_top not in open(os.path.join(new.dir, name)).read(), name
