#!/bin/sh
# Install, build and run every test suite: a -Werror build with unit tests,
# fuzz corpus replay and integration tests, then the same suites built with
# AddressSanitizer and UndefinedBehaviorSanitizer. Ends with one line:
#   tests: N passed, M failed
set -u
cd "$(dirname "$0")/.."
scripts/install-deps.sh || { echo "tests: 0 passed, 1 failed"; exit 1; }

PY=/usr/bin/python3
results=$(mktemp -d /tmp/coffer-test-results.XXXXXX)
status=0

run() { # label, command...
	label=$1; shift
	echo "=== $label"
	"$@" || status=1
}

build() { # builddir, meson options...
	dir=$1; shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" -Dwerror=true "$@" >"$results/setup-$(basename "$dir").log" 2>&1 ||
			{ cat "$results/setup-$(basename "$dir").log"; return 1; }
	fi
	ninja -C "$dir"
}

suites() { # builddir, tag
	dir=$1; tag=$2
	run "unit and fuzz-replay tests ($tag)" meson test -C "$dir" --print-errorlogs --num-processes 2
	cp "$dir/meson-logs/testlog.json" "$results/meson-$tag.json" 2>/dev/null
	# one call collects every suite; tests/demo (scripts/demo.sh on a fresh
	# machine made of namespaces, ~1 minute) installs the plain build and
	# skips itself under the sanitizers
	COFFER_BIN="$PWD/$dir/src/cli/coffer" pytests "$tag"
}

pytests() { # tag; environment: COFFER_BIN and the sanitizers' options
	# Four test modules at a time (pytest-xdist; a module's tests stay on one
	# process, which shares its running system among them): most of a test's
	# time is spent waiting on daemons, not on the CPU (with two at a time the
	# two cores were 59 % idle; four took the plain run from 8.9 to 5.5 min
	# and the sanitized one to 6.3). Then, alone, the tests marked serial,
	# which compare latency under load with a baseline.
	run "python tests ($1)" "$PY" -m pytest -q -p no:cacheprovider -n 4 --dist loadfile \
		-m "not serial" --junitxml="$results/pytest-$1.xml" tests
	run "python tests ($1, one at a time)" "$PY" -m pytest -q -p no:cacheprovider \
		-m serial --junitxml="$results/pytest-$1-serial.xml" tests
}

if build build-ci; then
	suites build-ci plain
else
	echo "build failed"; echo "build-failed" >"$results/build-ci.failed"; status=1
fi

# Sanitizers: leaks are checked in unit tests; daemons stopped by signals are
# not expected to free everything, so integration runs check memory errors
# and undefined behaviour only (conftest.py scans daemon logs for reports).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
	# the sanitizers make every test several times slower: so do its time limits
	ASAN_OPTIONS=detect_leaks=1 run "unit tests (sanitizers)" meson test -C build-asan --print-errorlogs --num-processes 2 \
		--timeout-multiplier 3
	cp build-asan/meson-logs/testlog.json "$results/meson-asan.json" 2>/dev/null
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 COFFER_SANITIZED=1 COFFER_BIN="$PWD/build-asan/src/cli/coffer" \
		pytests asan
else
	echo "sanitizer build failed"; echo "build-failed" >"$results/build-asan.failed"; status=1
fi

"$PY" scripts/test-summary.py "$results" || status=1
rm -rf "$results"
exit $status
