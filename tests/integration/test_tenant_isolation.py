"""One tenant's abusive client does not stall another tenant (issue 10, 5).

A client of instance "globex" floods the Client Access Server: exports with
a thousand repeated IDs, many at once, and downloads it never reads;
thousands of idle TCP connections and half-open TLS handshakes to the HTTPS
port from many addresses; slowloris requests that send a byte now and then.
Meanwhile a user of instance "acme" keeps using IMAP (greeting, LOGIN,
SELECT, FETCH of 20 whole messages over TLS) and Web Access (a search).

Bound (generous, because the machines this runs on run other work, up to a
load of ten times their cores): the 95th percentile of each of acme's
operations under abuse stays below 2 x its baseline p95 + 1 s, where the
baseline is the worse of the p95s measured before and after the abuse (the
machine's own load drifts); the IMAP greeting's p95 stays within 2 s and
every greeting within 5 s. Before the fix, greetings took 20.9 s and
exports kept the server busy for minutes. Besides, the
limits themselves hold: a 65th connection from one address is closed at
once, a slowloris connection is closed by the 20 s request deadline, and
an export with repeated IDs holds each message once.

A login flood runs with the rest: wrong passwords and unknown names for
globex over Web Access and IMAP from eight addresses at once (issue 10,
section 3: the checks run on the instance's worker threads, and
throttling refuses the rest without a check).
"""
import imaplib
import multiprocessing
import resource
import socket
import ssl
import threading
import time
import zipfile
import io

import pytest

from daemonfix import SANITIZED
from webfix import Web, setup_web

pytestmark = pytest.mark.serial  # latency against a baseline: run alone

IDLE_ADDRESSES = 40     # 127.0.1.x sources for idle connections
IDLE_PER_ADDRESS = 60   # below the per-address cap of 64
# p95 under abuse < FACTOR x baseline p95 + EXTRA_BOUND; the sanitizers make
# every server's own work several times slower, contention costs with it
EXTRA_BOUND = 2.0 if SANITIZED else 1.0
FACTOR = 2.0
GREETING_P95_BOUND = 2.0
GREETING_MAX_BOUND = 5.0


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
    """The abusive client, in a process of its own (so that its threads do
    not slow the measuring client down through Python's interpreter lock)."""

    def __init__(self, port, imaps, ids):
        self.port, self.imaps, self.ids = port, imaps, ids
        self.stop = multiprocessing.get_context("fork").Event()
        self.exports_done = multiprocessing.get_context("fork").Value("i", 0)
        self.logins_tried = multiprocessing.get_context("fork").Value("i", 0)
        self.threads = []
        self.sockets = []
        self.lock = threading.Lock()
        self.process = None

    @property
    def exports(self):
        return self.exports_done.value

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
                    with self.exports_done.get_lock():
                        self.exports_done.value += 1
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

    def web_login_flood(self, source):
        """Wrong passwords and unknown names for globex, as fast as the
        server answers (each check is Argon2id: the instance's workers, and
        the throttling that refuses the rest unchecked)."""
        w = Web("127.0.0.1", self.port, source=source)
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                w.login("globex", "alice" if n % 2 else "nobody%d" % n, "wrong-password-%d" % n)
                with self.logins_tried.get_lock():
                    self.logins_tried.value += 1
            except OSError:
                pass

    def imap_login_flood(self, source):
        while not self.stop.is_set():
            try:
                m = imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=tls_context(), timeout=30)
                try:
                    m.login("alice@globex", "wrong-password")
                except imaplib.IMAP4.error:
                    pass
                with self.logins_tried.get_lock():
                    self.logins_tried.value += 1
                m.shutdown()
            except (OSError, imaplib.IMAP4.abort):
                pass

    def abuse_login_flood(self):
        """Issue 10, section 3: a login flood, from many addresses."""
        for i in range(4):
            self.run(self.web_login_flood, "127.0.4.%d" % (i + 1))
            self.run(self.imap_login_flood, "127.0.4.%d" % (i + 11))

    def main(self):
        self.run(self.idle_connections)
        for i in range(4):
            self.run(self.export_flood, "127.0.2.%d" % (i + 1))
        self.run(self.unread_exports, "127.0.2.10")
        self.run(self.slowloris, "127.0.2.20")
        self.run(self.abuse_login_flood)
        self.stop.wait()
        for t in self.threads:
            t.join(timeout=60)
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def start(self):
        self.process = multiprocessing.get_context("fork").Process(target=self.main, daemon=True)
        self.process.start()

    def end(self):
        self.stop.set()
        self.process.join(timeout=90)
        if self.process.is_alive():
            self.process.kill()


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
    before = victim.measure(8)

    abuse = Abuse(port, web["single"].ports["cimaps"], ids)
    abuse.start()
    try:
        time.sleep(5)
        # One address cannot hold more than 64 connections: of 70, 6 are
        # closed by the server at once (before any TLS).
        closed = held_connections_closed(port, "127.0.3.1", 70, wait=5)
        assert len(closed) == 6, closed
        under = victim.measure(12)
        # The slowloris connections must be gone by now (20 s deadline).
        time.sleep(max(0, 26 - 5))
        late = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.2.20", 0))
        late.close()
    finally:
        abuse.end()
    after = victim.measure(8)

    names = ("greeting", "fetch", "search")
    base = [max(p95(b), p95(a)) for b, a in zip(before, after)]
    report = {n: (round(b, 3), round(p95(u), 3)) for n, b, u in zip(names, base, under)}
    print("p95 baseline, under abuse:", report, "exports done:", abuse.exports,
          "logins tried:", abuse.logins_tried.value)
    assert abuse.exports > 0, "the export flood never got through"
    assert abuse.logins_tried.value > 0, "the login flood never got through"
    for n, b, u in zip(names, base, under):
        assert p95(u) < FACTOR * b + EXTRA_BOUND, (n, report)
    assert p95(under[0]) < GREETING_P95_BOUND, report
    assert max(under[0]) < GREETING_MAX_BOUND, report
    # and the service is still there for everyone
    assert victim.web.get("/acme/api/folders").status == 200


def held_connections_closed(port, source, count, wait=10):
    """Open `count` plain connections from `source`; the indexes of those the
    server closed within `wait` seconds (before any TLS)."""
    held = [socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
            for _ in range(count)]
    closed = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
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
    for s in held:
        s.close()
    return closed


def test_management_listener_limits(single):
    """The Management Server's HTTPS listener has the same limits: 64
    connections per address, and silent connections closed after the 20 s
    request deadline (checked within 35 s)."""
    port = single.ports["mhttp"]
    assert single.api.status()  # it answers
    assert len(held_connections_closed(port, "127.0.4.1", 70, wait=5)) == 6
    # and says so, once for the burst (a Console that cannot load is explained)
    assert single.logs().count("over the per-address limit (the last from 127.0.4.1)") == 1
    silent = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.4.2", 0))
    silent.settimeout(35)
    t = time.monotonic()
    try:
        assert silent.recv(1) == b""
    except ConnectionResetError:
        pass
    took = time.monotonic() - t
    assert 15 < took < 35, took
    silent.close()
    assert single.api.status()
