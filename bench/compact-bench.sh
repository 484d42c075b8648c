#!/bin/sh
# compact-bench.sh [WORKDIR]: corpus A (linux-mips) imported, 30% of its messages
# deleted (every id with id % 10 < 3), then `coffer archive compact` timed; prints
# MB/s of segment data rewritten (bytes of the rewritten segments before
# compaction / wall time of the compaction, scrub included). Target: >= 100 MB/s.
#
#   COFFER_BIN   coffer binary (default build/src/cli/coffer)
#   SHARED       the shared folder (default ../shared next to the repository)
#   BENCH_BYTES  use only the first N bytes of the corpus, cut at a From_ line
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
rm -rf "$work/base" "$work/key"
mkdir -p "$work/key"
a() { "$coffer" archive --base-dir "$work/base" --key-file "$work/key/instance.key" "$@"; }
echo "== import ($(stat -c %s "$mbox") bytes of mbox)"
a import "$mbox" | awk '$1 == "archived" { print $2 }' > "$work/ids"
awk '$1 % 10 < 3' "$work/ids" > "$work/doomed"
echo "== delete $(wc -l < "$work/doomed") of $(wc -l < "$work/ids") messages"
xargs -n 1000 sh -c 'b=$1 k=$2; shift 2; exec "$0" archive --base-dir "$b" --key-file "$k" delete "$@" >/dev/null' \
	"$coffer" "$work/base" "$work/key/instance.key" < "$work/doomed"
sync
echo "== compact"
start=$(date +%s.%N)
out=$(a compact)
end=$(date +%s.%N)
echo "$out"
python3 - "$out" "$start" "$end" <<'PY'
import sys
words = sys.argv[1].split()
before, after = int(words[6]), int(words[8])
secs = float(sys.argv[3]) - float(sys.argv[2])
print("rewritten %.1f MB -> %.1f MB in %.2f s: %.1f MB/s (target >= 100)"
      % (before / 1e6, after / 1e6, secs, before / 1e6 / secs))
PY
a verify | tail -1
