#!/bin/sh
# archive-bench.sh [WORKDIR]: corpus A (linux-mips) into Coffer's archive and into
# notmuch in the same run, on the same machine; prints both figures and the ratios.
#
#   COFFER_BIN     coffer binary (default build/src/cli/coffer)
#   SHARED         the shared folder (default ../shared next to the repository)
#   BENCH_BYTES    use only the first N bytes of the corpus, cut at a From_ line
#                  (default: all of it)
#   SKIP_NOTMUCH=1 Coffer only
#
# Needs: zstd, python3, /usr/bin/time, notmuch (apt-get install -y notmuch).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$repo/../shared}
coffer=${COFFER_BIN:-$repo/build/src/cli/coffer}
work=${1:-/tmp/coffer-archive-bench}
corpus=$shared/corpus/linux-mips.mboxrd.zst
[ -f "$corpus" ] || { echo "archive-bench: $corpus is absent" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)

mbox=$work/corpus-a.mbox
if [ ! -s "$mbox" ]; then
	if [ -n "${BENCH_BYTES:-}" ]; then
		zstd -dc "$corpus" | head -c "$BENCH_BYTES" > "$mbox.part" || true
		python3 - "$mbox.part" <<'PY'
import sys
p = sys.argv[1]
d = open(p, "rb").read()
open(p, "wb").write(d[:d.rindex(b"\nFrom ") + 1])
PY
		mv "$mbox.part" "$mbox"
	else
		zstd -dc "$corpus" > "$mbox"
	fi
fi
raw=$(stat -c %s "$mbox")

echo "== Coffer import ($raw bytes of mbox)"
rm -rf "$work/coffer" "$work/coffer-key"
mkdir -p "$work/coffer-key"
A="$coffer archive --base-dir $work/coffer --key-file $work/coffer-key/instance.key"
sync
/usr/bin/time -f "%e %M" -o "$work/coffer-time" $A import --quiet "$mbox" 2> "$work/coffer-import.log"
cat "$work/coffer-import.log"
read -r secs rss_kb < "$work/coffer-time"
$A stats > "$work/coffer-stats.json"
base_bytes=$(du -sb "$work/coffer" | cut -f1)

echo "== Coffer search (count + 50 newest; CLI wall time of 5 runs, median of the last 4; and"
echo "   in-process warm time over 50 runs)"
python3 - "$A" "$work" <<'PY' | tee "$work/coffer-search.txt"
import re, shlex, statistics, subprocess, sys, time
argv = shlex.split(sys.argv[1])
queries = ["*", "tlb", '"cache flush"', "from:ralf@linux-mips.org",
           "subject:PATCH AND date:2018-01-01..2018-12-31",
           "kernel AND panic AND NOT subject:PATCH", "octeon"]
for q in queries:
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        out = subprocess.run(argv + ["search", "--limit", "50", q], capture_output=True,
                             check=True).stdout
        ts.append(time.perf_counter() - t)
    hits = int(out.split(b"\n", 1)[0])
    err = subprocess.run(argv + ["search", "--limit", "50", "--repeat", "50", q],
                         capture_output=True, check=True).stderr.decode()
    m = re.search(r"median ([0-9.]+) ms, max ([0-9.]+) ms", err)
    print("%-50s hits=%-6d cli-median=%.1f ms  engine-median=%s ms engine-max=%s ms"
          % (q, hits, statistics.median(ts[1:]) * 1000, m.group(1), m.group(2)))
PY

if [ "${SKIP_NOTMUCH:-0}" != 1 ]; then
	echo "== notmuch (peer)"
	if [ ! -d "$work/maildir/cur" ]; then
		python3 "$shared/peers/mbox2maildir.py" "$work/maildir" "$mbox"
	fi
	sh "$shared/peers/notmuch-bench.sh" "$work/maildir" "$work/notmuch" | tee "$work/notmuch.txt"
fi

echo "== Summary"
python3 - "$work" "$raw" "$secs" "$rss_kb" "$base_bytes" "${SKIP_NOTMUCH:-0}" <<'PY'
import json, re, sys
work, raw, secs, rss_kb, base_bytes, skip = sys.argv[1:]
raw, secs, rss_kb, base_bytes = int(raw), float(secs), int(rss_kb), int(base_bytes)
st = json.load(open(work + "/coffer-stats.json"))
n = st["messages"]
rate = n / secs
print("coffer import: %d messages in %.1f s = %.0f messages/s; peak RSS %.0f MB"
      % (n, secs, rate, rss_kb / 1024))
print("coffer base dir: %.1f MB = %.3f x raw message bytes (%.1f MB); segments %.1f MB, "
      "catalog+index %.1f MB" % (base_bytes / 1e6, base_bytes / st["raw_bytes"],
                                 st["raw_bytes"] / 1e6, st["segment_bytes"] / 1e6,
                                 st["catalog_bytes"] / 1e6))
coffer = {}
for line in open(work + "/coffer-search.txt"):
    m = re.match(r"(.*?)\s+hits=(\d+)\s+cli-median=([0-9.]+) ms\s+engine-median=([0-9.]+) ms "
                 r"engine-max=([0-9.]+)", line)
    if m:
        coffer[m.group(1)] = (int(m.group(2)), float(m.group(3)), float(m.group(4)),
                              float(m.group(5)))
meds = sorted(v[2] for v in coffer.values())
print("coffer search engine time: median of query medians %.2f ms, worst max %.2f ms"
      % (meds[len(meds) // 2], max(v[3] for v in coffer.values())))
if skip == "1":
    sys.exit(0)
text = open(work + "/notmuch.txt").read()
m = re.search(r"notmuch new: (\d+) messages in ([0-9.]+) s = (\d+) messages/s; index (\d+) MB",
              text)
nm_rate = float(m.group(3))
print("notmuch new: %s messages/s, index %s MB" % (m.group(3), m.group(4)))
print("RATIO import speed coffer/notmuch: %.1fx" % (rate / nm_rate))
names = ["*", "tlb", '"cache flush"', "from:ralf@linux-mips.org",
         "subject:PATCH AND date:2018-01-01..2018-12-31",
         "kernel AND panic AND NOT subject:PATCH", "octeon"]
nm = re.findall(r"hits=(\d+)\s+median=([0-9.]+) ms", text)
for name, (hits, med) in zip(names, nm):
    c = coffer[name]
    print("RATIO %-46s notmuch %7.1f ms (%s hits)  coffer cli %6.1f ms = %5.1fx, engine %6.2f ms"
          " = %6.1fx (%d hits)" % (name, float(med), hits, c[1], float(med) / c[1], c[2],
                                    float(med) / max(c[2], 0.01), c[0]))
PY
