"""IMAP under load and abuse: a 10,000-message folder fetched byte-identical,
garbage, oversized lines and literals, unbalanced parentheses, and a client
that stops reading while the server has megabytes to send."""
import os
import socket
import time


from daemonfix import SANITIZED
from mailgen import message
from test_imap import connect, import_mbox, imap_system, tls_context  # noqa: F401 (fixture)


def cas_rss_kib(system):
    with open(os.path.join(system.dir, "run", "client-access-server.pid")) as f:
        pid = int(f.read())
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def raw_session(system, login=True):
    s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", system.imaps_port)))
    s.settimeout(30)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"* OK")
    if login:
        f.write(b"l LOGIN alice@acme alice-pass-1\r\n")
        f.flush()
        while not f.readline().startswith(b"l OK"):
            pass
    return s, f


def until_tagged(f, tag):
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed; got %r" % lines[-5:]
        lines.append(line)
        if line.startswith(tag + b" "):
            return lines


def test_ten_thousand_messages_byte_identical(imap_system):
    import_mbox(imap_system.api, "acme", "alice", "big.mbox", 10000, "Big", start=1000)
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    typ, data = m.select("Big", readonly=True)
    assert data == [b"10000"]
    got = {}
    for start in range(1, 10001, 2500):
        typ, data = m.fetch("%d:%d" % (start, start + 2499), "(UID BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                got[item[0]] = item[1]
    assert len(got) == 10000
    # served in IMAP's canonical form: the archived bytes with CRLF line ends
    want = sorted(message(i).encode().replace(b"\n", b"\r\n").rstrip(b"\r\n")
                  for i in range(1000, 11000))
    assert sorted(v.rstrip(b"\r\n") for v in got.values()) == want
    m.logout()


def test_garbage_and_malformed_commands(imap_system):
    s, f = raw_session(imap_system)
    f.write(b"a SELECT INBOX\r\n")
    f.flush()
    until_tagged(f, b"a")
    cases = [
        (b"b FETCH 1 (FLAGS\r\n", b"b BAD"),                # unbalanced parenthesis
        (b"c FETCH 1 FLAGS)\r\n", b"c BAD"),
        (b"d FETCH 1:x FLAGS\r\n", b"d BAD"),
        (b"e NOSUCHCOMMAND\r\n", b"e BAD"),
        (b"f UID FROB 1\r\n", b"f BAD"),
        (b"g SEARCH CHARSET KOI8-R TEXT x\r\n", b"g NO [BADCHARSET"),
        (b"h FETCH 1 BODY[1.2.3.MIMEX]\r\n", b"h BAD"),
        (b"i SEARCH HEADER Message-ID x\r\n", b"i NO [CANNOT]"),
    ]
    for cmd, want in cases:
        f.write(cmd)
        f.flush()
        lines = until_tagged(f, cmd.split()[0])
        assert lines[-1].startswith(want), (cmd, lines)
    # binary garbage: BAD answers, then the session goes on or is closed
    f.write(b"\x00\xff\x01garbage\r\n" * 3 + b"j NOOP\r\n")
    f.flush()
    lines = until_tagged(f, b"j")
    assert lines[-1].startswith(b"j OK") and sum(l.startswith(b"* BAD") for l in lines) == 3, lines
    # a synchronising literal too large is refused before it is sent
    f.write(b"k LOGIN {99999999}\r\n")
    f.flush()
    line = f.readline()
    assert line.startswith(b"k BAD") or line.startswith(b"k NO"), line
    # a line far over the limit: refused, and the server still answers
    f.write(b"m NOOP " + b"x" * (300 * 1024) + b"\r\nn NOOP\r\n")
    f.flush()
    lines = until_tagged(f, b"n")
    assert any(l.startswith(b"m BAD") or l.startswith(b"* BAD") for l in lines), lines[:3]
    s.close()
    # twenty bad commands in a row end the session
    s, f = raw_session(imap_system, login=False)
    f.write(b"".join(b"x%d BOGUS\r\n" % i for i in range(25)))
    f.flush()
    rest = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    assert b"* BYE Too many invalid commands" in rest
    # and the server is fine
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    assert m.noop()[0] == "OK"
    m.logout()


def test_client_that_stops_reading_costs_bounded_memory(imap_system):
    import_mbox(imap_system.api, "acme", "alice", "padded.mbox", 2000, "Padded", start=20000,
                size_pad=300)
    before = cas_rss_kib(imap_system)
    s, f = raw_session(imap_system)
    f.write(b"a EXAMINE Padded\r\n")
    f.flush()
    until_tagged(f, b"a")
    # ask for everything, several times over, and read nothing
    s.sendall(b"b FETCH 1:* (BODY.PEEK[])\r\n" * 20)
    time.sleep(5)
    grown = cas_rss_kib(imap_system) - before
    # AddressSanitizer keeps freed memory in quarantine (256 MB at most), so
    # there RSS grows with what was allocated, not with what is held
    limit = 128 * 1024 if SANITIZED else 64 * 1024
    assert grown < limit, "the Client Access Server grew by %d KiB" % grown
    # others are served meanwhile
    m = connect(imap_system, "bob@acme", "bob-pass-22")
    assert m.select("Work", readonly=True)[1] == [b"3"]
    m.logout()
    s.close()
