#!/bin/sh
# retention-bench.sh [WORKDIR]: a retention run over 1,000,000 messages that
# selects 10% of them (issue 15, Targets: at most 60 s).
#
# The archive is the scale benchmark's (bench/scale-gen.py: corpus A and 11
# copies of it with varied headers and dates), made once in WORKDIR/base by
# piping the generator into `coffer archive import -` (no 7 GB file). Each
# run copies it to WORKDIR/run, sets one maximum keep time whose cutoff is
# the date of the message at 90% (newest first), and times
# `coffer archive retention --dry-run` and then `coffer archive retention`
# (archive_delete_expired(), what ProcessRetentionPolicies runs as a job):
# wall time, CPU time (user + system), messages selected, load before and
# after. Then `verify` (optional: VERIFY=1, it reads every record).
#
#   COFFER_BIN   coffer binary (default build/src/cli/coffer)
#   SHARED       the shared folder (default ../shared next to the repository)
#   SCALE_COUNT  messages in the archive (default 1000000)
#
# Needs about 4 GB for the archive and 4 GB for the copy a run works on.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$repo/../shared}
coffer=${COFFER_BIN:-$repo/build/src/cli/coffer}
count=${SCALE_COUNT:-1000000}
work=${1:-/tmp/coffer-retention-bench}
corpus=$shared/corpus/linux-mips.mboxrd.zst
mkdir -p "$work"
work=$(cd "$work" && pwd)
key=$work/key/instance.key

if [ ! -f "$work/base/catalog.db" ] || [ -f "$work/base.incomplete" ]; then
	[ -f "$corpus" ] || { echo "retention-bench: $corpus is absent" >&2; exit 1; }
	mbox=$work/corpus-a.mbox
	[ -s "$mbox" ] || zstd -dc "$corpus" > "$mbox"
	rm -rf "$work/base" "$work/key"
	mkdir -p "$work/key"
	touch "$work/base.incomplete"
	echo "== generating and importing $count messages"
	/usr/bin/python3 "$repo/bench/scale-gen.py" "$mbox" /dev/stdout "$count" |
		/usr/bin/time -f "%e s wall, %U s user, %S s system" -o "$work/import.time" \
			"$coffer" archive --base-dir "$work/base" --key-file "$key" import --quiet - \
			2> "$work/import.log"
	cat "$work/import.time"
	rm -f "$work/base.incomplete"
fi

echo "== copying the archive to $work/run"
rm -rf "$work/run"
cp -a "$work/base" "$work/run"
sync
A="$coffer archive --base-dir $work/run --key-file $key"
total=$($A search --limit 0 '*' | head -1)
at=$((total * 9 / 10))
cutoff=$($A search --limit 1 --offset "$at" '*' | sed -n 2p | cut -f2)
days=$(/usr/bin/python3 -c 'import sys, datetime, time
d = datetime.datetime.strptime(sys.argv[1], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
print(int((time.time() - d.timestamp()) // 86400))' "$cutoff")
policies="[{\"name\": \"bench\", \"type\": \"maximum\", \"days\": $days}]"
echo "== $total messages; maximum keep time $days days (the message at $at, newest first, is dated $cutoff)"

run() { # label, args...
	label=$1
	shift
	echo "-- $label: load $(cut -d' ' -f1-3 /proc/loadavg)"
	/usr/bin/time -f "%e %U %S" -o "$work/time" $A retention "$@" 2> "$work/err" > "$work/out" ||
		{ cat "$work/err" >&2; exit 1; }
	read -r wall user sys < "$work/time"
	cat "$work/out"
	awk -v w="$wall" -v u="$user" -v s="$sys" -v t="$total" -v l="$label" \
		-v line="$(cat "$work/out")" 'BEGIN {
		split(line, f, " ")
		printf "%s: %d of %d messages (%.1f%%) in %.1f s wall, %.1f s CPU (%.1f user + %.1f system); target <= 60 s\n",
			l, f[13], t, 100 * f[13] / t, w, u + s, u, s }'
	echo "-- after: load $(cut -d' ' -f1-3 /proc/loadavg)"
}
run "dry run" --dry-run --policies "$policies"
run "run" --policies "$policies"
echo "== $($A search --limit 0 '*' | head -1) messages left"
if [ "${VERIFY:-}" = 1 ]; then
	$A verify | tail -1
fi
