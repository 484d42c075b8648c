#!/usr/bin/python3
"""import-bench.py [WORKDIR]: corpus A imported by `coffer archive import`
against `notmuch new` indexing the same messages, wall time and CPU time of
each, in the same run (docs/benchmarks.md, "Import: CPU time beside notmuch").

Each run measures each side once, the order alternating (Coffer first in odd
runs); before each measurement the page cache is dropped (`sync`, then 3 into
/proc/sys/vm/drop_caches; as root, else said and skipped). Each measurement
starts from nothing: a new base directory and key for Coffer, a new notmuch
database for notmuch (the config of ../shared/peers/notmuch-bench.sh).

  Coffer   coffer archive import --quiet corpus-a.mbox: everything on
           (dictionary zstd, XChaCha20-Poly1305 of segments and catalog pages,
           SHA-256 dedup of messages and large parts, the FTS5 index, batches
           committed durably).
  notmuch  notmuch new --quiet over a Maildir of the same messages
           (../shared/peers/mbox2maildir.py).

CPU is user+sys of the measured process and everything it waited for, as
/usr/bin/time reports them (getrusage of the child: every thread of the
import; notmuch new forks nothing else); peak RSS is its maximum resident
set size. The 1-minute load average
is read at the start and end of each measurement.

  RUNS        runs, each side once per run (default 2, at least 2)
  BENCH_BYTES only the first N bytes of corpus A, cut at a From_ line
              (default: all of it, 84,096 messages)
  SKIP_NOTMUCH=1  Coffer only (no ratio)
  COFFER_BIN  coffer binary (default build/src/cli/coffer)
  SHARED      the shared folder (default ../shared next to the repository)
Needs notmuch, zstd. Writes WORKDIR/import-report.json; WORKDIR default
/tmp/coffer-import-bench (the mbox and Maildir made there are kept for
later runs)."""
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("SHARED", os.path.join(os.path.dirname(REPO), "shared"))
COFFER = os.environ.get("COFFER_BIN", os.path.join(REPO, "build", "src", "cli", "coffer"))
RUNS = int(os.environ.get("RUNS", "2"))
BENCH_BYTES = int(os.environ.get("BENCH_BYTES", "0"))
SKIP_NOTMUCH = os.environ.get("SKIP_NOTMUCH") == "1"
WORK = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "/tmp/coffer-import-bench")


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def drop_caches():
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def corpus_mbox():
    mbox = os.path.join(WORK, "corpus-a.mbox")
    if os.path.exists(mbox) and os.path.getsize(mbox) > 0:
        return mbox
    src = os.path.join(SHARED, "corpus", "linux-mips.mboxrd.zst")
    if not os.path.exists(src):
        sys.exit("import-bench: %s is absent" % src)
    with open(mbox + ".part", "wb") as f:
        subprocess.run(["zstd", "-dc", src], check=True, stdout=f)
    if BENCH_BYTES:
        # cut at the last From_ line within the first BENCH_BYTES bytes
        with open(mbox + ".part", "r+b") as f:
            head = f.read(BENCH_BYTES)
            f.truncate(head.rindex(b"\nFrom ") + 1)
    os.rename(mbox + ".part", mbox)
    return mbox


def measure(argv, env=None):
    """Runs argv; returns wall seconds, CPU seconds (user+sys of the child and
    what it waited for), peak RSS in MB, the loads before and after."""
    dropped = drop_caches()
    l1 = load1()
    timing = os.path.join(WORK, "time.out")
    t = time.monotonic()
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", timing] + argv, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.monotonic() - t
    if proc.returncode != 0:
        sys.exit("import-bench: %s failed:\n%s" % (" ".join(argv),
                                                   proc.stderr.decode(errors="replace")[-2000:]))
    with open(timing) as f:
        user, system, rss_kb = f.read().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "user": float(user),
            "sys": float(system), "rss_mb": int(rss_kb) / 1024, "load": [l1, load1()],
            "cache_dropped": dropped}


def run_coffer(mbox):
    base = os.path.join(WORK, "coffer")
    keydir = os.path.join(WORK, "coffer-key")
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(keydir, ignore_errors=True)
    os.makedirs(keydir)
    a = [COFFER, "archive", "--base-dir", base, "--key-file", os.path.join(keydir, "instance.key")]
    m = measure(a + ["import", "--quiet", mbox])
    stats = json.loads(subprocess.run(a + ["stats"], check=True, capture_output=True).stdout)
    m["messages"] = stats["messages"]
    m["base_dir_bytes"] = sum(os.path.getsize(os.path.join(d, f))
                              for d, _, fs in os.walk(base) for f in fs)
    m["catalog_bytes"] = stats["catalog_bytes"]
    m["segment_bytes"] = stats["segment_bytes"]
    return m


def run_notmuch(maildir):
    nm = os.path.join(WORK, "notmuch")
    shutil.rmtree(nm, ignore_errors=True)
    os.makedirs(os.path.join(nm, "db"))
    config = os.path.join(nm, "config")
    with open(config, "w") as f:
        f.write("[database]\npath=%s/db\nmail_root=%s\n[user]\nname=Bench\n"
                "primary_email=bench@example.invalid\n[new]\ntags=inbox;\n"
                "[maildir]\nsynchronize_flags=false\n" % (nm, maildir))
    env = dict(os.environ, NOTMUCH_CONFIG=config)
    m = measure(["notmuch", "new", "--quiet"], env=env)
    out = subprocess.run(["notmuch", "count", "--output=files", "*"], env=env, check=True,
                         capture_output=True).stdout
    m["messages"] = int(out)
    return m


def show(side, run, m):
    print("%-7s run %d: %6d messages  wall %6.1f s  %6.0f msg/s  CPU %6.2f s (user %.2f, sys %.2f)"
          "  %.3f ms/msg  peak RSS %5.0f MB  load %.2f -> %.2f%s"
          % (side, run, m["messages"], m["wall"], m["messages"] / m["wall"], m["cpu"], m["user"],
             m["sys"], 1000 * m["cpu"] / m["messages"], m["rss_mb"], m["load"][0], m["load"][1],
             "" if m["cache_dropped"] else "  (page cache not dropped: not root)"), flush=True)


def main():
    if RUNS < 2 and not SKIP_NOTMUCH:
        sys.exit("import-bench: RUNS must be at least 2")
    os.makedirs(WORK, exist_ok=True)
    mbox = corpus_mbox()
    maildir = os.path.join(WORK, "maildir")
    if not SKIP_NOTMUCH and not os.path.isdir(os.path.join(maildir, "cur")):
        subprocess.run([sys.executable, os.path.join(SHARED, "peers", "mbox2maildir.py"),
                        maildir, mbox], check=True, stdout=subprocess.DEVNULL)
    print("import-bench: %s (%d bytes), %d runs, coffer %s" % (mbox, os.path.getsize(mbox), RUNS,
                                                              COFFER), flush=True)
    report = {"mbox_bytes": os.path.getsize(mbox), "coffer": [], "notmuch": []}
    for run in range(1, RUNS + 1):
        order = ["coffer", "notmuch"] if run % 2 == 1 else ["notmuch", "coffer"]
        for side in order:
            if side == "notmuch" and SKIP_NOTMUCH:
                continue
            m = run_coffer(mbox) if side == "coffer" else run_notmuch(maildir)
            report[side].append(m)
            show(side, run, m)
    c = report["coffer"]
    med = {k: statistics.median(m[k] for m in c) for k in ("wall", "cpu", "rss_mb")}
    n = c[0]["messages"]
    print("coffer medians: wall %.1f s = %.0f msg/s, CPU %.2f s = %.3f ms/msg, peak RSS %.0f MB "
          "(max %.0f); base dir %.1f MB (catalog %.1f MB, segments %.1f MB)"
          % (med["wall"], n / med["wall"], med["cpu"], 1000 * med["cpu"] / n, med["rss_mb"],
             max(m["rss_mb"] for m in c), c[-1]["base_dir_bytes"] / 1e6,
             c[-1]["catalog_bytes"] / 1e6, c[-1]["segment_bytes"] / 1e6))
    if not SKIP_NOTMUCH:
        nmr = report["notmuch"]
        nwall = statistics.median(m["wall"] for m in nmr)
        ncpu = statistics.median(m["cpu"] for m in nmr)
        nn = nmr[0]["messages"]
        # per message, since notmuch counts files (the same messages)
        wall_ratio = (nwall / nn) / (med["wall"] / n)
        cpu_ratio = (ncpu / nn) / (med["cpu"] / n)
        per_run = ["%.1fx" % ((b["cpu"] / nn) / (a["cpu"] / n)) for a, b in zip(c, nmr)]
        print("notmuch medians: wall %.1f s = %.0f msg/s, CPU %.2f s = %.3f ms/msg"
              % (nwall, nn / nwall, ncpu, 1000 * ncpu / nn))
        print("RATIO wall (messages/s) coffer/notmuch: %.1fx" % wall_ratio)
        print("RATIO CPU per message notmuch/coffer: %.1fx (per run: %s)"
              % (cpu_ratio, ", ".join(per_run)))
        report["ratio_wall"] = wall_ratio
        report["ratio_cpu"] = cpu_ratio
    with open(os.path.join(WORK, "import-report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
