#!/bin/sh
# compact-bench.sh [WORKDIR]: corpus A (linux-mips) imported, 30% of its messages
# deleted (every id with id % 10 < 3), then `coffer archive compact` timed; prints
# MB/s of segment data rewritten (bytes of the rewritten segments before
# compaction / wall time of the compaction, scrub included). Target: >= 100 MB/s.
#
#   COFFER_BIN   coffer binary (default build/src/cli/coffer)
#   SHARED       the shared folder (default ../shared next to the repository)
#   BENCH_BYTES  use only the first N bytes of the corpus, cut at a From_ line
#   REUSE=1      skip import and deletion: start again from the copy of the
#                base directory the last full run left in WORKDIR/base.deleted
#
# Prints the CPU time (user + system) and the peak RSS of the compaction besides
# its wall time, and the split the compaction reports: segment rewrite against
# catalog scrub.
#
# Needs: zstd, python3.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$repo/../shared}
coffer=${COFFER_BIN:-$repo/build/src/cli/coffer}
work=${1:-/tmp/coffer-compact-bench}
corpus=$shared/corpus/linux-mips.mboxrd.zst
[ -f "$corpus" ] || { echo "compact-bench: $corpus is absent" >&2; exit 1; }
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
a() { "$coffer" archive --base-dir "$work/base" --key-file "$work/key/instance.key" "$@"; }
if [ "${REUSE:-}" = 1 ] && [ -d "$work/base.deleted" ]; then
	rm -rf "$work/base"
	cp -a "$work/base.deleted" "$work/base"
else
	rm -rf "$work/base" "$work/key" "$work/base.deleted"
	mkdir -p "$work/key"
	echo "== import ($(stat -L -c %s "$mbox") bytes of mbox)"
	a import "$mbox" | awk '$1 == "archived" { print $2 }' > "$work/ids"
	awk '$1 % 10 < 3' "$work/ids" > "$work/doomed"
	echo "== delete $(wc -l < "$work/doomed") of $(wc -l < "$work/ids") messages"
	xargs -n 1000 sh -c 'b=$1 k=$2; shift 2; exec "$0" archive --base-dir "$b" --key-file "$k" delete "$@" >/dev/null' \
		"$coffer" "$work/base" "$work/key/instance.key" < "$work/doomed"
	cp -a "$work/base" "$work/base.deleted"
fi
sync
echo "== compact"
uptime
start=$(date +%s.%N)
out=$(/usr/bin/time -f "%U %S %M" -o "$work/cpu" "$coffer" archive \
	--base-dir "$work/base" --key-file "$work/key/instance.key" compact)
end=$(date +%s.%N)
uptime
echo "$out"
python3 - "$out" "$start" "$end" "$(cat "$work/cpu")" <<'PY'
import sys
words = sys.argv[1].split()
before, after = int(words[6]), int(words[8])
secs = float(sys.argv[3]) - float(sys.argv[2])
user, system, rss_kb = (float(x) for x in sys.argv[4].split())
print("rewritten %.1f MB -> %.1f MB in %.2f s wall, %.2f s CPU (%.2f user + %.2f sys), "
      "peak RSS %.0f MB: %.1f MB/s of wall time (target >= 100)"
      % (before / 1e6, after / 1e6, secs, user + system, user, system, rss_kb / 1024,
         before / 1e6 / secs))
PY
a verify | tail -1
