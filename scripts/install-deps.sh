#!/bin/sh
# Install what Coffer needs to build, run and test on Debian 12. Idempotent:
# when everything is present it does not touch the network.
set -eu
PACKAGES="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
 libevent-dev libssl-dev libsqlite3-dev libgmime-3.0-dev libzstd-dev zstd libsodium-dev
 libjansson-dev liboath-dev oathtool libqrencode-dev libcurl4-openssl-dev libpff-dev
 libcmocka-dev python3 python3-pytest openssl curl psmisc procps iproute2
 python3-aiosmtpd swaks zbar-tools librsvg2-bin mutt isync fetchmail dovecot-imapd"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO=sudo
	echo "installing:$missing"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
