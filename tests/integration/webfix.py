"""A running single server with two instances, users and mail, for the Web
Access and client API tests (test_web_api.py, test_web_browser.py)."""
import base64
import email.utils
import http.client
import json
import os
import ssl

from daemonfix import all_connected, wait_for
from mailgen import write_mbox
from test_instances import data_dir, state

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def rich_messages(remote_url):
    """Messages with HTML (a remote image, a script), an inline image and
    attachments; returns {subject: bytes}."""
    out = {}
    date = email.utils.formatdate(1710000000, usegmt=True)
    out["HTML newsletter"] = (
        "From: News <news@example.org>\nTo: alice@acme.test\nSubject: HTML newsletter\n"
        "Date: %s\nMessage-ID: <html-1@coffer.test>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/related; boundary=\"R\"\n\n"
        "--R\nContent-Type: text/html; charset=utf-8\n\n"
        "<html><head><style>h1{color:#2f5fd0}</style></head><body>"
        "<h1 id=\"headline\">Spring offers</h1><p>Dear reader, our <b>best</b> offers.</p>"
        "<p><img id=\"logo\" src=\"cid:logo@coffer.test\" alt=\"logo\"></p>"
        "<p><img id=\"tracker\" src=\"%s/pixel.png\" alt=\"tracker\"></p>"
        "<script>fetch('%s/script-ran'); document.body.setAttribute('data-script','ran');</script>"
        "<img src=\"x\" onerror=\"fetch('%s/onerror-ran')\">"
        "<p><a href=\"https://example.org/offers\">See offers</a></p>"
        "</body></html>\n"
        "--R\nContent-Type: image/png\nContent-ID: <logo@coffer.test>\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--R--\n"
        % (date, remote_url, remote_url, remote_url, base64.b64encode(PNG_1PX).decode())).encode()
    out["Contract with attachment"] = (
        "From: Bob <bob@example.org>\nTo: alice@acme.test\nSubject: Contract with attachment\n"
        "Date: %s\nMessage-ID: <att-1@coffer.test>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=\"M\"\n\n"
        "--M\nContent-Type: text/plain; charset=utf-8\n\nPlease find the contract attached.\n"
        "--M\nContent-Type: application/pdf; name=\"contract.pdf\"\n"
        "Content-Disposition: attachment; filename=\"contract.pdf\"\n"
        "Content-Transfer-Encoding: base64\n\n%s\n--M--\n"
        % (email.utils.formatdate(1710003600, usegmt=True),
           base64.b64encode(b"%PDF-1.4\n% the contract\n").decode())).encode()
    return out


def write_rich_mbox(path, remote_url):
    msgs = rich_messages(remote_url)
    with open(path, "wb") as f:
        for raw in msgs.values():
            f.write(b"From sender@example.org Thu Jan  1 00:00:00 2024\n" + raw + b"\n")
    return msgs


class Web:
    """HTTPS client for the Client Access Server (self-signed: not verified;
    the tests are about what the server answers)."""

    def __init__(self, host, port, source="127.0.0.1"):
        # Failed logins are throttled per address: tests that fail on purpose
        # come from addresses of their own (all of 127.0.0.0/8 is loopback).
        self.host, self.port, self.source = host, port, source
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, body=None, headers=None, basic=None, json_body=True):
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=30,
                                           source_address=(self.source, 0))
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        if basic:
            h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % basic).encode()).decode()
        data = None
        if body is not None:
            data = json.dumps(body).encode() if json_body else body
            h.setdefault("Content-Type", "application/json")
        if method != "GET" and self.csrf and "X-CSRF-Token" not in h:
            h["X-CSRF-Token"] = self.csrf
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";")[0]
                if "Max-Age=0" in v:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        conn.close()
        r.raw = raw
        try:
            r.json = json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/json") else None
        except ValueError:
            r.json = None
        return r

    def login(self, instance, user, password, totp=None):
        body = {"userName": user, "password": password}
        if totp:
            body["totp"] = totp
        r = self.request("POST", "/%s/api/login" % instance, body)
        if r.status == 200:
            self.csrf = r.json["csrfToken"]
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)


def setup_web(single, remote_url="http://127.0.0.1:9"):
    """Instances acme (alias "acme-corp") and globex, users and mail. Returns
    a dict the tests use."""
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    for iid, extra in (("acme", ["alias=acme-corp", "displayName=Acme Corporation"]), ("globex", [])):
        api.call("CreateInstance", "instanceID=" + iid, "instanceHost=127.0.0.1",
                 "baseDirectory=" + data_dir(single, iid), *extra)
    for iid in ("acme", "globex"):
        wait_for(lambda: state(single, iid) == "running", what=iid + " running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1",
             "fullName=Alice Archer", "emailAddresses=alice@acme.test",
             "loginPrivileges=web,imap,api",
             "privileges=login,archive,export")
    api.call("CreateUser", "instanceID=acme", "userName=bob", "password=bob-pass-22",
             "fullName=Bob Baker", "emailAddresses=bob@acme.test", "loginPrivileges=web,api",
             "privileges=login,archive,export")
    api.call("CreateUser", "instanceID=acme", "userName=audrey", "password=audrey-pass-3",
             "privileges=login,archive,auditor", "loginPrivileges=web,api")
    api.call("CreateUser", "instanceID=globex", "userName=alice", "password=globex-pass-4",
             "privileges=login,archive,export", "loginPrivileges=web,api")
    base = data_dir(single, "acme")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    write_mbox(os.path.join(base, "import", "plain.mbox"), 120)
    rich = write_rich_mbox(os.path.join(base, "import", "rich.mbox"), remote_url)
    write_mbox(os.path.join(base, "import", "bob.mbox"), 7, start=500)
    api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/plain.mbox",
             "folder=Inbox")
    api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/rich.mbox",
             "folder=Inbox/Newsletters")
    api.call("ImportFiles", "instanceID=acme", "userName=bob", "path=import/bob.mbox",
             "folder=Inbox")
    gbase = data_dir(single, "globex")
    os.makedirs(os.path.join(gbase, "import"), exist_ok=True)
    write_mbox(os.path.join(gbase, "import", "g.mbox"), 5, start=900)
    api.call("ImportFiles", "instanceID=globex", "userName=alice", "path=import/g.mbox",
             "folder=Inbox")
    web = Web("127.0.0.1", single.ports["chttp"])
    probe = Web("127.0.0.1", single.ports["chttp"], source="127.0.0.250")

    # The Management Server tells the Client Access Server where instances run.
    def routed():
        r = probe.get("/acme/api/session", basic=("alice", "alice-pass-1"))
        g = probe.get("/globex/api/session", basic=("alice", "globex-pass-4"))
        return r.status == 200 and g.status == 200
    wait_for(routed, timeout=30, what="instances reachable through the Client Access Server")
    return {"web": web, "rich": rich, "port": single.ports["chttp"]}
