#!/bin/sh
# Management API throughput: Ping over HTTPS with keep-alive, measured with
# wrk (Debian's package) from a second process on loopback.
# usage: bench/api-ping-bench.sh [COFFER_BIN] [DURATION_SECS]
set -eu
COFFER=${1:-$(dirname "$0")/../build/src/cli/coffer}
DURATION=${2:-10}
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
base=$(mktemp -d /tmp/coffer-ping-bench.XXXXXX)
chmod 755 "$base"
cfg="$base/etc"
trap '"$COFFER" config --config-dir "$cfg" stop >/dev/null 2>&1; rm -rf "$base"' EXIT
"$COFFER" config --config-dir "$cfg" init --mode single --admin-password bench-password >/dev/null
"$COFFER" config --config-dir "$cfg" role configure management-server \
	--tcp-listeners 127.0.0.1:19471 --http-listeners 127.0.0.1:19470 >/dev/null
"$COFFER" config --config-dir "$cfg" role configure instance-host --tcp-listeners 127.0.0.1:19472 >/dev/null
"$COFFER" config --config-dir "$cfg" role configure client-access-server --tcp-listeners 127.0.0.1:19473 >/dev/null
"$COFFER" config --config-dir "$cfg" start >/dev/null
auth=$(printf 'admin:bench-password' | base64)
cat >"$base/ping.lua" <<LUA
wrk.method = "POST"
wrk.body = ""
wrk.headers["Authorization"] = "Basic $auth"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
# One request first: the password is verified (Argon2id) once, then cached.
curl -sk -u admin:bench-password -X POST https://127.0.0.1:19470/api/invoke/Ping >/dev/null
echo "wrk: 1 thread, 16 connections, keep-alive, ${DURATION} s, POST /api/invoke/Ping"
wrk -t1 -c16 -d"${DURATION}s" -s "$base/ping.lua" https://127.0.0.1:19470/api/invoke/Ping
