"""Ingest that no input can break (issue 11, section 1): mboxo body lines that
begin with "From ", files that are not mail, messages over the size limit,
peak memory of large messages, and parse defects named per kind."""
import hashlib
import os
import re
import subprocess

import pytest

from archivefix import sha256

MB = 1024 * 1024
# AddressSanitizer's shadow memory and quarantine make RSS meaningless there
SANITIZED = os.environ.get("COFFER_SANITIZED") == "1"


def assert_rss(rss, limit_mb):
    print("peak RSS %.0f MB" % rss)
    if not SANITIZED:
        assert rss < limit_mb, "peak RSS %.0f MB, limit %d MB" % (rss, limit_mb)


def peak_rss_mb(argv, **kw):
    """Runs argv under /usr/bin/time -v; returns (process, peak RSS in MB)."""
    p = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, **kw)
    m = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    assert m, p.stderr[-2000:]
    return p, int(m.group(1)) / 1024


def skipped_lines(p):
    return [l for l in p.stderr.decode(errors="replace").splitlines()
            if l.startswith("skipped ")]


def mailman_message(i):
    # Mailman's pipermail archives (mboxo) leave these body lines unescaped
    return (b"From: user%d at example.org (User %d)\n"
            b"Date: Tue, 2 Jan 2018 10:%02d:00 +0000\n"
            b"Subject: [list] message %d\n"
            b"Message-ID: <m%d@example.org>\n\n"
            b"Hello list,\n\n"
            b"From what I can tell, zebrafinch%d works.\n"
            b"From here on, see below.\n"
            b"From me Tue Jan  2 10:00:00 2018 to you\n"
            b"From a@b.example Tue Jan  2 10:00:00 2018\n"
            b"\n"
            b"From x@y Tue Jan  2 10:00:00 2018\n"
            b"no header here\n"
            b"bye\n" % (i, i, i, i, i, i))


def test_mboxo_body_from_lines_stay_in_their_message(archive, tmp_path):
    msgs = [mailman_message(i) for i in range(6)]
    mbox = b"".join(b"From user%d at example.org  Tue Jan  2 10:%02d:00 2018\n" % (i, i) +
                    m + b"\n" for i, m in enumerate(msgs))
    path = tmp_path / "list.mbox"
    path.write_bytes(mbox)
    archived, p = archive.import_(path)
    assert skipped_lines(p) == []
    assert len(archived) == len(msgs)
    for i, m in enumerate(msgs):
        msg_id, digest = archived["%s:%d" % (path, i + 1)]
        assert digest == sha256(m)
        assert archive.show(msg_id) == m  # not a byte lost, no fragment
    total, _ = archive.search("zebrafinch3")
    assert total == 1


def test_not_mail_is_skipped_with_its_reason(archive, tmp_path):
    pst = tmp_path / "mail.pst"
    pst.write_bytes(b"!BDN" + os.urandom(4096))
    ole = tmp_path / "mail.msg"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + os.urandom(4096))
    text = tmp_path / "notes.txt"
    text.write_bytes(b"Just some notes,\nnot a message at all.\n")
    binary = tmp_path / "blob"
    binary.write_bytes(b"X-Header: " + bytes(range(256)) * 8 + b"\n\nbody\n")
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    # (real PSTs are read: tests/archive/test_pst.py)
    inputs = ["/usr/bin/ls", pst, ole, text, binary, empty]
    archived, p = archive.import_(*inputs)
    assert archived == {}
    lines = skipped_lines(p)
    assert len(lines) == len(inputs), lines

    def reason(path):
        [line] = [l for l in lines if l.startswith("skipped %s: " % path)]
        return line
    assert "not a message" in reason("/usr/bin/ls") and "[not-a-message]" in reason("/usr/bin/ls")
    assert "PST: " in reason(pst) and "[unreadable]" in reason(pst)
    assert "[unsupported]" in reason(ole)
    assert "[not-a-message]" in reason(text)
    assert "binary data in the header block" in reason(binary)
    assert "[empty]" in reason(empty)
    assert "import: skipped not-a-message: 3" in p.stderr.decode()
    assert archive.stats()["messages"] == 0


def big_message(path, body_mb, newlines):
    """A message with a body_mb MiB body, written in pieces (the test itself
    stays small); returns its SHA-256."""
    h = hashlib.sha256()
    head = b"From: big@example.org\nSubject: big\nMessage-ID: <big@example.org>\n\n"
    line = (b"x" * 75 + b"\n") if newlines else b"x" * 76
    chunk = line * (MB // 76)
    with open(path, "wb") as f:
        f.write(head)
        h.update(head)
        for _ in range(body_mb):
            f.write(chunk)
            h.update(chunk)
    return h.hexdigest()


# 300 MiB generated on the fly: refused before it is read, by size alone
def test_too_large_file_refused_before_read(archive, tmp_path):
    path = tmp_path / "huge.eml"
    big_message(path, 300, newlines=False)
    p, rss = peak_rss_mb(archive.argv("import", path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert b"skipped %s: too large: " % bytes(path) in p.stderr
    assert b"[too-large]" in p.stderr
    assert_rss(rss, 100)
    assert archive.stats()["messages"] == 0


# an mbox on stdin with a 300 MiB message between two small ones: the big one
# is refused while read (memory bounded by the limit), the others archived
def test_too_large_mbox_message_refused_while_read(archive, tmp_path):
    path = tmp_path / "in.mbox"
    small = b"From: a@example.org\nSubject: small %d\n\nhello\n"
    big = tmp_path / "big.eml"
    big_message(big, 300, newlines=True)
    with open(path, "wb") as f:
        f.write(b"From a@example.org Tue Jan  2 10:00:00 2018\n" + small % 1 + b"\n")
        f.write(b"From a@example.org Tue Jan  2 10:00:00 2018\n")
        with open(big, "rb") as b:
            while True:
                piece = b.read(8 * MB)
                if not piece:
                    break
                f.write(piece)
        f.write(b"\nFrom a@example.org Tue Jan  2 10:00:00 2018\n" + small % 3)
    big.unlink()
    with open(path, "rb") as stdin:
        p, rss = peak_rss_mb(archive.argv("import", "-"), stdin=stdin)
    assert p.returncode == 0, p.stderr[-2000:]
    assert b"skipped -:2: too large: " in p.stderr
    out = p.stdout.decode()
    assert " -:1" in out and " -:3" in out and " -:2" not in out
    # the limit is 100 MiB: the reader never holds much more than that
    assert_rss(rss, 300)


@pytest.mark.parametrize("newlines", [False, True], ids=["one-line", "lines"])
def test_large_message_bounded_memory(archive, tmp_path, newlines):
    # 90 MiB, just under the default limit of 100 MiB
    path = tmp_path / "large.eml"
    digest = big_message(path, 90, newlines)
    p, rss = peak_rss_mb(archive.argv("import", path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert_rss(rss, 300)
    line = p.stdout.decode().split()
    assert line[0] == "archived" and line[2] == digest
    shown = subprocess.run(archive.argv("show", line[1]), capture_output=True, check=True)
    assert hashlib.sha256(shown.stdout).hexdigest() == digest


def test_huge_part_header_bounded_memory(archive, tmp_path):
    # a 90 MiB header line inside a part (GMime needs ten times a header's
    # size): cut for the parser, recorded as line-too-long, stored whole
    path = tmp_path / "hdr.eml"
    with open(path, "wb") as f:
        f.write(b"From: a@example.org\nSubject: long header\nMIME-Version: 1.0\n"
                b"Content-Type: multipart/mixed; boundary=BB\n\n--BB\n"
                b"Content-Type: text/plain\nX-Long: ")
        for _ in range(90):
            f.write(b"h" * MB)
        f.write(b"\n\nfirst\n--BB\nContent-Type: text/plain\n\nsecondpartword\n--BB--\n")
    p, rss = peak_rss_mb(archive.argv("import", path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert_rss(rss, 300)
    assert b"line-too-long" in p.stdout
    msg_id = p.stdout.decode().split()[1]
    shown = subprocess.run(archive.argv("show", msg_id), capture_output=True, check=True)
    assert shown.stdout == path.read_bytes()
    assert archive.search("secondpartword")[0] == 1


def test_large_base64_attachment_bounded_memory(archive, tmp_path):
    # 64 MiB decoded, about 87 MiB in base64 lines
    import base64
    path = tmp_path / "attach.eml"
    raw = os.urandom(MB * 3 // 4 * 4)  # 3 MiB, repeated: a multiple of 3 bytes
    with open(path, "wb") as f:
        f.write(b"From: a@example.org\nSubject: attachment\nMIME-Version: 1.0\n"
                b"Content-Type: multipart/mixed; boundary=BB\n\n--BB\n"
                b"Content-Type: text/plain\n\nsee attached\n--BB\n"
                b"Content-Type: application/octet-stream\n"
                b"Content-Transfer-Encoding: base64\n"
                b"Content-Disposition: attachment; filename=data.bin\n\n")
        enc = base64.encodebytes(raw)
        for _ in range(64 // 3):
            f.write(enc)
        f.write(b"--BB--\n")
    p, rss = peak_rss_mb(archive.argv("import", path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert_rss(rss, 300)
    msg_id = p.stdout.decode().split()[1]
    shown = subprocess.run(archive.argv("show", msg_id), capture_output=True, check=True)
    assert shown.stdout == path.read_bytes()


def test_limit_is_configurable(archive, tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(b"From: a@example.org\nSubject: s\n\n" + b"y" * 5000 + b"\n")
    archived, p = archive.import_("--max-message-size", 4096, path)
    assert archived == {}
    assert "the limit is 4096" in p.stderr.decode()
    p = archive.run("import", "--max-message-size", 0, path, check=False)
    assert p.returncode == 2 and b"--max-message-size 0" in p.stderr
    archived, _ = archive.import_("--max-message-size", 10000, path)
    assert len(archived) == 1


def test_defects_named_in_import_and_stats(archive, tmp_path):
    msgs = {
        "nul.eml": b"Subject: before\0after\nFrom: Ann <ann@example.org>\n\nnul body\n",
        "boundary.eml": b"From: b@example.org\nSubject: nb\nContent-Type: multipart/mixed\n\n"
                        b"--x\n\nbody\n",
        "charset.eml": b"From: c@example.org\nSubject: cs\n"
                       b"Content-Type: text/plain; charset=no-such-charset\n\nbody\n",
        "clean.eml": b"From: d@example.org\nSubject: fine\n\nbody\n",
    }
    for name, data in msgs.items():
        (tmp_path / name).write_bytes(data)
    archived, p = archive.import_(*[tmp_path / n for n in msgs])
    out = p.stdout.decode()
    assert re.search(r"nul\.eml \(parse defects: [^)]*nul-in-header", out)
    assert re.search(r"boundary\.eml \(parse defects: [^)]*missing-boundary", out)
    assert re.search(r"charset\.eml \(parse defects: [^)]*bad-charset", out)
    assert re.search(r"clean\.eml$", out, re.M)
    err = p.stderr.decode()
    assert "import: defect nul-in-header: 1" in err
    assert "import: defect missing-boundary: 1" in err
    # the NUL cut neither the Subject nor the From after it
    total, ids = archive.search("subject:after")
    assert total == 1
    total, _ = archive.search("from:ann@example.org")
    assert total == 1
    st = archive.stats()
    assert st["messages_with_defects"] == 3
    assert st["defects"]["nul-in-header"] == 1
    assert st["defects"]["missing-boundary"] == 1
    assert st["defects"]["bad-charset"] == 1
    # the kinds are derived from the message itself: a rebuild finds them again
    archive.run("rebuild")
    assert archive.stats()["defects"] == st["defects"]
