"""Search on a generated corpus whose answers the test knows."""
import pytest

from archivefix import Archive

PEOPLE = ["ralf@linux-mips.org", "alice@example.com", "bob@example.net"]


def build(n):
    """Message n: sender, subject and body follow simple rules the checks use."""
    frm = PEOPLE[n % 3]
    subject = ("[PATCH] " if n % 4 == 0 else "Re: ") + "topic %d" % (n % 10)
    words = ["kernel"] if n % 2 == 0 else []
    if n % 5 == 0:
        words.append("panic")
    if n % 7 == 0:
        words.append("cache flush")
    if n % 11 == 0:
        words.append("octeon")
    if n % 13 == 0:
        words.append("Schön")
    words.append("text%d" % n)
    year = 2015 + n % 5
    head = ("From: Someone <%s>\nTo: list@linux-mips.org\nCc: cc%d@example.org\n"
            "Subject: %s\nDate: Mon, 05 Jan %d 12:00:%02d +0000\nMessage-ID: <s%d@x>\n"
            "MIME-Version: 1.0\n" % (frm, n % 2, subject, year, n % 60, n))
    body = " ".join(words) + "\n" + "filler line\n" * (n % 40)
    if n % 9 == 0:
        return (head + "Content-Type: multipart/mixed; boundary=Q\n\n--Q\n"
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
                + body + "--Q\nContent-Type: text/plain; name=notes%d.txt\n"
                "Content-Disposition: attachment; filename=notes%d.txt\n\nattachedword\n"
                "--Q--\n" % (n, n)).encode()
    if n % 8 == 1:
        return (head + "Content-Type: text/html; charset=iso-8859-1\n\n<p>" +
                body.replace("Schön", "Sch&ouml;n") + "</p>\n").encode("latin-1")
    return (head + "Content-Type: text/plain; charset=utf-8\n\n" + body).encode()


N = 300


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("search")
    (tmp / "keys").mkdir()
    a = Archive(tmp / "base", tmp / "keys" / "k")
    mbox = b"".join(b"From x Mon Jan  5 12:00:00 2015\n" + build(n) + b"\n" for n in range(N))
    archived, _ = a.import_("-", input=mbox)
    ids = {int(src.split(":")[1]) - 1: mid for src, (mid, _) in archived.items()}
    return a, ids


def expect(corpus, query, rule):
    a, ids = corpus
    want = sorted(ids[n] for n in range(N) if rule(n))
    total, got = a.search(query)
    assert total == len(want), query
    assert sorted(got) == want, query


CASES = [
    ("kernel", lambda n: n % 2 == 0),
    ('"cache flush"', lambda n: n % 7 == 0),
    ('"flush cache"', lambda n: False),
    ("from:ralf@linux-mips.org", lambda n: n % 3 == 0),
    ("subject:PATCH AND date:2016-01-01..2016-12-31", lambda n: n % 4 == 0 and n % 5 == 1),
    ("kernel AND panic AND NOT subject:PATCH", lambda n: n % 10 == 0 and n % 4 != 0),
    ("kernel panic -subject:PATCH", lambda n: n % 10 == 0 and n % 4 != 0),
    ("octeon OR panic", lambda n: n % 11 == 0 or n % 5 == 0),
    ("(octeon OR panic) AND NOT kernel", lambda n: (n % 11 == 0 or n % 5 == 0) and n % 2),
    ("oct*", lambda n: n % 11 == 0),
    ("text1?", lambda n: 10 <= n <= 19),
    ("t?xt2", lambda n: n == 2),
    ("schon", lambda n: n % 13 == 0),
    ("Schön", lambda n: n % 13 == 0),
    ("cc:cc1@example.org", lambda n: n % 2 == 1),
    ("to:list@linux-mips.org", lambda n: True),
    ("has:attachment", lambda n: n % 9 == 0),
    ("attachment:notes18.txt", lambda n: n == 18),
    ("attachedword", lambda n: n % 9 == 0),
    ("body:kernel AND NOT has:attachment", lambda n: n % 2 == 0 and n % 9 != 0),
    ("date:2017", lambda n: n % 5 == 2),
    ("date:>=2018-01-01", lambda n: n % 5 >= 3),
    ("before:2016 OR after:2018", lambda n: n % 5 in (0, 4)),
    ("NOT kernel", lambda n: n % 2 == 1),
    ("folder:INBOX", lambda n: True),
    ("folder:Nope", lambda n: False),
    ("*", lambda n: True),
    ("subject:\"topic 3\"", lambda n: n % 10 == 3),
]


@pytest.mark.parametrize("query,rule", CASES, ids=[c[0] for c in CASES])
def test_query(corpus, query, rule):
    expect(corpus, query, rule)


def test_size(corpus):
    a, ids = corpus
    sizes = {n: len(build(n)) for n in range(N)}
    limit = sorted(sizes.values())[N // 2]
    want = sorted(ids[n] for n in range(N) if sizes[n] > limit)
    total, got = a.search("size:>%d" % limit)
    assert sorted(got) == want


def test_newest_first_and_paging(corpus):
    a, ids = corpus
    total, first = a.search("kernel", limit=10)
    assert total == N // 2 and len(first) == 10
    _, second = a.search("kernel", limit=10, offset=10)
    _, everything = a.search("kernel", limit=1000)
    assert everything[:20] == first + second
    out = a.run("search", "--limit", "1000", "kernel").stdout.decode().splitlines()[1:]
    dates = [line.split("\t")[1] for line in out]
    assert dates == sorted(dates, reverse=True)
    line = out[0].split("\t")
    assert len(line) == 4 and "@" in line[2] and "topic" in line[3]
