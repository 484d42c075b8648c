"""One tenant's abusive client does not stall another tenant (issue 10, 5).

A client of instance "globex" floods the Client Access Server: exports with
a thousand repeated IDs, many at once, and downloads it never reads;
thousands of idle TCP connections and half-open TLS handshakes to the HTTPS
port from many addresses; slowloris requests that send a byte now and then.
Meanwhile a user of instance "acme" keeps using IMAP (greeting, LOGIN,
SELECT, FETCH of 20 whole messages over TLS) and Web Access (a search).

Bound (generous, because this machine runs other work): the 95th
percentile of each of acme's operations under abuse stays below its
baseline p95 + 1 s, and every IMAP greeting arrives within 2 s. Besides, the
limits themselves hold: a 65th connection from one address is closed at
once, a slowloris connection is closed by the 20 s request deadline, and
an export with repeated IDs holds each message once.

The login flood of issue 10 belongs in `abuse_login_flood()` (a later
change); the measurement loop runs it with the rest when it exists.
"""
import imaplib
import resource
import socket
import ssl
import statistics
import threading
import time
import zipfile
import io

import pytest

from webfix import Web, setup_web

IDLE_ADDRESSES = 40     # 127.0.1.x sources for idle connections
IDLE_PER_ADDRESS = 60   # below the per-address cap of 64
EXTRA_BOUND = 1.0       # seconds over the baseline p95
GREETING_BOUND = 2.0


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture
def web(single):
    env = setup_web(single)
    env["single"] = single
    return env


def p95(samples):
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


class Victim:
    """acme's alice: IMAP over TLS and a Web Access search, timed."""

    def __init__(self, single, port):
        self.imaps = single.ports["cimaps"]
        self.web = Web("127.0.0.1", port, source="127.0.0.21")
        assert self.web.login("acme", "alice", "alice-pass-1").status == 200

    def greeting(self):
        t = time.monotonic()
        m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=tls_context(), timeout=30)
        took = time.monotonic() - t
        return m, took

    def sample(self):
        m, greet = self.greeting()
        t = time.monotonic()
        m.login("alice@acme", "alice-pass-1")
        typ, _ = m.select("Inbox", readonly=True)
        assert typ == "OK"
        typ, data = m.fetch("1:20", "(BODY.PEEK[])")
        assert typ == "OK" and sum(1 for d in data if isinstance(d, tuple)) == 20
        fetch = time.monotonic() - t
        m.logout()
        t = time.monotonic()
        r = self.web.get("/acme/api/messages?query=subject:invoice")
        assert r.status == 200 and r.json["total"] == 24
        search = time.monotonic() - t
        return greet, fetch, search

    def measure(self, rounds):
        greet, fetch, search = [], [], []
        for _ in range(rounds):
            g, f, s = self.sample()
            greet.append(g)
            fetch.append(f)
            search.append(s)
        return greet, fetch, search


class Abuse:
    def __init__(self, port, ids):
        self.port, self.ids = port, ids
        self.stop = threading.Event()
        self.threads = []
        self.sockets = []
        self.exports = 0
        self.lock = threading.Lock()

    def run(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def export_flood(self, source):
        w = Web("127.0.0.1", self.port, source=source)
        assert w.login("globex", "alice", "globex-pass-4").status == 200
        query = ",".join(str(i) for i in (self.ids * 1000)[:1000])
        while not self.stop.is_set():
            try:
                r = w.get("/globex/api/export?format=zip&ids=" + query)
                if r.status == 200:
                    with self.lock:
                        self.exports += 1
            except OSError:
                pass

    def unread_exports(self, source):
        """Downloads started and never read: the server must not buffer them."""
        w = Web("127.0.0.1", self.port, source=source)
        assert w.login("globex", "alice", "globex-pass-4").status == 200
        cookie = "; ".join("%s=%s" % kv for kv in w.cookies.items())
        query = ",".join(str(i) for i in self.ids)
        while not self.stop.is_set():
            try:
                s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                                                      source_address=(source, 0)))
                s.sendall(("GET /globex/api/export?format=mbox&ids=%s HTTP/1.1\r\nHost: x\r\n"
                           "Cookie: %s\r\n\r\n" % (query, cookie)).encode())
                self.sockets.append(s)
            except OSError:
                pass
            self.stop.wait(1)

    def idle_connections(self):
        """Thousands of idle TCP connections and half-open TLS handshakes."""
        for a in range(IDLE_ADDRESSES):
            for _ in range(IDLE_PER_ADDRESS):
                if self.stop.is_set():
                    return
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5,
                                                 source_address=("127.0.1.%d" % (a + 1), 0))
                    if len(self.sockets) % 2:
                        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
                    self.sockets.append(s)
                except OSError:
                    pass

    def slowloris(self, source):
        conns = []
        for _ in range(30):
            try:
                s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                                                      source_address=(source, 0)))
                s.sendall(b"GET /globex/api/session HTTP/1.1\r\n")
                conns.append(s)
            except OSError:
                pass
        while not self.stop.is_set() and conns:
            for s in list(conns):
                try:
                    s.sendall(b"X-a: b\r\n")
                except OSError:
                    conns.remove(s)
            self.stop.wait(2)

    def abuse_login_flood(self):
        """Left for the login-flood change (issue 10, section 3)."""

    def start(self):
        self.run(self.idle_connections)
        for i in range(4):
            self.run(self.export_flood, "127.0.2.%d" % (i + 1))
        self.run(self.unread_exports, "127.0.2.10")
        self.run(self.slowloris, "127.0.2.20")
        self.run(self.abuse_login_flood)

    def end(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


def test_abusive_tenant_does_not_stall_another(web):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE_ADDRESSES * IDLE_PER_ADDRESS + 500
    if hard < needed:
        pytest.skip("needs %d file descriptors, the hard limit is %d" % (needed, hard))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = web["port"]
    g = Web("127.0.0.1", port, source="127.0.0.22")
    assert g.login("globex", "alice", "globex-pass-4").status == 200
    ids = [m["id"] for m in g.get("/globex/api/messages?limit=50").json["messages"]]
    assert len(ids) == 5

    # Repeated IDs count once.
    r = g.get("/globex/api/export?format=zip&ids=" + ",".join(str(ids[0]) for _ in range(1000)))
    assert r.status == 200
    assert len(zipfile.ZipFile(io.BytesIO(r.raw)).namelist()) == 1

    victim = Victim(web["single"], port)
    victim.measure(2)  # warm up (archive opened, caches)
    base = victim.measure(12)

    abuse = Abuse(port, ids)
    abuse.start()
    try:
        time.sleep(5)
        # One address cannot hold more than 64 connections: of 70, at
        # least 6 are closed by the server at once (before any TLS).
        held = [socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.3.1", 0))
                for _ in range(70)]
        closed = set()
        deadline = time.monotonic() + 10
        while len(closed) < 6 and time.monotonic() < deadline:
            for i, s in enumerate(held):
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        closed.add(i)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(i)
            time.sleep(0.2)
        assert len(closed) == 6, closed
        for s in held:
            s.close()
        under = victim.measure(12)
        # The slowloris connections must be gone by now (20 s deadline).
        time.sleep(max(0, 26 - 5))
        late = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.2.20", 0))
        late.close()
    finally:
        abuse.end()

    names = ("greeting", "fetch", "search")
    report = {n: (round(p95(b), 3), round(p95(u), 3)) for n, b, u in zip(names, base, under)}
    print("p95 baseline, under abuse:", report, "exports done:", abuse.exports)
    assert abuse.exports > 0, "the export flood never got through"
    for n, b, u in zip(names, base, under):
        assert p95(u) < p95(b) + EXTRA_BOUND, (n, report)
    assert max(under[0]) < GREETING_BOUND, report
    # and the service is still there for everyone
    assert victim.web.get("/acme/api/folders").status == 200
