"""Real mail nobody on this project wrote (../shared/corpus): every message of a
deterministic sample of corpus A, and every file of the tricky corpus, imports
without a crash and reads back byte for byte."""
import os
import subprocess

import pytest

from archivefix import corpus_or_skip, sha256, split_mboxrd

SAMPLE_BYTES = 12_000_000  # about 3,000 messages of corpus A


@pytest.fixture(scope="module")
def sample_mbox(tmp_path_factory):
    path = corpus_or_skip("linux-mips.mboxrd.zst")
    z = subprocess.Popen(["zstd", "-dc", str(path)], stdout=subprocess.PIPE)
    data = z.stdout.read(SAMPLE_BYTES)
    z.kill()
    z.wait()
    # cut at a From_ line so the sample is a whole mbox
    data = data[:data.rindex(b"\nFrom ") + 1]
    out = tmp_path_factory.mktemp("corpus") / "sample.mbox"
    out.write_bytes(data)
    return out, data


def test_corpus_a_sample_byte_identical(archive, sample_mbox, tmp_path):
    path, data = sample_mbox
    expected = split_mboxrd(data)
    assert len(expected) > 2500
    archived, p = archive.import_(path)
    assert len(archived) == len(expected), p.stderr.decode()
    # read everything back in one process: export writes ID.eml files
    out = tmp_path / "out"
    archive.run("export", "*", out)
    by_id = {int(name[:-4]): name for name in os.listdir(out)}
    for i, msg in enumerate(expected):
        msg_id, digest = archived["%s:%d" % (path, i + 1)]
        assert digest == sha256(msg)
        assert (out / by_id[msg_id]).read_bytes() == msg, "message %d" % (i + 1)
    st = archive.stats()
    assert st["raw_bytes"] == sum(len(m) for m in set(expected))
    assert archive.verify()[0] == 0
    total, _ = archive.search("kernel")
    assert total > 100


def test_tricky_corpus(archive, tmp_path):
    path = corpus_or_skip("tricky.tar.zst")
    root = tmp_path / "tricky"
    root.mkdir()
    subprocess.run(["tar", "-I", "zstd", "-xf", str(path), "-C", str(root)], check=True)
    archived, p = archive.import_(root)
    assert p.returncode == 0
    files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
    eml = [f for f in files if os.path.getsize(f) > 0 and not open(f, "rb").read(5) == b"From "]
    # about 980 messages; the rest of the ~1,360 files are licences, images,
    # fixtures of decoded text, PGP keys...: skipped as not a message
    assert len(archived) >= 950
    # sources as printed (file names may hold spaces)
    sources = set()
    for line in p.stdout.decode(errors="replace").splitlines():
        if line.startswith(("archived ", "duplicate ")):
            sources.add(line.split(" ", 3)[3].split(" (parse defects: ")[0])
    assert not [f for f in eml if f.endswith(".eml") and f not in sources and
                open(f, "rb").read().strip()], "every .eml file is archived"
    out = tmp_path / "out"
    archive.run("export", "*", out)
    by_id = {int(name[:-4]): name for name in os.listdir(out)}
    for f in eml:
        if f not in archived:
            continue  # an identical file elsewhere in the tree was filed first
        msg_id, digest = archived[f]
        data = open(f, "rb").read()
        assert digest == sha256(data), f
        assert (out / by_id[msg_id]).read_bytes() == data, f
    # every file is accounted for: archived, a duplicate, or skipped with a reason
    stderr = p.stderr.decode(errors="replace")
    skipped = set(line[len("skipped "):].split(": ")[0] for line in stderr.splitlines()
                  if line.startswith("skipped "))
    unaccounted = [f for f in eml if f not in sources and f not in skipped]
    assert unaccounted == [], unaccounted[:10]
    assert archive.verify()[0] == 0
