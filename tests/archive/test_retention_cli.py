"""`coffer archive retention` (archive_delete_expired(), what
ProcessRetentionPolicies runs): on mail whose dates the test knows, a dry run
counts and changes nothing, a run deletes exactly what a maximum keep time
says less what a minimum keep time protects; the deleted messages' words
leave the index (verify's FTS5 integrity check fails if the values a deletion
unindexed differ from those indexed), the kept ones read back byte for byte;
bad policies are refused with a clear error."""
import base64
import email.utils
import random
import time

from archivefix import sha256

COUNT = 120
DAYS = 50


def mail(i, now):
    """Message i is dated i days and 12 hours ago; every third one carries a
    20 KiB attachment (a shared-part record of its own), every tenth says
    'keepme'."""
    date = email.utils.formatdate(now - i * 86400 - 43200)
    words = "keepme " if i % 10 == 0 else ""
    body = "uniq%05d %scommon words of message %d\n" % (i, words, i)
    head = ("From: sender%d@example.test\nTo: archive@example.test\nSubject: retention %d\n"
            "Date: %s\nMessage-ID: <r%d@example.test>\nMIME-Version: 1.0\n" % (i, i, date, i))
    if i % 3 == 0:
        blob = base64.encodebytes(random.Random(i).randbytes(20000)).decode()
        msg = (head + 'Content-Type: multipart/mixed; boundary="b"\n\n--b\n'
               "Content-Type: text/plain\n\n" + body + "--b\nContent-Type: application/octet-stream\n"
               'Content-Disposition: attachment; filename="f%d.bin"\n'
               "Content-Transfer-Encoding: base64\n\n%s--b--\n" % (i, blob))
    else:
        msg = head + "\n" + body
    return b"From x Tue Jan  2 10:00:00 2018\n" + msg.encode() + b"\n"


def test_retention_from_the_command_line(archive, tmp_path):
    now = time.time()
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"".join(mail(i, now) for i in range(COUNT)))
    got, _ = archive.import_(mbox)
    assert len(got) == COUNT
    # archived in the order of the mbox
    ids = dict(enumerate(sorted(i for i, _ in got.values())))
    assert archive.search("uniq%05d" % 7)[1] == [ids[7]]
    before = {i: archive.show(ids[i]) for i in range(COUNT)}
    policies = ('[{"name": "old", "type": "maximum", "days": %d},'
                ' {"name": "keep", "type": "minimum", "days": 36500, "query": "keepme"}]' % DAYS)
    expired = [i for i in range(COUNT) if i >= DAYS]
    protected = [i for i in expired if i % 10 == 0]
    doomed = [i for i in expired if i % 10 != 0]

    out = archive.run("retention", "--dry-run", "--policies", policies).stdout.decode()
    assert out == ("retention: %d expired, 0 kept by legal hold, %d kept by minimum, %d would "
                   "be deleted, 0 contents removed\n" % (len(expired), len(protected), len(doomed)))
    assert archive.search("*")[0] == COUNT

    out = archive.run("retention").stdout.decode()  # the policies stay set
    assert out == ("retention: %d expired, 0 kept by legal hold, %d kept by minimum, %d deleted, "
                   "%d contents removed\n" % (len(expired), len(protected), len(doomed),
                                              len(doomed)))
    assert archive.search("*")[0] == COUNT - len(doomed)
    for i in range(COUNT):
        if i in doomed:
            assert archive.search("uniq%05d" % i)[0] == 0, i
            assert archive.run("show", ids[i], check=False).returncode != 0
        else:
            assert sha256(archive.show(ids[i])) == sha256(before[i]), i
    assert archive.search("keepme")[0] == len([i for i in range(COUNT) if i % 10 == 0])
    code, text = archive.verify()
    assert code == 0, text
    # nothing left to expire
    out = archive.run("retention").stdout.decode()
    assert out.startswith("retention: %d expired, 0 kept by legal hold, %d kept by minimum, 0 "
                          "deleted" % (len(protected), len(protected))), out


def test_retention_refuses_bad_policies(archive, tmp_path):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(mail(1, time.time()))
    archive.import_(mbox)
    for bad, what in (("not json", "--policies"), ('[{"name": "x", "type": "sometimes", "days": 1}]',
                                                   "type: minimum or maximum"),
                      ('[{"name": "x", "type": "maximum", "days": -1}]', "days")):
        p = archive.run("retention", "--policies", bad, check=False)
        assert p.returncode == 1, bad
        assert what in p.stderr.decode(), p.stderr
    assert archive.search("*")[0] == 1
