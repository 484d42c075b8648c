#!/bin/sh
# scale-bench.sh [WORKDIR]: the 1,000,000-message scale benchmark of issue 3.
# Imports corpus A and then a 1,000,000-message mbox made from it
# (bench/scale-gen.py: varied headers and dates) into two fresh base
# directories, in the same run; prints both import rates, their ratio (target
# >= 0.8), the peak RSS, the base directory size, and the search times of the
# archive-bench query set on the big archive (target: worst <= 100 ms).
#
#   COFFER_BIN   coffer binary (default build/src/cli/coffer)
#   SHARED       the shared folder (default ../shared next to the repository)
#   SCALE_COUNT  messages in the big archive (default 1000000)
#
# Needs about 7.2 GB for the generated mbox and 4 GB for the base directory.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$repo/../shared}
coffer=${COFFER_BIN:-$repo/build/src/cli/coffer}
count=${SCALE_COUNT:-1000000}
work=${1:-/tmp/coffer-scale-bench}
corpus=$shared/corpus/linux-mips.mboxrd.zst
[ -f "$corpus" ] || { echo "scale-bench: $corpus is absent" >&2; exit 1; }
mkdir -p "$work"
work=$(cd "$work" && pwd)

mbox=$work/corpus-a.mbox
[ -s "$mbox" ] || zstd -dc "$corpus" > "$mbox"
big=$work/scale-$count.mbox
if [ ! -s "$big" ]; then
	echo "== generating $count messages"
	/usr/bin/python3 "$repo/bench/scale-gen.py" "$mbox" "$big.part" "$count"
	mv "$big.part" "$big"
fi

import() { # name, mbox
	rm -rf "$work/$1" "$work/$1-key"
	mkdir -p "$work/$1-key"
	sync
	/usr/bin/time -f "%e %M" -o "$work/$1-time" \
		$coffer archive --base-dir "$work/$1" --key-file "$work/$1-key/instance.key" \
		import --quiet "$2" 2> "$work/$1-import.log"
	read -r secs rss_kb < "$work/$1-time"
	n=$($coffer archive --base-dir "$work/$1" --key-file "$work/$1-key/instance.key" stats |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["messages"])')
	bytes=$(du -sb "$work/$1" | cut -f1)
	raw=$(stat -c %s "$2")
	awk -v name="$1" -v n="$n" -v s="$secs" -v rss="$rss_kb" -v b="$bytes" -v raw="$raw" 'BEGIN {
		printf "%s: %d messages in %.1f s = %.0f msg/s, peak RSS %d MB, base dir %.0f bytes = %.3f of raw (%.0f)\n",
			name, n, s, n / s, rss / 1024, b, b / raw, raw }'
	echo "$n $secs" > "$work/$1-rate"
}

echo "== import corpus A"
import corpus-a "$mbox"
echo "== import $count messages"
import scale "$big"
/usr/bin/python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
a = [float(x) for x in open(w + "/corpus-a-rate").read().split()]
s = [float(x) for x in open(w + "/scale-rate").read().split()]
ra, rs = a[0] / a[1], s[0] / s[1]
print("rate: corpus A %.0f msg/s, scale %.0f msg/s, ratio %.2f (target >= 0.80)" % (ra, rs, rs / ra))
PY

echo "== search on the $count-message archive (count + 50 newest; engine, warm, 50 runs)"
A="$coffer archive --base-dir $work/scale --key-file $work/scale-key/instance.key"
/usr/bin/python3 - "$A" <<'PY'
import re, shlex, subprocess, sys
argv = shlex.split(sys.argv[1])
queries = ["*", "tlb", '"cache flush"', "from:ralf@linux-mips.org",
           "subject:PATCH AND date:2018-01-01..2018-12-31",
           "kernel AND panic AND NOT subject:PATCH", "octeon"]
worst = 0.0
for q in queries:
    r = subprocess.run(argv + ["search", "--limit", "50", "--repeat", "50", q],
                       capture_output=True, check=True)
    hits = int(r.stdout.split(b"\n", 1)[0])
    m = re.search(r"median ([0-9.]+) ms, max ([0-9.]+) ms", r.stderr.decode())
    worst = max(worst, float(m.group(2)))
    print("%-50s hits=%-7d engine-median=%s ms engine-max=%s ms" % (q, hits, m.group(1), m.group(2)))
print("worst single search: %.2f ms (target <= 100 ms)" % worst)
PY
