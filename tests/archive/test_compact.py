"""Compaction: deleted records leave the segments, kept ones read back
byte-identical, and SIGKILL during a compaction loses nothing kept."""
import os
import random
import signal
import subprocess
import time

import pytest

from archivefix import sha256, small_tmpfs
from test_durability import make_mbox


def base_bytes(base):
    total = 0
    for root, _, files in os.walk(base / "stores"):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def leftovers(base):
    return [f for _, _, files in os.walk(base / "stores") for f in files
            if f.endswith(".compact")]


def import_and_delete(archive, tmp_path, count, every):
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(make_mbox(0, count))
    got, _ = archive.import_(mbox)
    assert len(got) == count
    ids = sorted(i for i, _ in got.values())
    doomed = ids[::every]
    kept = {i: archive.show(i) for i in ids if i not in doomed}
    archive.run("delete", *doomed)
    return doomed, kept


def check_kept(archive, kept, doomed):
    for i, data in kept.items():
        assert sha256(archive.show(i)) == sha256(data), i
    for i in doomed[:20]:
        assert archive.run("show", i, check=False).returncode != 0
    code, text = archive.verify()
    assert code == 0, text
    assert archive.search("", limit=100000)[0] == len(kept)


def test_compaction_shrinks_and_keeps(archive, tmp_path):
    doomed, kept = import_and_delete(archive, tmp_path, 300, 3)
    before = base_bytes(archive.base)
    out = archive.run("compact").stdout.decode()
    # each deleted message's own records (one content record each here)
    assert out.startswith("compact: 1 segments, ") and int(out.split()[3]) >= 100, out
    after = base_bytes(archive.base)
    # 100 of 300 ~3 kB messages (compressed, so a generous lower bound)
    assert after < before - 50 * 500, (before, after, out)
    check_kept(archive, kept, doomed)
    assert not leftovers(archive.base)
    # nothing left to do: a second run rewrites nothing
    assert archive.run("compact").stdout.decode().startswith("compact: 0 segments")


def test_deleted_text_leaves_the_segments(archive, tmp_path):
    doomed, kept = import_and_delete(archive, tmp_path, 60, 4)
    # make_mbox: message n (id n + 1 here) has the unique "Message-ID: <cN@x>"
    gone = [b"<c%d@x>" % (i - 1) for i in doomed]
    stay = [b"<c%d@x>" % (i - 1) for i in kept]
    dump = archive.run("dump-records").stdout
    assert all(g in dump for g in gone), "the dump must see records before compaction"
    archive.run("compact")
    dump = archive.run("dump-records").stdout
    assert not [g for g in gone if g in dump]
    assert all(k in dump for k in stay)


def exported_hashes(archive, tmp_path):
    out = tmp_path / "export"
    if out.exists():
        for f in out.iterdir():
            f.unlink()
        out.rmdir()
    archive.run("export", "*", out)
    return sorted(sha256(f.read_bytes()) for f in out.iterdir())


def test_sigkill_during_compaction(archive, tmp_path):
    """Each round deletes more (so every compaction has work) and kills the
    compaction after a random delay (0 to 0.6 s, from its start: before,
    inside or after it); then verify is clean and exactly the kept messages
    export byte for byte."""
    doomed, kept = import_and_delete(archive, tmp_path, 1500, 10)
    rnd = random.Random(7)
    for attempt in range(8):
        more = sorted(rnd.sample(sorted(kept), 40))
        archive.run("delete", *more)
        for i in more:
            del kept[i]
        doomed += more
        p = subprocess.Popen(archive.argv("compact"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.0, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait()
        # verify opens for writing: it finishes or undoes the interrupted rewrite
        code, text = archive.verify()
        assert code == 0, text
        assert not leftovers(archive.base)
        assert exported_hashes(archive, tmp_path) == sorted(sha256(d) for d in kept.values())
    archive.run("compact")
    check_kept(archive, kept, doomed)
    assert archive.run("compact").stdout.decode().startswith("compact: 0 segments")


@pytest.fixture
def small_fs(tmp_path):
    yield from small_tmpfs(tmp_path / "small", "32m")


def leave_free(fs, filler, room):
    """Fills the file system but for about `room` bytes."""
    if filler.exists():
        filler.unlink()
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError:
            pass
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    size = filler.stat().st_size
    os.truncate(filler, max(0, size + free - room))


def test_compaction_on_a_full_disk_keeps_everything(small_fs, tmp_path):
    """A compaction needs room for the rewritten segment, then for the WAL
    and VACUUM's transient copy of the catalog (a file since it is no longer
    held in memory). With less room at each of those steps it fails with a
    clear error, and every kept message stays readable and verify clean;
    with room again it finishes."""
    from archivefix import Archive
    (tmp_path / "keys").mkdir()
    archive = Archive(small_fs / "base", tmp_path / "keys" / "k")
    doomed, kept = import_and_delete(archive, tmp_path, 1200, 3)
    filler = small_fs / "filler"
    errors = []
    segments_before = base_bytes(archive.base)
    scrub_failures = 0
    for room in (16 << 10, 256 << 10, 1 << 20, 2 << 20, 3 << 20, 4 << 20, 6 << 20):
        leave_free(small_fs, filler, room)
        p = archive.run("compact", check=False)
        if p.returncode == 0:
            break
        # the reason, not only "disk I/O error" (the paths hold "full")
        err = p.stderr.decode(errors="replace").replace(str(small_fs), "FS")
        assert "No space left on device" in err or "disk is full" in err, err
        errors.append(err.strip())
        # the segment rewritten (and committed), the scrub out of room
        scrub_failures += base_bytes(archive.base) < segments_before
        filler.unlink()
        code, text = archive.verify()
        assert code == 0, text
        assert exported_hashes(archive, tmp_path) == sorted(sha256(d) for d in kept.values())
    # both steps ran out of room on the way: the segment and the scrub
    assert any(".compact" in e or "seg-" in e for e in errors), errors
    assert any("database or disk is full" in e for e in errors), errors
    assert scrub_failures > 0, errors
    if filler.exists():
        filler.unlink()
    archive.run("compact")
    check_kept(archive, kept, doomed)
    assert not leftovers(archive.base)
    assert not [f for f in os.listdir(archive.base) if f.startswith(".catalog-temp-")]
