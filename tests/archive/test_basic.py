"""Import, read back, dedup, export, stores: on small generated mail."""
import mailbox
import os
import subprocess

from archivefix import parse_archived, sha256


def message(n, subject=None, body=None, attachment=None, frm="alice@example.com"):
    subject = subject or "message %d" % n
    body = body or "body of message %d\n" % n
    head = ("From: Alice <%s>\nTo: bob@example.org\nSubject: %s\n"
            "Date: Tue, 02 Jan 2018 10:%02d:00 +0000\nMessage-ID: <m%d@example.com>\n"
            % (frm, subject, n % 60, n))
    if attachment is None:
        return (head + "\n" + body).encode()
    return (head + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n\n"
            "--BB\nContent-Type: text/plain\n\n" + body +
            "--BB\nContent-Type: application/octet-stream; name=data.bin\n"
            "Content-Disposition: attachment; filename=data.bin\n"
            "Content-Transfer-Encoding: base64\n\n" + attachment + "\n--BB--\n").encode()


def test_eml_roundtrip_and_dedup(archive, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    msgs = {}
    for i in range(20):
        data = message(i) if i % 3 else message(i).replace(b"\n", b"\r\n")
        p = src / ("sub" if i % 2 else ".") / ("%02d.eml" % i)
        p.write_bytes(data)
        msgs[str(p).replace("/./", "/")] = data
    archived, _ = archive.import_(src)
    assert len(archived) == 20
    for source, (msg_id, digest) in archived.items():
        assert archive.show(msg_id) == msgs[source]
        assert digest == sha256(msgs[source])
    # the same messages into another folder: stored once, filed twice
    again, _ = archive.import_("--folder", "Copy", src)
    assert len(again) == 20
    st = archive.stats()
    assert st["messages"] == 40 and st["unique_contents"] == 20
    # importing into the same folder again is a no-op (idempotent)
    p = archive.run("import", "--folder", "Copy", src)
    assert p.stdout.decode().count("duplicate ") == 20
    assert archive.stats()["messages"] == 40
    assert archive.search("folder:INBOX/sub")[0] == 10
    assert archive.verify()[0] == 0


def test_large_parts_stored_once(archive, tmp_path):
    import base64
    blob = base64.encodebytes(os.urandom(60000)).decode()
    a = message(1, attachment=blob)
    b = message(2, attachment=blob, body="a different body\n")
    (tmp_path / "a.eml").write_bytes(a)
    (tmp_path / "b.eml").write_bytes(b)
    archived, _ = archive.import_(tmp_path / "a.eml", tmp_path / "b.eml")
    st = archive.stats()
    assert st["unique_contents"] == 2 and st["shared_parts"] == 1
    # the 80 KB attachment is stored once: far less than two copies
    assert st["stored_bytes"] < 1.3 * len(blob)
    for source, (msg_id, _) in archived.items():
        assert archive.show(msg_id) == (a if source.endswith("a.eml") else b)
    assert archive.search("has:attachment")[0] == 2
    assert archive.search("attachment:data.bin")[0] == 2
    assert archive.verify()[0] == 0


def test_mbox_formats_and_maildir(archive, tmp_path):
    rd = (b"From a@b Tue Jan  2 10:00:00 2018\nSubject: rd1\n\n>From quoted\n>>From twice\n\n"
          b"From a@b Tue Jan  2 10:00:00 2018\nSubject: rd2\n\nplain\n")
    (tmp_path / "rd.mbox").write_bytes(rd)
    cl = (b"From a@b Tue Jan  2 10:00:00 2018\nSubject: cl1\nContent-Length: 21\n\n"
          b"From inside the body\n\nFrom a@b Tue Jan  2 10:00:00 2018\nSubject: cl2\n"
          b"Content-Length: 3\n\nab\n\n")
    (tmp_path / "cl.mbox").write_bytes(cl)
    md = tmp_path / "Maildir"
    for d in ("cur", "new", "tmp", ".Lists.linux/cur", ".Lists.linux/new"):
        (md / d).mkdir(parents=True)
    (md / "cur" / "1:2,S").write_bytes(message(1))
    (md / "new" / "2").write_bytes(message(2))
    (md / ".Lists.linux" / "cur" / "3:2,").write_bytes(message(3))
    archived, _ = archive.import_(tmp_path / "rd.mbox", tmp_path / "cl.mbox", md)
    assert archive.show(archived[str(tmp_path / "rd.mbox") + ":1"][0]) == \
        b"Subject: rd1\n\nFrom quoted\n>From twice\n"
    assert archive.show(archived[str(tmp_path / "cl.mbox") + ":1"][0]) == \
        b"Subject: cl1\nContent-Length: 21\n\nFrom inside the body\n"
    assert archive.show(archived[str(tmp_path / "cl.mbox") + ":2"][0]) == \
        b"Subject: cl2\nContent-Length: 3\n\nab\n"
    assert archive.search("folder:INBOX/Lists/linux")[0] == 1
    assert len(archived) == 7


def test_stdin_export_and_stores(archive, tmp_path):
    mbox = b"".join(b"From x Tue Jan  2 10:00:00 2018\n" + message(i) + b"\n" for i in range(30))
    archived, _ = archive.import_("-", input=mbox)
    assert len(archived) == 30
    out = tmp_path / "out.mbox"
    archive.run("export", "--format", "mbox", "subject:message", out)
    exported = [bytes(m) for m in mailbox.mbox(str(out))]
    assert len(exported) == 30
    emls = tmp_path / "emls"
    archive.run("export", "message", emls)
    assert len(os.listdir(emls)) == 30
    # stores: a new current store, write-protect the old one, detach/attach
    archive.run("store", "new")
    later = b"".join(b"From x Tue Jan  2 10:00:00 2018\n" + message(i + 100) + b"\n"
                     for i in range(30))
    archive.import_("--folder", "Later", "-", input=later)
    lines = archive.run("store", "list").stdout.decode().splitlines()
    assert [l.split()[:2] for l in lines] == [["store-0001", "normal"],
                                              ["store-0002", "current"]]
    archive.run("store", "set-state", "store-0001", "write-protected")
    archive.run("store", "set-state", "store-0001", "disabled")
    assert archive.search("")[0] == 30
    archive.run("store", "set-state", "store-0001", "normal")
    assert archive.search("")[0] == 60
    archive.run("store", "detach", "store-0002")
    assert archive.search("")[0] == 30
    # new mail after a detach never inherits the detached messages' index words
    fresh = b"".join(b"From x Tue Jan  2 10:00:00 2018\n" +
                     message(i + 500, subject="fresh %d" % i, body="unrelated\n") + b"\n"
                     for i in range(30))
    archive.import_("--folder", "Fresh", "-", input=fresh)
    assert archive.search("message")[0] == 30
    assert archive.search("folder:Fresh")[0] == 30
    archive.run("store", "attach", "store-0002")
    assert archive.search("")[0] == 90
    assert archive.search("message")[0] == 60
    assert archive.verify()[0] == 0


def test_store_rolls_over_by_size(archive, tmp_path):
    total = 0
    for run in range(3):
        mbox = b"".join(b"From x Tue Jan  2 10:00:00 2018\n" +
                        message(run * 100 + i, body=os.urandom(3000).hex() + "\n") + b"\n"
                        for i in range(50))
        p = subprocess.run(archive.argv()[:6] + ["--store-max-size", "100000", "import", "-"],
                           input=mbox, capture_output=True)
        assert p.returncode == 0, p.stderr
        total += len(parse_archived(p.stdout))
    assert total == 150
    st = archive.stats()
    assert len(st["stores"]) >= 3
    assert sum(s["messages"] for s in st["stores"]) == 150
    assert archive.search("")[0] == 150
    assert archive.verify()[0] == 0


def test_errors_are_clear(archive, tmp_path):
    (tmp_path / "a.eml").write_bytes(message(1))
    archive.import_(tmp_path / "a.eml")
    other = tmp_path / "other.key"
    other.write_text("00" * 32 + "\n")
    p = subprocess.run(archive.argv("search", "x")[:3] + [str(archive.base), "--key-file",
                                                          str(other), "search", "x"],
                       capture_output=True)
    assert p.returncode == 1 and b"does not belong" in p.stderr
    inside = subprocess.run(archive.argv()[:4] + ["--key-file", str(archive.base / "k.key"),
                                                  "search", "x"], capture_output=True)
    assert inside.returncode == 1 and b"inside the base directory" in inside.stderr
    p = archive.run("search", "(unbalanced", check=False)
    assert p.returncode == 1 and b"')' expected" in p.stderr
    p = archive.run("show", "999", check=False)
    assert p.returncode == 1 and b"no such message" in p.stderr
    (tmp_path / "empty.eml").write_bytes(b"")
    p = archive.run("import", tmp_path / "empty.eml", tmp_path / "missing.eml")
    assert b"skipped" in p.stderr


def test_base_directory_alone_reveals_no_mail(archive, tmp_path):
    """A copy of the base directory (stolen disk, backup) holds no readable
    subject, address or body text: segments and catalog are encrypted, and
    the key file lives elsewhere."""
    secret = b"Zanzibarquokka"
    mbox = b"".join(b"From x Tue Jan  2 10:00:00 2018\n" +
                    message(i, subject="plan %s %d" % (secret.decode(), i),
                            body="the %s body words\n" % secret.decode(),
                            frm="%s@example.com" % secret.decode().lower()) + b"\n"
                    for i in range(300))
    archive.import_("-", input=mbox)
    assert archive.search(secret.decode())[0] == 300
    assert not str(archive.key).startswith(str(archive.base))
    for dirpath, _, files in os.walk(archive.base):
        for name in files:
            data = open(os.path.join(dirpath, name), "rb").read()
            for needle in (secret, secret.lower(), b"example.com", b"SQLite format"):
                assert needle not in data, (name, needle)


def test_imap_data_precomputed(archive, tmp_path):
    import base64
    blob = base64.encodebytes(os.urandom(30000)).decode()
    (tmp_path / "a.eml").write_bytes(message(7, attachment=blob))
    archived, _ = archive.import_(tmp_path / "a.eml")
    msg_id = list(archived.values())[0][0]
    out = archive.run("imap", msg_id).stdout.decode()
    env, bs, body, size = out.splitlines()
    assert env.startswith('ENVELOPE ("Tue, 02 Jan 2018 10:07:00 +0000" "message 7" '
                          '(("Alice" NIL "alice" "example.com"))')
    assert '"<m7@example.com>")' in env
    assert bs.startswith('BODYSTRUCTURE (("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" ')
    assert '("application" "octet-stream" ("name" "data.bin") NIL NIL "base64" ' in bs
    assert ' "mixed" ("boundary" ' in bs
    assert body.startswith('BODY (("text" "plain" ') and body.endswith(' "mixed")')
    # RFC822.SIZE: the message with CRLF line ends
    data = message(7, attachment=blob)
    assert size == "RFC822.SIZE %d" % (len(data) + data.count(b"\n") - data.count(b"\r\n"))


def test_rebuild_keeps_store_states_and_detached_stores_out(archive, tmp_path):
    def mbox(start):
        return b"".join(b"From x Tue Jan  2 10:00:00 2018\n" + message(start + i) + b"\n"
                        for i in range(10))
    archive.import_("-", input=mbox(0))
    archive.run("store", "new")
    archive.import_("--folder", "B", "-", input=mbox(100))
    archive.run("store", "new")
    archive.import_("--folder", "C", "-", input=mbox(200))
    archive.run("store", "set-state", "store-0001", "write-protected")
    archive.run("store", "detach", "store-0002")
    p = archive.run("rebuild")
    assert b"store-0002: detached" in p.stdout
    states = [l.split()[:2] for l in archive.run("store", "list").stdout.decode().splitlines()]
    assert states == [["store-0001", "write-protected"], ["store-0003", "current"]]
    assert archive.search("")[0] == 20
    assert archive.verify()[0] == 0
