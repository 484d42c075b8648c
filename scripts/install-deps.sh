#!/bin/sh
# Install what Coffer needs to build, run and test on Debian 12. Idempotent:
# when everything is present it does not touch the network.
# With --check: install nothing, list what is missing, exit 1 if anything is.
set -eu
PACKAGES="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
 libevent-dev libssl-dev libsqlite3-dev libgmime-3.0-dev libzstd-dev zstd libsodium-dev libxxhash-dev
 libjansson-dev liboath-dev oathtool libqrencode-dev libcurl4-openssl-dev libpff-dev libbfio-dev
 libcmocka-dev libzip-dev libjemalloc-dev python3 python3-pytest python3-pytest-xdist openssl curl psmisc procps iproute2
 python3-aiosmtpd swaks libnet-ssleay-perl zbar-tools librsvg2-bin mutt isync fetchmail dovecot-imapd
 dovecot-pop3d dovecot-lmtpd postfix pst-utils
 chromium nodejs"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ "${1:-}" = "--check" ]; then
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
	[ -d "$(dirname "$0")/../tests/web/node_modules/playwright-core" ] || missing="$missing playwright-core(npm)"
	[ -d "$(dirname "$0")/../tests/web/node_modules/axe-core" ] || missing="$missing axe-core(npm)"
	[ -z "$missing" ] && exit 0
	echo "missing:$missing"
	exit 1
fi
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	echo "installing:$missing"
	# postfix asks at install; the tests and benches run private instances
	# with their own main.cf, so the system's stays unconfigured
	echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# Web Access browser tests: playwright-core (no browser download; Debian's
# chromium above), pinned by tests/web/package-lock.json. npm comes with
# Node.js builds that bundle it; Debian's own is the package "npm".
if ! command -v npm >/dev/null 2>&1; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
fi
if { [ ! -d "$(dirname "$0")/../tests/web/node_modules/playwright-core" ] ||
	[ ! -d "$(dirname "$0")/../tests/web/node_modules/axe-core" ]; } && [ -f "$(dirname "$0")/../tests/web/package-lock.json" ]; then
	(cd "$(dirname "$0")/../tests/web" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
