"""Coffer's IMAP structures beside Dovecot's, message by message, for every
message of the tricky corpus (../shared/corpus/tricky.tar.zst).

Both servers get the same messages: Coffer through the instance import,
Dovecot as a Maildir that it serves pre-authenticated on its standard input
and output (its `imap` binary run directly, as an unprivileged user, with a
configuration in a temporary directory: no listener, no root process). One
connection per side; every command is pipelined.

Compared per message: ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[],
a partial BODY[]<o.n>, HEADER, TEXT, HEADER.FIELDS, and for every part
number the message has BODY[n] and BODY[n.MIME] (and n.HEADER / n.TEXT of
encapsulated messages). A difference passes only if it belongs to one of the
classes in KNOWN, each documented in docs/imap.md ("Beside Dovecot"); any
other difference fails the test with the message and the two answers."""
import collections
import email
import email.policy
import hashlib
import os
import pathlib
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest

from daemonfix import ROOT, all_connected, wait_for
from test_instances import data_dir, state

SHARED = os.path.join(os.path.dirname(ROOT), "shared")
CORPUS = os.path.join(SHARED, "corpus", "tricky.tar.zst")
DOVECOT_IMAP = "/usr/lib/dovecot/imap"


# ---- the messages -------------------------------------------------------

def split_mboxrd(data):
    """As ../shared/peers/mbox2maildir.py splits an mbox."""
    sep = re.compile(rb"^From [^\n]*\n", re.M)
    unescape = re.compile(rb"^>(>*From )", re.M)
    marks = list(sep.finditer(data))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(data)
        msg = data[m.end():end]
        if msg.endswith(b"\n\n"):
            msg = msg[:-1]
        msg = unescape.sub(rb"\1", msg)
        if msg.strip():
            out.append(msg)
    return out


def corpus_messages(root):
    """Every message the corpus manifests list, mboxes split; distinct."""
    seen, out = set(), []
    for project in sorted(os.listdir(root)):
        manifest = os.path.join(root, project, "MANIFEST.tsv")
        if not os.path.exists(manifest):
            continue
        for line in open(manifest, encoding="utf-8", errors="replace"):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                continue
            path = os.path.join(root, project, fields[0])
            if not os.path.isfile(path):
                continue
            data = open(path, "rb").read()
            msgs = split_mboxrd(data) if fields[1] == "mbox" else [data]
            for m in msgs:
                # a file that starts like an mbox would be split by the
                # import; empty ones are skipped by both servers
                if not m.strip() or m.startswith(b"From "):
                    continue
                h = hashlib.sha256(m).digest()
                if h not in seen:
                    seen.add(h)
                    out.append(m)
    return out


def canonical(data):
    """A message as IMAP serves it: CRLF line ends, NUL as 0x80."""
    data = re.sub(rb"\r*\n", b"\r\n", data)
    return data.replace(b"\0", b"\x80")


def match_key(body):
    """What identifies a message on both sides whatever the line ends."""
    return hashlib.sha256(re.sub(rb"\r*\n", b"\n", body).replace(b"\x80", b"\0")).digest()


# ---- a small IMAP client -------------------------------------------------

class Conn:
    """Reads IMAP responses (with literals) from a byte stream."""

    def __init__(self, rfile, wfile):
        self.rfile, self.wfile = rfile, wfile

    def send(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def read_response(self):
        """One response line with its literals inlined: a list of byte pieces
        (text and ("lit", bytes))."""
        pieces = []
        while True:
            line = self.rfile.readline()
            if not line:
                raise EOFError("connection closed")
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if not m:
                pieces.append(line)
                return pieces
            pieces.append(line[:m.start()])
            n = int(m.group(1))
            data = b""
            while len(data) < n:
                chunk = self.rfile.read(n - len(data))
                if not chunk:
                    raise EOFError("connection closed in a literal")
                data += chunk
            pieces.append(("lit", data))

    def command(self, tag, text):
        self.send(b"%s %s\r\n" % (tag, text))

    def collect(self, tags):
        """Read until every tag is done: ({tag: status line}, [untagged])."""
        want, done, untagged = set(tags), {}, []
        while want - set(done):
            r = self.read_response()
            first = r[0] if isinstance(r[0], bytes) else b""
            tag = first.split(b" ", 1)[0]
            if tag in want:
                done[tag] = first
            else:
                untagged.append(r)
        return done, untagged


def tokenize(pieces):
    """IMAP response pieces into a nested list: atoms as str (upper-cased
    NIL is None), strings as bytes (quoted or literal)."""
    toks = []
    for p in pieces:
        if isinstance(p, tuple):
            toks.append(("s", p[1]))
            continue
        i, n = 0, len(p)
        while i < n:
            c = p[i:i + 1]
            if c in b" \r\n":
                i += 1
            elif c in b"()":
                toks.append((c.decode(), None))
                i += 1
            elif c == b'"':
                j, buf = i + 1, bytearray()
                while j < n and p[j:j + 1] != b'"':
                    if p[j:j + 1] == b"\\":
                        j += 1
                    buf += p[j:j + 1]
                    j += 1
                toks.append(("s", bytes(buf)))
                i = j + 1
            else:
                j = i
                while j < n and p[j:j + 1] not in b" ()\r\n":
                    if p[j:j + 1] == b"[":  # BODY[...] keeps its brackets
                        k = p.index(b"]", j)
                        j = k
                    j += 1
                toks.append(("a", p[i:j].decode("latin-1")))
                i = j
    pos = [0]

    def value():
        kind, v = toks[pos[0]]
        pos[0] += 1
        if kind == "(":
            out = []
            while toks[pos[0]][0] != ")":
                out.append(value())
            pos[0] += 1
            return out
        if kind == "a" and v.upper() == "NIL":
            return None
        return v

    out = []
    while pos[0] < len(toks):
        out.append(value())
    return out


def parse_fetch(pieces):
    """An untagged FETCH into (seq, {ITEM: value})."""
    toks = tokenize(pieces)
    if len(toks) < 4 or toks[0] != "*" or str(toks[2]).upper() != "FETCH":
        return None, None
    items, lst = {}, toks[3]
    for i in range(0, len(lst) - 1, 2):
        items[lst[i].upper()] = lst[i + 1]
    return int(toks[1]), items


PIPELINE_WINDOW = 32


class Side:
    """One server's mailbox: UIDs by message key, batched fetches."""

    def __init__(self, name, conn):
        self.name, self.conn, self.n = name, conn, 0

    def tag(self):
        self.n += 1
        return b"%s%d" % (self.name[:1].encode(), self.n)

    def run(self, text):
        t = self.tag()
        self.conn.command(t, text)
        done, untagged = self.conn.collect([t])
        assert b" OK " in done[t], (self.name, text, done[t])
        return untagged

    def fetch_many(self, commands):
        """Pipelined UID FETCH commands: {uid: merged items}."""
        # In windows: the commands of a window are small enough to sit in
        # the socket buffers while the answers are read, so nothing blocks
        # and no second thread touches the (TLS) socket.
        done, untagged = {}, []
        for i in range(0, len(commands), PIPELINE_WINDOW):
            tags = []
            for text in commands[i:i + PIPELINE_WINDOW]:
                tags.append(self.tag())
                self.conn.command(tags[-1], text)
            d, u = self.conn.collect(tags)
            done.update(d)
            untagged += u
        bad = [(t, s) for t, s in done.items() if b" OK " not in s]
        assert not bad, (self.name, bad[:3])
        out = collections.defaultdict(dict)
        for r in untagged:
            seq, items = parse_fetch(r)
            if items is not None and "UID" in items:
                out[int(items["UID"])].update(items)
        return out


# ---- the two servers ----------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not os.path.exists(CORPUS):
        pytest.skip("%s is absent (the shared corpus lives in ../shared next to the "
                    "repository)" % CORPUS)
    if not os.path.exists(DOVECOT_IMAP):
        pytest.skip("Dovecot (dovecot-imapd) is not installed")
    root = tmp_path_factory.mktemp("tricky")
    subprocess.run(["tar", "-I", "zstd", "-xf", CORPUS, "-C", str(root)], check=True)
    msgs = corpus_messages(str(root))
    assert len(msgs) > 800
    return msgs


@pytest.fixture
def dovecot(corpus):
    """Dovecot's imap, pre-authenticated, serving the corpus as a Maildir."""
    top = tempfile.mkdtemp(prefix="coffer-dovecot-", dir="/tmp")
    os.chmod(top, 0o755)  # Dovecot runs as nobody below when the test is root
    work = pathlib.Path(top) / "dovecot"
    for d in ("Maildir/cur", "Maildir/new", "Maildir/tmp", "index", "run", "state"):
        (work / d).mkdir(parents=True)
    for i, m in enumerate(corpus):
        (work / "Maildir" / "cur" / ("%d.tricky:2,S" % (i + 1))).write_bytes(m)
    (work / "dovecot.conf").write_text(
        "base_dir = {w}/run\nstate_dir = {w}/state\nlog_path = {w}/dovecot.log\n"
        "mail_location = maildir:{w}/Maildir:INDEX={w}/index\n"
        "first_valid_uid = 0\nssl = no\nprotocols = imap\n".format(w=work))
    env = {"USER": "coffer-test", "HOME": str(work), "PATH": "/usr/bin:/bin"}
    preexec = None
    if os.geteuid() == 0:
        # Dovecot's mail processes do not run as root: run it as nobody
        nobody = pwd.getpwnam("nobody")
        subprocess.run(["chown", "-R", "%d:%d" % (nobody.pw_uid, nobody.pw_gid), str(work)],
                       check=True)

        def preexec():
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
    p = subprocess.Popen([DOVECOT_IMAP, "-c", str(work / "dovecot.conf")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=env, preexec_fn=preexec, cwd=str(work))
    conn = Conn(p.stdout, p.stdin)
    greeting = conn.read_response()
    assert b"PREAUTH" in greeting[0], greeting
    side = Side("dovecot", conn)
    yield side
    try:
        p.stdin.write(b"z LOGOUT\r\n")
        p.stdin.close()
    except OSError:
        pass
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def coffer(corpus, single):
    wait_for(all_connected(single.api), what="every role connected")
    api = single.api
    base = data_dir(single, "acme")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    imp = os.path.join(base, "import", "tricky")
    os.makedirs(imp)
    for i, m in enumerate(corpus):
        with open(os.path.join(imp, "%05d.eml" % (i + 1)), "wb") as f:
            f.write(m)
    subprocess.run(["chown", "-R", "coffer", os.path.join(base, "import")], check=False)
    r = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/tricky",
                 "folder=Tricky")
    assert r["archived"] >= len(corpus) - 5, r
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", single.ports["cimaps"]),
                                                    timeout=300))
    conn = Conn(sock.makefile("rb"), sock.makefile("wb"))
    conn.read_response()
    side = Side("coffer", conn)
    side.logs = single.logs  # for a failure's message
    side.run(b"LOGIN alice@acme alice-pass-1")
    yield side
    sock.close()


# ---- comparing ----------------------------------------------------------

def part_numbers(bs, prefix=""):
    """Every part number of a BODYSTRUCTURE, with whether it is message/rfc822."""
    out = []
    if not isinstance(bs, list) or not bs:
        return out
    if isinstance(bs[0], list):  # multipart
        i = 0
        while i < len(bs) and isinstance(bs[i], list):
            num = prefix + str(i + 1)
            out += part_numbers(bs[i], num + ".") if isinstance(bs[i][0], list) else []
            if not isinstance(bs[i][0], list):
                out += leaf_numbers(bs[i], num)
            else:
                out.append((num, False))
            i += 1
        return out
    return leaf_numbers(bs, prefix + "1") if prefix == "" else out


def leaf_numbers(bs, num):
    out = [(num, False)]
    is_msg = (isinstance(bs[0], bytes) and bs[0].lower() == b"message" and isinstance(bs[1], bytes)
              and bs[1].lower() in (b"rfc822", b"global") and len(bs) > 9 and isinstance(bs[8], list))
    if is_msg:
        out[0] = (num, True)
        inner = bs[8]
        if isinstance(inner, list) and inner and isinstance(inner[0], list):
            out += part_numbers(inner, num + ".")
        elif isinstance(inner, list) and inner:
            out += [(n, m) for n, m in leaf_numbers(inner, num + ".1")]
    return out


def sections_of(bs):
    secs = ["HEADER", "TEXT", "HEADER.FIELDS (SUBJECT FROM)"]
    for num, is_msg in part_numbers(bs)[:200]:
        secs.append(num)
        secs.append(num + ".MIME")
        if is_msg:
            secs += [num + ".HEADER", num + ".TEXT"]
    return secs


def upper_atoms(v):
    """Media types, subtypes, parameter names and encodings, upper-cased."""
    if isinstance(v, list):
        return [upper_atoms(x) for x in v]
    return v.upper() if isinstance(v, bytes) else v


def only_case(a, b):
    return a != b and upper_atoms(a) == upper_atoms(b)


def mime_defects(raw):
    """Whether Python's email package finds the MIME structure malformed."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return any(part.defects for part in msg.walk())


def squeeze(v):
    """Strings with runs of blanks as one space."""
    if isinstance(v, list):
        return [squeeze(x) for x in v]
    return re.sub(rb"[ \t]+", b" ", v).strip() if isinstance(v, bytes) else v


def has_empty_type(v):
    """Dovecot's BODYSTRUCTURE gives "" "" for a type it cannot parse."""
    if not isinstance(v, list):
        return False
    if len(v) > 1 and v[0] == b"" and v[1] == b"":
        return True
    return any(has_empty_type(x) for x in v)


def contains(v, pred):
    if isinstance(v, list):
        return any(contains(x, pred) for x in v)
    return isinstance(v, bytes) and pred(v)


def not_utf8(b):
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def encoded_params(v):
    """Dovecot keeps RFC 2047 words, RFC 2231 names ("name*") and 8-bit
    values raw; GMime decodes them (8-bit by its fallback charsets)."""
    return contains(v, lambda b: b"=?" in b or b.endswith(b"*") or b"''" in b or not_utf8(b))


def close_delimiter_line_break(c, d):
    """A part ending with a close delimiter directly followed by its parent's
    delimiter: Dovecot gives the line break between them to the part."""
    return isinstance(c, bytes) and isinstance(d, bytes) and c.endswith(b"--") and d == c + b"\r\n"


def bad_address(v):
    return contains(v, lambda b: b in (b"SYNTAX_ERROR", b"MISSING_MAILBOX"))


def unfolded_fields(block):
    """The header fields of a block of lines, folds joined."""
    fields = []
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b" " + line.strip()
        elif line:
            fields.append(line)
    return fields


def content_type_blocks(raw):
    """The Content-Type values of each block (text between blank lines):
    the message's header and every part's (body paragraphs rarely start
    with "Content-Type:")."""
    out = []
    for block in re.split(rb"\r?\n[ \t]*\r?\n", raw):
        values = [f.split(b":", 1)[1].strip() for f in unfolded_fields(block)
                  if f.lower().startswith(b"content-type:")]
        if values:
            out.append(values)
    return out


TSPECIALS_OR_BLANK = re.compile(rb'[ \t()<>@,:\\/\[\]?=]')


def loose_parameters(value):
    """Whether a Content-Type value has an empty parameter (";;") or an
    unquoted value with a blank or tspecial in it (RFC 2045 5.1 wants them
    quoted): "name=This is a test.txt", "boundary=----=_NextPart"."""
    params = re.split(rb';(?=(?:[^"]*"[^"]*")*[^"]*$)', value)[1:]
    for i, p in enumerate(params):
        p = p.strip()
        if not p:
            if i < len(params) - 1:
                return True
            continue
        name, eq, v = p.partition(b"=")
        v = v.strip()
        if eq and v and not v.startswith(b'"') and TSPECIALS_OR_BLANK.search(v):
            return True
    return False


class Traits:
    """What a message's own text shows, for the classes below."""

    def __init__(self, raw):
        self.malformed = mime_defects(raw)
        blocks = content_type_blocks(raw)
        self.loose_params = any(loose_parameters(v) for b in blocks for v in b)


ADDRESS_FIELDS = range(2, 8)  # from, sender, reply-to, to, cc, bcc


def addresses_resumed(c, d):
    """ENVELOPEs equal but for address lists where Dovecot stopped at an
    address it could not parse and Coffer went on after the next comma."""
    if not (isinstance(c, list) and isinstance(d, list)) or len(c) != len(d):
        return False
    resumed = False
    for i, (cf, df) in enumerate(zip(c, d)):
        if cf == df:
            continue
        if i not in ADDRESS_FIELDS or not isinstance(cf, list) or not isinstance(df, list):
            return False
        if len(df) >= len(cf) or cf[:len(df)] != df:
            return False
        resumed = True
    return resumed


STRUCTURE_ITEMS = ("BODYSTRUCTURE", "BODY")


def is_structure_item(item):
    return item in STRUCTURE_ITEMS or re.match(r"BODY\[\d", item) is not None


# Each class: name -> (its section in docs/imap.md, predicate(item, coffer,
# dovecot, malformed)). A difference is allowed only if one of these says it
# is of that class; anything else fails the test.
KNOWN = {
    "case": ("Beside Dovecot / Case",
             lambda item, c, d, m: item in STRUCTURE_ITEMS and only_case(c, d)),
    "blanks": ("Beside Dovecot / Runs of blanks",
               lambda item, c, d, m: item in ("ENVELOPE",) + STRUCTURE_ITEMS
               and squeeze(upper_atoms(c)) == squeeze(upper_atoms(d))),
    "close-delimiter": ("Beside Dovecot / A close delimiter right before the next delimiter",
                        lambda item, c, d, m: re.match(r"BODY\[[\d.]+\]$", item) is not None
                        and close_delimiter_line_break(c, d)),
    "unparsable-type": ("Beside Dovecot / Content-Type that does not parse",
                        lambda item, c, d, m: item in STRUCTURE_ITEMS and has_empty_type(d)),
    "decoded-params": ("Beside Dovecot / Parameter values",
                       lambda item, c, d, m: item in STRUCTURE_ITEMS and encoded_params(d)),
    "bad-address": ("Beside Dovecot / Address lists that do not parse",
                    lambda item, c, d, m: item == "ENVELOPE" and bad_address(d)),
    "malformed-mime": ("Beside Dovecot / Malformed MIME structure",
                       lambda item, c, d, m: m.malformed and is_structure_item(item)),
    "loose-parameters": ("Beside Dovecot / Parameters written without quotes",
                         lambda item, c, d, m: m.loose_params and is_structure_item(item)),
    "resumed-address-list": ("Beside Dovecot / Address lists that do not parse",
                             lambda item, c, d, m: item == "ENVELOPE" and addresses_resumed(c, d)),
}


# Messages with differences not yet explained or fixed, by the first 16 hex
# digits of the SHA-256 of Dovecot's BODY[] and the items that differ: listed
# in docs/imap.md ("Open differences") as work to do, not as justified. A
# difference in any other message or item fails the test.
OPEN = {}


def classify(item, c, d, traits):
    for name, (_, pred) in KNOWN.items():
        if pred(item, c, d, traits):
            return name
    return None


def show(v, limit=600):
    r = repr(v)
    return r if len(r) < limit else r[:limit] + "..."


def test_structures_match_dovecot(coffer, dovecot, corpus):
    for side in (coffer, dovecot):
        side.run(b'EXAMINE "Tricky"' if side is coffer else b"EXAMINE INBOX")
    first = b"UID FETCH 1:* (UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[])"
    try:
        c_all = coffer.fetch_many([first])
    except EOFError:
        pytest.fail("Coffer closed the connection; its logs:\n" + coffer.logs()[-6000:])
    d_all = dovecot.fetch_many([first])
    d_by_key = {match_key(v["BODY[]"]): uid for uid, v in d_all.items()}
    pairs = []
    for uid, v in c_all.items():
        key = match_key(v["BODY[]"])
        assert key in d_by_key, "coffer message %d has no Dovecot twin" % uid
        pairs.append((uid, d_by_key[key]))
    assert len(pairs) >= len(corpus) - 5, (len(pairs), len(corpus))

    # sections and partial fetches, one pipelined command per message and side
    c_cmds, d_cmds, wanted = [], [], {}
    for cu, du in pairs:
        secs = sections_of(d_all[du]["BODYSTRUCTURE"])
        for s in sections_of(c_all[cu]["BODYSTRUCTURE"]):
            if s not in secs:
                secs.append(s)
        wanted[cu] = secs
        items = ["BODY.PEEK[%s]" % s for s in secs] + ["BODY.PEEK[]<7.100>"]
        for i in range(0, len(items), 40):  # Coffer takes 64 items a command
            chunk = " ".join(items[i:i + 40])
            c_cmds.append(("UID FETCH %d (%s)" % (cu, chunk)).encode())
            d_cmds.append(("UID FETCH %d (%s)" % (du, chunk)).encode())
    c_sec = coffer.fetch_many(c_cmds)
    d_sec = dovecot.fetch_many(d_cmds)

    counts = collections.Counter()
    failures = []
    open_seen = collections.defaultdict(set)
    open_diffs = []
    for cu, du in pairs:
        traits = Traits(d_all[du]["BODY[]"])
        digest = hashlib.sha256(d_all[du]["BODY[]"]).hexdigest()[:16]
        c, d = dict(c_all[cu]), dict(d_all[du])
        c.update(c_sec.get(cu, {}))
        d.update(d_sec.get(du, {}))
        for item in sorted(set(c) | set(d)):
            if item == "UID":
                continue
            cv, dv = c.get(item), d.get(item)
            if cv == dv:
                continue
            cls = classify(item, cv, dv, traits)
            if cls is not None:
                counts[cls] += 1
                continue
            open_seen[digest].add(item)
            text = ("message %d (dovecot %d) %s:\n  coffer:  %s\n  dovecot: %s"
                    % (cu, du, item, show(cv), show(dv)))
            if item in OPEN.get(digest, ()):
                counts["open"] += 1
                open_diffs.append(text)
                continue
            failures.append("message %d (dovecot %d) %s:\n  coffer:  %s\n  dovecot: %s"
                            % (cu, du, item, show(cv), show(dv)))
    print("known differences:", dict(counts))
    if os.environ.get("COFFER_DOVECOT_OPEN"):  # the OPEN table as it stands
        with open(os.environ["COFFER_DOVECOT_OPEN"], "w") as f:
            for k in sorted(open_seen):
                f.write('    "%s": %r,\n' % (k, tuple(sorted(open_seen[k]))))
    if os.environ.get("COFFER_DOVECOT_DIFFS"):  # for investigating: every difference
        with open(os.environ["COFFER_DOVECOT_DIFFS"], "w") as f:
            f.write("\n".join(failures + open_diffs))
    if failures:
        by_item = collections.Counter(f.split("\n")[0].split(") ", 1)[1] for f in failures)
        summary = ", ".join("%s: %d" % kv for kv in by_item.most_common(20))
        pytest.fail("%d unexplained differences (%s); first ones:\n%s"
                    % (len(failures), summary, "\n".join(failures[:15])))
