"""Exports (docs/client-api.md, `export`): built in the instance, streamed by
the Client Access Server as fast as the client reads, repeated IDs counted
once, the messages' own dates, a limit of exports under way per user, and
an export that ends when its client leaves."""
import email.utils
import io
import mailbox
import os
import socket
import ssl
import tempfile
import time
import zipfile

import pytest

from daemonfix import wait_for
from mailgen import message as mailgen_message, write_mbox
from webfix import Web, setup_web


@pytest.fixture
def web(single):
    env = setup_web(single)
    env["single"] = single
    return env


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def date_of(raw):
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"date:"):
            return email.utils.parsedate_to_datetime(line[5:].decode().strip()).timestamp()
    raise AssertionError("no Date header")


def test_repeated_ids_and_dates(web):
    w = Web("127.0.0.1", web["port"], source="127.0.0.31")
    assert w.login("acme", "bob", "bob-pass-22").status == 200
    ids = [m["id"] for m in w.get("/acme/api/messages?limit=50").json["messages"]][:3]
    assert len(ids) == 3
    query = ",".join(str(i) for i in (ids * 300)[:900])
    z = w.get("/acme/api/export?format=zip&ids=" + query)
    assert z.status == 200 and int(z.getheader("Content-Length")) == len(z.raw)
    with zipfile.ZipFile(io.BytesIO(z.raw)) as zf:
        infos = zf.infolist()
        assert sorted(i.filename for i in infos) == sorted("Inbox/%d.eml" % i for i in ids)
        for info in infos:
            # the message's Date (zip keeps local time, 2-second steps)
            expected = time.localtime(date_of(zf.read(info)))[:6]
            got = info.date_time
            assert abs(time.mktime(got + (0, 0, -1)) - time.mktime(expected + (0, 0, -1))) <= 2, \
                (info.filename, got, expected)
    # HEAD: the size, and the export ends at once (else the third would be busy)
    for _ in range(3):
        h = w.request("HEAD", "/acme/api/export?format=zip&ids=" + query)
        assert h.status == 200 and int(h.getheader("Content-Length")) == len(z.raw) and h.raw == b""
    m = w.get("/acme/api/export?format=mbox&ids=" + query)
    assert m.status == 200
    with tempfile.NamedTemporaryFile(suffix=".mbox") as f:
        f.write(m.raw)
        f.flush()
        box = mailbox.mbox(f.name)
        msgs = list(box)
        assert len(msgs) == 3
        for msg in msgs:
            stamp = msg.get_from().split(" ", 1)[1]
            expected = time.asctime(time.gmtime(email.utils.parsedate_to_datetime(msg["Date"]).timestamp()))
            assert stamp.split() == expected.split(), (stamp, expected)
        box.close()


def start_unread_download(port, cookies, path, source):
    """Send a GET and read only the head of the answer: the rest stays with
    the server (which must not buffer it)."""
    s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30,
                                                         source_address=(source, 0)))
    cookie = "; ".join("%s=%s" % kv for kv in cookies.items())
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n" % (path, cookie)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    return s, head


def test_exports_under_way_are_limited_and_end_with_their_client(web):
    api = web["single"].api
    from test_instances import data_dir
    base = data_dir(web["single"], "acme")
    # two messages of about 13 MiB: many pieces of 1 MiB each
    write_mbox(os.path.join(base, "import", "big2.mbox"), 2, size_pad=1100000, start=8000)
    api.call("ImportFiles", "instanceID=acme", "userName=bob", "path=import/big2.mbox", "folder=Big")
    w = Web("127.0.0.1", web["port"], source="127.0.0.32")
    assert w.login("acme", "bob", "bob-pass-22").status == 200
    big = [m["id"] for m in w.get("/acme/api/messages?owner=bob&path=Big").json["messages"]]
    assert len(big) == 2
    path = "/acme/api/export?format=mbox&ids=%d,%d" % tuple(big)
    held = []
    for _ in range(2):
        s, head = start_unread_download(web["port"], w.cookies, path, "127.0.0.32")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
                     .split(b":")[1])
        assert length > 26 * 1024 * 1024
        held.append(s)
    # a third one while two are under way: refused, clearly
    r = w.get(path)
    assert r.status == 429 and r.json["error"]["code"] == "busy", r.raw
    # another user of the instance is not affected by bob's limit
    a = Web("127.0.0.1", web["port"], source="127.0.0.33")
    assert a.login("acme", "alice", "alice-pass-1").status == 200
    first = a.get("/acme/api/messages?limit=1").json["messages"][0]["id"]
    assert a.get("/acme/api/export?format=zip&ids=%d" % first).status == 200
    # the clients leave: their exports end, and bob may export again
    for s in held:
        s.close()
    wait_for(lambda: w.get("/acme/api/export?format=zip&ids=%d" % big[0]).status == 200,
             timeout=30, what="the abandoned exports ended")
    # and a whole download is byte-exact
    r = w.get("/acme/api/export?format=zip&ids=%d" % big[1])
    with zipfile.ZipFile(io.BytesIO(r.raw)) as zf:
        data = zf.read("Big/%d.eml" % big[1])
        assert data in [mailgen_message(i, size_pad=1100000).encode() + b"\n" for i in (8000, 8001)]
