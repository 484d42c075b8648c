#!/bin/sh
# Install what is needed, build, install `coffer` to /usr/local/bin and bring
# up single server mode on this machine: the Management Server, an Instance
# Host and a Client Access Server, paired with each other. Prints where each
# role listens and how to log in. Run it again to restart the demo; the
# logins it prints are kept in the config directory (demo-admin-password,
# demo-user-password), and a second run prints the ones that work now.
#
# Environment: COFFER_CONFIG_DIR (default /etc/coffer), COFFER_DEMO_PASSWORD,
# COFFER_DEMO_DATA (default /var/lib/coffer/instances), COFFER_BUILD_DIR
# (default build).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh installs packages and starts services: run it as root (sudo scripts/demo.sh)" >&2
	exit 1
fi
scripts/install-deps.sh
BUILD=${COFFER_BUILD_DIR:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD"
ninja -C "$BUILD" install >/dev/null
COFFER=/usr/local/bin/coffer
DIR=${COFFER_CONFIG_DIR:-/etc/coffer}
export COFFER_CONFIG_DIR="$DIR"
ADMIN_FILE="$DIR/demo-admin-password"
USER_FILE="$DIR/demo-user-password"

# A secret written for root only; the umask stays inside the subshell, so
# the directories made later stay readable for the run-as user.
write_secret() { # file, value
	(umask 077 && printf '%s\n' "$2" >"$1.tmp" && mv "$1.tmp" "$1")
}
new_password() { # length
	head -c 18 /dev/urandom | base64 | tr -d '/+=' | cut -c1-"$1"
}

if [ ! -f "$DIR/coffer.json" ]; then
	PASSWORD=${COFFER_DEMO_PASSWORD:-$(new_password 16)}
	"$COFFER" config init --mode single --admin-name admin --admin-password "$PASSWORD"
	write_secret "$ADMIN_FILE" "$PASSWORD"
else
	"$COFFER" config stop >/dev/null
fi
"$COFFER" config start

# The administrator's password: the one kept, checked against the running
# Management Server (it may have been changed since).
PASSWORD=$(cat "$ADMIN_FILE" 2>/dev/null || true)
api() { COFFER_API_PASSWORD="$PASSWORD" "$COFFER" api "$@"; }

# Wait until the Management Server sees every role connected.
i=0
while :; do
	status=$(api GetServiceStatus 2>&1 || true)
	connected=$(printf '%s' "$status" | grep -c '"state": "connected"' || true)
	[ "$connected" -ge 2 ] && break
	if printf '%s' "$status" | grep -q "refused the login"; then
		echo "the administrator password in $ADMIN_FILE does not work any more;" >&2
		echo "write the current one there (one line) and run this again" >&2
		exit 1
	fi
	i=$((i + 1))
	if [ $i -ge 60 ]; then
		echo "roles did not all connect within 30 seconds; status:" >&2
		printf '%s\n' "$status" >&2
		exit 1
	fi
	sleep 0.5
done

# The instances' base directories live below DATA, which the Instance Host
# (running as user coffer) must be able to reach and write.
DATA=${COFFER_DEMO_DATA:-/var/lib/coffer/instances}
install -d -m 0755 "$(dirname "$DATA")"
install -d -m 0750 -o coffer -g coffer "$DATA"

# A demo instance with a user and sample mail (generated here, deterministic).
if ! api GetInstanceConfiguration instanceID=demo >/dev/null 2>&1; then
	ih=$(api GetInstanceHosts | awk -F'"' '/"serverName"/ {print $4; exit}')
	api CreateInstance instanceID=demo displayName="Demo Company" instanceHost="$ih" \
		baseDirectory="$DATA/demo" >/dev/null
	# Its process starts in the background; the Instance Host holds calls
	# to it until it runs.
	api CreateUser instanceID=demo userName=demo password="$(new_password 14)" \
		fullName="Demo User" emailAddresses=demo@demo.example \
		privileges=login,archive,export loginPrivileges=web,imap,api >/dev/null
	/usr/bin/python3 scripts/sample-mail.py "$DATA/demo/import/sample.mbox" 400 >/dev/null
	chown -R coffer:coffer "$DATA/demo/import"
	api ImportFiles instanceID=demo userName=demo path=import/sample.mbox folder="Inbox" >/dev/null 2>&1
fi
# The demo user's password: the one kept if it still works (asked through
# the client API, as a script would), else a new one, set and kept, so the
# one printed is always the one that works.
DEMO_PASSWORD=$(cat "$USER_FILE" 2>/dev/null || true)
if [ -z "$DEMO_PASSWORD" ] || ! curl -sfk -o /dev/null --user "demo:$DEMO_PASSWORD" \
	https://localhost/demo/api/session; then
	DEMO_PASSWORD=$(new_password 14)
	api SetUserPassword instanceID=demo userName=demo password="$DEMO_PASSWORD" >/dev/null
	write_secret "$USER_FILE" "$DEMO_PASSWORD"
fi
messages=$(api GetInstanceStatistics instanceID=demo 2>/dev/null | awk -F': ' '/"messages"/ {gsub(/,/, "", $2); print $2; exit}')

host=$(hostname -f 2>/dev/null || hostname)
http_fp=$("$COFFER" config cert show management-server http | awk '/fingerprint/ {print $2}')
imap_fp=$("$COFFER" config cert show client-access-server imap | awk '/fingerprint/ {print $2}')
web_fp=$("$COFFER" config cert show client-access-server http | awk '/fingerprint/ {print $2}')
cat <<EOT

Coffer is running in single server mode (config directory $DIR).

  Console          https://$host:8470/   (also https://localhost:8470/), log in as admin
  Management API   https://$host:8470/api/invoke/<Function>   (also https://localhost:8470)
                   certificate fingerprint $http_fp
  Administrator    admin / $PASSWORD
  Instance Host    role-to-role TCP port 8472
  Client Access    role-to-role TCP port 8473

  Demo instance    demo ("Demo Company"), ${messages:-?} messages archived, base directory $DATA/demo
  Demo user        demo / $DEMO_PASSWORD

  Web Access       https://$host/demo/   (also https://localhost/demo/)
                   log in as demo / $DEMO_PASSWORD
                   certificate fingerprint (self-signed) $web_fp
  IMAP (read-only) server $host (or localhost), user name demo@demo, password as above
                   port 993 with SSL/TLS, or port 143 with STARTTLS
                   certificate fingerprint (self-signed) $imap_fp

The passwords are kept in $ADMIN_FILE and $USER_FILE
(readable by root only). Run this script again to restart the demo and see them again.

Try (as root; the README's tour has more):
  export COFFER_API_PASSWORD=\$(cat $ADMIN_FILE)
  coffer api GetServiceStatus
  coffer api Search instanceID=demo query='subject:invoice'
  curl -k --user demo@demo:$DEMO_PASSWORD 'imaps://localhost/INBOX;UID=1'
  coffer config stop
EOT
