"""Crash safety (SIGKILL at random points), a full disk, and a corrupted byte."""
import os
import random
import signal
import subprocess
import time

import pytest

from archivefix import parse_archived, sha256, small_tmpfs


def make_mbox(start, count, size=3000):
    rnd = random.Random(start)
    out = []
    for n in range(start, start + count):
        body = "".join(rnd.choice("abcdefghij kl\n") for _ in range(size))
        out.append(b"From x Tue Jan  2 10:00:00 2018\n" +
                   ("From: a%d@example.com\nSubject: crash test %d\nMessage-ID: <c%d@x>\n\n%s\n"
                    % (n, n, n, body)).encode() + b"\n")
    return b"".join(out)


def check_reported_present(archive, reported):
    """Every message reported archived is there, byte for byte (by hash)."""
    total, ids = archive.search("", limit=100000)
    assert total >= len(reported)
    import shutil
    import tempfile
    from pathlib import Path
    out = Path(tempfile.mkdtemp(prefix="coffer-check-")) / "out"
    archive.run("export", "*", out)
    present = {sha256((out / f).read_bytes()) for f in os.listdir(out)}
    shutil.rmtree(out.parent)
    missing = [s for s, (_, h) in reported.items() if h not in present]
    assert not missing, "reported archived but lost: %s" % missing[:5]


def test_sigkill_at_random_points(archive, tmp_path):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(make_mbox(0, 3000))
    reported = {}
    rnd = random.Random(42)
    for attempt in range(12):
        p = subprocess.Popen(archive.argv("import", mbox), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.05, 1.2))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        reported.update(parse_archived(out))
        code, text = archive.verify()
        if code != 0 and not reported and "key file" in text and "does not exist" in text:
            continue  # killed before it created anything: nothing to verify, nothing lost
        assert code == 0, text
    # everything reported survived; a final run completes the import
    check_reported_present(archive, reported)
    final, _ = archive.import_(mbox)
    assert len(final) == 3000
    assert archive.stats()["unique_contents"] == 3000
    assert archive.verify()[0] == 0


@pytest.fixture
def tiny_fs(tmp_path):
    yield from small_tmpfs(tmp_path / "small", "16m")


def test_full_disk(tiny_fs, tmp_path):
    from archivefix import Archive
    (tmp_path / "keys").mkdir()
    archive = Archive(tiny_fs / "base", tmp_path / "keys" / "k")
    # hard to compress, to fill 16 MB after some batches (of up to 2,000
    # messages, with a WAL checkpointed every 32 MB) have committed
    mbox = tmp_path / "big.mbox"
    with open(mbox, "wb") as f:
        for n in range(8000):
            body = " ".join(os.urandom(8).hex() for _ in range(100))
            f.write(b"From x Tue Jan  2 10:00:00 2018\n" +
                    ("Subject: full %d\n\n%s\n" % (n, body)).encode() + b"\n")
    p = archive.run("import", mbox, check=False)
    assert p.returncode == 1
    err = p.stderr.decode()
    assert "No space left on device" in err or "full" in err.lower(), err
    reported = parse_archived(p.stdout)
    assert 0 < len(reported) < 8000
    code, text = archive.verify()
    assert code == 0, text
    check_reported_present(archive, reported)
    # more room: a later import carries on where the first stopped
    subprocess.run(["mount", "-o", "remount,size=160m", str(tiny_fs)], check=True)
    again, _ = archive.import_(mbox)
    assert archive.stats()["unique_contents"] == 8000
    assert archive.verify()[0] == 0


def test_corrupted_byte_names_the_message(archive, tmp_path):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(make_mbox(0, 200, size=1500))
    archived, _ = archive.import_(mbox)
    assert len(archived) == 200
    victim_source = "%s:77" % mbox
    victim_id, victim_hash = archived[victim_source]
    # find the victim's record: flip a byte in the middle of it
    where, offset, length = archive.run("locate", victim_id).stdout.decode().split()
    offset, length = int(offset), int(length)
    seg = archive.base / "stores" / where
    data = bytearray(seg.read_bytes())
    pos = offset + length // 2
    data[pos] ^= 0x40
    seg.write_bytes(bytes(data))
    code, text = archive.verify()
    assert code == 1
    problem_lines = [l for l in text.splitlines() if l.startswith("message ")]
    assert problem_lines == [l for l in problem_lines if l.startswith("message %d:" % victim_id)]
    assert len(problem_lines) == 1, text
    assert archive.run("show", victim_id, check=False).returncode == 1
    # rebuild from the segments keeps every other message
    p = archive.run("rebuild", check=False)
    assert p.returncode == 1  # one damaged record reported
    assert "offset %d" % offset in p.stdout.decode()
    assert archive.stats()["unique_contents"] == 199
    out = tmp_path / "out"
    archive.run("export", "*", out)
    hashes = {sha256((out / f).read_bytes()) for f in os.listdir(out)}
    assert hashes == {h for s, (_, h) in archived.items() if s != victim_source}
    assert archive.search("crash")[0] == 199


def test_rebuild_after_losing_the_catalog(archive, tmp_path):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(make_mbox(0, 100, size=500))
    archived, _ = archive.import_(mbox)
    archive.import_("--folder", "Other", mbox)
    before = archive.stats()
    for suffix in ("", "-wal", "-shm"):
        p = archive.base / ("catalog.db" + suffix)
        if p.exists():
            p.unlink()
    p = archive.run("search", "x", check=False)
    assert p.returncode == 1 and b"rebuild" in p.stderr
    archive.run("rebuild")
    after = archive.stats()
    assert after["messages"] == before["messages"] == 200
    assert after["unique_contents"] == 100
    assert archive.search("folder:Other")[0] == 100
    assert archive.verify()[0] == 0
