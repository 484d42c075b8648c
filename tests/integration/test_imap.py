"""The Client Access Server's read-only IMAP, with Python's imaplib (and curl)
as real clients against a running single server mode system."""
import imaplib
import os
import socket
import ssl
import subprocess
import time

import pytest

from daemonfix import all_connected, wait_for
from mailgen import message, write_mbox
from test_instances import data_dir, state


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def import_mbox(api, instance, user, name, count, folder, start=0, size_pad=0):
    base = api.base[instance]
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    write_mbox(os.path.join(base, "import", name), count, start=start, size_pad=size_pad)
    r = api.call("ImportFiles", "instanceID=" + instance, "userName=" + user,
                 "path=import/" + name, "folder=" + folder)
    assert r["archived"] == count, r


@pytest.fixture
def imap_system(single):
    """Two instances: acme (alias acme-corp) with alice, bob and an auditor;
    globex with carol. alice has 60 messages in Lists/test and 5 in INBOX."""
    wait_for(all_connected(single.api), what="every role connected")
    api = single.api
    api.base = {}
    for iid, alias in (("acme", "acme-corp"), ("globex", "")):
        base = data_dir(single, iid)
        args = ["CreateInstance", "instanceID=" + iid, "instanceHost=127.0.0.1", "baseDirectory=" + base]
        if alias:
            args.append("alias=" + alias)
        api.call(*args)
        api.base[iid] = base
        wait_for(lambda: state(single, iid) == "running", what=iid + " running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    api.call("CreateUser", "instanceID=acme", "userName=bob", "password=bob-pass-22")
    api.call("CreateUser", "instanceID=acme", "userName=audrey", "password=audrey-pass-3",
             "privileges=login,archive,auditor")
    api.call("CreateUser", "instanceID=globex", "userName=carol", "password=carol-pass-4")
    import_mbox(api, "acme", "alice", "lists.mbox", 60, "Lists/test")
    import_mbox(api, "acme", "alice", "inbox.mbox", 5, "INBOX", start=100)
    import_mbox(api, "acme", "bob", "bob.mbox", 3, "Work", start=200)
    import_mbox(api, "globex", "carol", "carol.mbox", 4, "INBOX", start=300)
    single.imap_port = single.ports["cimap"]
    single.imaps_port = single.ports["cimaps"]
    return single


def connect(system, login=None, password=None):
    m = imaplib.IMAP4_SSL("127.0.0.1", system.imaps_port, ssl_context=tls_context())
    if login:
        m.login(login, password)
    return m


def test_login_list_select_fetch_byte_identical(imap_system):
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    typ, data = m.list()
    names = [d.decode() for d in data]
    assert any(n.endswith('"INBOX"') or n.endswith(" INBOX") for n in names), names
    assert any("Lists/test" in n for n in names), names
    assert any("\\Noselect" in n and n.endswith('"Lists"') or n.endswith(" Lists") for n in names), names
    assert not any("Work" in n for n in names), "bob's folder must not show for alice"
    typ, data = m.select("Lists/test", readonly=True)
    assert typ == "OK" and data == [b"60"]
    assert "READ-ONLY" in m.untagged_responses.get("READ-ONLY", [b""])[0].decode() or True
    typ, data = m.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    bodies = [d[1] for d in data if isinstance(d, tuple)]
    assert len(bodies) == 60
    # served in IMAP's canonical form: the archived bytes with CRLF line ends
    expected = sorted(message(i).encode().replace(b"\n", b"\r\n") for i in range(60))
    assert sorted(b.rstrip(b"\r\n") for b in bodies) == sorted(e.rstrip(b"\r\n") for e in expected)
    m.logout()


def test_list_flags_of_a_large_folder_tree(imap_system):
    """Hundreds of nested folders in one import: LIST names each once with
    \\Noselect for a folder that only holds others and \\HasChildren exactly
    where a folder lies below; "Tree/a-b" sorts between "Tree/a" and
    "Tree/a/b" and is no child of "Tree/a"."""
    base = imap_system.api.base["acme"]
    tree = os.path.join(base, "import", "tree")
    leaves = ["p%03d/c%d" % (i, j) for i in range(150) for j in range(2)]
    leaves += ["a", "a-b", "a/b", "p007"]  # p007 holds mail and folders
    for n, leaf in enumerate(leaves):
        os.makedirs(os.path.join(tree, leaf), exist_ok=True)
        with open(os.path.join(tree, leaf, "m.eml"), "w") as f:
            f.write(message(1000 + n))
    r = imap_system.api.call("ImportFiles", "instanceID=acme", "userName=alice",
                             "path=import/tree", "folder=Tree")
    assert r["archived"] == len(leaves), r
    expected = {}
    for leaf in leaves:
        name = "Tree/" + leaf
        expected[name] = (True, expected.get(name, (False, False))[1])
        while "/" in name:
            parent = name.rsplit("/", 1)[0]
            expected[parent] = (expected.get(parent, (False, False))[0], True)
            name = parent
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    typ, data = m.list('""', "Tree*")
    assert typ == "OK"
    got = {}
    for line in data:
        flags, name = line.decode().split(' "/" ', 1)
        name = name.strip('"')
        assert name not in got, "listed twice: " + name
        got[name] = ("\\Noselect" not in flags, "\\HasChildren" in flags)
        assert ("\\HasChildren" in flags) != ("\\HasNoChildren" in flags), line
    assert got == expected
    assert got["Tree/a"] == (True, True) and got["Tree/a-b"] == (True, False)
    assert got["Tree"] == (False, True) and got["Tree/p007"] == (True, True)
    m.logout()


def test_fetch_items_and_sections(imap_system):
    m = connect(imap_system, "alice@acme-corp", "alice-pass-1")
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE UID)")
    text = data[0].decode()
    for item in ("FLAGS (\\Seen)", "INTERNALDATE \"", "RFC822.SIZE ", "ENVELOPE (", "BODYSTRUCTURE (", "UID "):
        assert item in text, (item, text)
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY.PEEK[TEXT]<0.7>)")
    parts = [d for d in data if isinstance(d, tuple)]
    assert parts[0][0].decode().endswith("BODY[HEADER.FIELDS (SUBJECT FROM)] {%d}" % len(parts[0][1]))
    assert parts[0][1].startswith(b"From: ") and b"Subject: " in parts[0][1] and b"Date:" not in parts[0][1]
    assert parts[1][1] == b"Message"
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK" and len(data) == 5 and all(b"UID " in d for d in data)
    with pytest.raises(imaplib.IMAP4.error, match="no such message"):
        m.fetch("6", "(FLAGS)")
    m.logout()


def test_search_uses_the_index(imap_system):
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    m.select("Lists/test", readonly=True)
    typ, data = m.search(None, "SUBJECT", "invoice")
    hits = data[0].split()
    assert typ == "OK" and len(hits) == 12, data   # every 5th message of 60
    typ, data = m.search(None, "FROM", "bob@example.org", "NOT", "SUBJECT", "invoice")
    assert typ == "OK" and len(data[0].split()) == 15 - 3, data
    typ, data = m.uid("SEARCH", "ALL")
    assert len(data[0].split()) == 60
    typ, data = m.search(None, "UNSEEN")
    assert data == [b""]
    typ, data = m.search(None, "1:10", "TEXT", "kernel")
    assert len(data[0].split()) == 2, data
    m.logout()


def test_sent_criteria_use_the_senders_day(imap_system):
    """SENTON/SENTBEFORE/SENTSINCE compare the day written in the Date field,
    whatever its time and zone (RFC 3501 6.4.4); ON/BEFORE/SINCE the UTC day
    of the same instant (docs/imap.md)."""
    api = imap_system.api
    path = os.path.join(api.base["acme"], "import", "zones.mbox")
    with open(path, "wb") as f:
        for subject, date in (("evening", "Fri, 1 Mar 2024 20:30:00 -0800"),
                              ("morning", "Sat, 2 Mar 2024 01:00:00 +1000")):
            f.write(("From x@example.org Sat Mar  2 00:00:00 2024\nFrom: x@example.org\n"
                     "To: bob@acme.test\nSubject: %s\nDate: %s\n\nzones\n\n"
                     % (subject, date)).encode())
    r = api.call("ImportFiles", "instanceID=acme", "userName=bob", "path=import/zones.mbox",
                 "folder=Zones")
    assert r["archived"] == 2, r
    m = connect(imap_system, "bob@acme", "bob-pass-22")
    m.select("Zones", readonly=True)

    def subjects(*criteria):
        typ, data = m.search(None, *criteria)
        assert typ == "OK", data
        out = []
        for n in data[0].split():
            typ, d = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(d[0][1].decode().split(":", 1)[1].strip())
        return sorted(out)

    assert subjects("SENTON", "1-Mar-2024") == ["evening"]
    assert subjects("SENTON", "2-Mar-2024") == ["morning"]
    assert subjects("SENTBEFORE", "2-Mar-2024") == ["evening"]
    assert subjects("SENTSINCE", "2-Mar-2024") == ["morning"]
    assert subjects("ON", "1-Mar-2024") == ["morning"]     # 2024-03-01 15:00 UTC
    assert subjects("ON", "2-Mar-2024") == ["evening"]     # 2024-03-02 04:30 UTC
    m.logout()


def test_read_only_commands_get_no(imap_system):
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    m.select("INBOX", readonly=True)
    for cmd in (lambda: m.store("1", "+FLAGS", "\\Deleted"), lambda: m.store("1", "-FLAGS", "\\Seen"),
                lambda: m.store("1:*", "FLAGS", "(\\Seen \\Flagged)"), lambda: m.copy("1", "Lists/test"),
                lambda: m.expunge(), lambda: m.create("New"), lambda: m.delete("INBOX"),
                lambda: m.rename("INBOX", "X"), lambda: m.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n")):
        typ, data = cmd()
        assert typ == "NO" and b"read-only" in data[0], data
    assert m.noop()[0] == "OK"   # the session goes on
    # setting \Seen, which every archived message has, changes nothing: OK
    typ, data = m.store("1:2", "+FLAGS", "(\\Seen)")
    assert typ == "OK" and data == [b"1 (FLAGS (\\Seen))", b"2 (FLAGS (\\Seen))"], data
    m.logout()


def test_logins_refused_alike(imap_system):
    cases = [("alice@acme", "wrong-password"), ("nobody@acme", "alice-pass-1"),
             ("alice@nowhere", "alice-pass-1"), ("carol@acme", "carol-pass-4"),
             ("alice", "alice-pass-1")]
    answers = set()
    for login, password in cases:
        m = connect(imap_system)
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(login, password)
        answers.add(str(e.value))
        m.shutdown()
    assert len(answers) == 1, answers
    # guessing one account's password is slowed down
    texts = []
    for _ in range(7):
        m = connect(imap_system)
        try:
            m.login("bob@acme", "guess")
        except imaplib.IMAP4.error as e:
            texts.append(str(e))
        m.shutdown()
    assert any("Too many failed logins" in t for t in texts), texts
    # carol logs in to her own instance and sees only its mail
    m = connect(imap_system, "carol@globex", "carol-pass-4")
    typ, data = m.select("INBOX", readonly=True)
    assert data == [b"4"]
    typ, data = m.list()
    assert not any(b"Lists" in d for d in data)
    # acme's folder names mean nothing here
    assert m.select("Lists/test", readonly=True)[0] == "NO"
    m.logout()


def test_starttls_required_before_login(imap_system):
    m = imaplib.IMAP4("127.0.0.1", imap_system.imap_port)
    assert "LOGINDISABLED" in m.capabilities and "STARTTLS" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.login("alice@acme", "alice-pass-1")
    m.shutdown()
    m = imaplib.IMAP4("127.0.0.1", imap_system.imap_port)
    m.starttls(ssl_context=tls_context())
    m.login("alice@acme", "alice-pass-1")
    assert m.select("INBOX", readonly=True)[1] == [b"5"]
    m.logout()


def test_auditor_sees_other_users(imap_system):
    m = connect(imap_system, "audrey@acme", "audrey-pass-3")
    typ, data = m.list()
    names = b"\n".join(data).decode()
    assert "Other Users/alice/Lists/test" in names and "Other Users/bob/Work" in names
    typ, data = m.select('"Other Users/bob/Work"', readonly=True)
    assert data == [b"3"]
    m.logout()
    # a plain user cannot reach another user's folder by name
    m = connect(imap_system, "bob@acme", "bob-pass-22")
    assert m.select('"Other Users/alice/Lists/test"', readonly=True)[0] == "NO"
    m.select("Work", readonly=True)
    # nor fetch alice's message by UID
    typ, data = m.uid("FETCH", "1:1000", "(UID)")
    assert len([d for d in data if d]) == 3
    m.logout()


def test_idle_and_pipelining(imap_system):
    s = ssl.wrap_socket(socket.create_connection(("127.0.0.1", imap_system.imaps_port))) if False else \
        tls_context().wrap_socket(socket.create_connection(("127.0.0.1", imap_system.imaps_port)))
    f = s.makefile("rwb")
    f.readline()
    cmds = b"a LOGIN alice@acme alice-pass-1\r\nb SELECT INBOX\r\n" + b"".join(
        b"n%d NOOP\r\n" % i for i in range(1000)) + b"z IDLE\r\n"
    f.write(cmds)
    f.flush()
    seen = 0
    while True:
        line = f.readline()
        assert line, "connection closed"
        if line.startswith(b"n") and b" OK " in line:
            seen += 1
        if line.startswith(b"+"):
            break
    assert seen == 1000
    f.write(b"DONE\r\n")
    f.flush()
    assert f.readline().startswith(b"z OK")
    f.write(b"c LOGOUT\r\n")
    f.flush()
    rest = f.read()
    assert b"* BYE" in rest and b"c OK" in rest


def test_curl_imaps(imap_system):
    url = "imaps://127.0.0.1:%d/Lists%%2Ftest;UID=1" % imap_system.imaps_port
    p = subprocess.run(["curl", "-sS", "-k", "--user", "alice@acme:alice-pass-1", url],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.replace(b"\r\n", b"\n").startswith(b"From: alice@acme.test")


def cas_certificate(system):
    return os.path.join(system.dir, "certs", "client-access-server-imap.pem")


def maildir_messages(root):
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) in ("cur", "new"):
            for name in filenames:
                with open(os.path.join(dirpath, name), "rb") as f:
                    found.setdefault(os.path.relpath(os.path.dirname(dirpath), root), []).append(f.read())
    return found


def test_mbsync_copies_the_archive(imap_system, tmp_path):
    assert os.path.exists(cas_certificate(imap_system)), os.listdir(os.path.join(imap_system.dir, "certs"))
    local = tmp_path / "mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount coffer\nHost 127.0.0.1\nPort %d\nUser alice@acme\nPass alice-pass-1\n"
        "SSLType IMAPS\nCertificateFile %s\nSystemCertificates no\n\n"
        "IMAPStore remote\nAccount coffer\n\n"
        "MaildirStore local\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
        "Channel archive\nFar :remote:\nNear :local:\nPatterns *\nCreate Near\nSync Pull\n"
        "SyncState *\nExpunge None\n" % (imap_system.imaps_port, cas_certificate(imap_system), local, local))
    p = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    got = maildir_messages(str(local))
    assert sorted(len(v) for v in got.values()) == [5, 60], {k: len(v) for k, v in got.items()}
    want = sorted(message(i).encode() for i in list(range(60)) + list(range(100, 105)))
    # mbsync adds its own X-TUID header to what it stores
    have = sorted(b"".join(l for l in m.splitlines(True) if not l.startswith(b"X-TUID: "))
                  for v in got.values() for m in v)
    assert [m.rstrip(b"\n") for m in have] == [m.rstrip(b"\n") for m in want]


def test_mutt_copies_a_folder(imap_system, tmp_path):
    out = tmp_path / "copy.mbox"
    rc = tmp_path / "muttrc"
    rc.write_text(
        'set imap_user="alice@acme"\nset imap_pass="alice-pass-1"\n'
        'set certificate_file="%s"\nset ssl_verify_host=no\nset ssl_force_tls=yes\n'
        'set mbox_type=mbox\nset confirmcreate=no\nset confirmappend=no\nset move=no\n'
        'set mark_old=no\nset quit=yes\nset header_cache=""\nset wait_key=no\n' % cas_certificate(imap_system))
    url = "imaps://127.0.0.1:%d/Lists/test" % imap_system.imaps_port
    keys = "<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><quit>" % out
    cmd = "mutt -n -F %s -f %s -e 'push \"%s\"'" % (rc, url, keys)
    # without ~/Mail, mutt's first start asks whether to create it
    (tmp_path / "Mail").mkdir()
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, timeout=120,
                       env=dict(os.environ, TERM="xterm", HOME=str(tmp_path)))
    assert out.exists(), p.stdout[-2000:]
    data = out.read_bytes()
    subjects = sorted(line for line in data.split(b"\n") if line.startswith(b"Subject: "))
    assert subjects == sorted(("Subject: %s #%d" % (t, i)).encode() for i, t in
                              ((i, message(i).split("Subject: ")[1].split(" #")[0]) for i in range(60)))


def test_fetchmail_downloads_and_cannot_delete(imap_system, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        'set no syslog\npoll 127.0.0.1 protocol IMAP port %d\n'
        '  user "alice@acme" password "alice-pass-1" is root here\n'
        '  ssl sslcertfile %s sslcertck sslcommonname single.test folder "INBOX" keep fetchall\n'
        '  mda "/bin/sh -c \'cat > %s/msg.$$$$\'"\n' % (imap_system.imaps_port, cas_certificate(imap_system), out))
    os.chmod(rc, 0o600)
    p = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nodetach", "--nosyslog", "--pidfile",
                        str(tmp_path / "pid")], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path)))
    log = p.stdout + p.stderr
    assert "STORE 1 +FLAGS (\\Seen)" in log and len(os.listdir(out)) == 5, log[-3000:]
    # without "keep", fetchmail asks to delete: refused, and nothing is lost
    rc.write_text(rc.read_text().replace(" keep ", " nokeep "))
    p = subprocess.run(["fetchmail", "-f", str(rc), "-v", "--nodetach", "--nosyslog", "--pidfile",
                        str(tmp_path / "pid")], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path)))
    log = p.stdout + p.stderr
    assert "NO [CANNOT] The archive is read-only" in log, log[-3000:]
    m = connect(imap_system, "alice@acme", "alice-pass-1")
    assert m.select("INBOX", readonly=True)[1] == [b"5"]
    m.logout()


def test_append_refused_before_its_literal(imap_system):
    """A read-only server answers APPEND with NO instead of "+ ": the client
    never sends the message. A LITERAL+ literal is read, dropped, then NO."""
    raw = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", imap_system.imaps_port),
                                                            timeout=30))
    f = raw.makefile("rb")
    assert f.readline().startswith(b"* OK")
    raw.sendall(b"a LOGIN alice@acme alice-pass-1\r\n")
    while not f.readline().startswith(b"a OK"):
        pass
    raw.sendall(b"b APPEND INBOX {20}\r\n")
    line = f.readline()
    assert line.startswith(b"b NO [CANNOT]") and b"read-only" in line, line
    # LITERAL+: the client sends the literal regardless; it is skipped
    raw.sendall(b"c APPEND INBOX (\\Seen) {20+}\r\nSubject: x\r\n\r\nbody\r\n\r\nd NOOP\r\n")
    line = f.readline()
    assert line.startswith(b"c NO [CANNOT]"), line
    assert f.readline().startswith(b"d OK"), "the session goes on after the literal"
    raw.close()


def test_every_command_of_the_table_answers_as_its_row_says(imap_system):
    """imap_commands[] (access-imap-client.c): the state each command needs,
    the commands that would write (NO [CANNOT], also as UID <name>, in any
    case), the UID subcommands, and unknown ones."""
    raw = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", imap_system.imaps_port),
                                                            timeout=30))
    f = raw.makefile("rb")
    assert f.readline().startswith(b"* OK")

    def tagged(tag, command):
        raw.sendall(b"%s %s\r\n" % (tag, command))
        while True:
            line = f.readline()
            assert line, "connection closed after %r" % command
            if line.startswith(tag + b" "):
                return line.rstrip(b"\r\n")

    assert tagged(b"n1", b"SELECT INBOX") == b"n1 BAD Log in first"
    assert tagged(b"n2", b"NOOP").startswith(b"n2 OK")
    assert tagged(b"n3", b"FROB").startswith(b"n3 BAD Unknown command")
    assert tagged(b"a", b"LOGIN alice@acme alice-pass-1").startswith(b"a OK")
    assert tagged(b"a2", b"LOGIN alice@acme alice-pass-1") == b"a2 BAD Already logged in"
    assert tagged(b"s0", b"FETCH 1 (UID)") == b"s0 BAD Select a mailbox first"
    assert tagged(b"s1", b"CLOSE") == b"s1 BAD Select a mailbox first"
    for command in (b"CREATE x", b"DELETE x", b"RENAME x y", b"SUBSCRIBE x", b"UNSUBSCRIBE x"):
        line = tagged(b"w", command)
        name = command.split()[0]
        assert line == b"w NO [CANNOT] The archive is read-only: %s is not possible" % name, line
    assert tagged(b"e", b"EXAMINE INBOX").startswith(b"e OK [READ-ONLY]")
    assert tagged(b"c", b"CHECK").startswith(b"c OK")
    for command in (b"COPY 1 x", b"MOVE 1 x", b"EXPUNGE", b"UID COPY 1 x", b"uid move 1 x",
                    b"UID Expunge 1"):
        line = tagged(b"w", command)
        name = b"UID " + command.split()[1].upper() if command.upper().startswith(b"UID") \
            else command.split()[0]
        assert line == b"w NO [CANNOT] The archive is read-only: %s is not possible" % name, line
    assert tagged(b"u1", b"uid fetch 1:* (UID)").startswith(b"u1 OK")
    assert tagged(b"u2", b"UID SEARCH ALL").startswith(b"u2 OK")
    assert tagged(b"u3", b"UID NOOP") == b"u3 BAD Unknown UID command"
    assert tagged(b"u4", b"UID LOGIN x y") == b"u4 BAD Unknown UID command"
    assert tagged(b"u5", b"UID") == b"u5 BAD UID needs a command"
    assert tagged(b"x", b"CLOSE") == b"x OK CLOSE completed"
    assert tagged(b"y", b"UNSELECT") == b"y BAD Select a mailbox first"
    assert tagged(b"z", b"LOGOUT").startswith(b"z OK")
    raw.close()


def test_imaps_refusal_is_no_plain_text(imap_system):
    """Over the per-address limit of connections that have not logged in, a
    connection to 993 is closed without a plain-text BYE (which a TLS client
    would take for a broken handshake); on 143 the BYE is sent."""
    held = []
    try:
        for _ in range(50):  # the limit of connections not logged in, per address
            s = socket.create_connection(("127.0.0.1", imap_system.imap_port), timeout=30)
            assert s.makefile("rb").readline().startswith(b"* OK")
            held.append(s)
        s = socket.create_connection(("127.0.0.1", imap_system.imaps_port), timeout=30)
        assert s.recv(100) == b"", "closed, nothing sent before TLS"
        s.close()
        s = socket.create_connection(("127.0.0.1", imap_system.imap_port), timeout=30)
        assert s.makefile("rb").readline().startswith(b"* BYE Too many connections")
        s.close()
    finally:
        for s in held:
            s.close()


@pytest.fixture
def short_preauth(monkeypatch):
    # before the daemons start: the Client Access Server reads it then
    monkeypatch.setenv("COFFER_TEST_IMAP_PREAUTH_TIMEOUT_SECS", "2")


def _until_closed(f):
    """Every line until the server closes the connection."""
    lines = []
    while True:
        line = f.readline()
        if not line:
            return lines
        lines.append(line)


def test_a_client_that_does_not_log_in_is_told_bye_then_closed(short_preauth, single):
    """A connection silent past the wait for a login (2 s here, 120 s by
    default) gets "* BYE Disconnected for inactivity", as from Dovecot, and
    then the close: over implicit TLS and after STARTTLS, where the TLS
    layer once held the BYE when the connection was freed."""
    wait_for(all_connected(single.api), what="every role connected")
    t0 = time.monotonic()
    s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", single.ports["cimaps"]),
                                                           timeout=30))
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    assert _until_closed(f) == [b"* BYE Disconnected for inactivity\r\n"]
    assert 1.5 < time.monotonic() - t0 < 20
    s.close()

    raw = socket.create_connection(("127.0.0.1", single.ports["cimap"]), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"* OK")
    raw.sendall(b"a STARTTLS\r\n")
    assert f.readline().startswith(b"a OK")
    s = tls_context().wrap_socket(raw)
    f = s.makefile("rb")
    assert _until_closed(f) == [b"* BYE Disconnected for inactivity\r\n"]
    s.close()
    wait_for(lambda: single.logs().count("disconnected: inactivity") >= 2, timeout=10,
             what="both closes logged")
