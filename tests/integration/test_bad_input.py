"""Bad input of every kind gets a clear error, changes nothing and crashes nothing."""
import base64
import http.client
import json
import os
import shutil
import socket
import ssl

from daemonfix import all_connected, free_port, wait_for


def stopped_single(make_server):
    s = make_server("bad")
    s.config("init", "--mode", "single", "--server-name", "bad.test", "--admin-password", "pw-stopped")
    # High free ports: a Coffer on the default ports may run on this machine.
    s.config("role", "configure", "management-server", "--tcp-listeners", "127.0.0.1:%d" % free_port(),
             "--http-listeners", "127.0.0.1:%d" % free_port())
    s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % free_port())
    s.config("role", "configure", "client-access-server", "--tcp-listeners", "127.0.0.1:%d" % free_port())
    return s


def test_config_tool_rejects_bad_values_and_keeps_settings(make_server):
    s = make_server("fresh")
    p = s.config("role", "add", "instance-host", check=False)
    assert p.returncode == 1 and "coffer config init" in p.stderr
    p = s.config("init", "--mode", "double", check=False)
    assert p.returncode == 1 and "'double'" in p.stderr and "single" in p.stderr
    s.config("init", "--mode", "multi")
    p = s.config("init", "--mode", "multi", check=False)
    assert p.returncode == 1 and "already set up" in p.stderr
    p = s.config("role", "add", "mailserver", check=False)
    assert p.returncode == 1 and "unknown role 'mailserver'" in p.stderr
    s.config("role", "add", "instance-host", "--server-name", "ih.test", "--tcp-listeners", "127.0.0.1:%d" % 40001)
    path = os.path.join(s.dir, "instance-host.json")
    before = open(path, "rb").read()
    cases = [
        (["--colour", "red"], "unknown option --colour"),
        (["--http-listeners", "*:80"], "no field 'http-listeners' for role instance-host"),
        (["--tcp-listeners", "127.0.0.1:99999"], "99999"),
        (["--tcp-listeners", "nonsense"], "invalid listener 'nonsense'"),
        (["--tcp-listeners", ""], "empty listener list"),
        (["--management-port", "0"], "management-port"),
        (["--management-fingerprint", "xyz"], "64 hex digits"),
        (["--server-name", "bad name!"], "server-name"),
        ([], "nothing to change"),
    ]
    for args, needle in cases:
        p = s.config("role", "configure", "instance-host", *args, check=False)
        assert p.returncode != 0, args
        assert needle in p.stderr, (args, p.stderr)
        assert open(path, "rb").read() == before, args
    p = s.config("role", "add", "instance-host", check=False)
    assert p.returncode == 1 and "already set up" in p.stderr
    p = s.config("frobnicate", check=False)
    assert p.returncode == 2 and "unknown command" in p.stderr


def test_port_in_use_fails_the_start_with_the_reason(make_server):
    s = stopped_single(make_server)
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % port)
        p = s.config("start", "instance-host", check=False)
        assert p.returncode == 1
        assert "127.0.0.1:%d: Address already in use" % port in p.stderr
        assert "stopped" in s.config("status", "instance-host", check=False).stdout
    finally:
        blocker.close()


def test_broken_certificates_fail_the_start(make_server):
    s = stopped_single(make_server)
    certs = os.path.join(s.dir, "certs")
    shutil.copy(os.path.join(certs, "management-server-tcp.key"), os.path.join(certs, "instance-host-tcp.key"))
    p = s.config("start", "instance-host", check=False)
    assert p.returncode == 1 and "tcp certificate" in p.stderr and "match" in p.stderr
    with open(os.path.join(certs, "client-access-server-http.pem"), "w") as f:
        f.write("this is not a certificate\n")
    p = s.config("start", "client-access-server", check=False)
    assert p.returncode == 1 and "http certificate" in p.stderr
    os.unlink(os.path.join(certs, "management-server-tcp.pem"))
    p = s.config("start", "management-server", check=False)
    assert p.returncode == 1 and "management-server-tcp.pem" in p.stderr


def test_corrupt_management_database_is_never_overwritten(make_server):
    s = stopped_single(make_server)
    db = os.path.join(s.dir, "management-database.json")
    for garbage in (b'{"schemaVersion": 1, "instanceHosts": [', b"\x00\xff\xfe", b'{"schemaVersion": 99}',
                    b'{"schemaVersion": 1, "systemAdministrators": "admin"}'):
        with open(db, "wb") as f:
            f.write(garbage)
        p = s.config("start", "management-server", check=False)
        assert p.returncode == 1, garbage
        assert "management-database.json" in p.stderr, p.stderr
        assert open(db, "rb").read() == garbage
    os.unlink(db)
    p = s.config("start", "management-server", check=False)
    assert p.returncode == 1 and "cannot read the management database" in p.stderr


def _request(single, method, path, body=b"", headers=None, auth=("admin", "pw-single")):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection("127.0.0.1", single.ports["mhttp"], context=ctx, timeout=30)
    h = dict(headers or {})
    if auth:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def test_malformed_api_requests(single):
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    st, body = _request(single, "POST", "/api/invoke/Ping", auth=None)
    assert st == 401 and json.loads(body)["statusCode"] == "failed"
    assert _request(single, "POST", "/api/invoke/Ping", auth=("admin", "wrong"))[0] == 401
    assert _request(single, "POST", "/api/invoke/Ping", auth=("nobody", "pw-single"))[0] == 401
    assert _request(single, "POST", "/api/invoke/Ping", headers={"Authorization": "Basic !!!"}, auth=None)[0] == 401
    st, body = _request(single, "POST", "/api/invoke/NoSuchFunction")
    assert st == 404 and "unknown function" in json.loads(body)["error"]["message"]
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost", b"serverName=x", form)
    assert st == 400 and "missing argument 'port'" in json.loads(body)["error"]["message"]
    st, body = _request(single, "POST", "/api/invoke/Ping", b"colour=red", form)
    assert st == 400 and "no argument 'colour'" in json.loads(body)["error"]["message"]
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost",
                        b"serverName=x&port=eighty&fingerprint=" + b"a" * 64, form)
    assert st == 400 and "not a whole number" in json.loads(body)["error"]["message"]
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost", b"serverName=%zz", form)
    assert st == 400
    st, body = _request(single, "POST", "/api/invoke/Ping", b"port=1&port=2", form)
    assert st == 400
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost", b'{"serverName": 5}',
                        {"Content-Type": "application/json"})
    assert st == 400 and "expected a string" in json.loads(body)["error"]["message"]
    st, body = _request(single, "POST", "/api/invoke/Ping", b"{not json", {"Content-Type": "application/json"})
    assert st == 400
    st, body = _request(single, "POST", "/api/invoke/Ping", b"[1]", {"Content-Type": "application/json"})
    assert st == 400
    st, body = _request(single, "POST", "/api/invoke/Ping", b"x", {"Content-Type": "text/plain"})
    assert st == 400
    assert _request(single, "GET", "/api/invoke/Ping")[0] == 405
    assert _request(single, "GET", "/nothing-here")[0] == 404
    st, _ = _request(single, "POST", "/api/invoke/Ping", b"a=" + b"x" * (9 * 1024 * 1024), form)
    assert st == 413
    # Values the functions check themselves: a failed envelope, HTTP 200.
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost",
                        b"serverName=bad/name&port=1&fingerprint=" + b"a" * 64, form)
    assert st == 200 and json.loads(body)["statusCode"] == "failed"
    st, body = _request(single, "POST", "/api/invoke/CreateInstanceHost",
                        b"serverName=ok&port=70000&fingerprint=" + b"a" * 64, form)
    assert json.loads(body)["statusCode"] == "failed"
    st, body = _request(single, "POST", "/api/invoke/PairWithManagementServer",
                        b"serverType=Toaster&serverName=ok&port=1&fingerprint=" + b"a" * 64, form)
    assert "Toaster" in json.loads(body)["error"]["message"]
    # A JSON body with typed values works.
    st, body = _request(single, "POST", "/api/invoke/GetInstanceHosts", b"{}", {"Content-Type": "application/json"})
    assert st == 200 and json.loads(body)["statusCode"] == "succeeded"
    # Nothing of this reached the database, and the server still answers.
    assert [h["serverName"] for h in single.api.call("GetInstanceHosts")] == ["127.0.0.1"]


def test_garbage_on_role_ports(single):
    wait_for(all_connected(single.api), what="every role connected")
    for port in (single.ports["mtcp"], single.ports["itcp"], single.ports["ctcp"]):
        # Plain bytes instead of TLS.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n" + os.urandom(4096))
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
        # TLS without a client certificate: refused.
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw) as t:
                    t.sendall(b"\x00\x00\x00\x05\x01{}{}")
                    t.recv(100)
        except (ssl.SSLError, ConnectionResetError, OSError):
            pass
    # Every daemon is still up and the links too.
    wait_for(all_connected(single.api), what="still connected after garbage")
    assert single.config("status").returncode == 0
    msgs = [m["text"] for m in single.api.status()["messages"]]
    assert any("refused" in m for m in msgs)
