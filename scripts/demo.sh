#!/bin/sh
# Install what is needed, build, install `coffer` to /usr/local/bin and bring
# up single server mode on this machine: the Management Server, an Instance
# Host and a Client Access Server, paired with each other. Prints where each
# role listens and how to log in. Run it again to restart the demo.
#
# Environment: COFFER_CONFIG_DIR (default /etc/coffer), COFFER_DEMO_PASSWORD.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	echo "demo.sh installs packages and starts services: run it as root (sudo scripts/demo.sh)" >&2
	exit 1
fi
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release >/dev/null
ninja -C build
ninja -C build install >/dev/null
COFFER=/usr/local/bin/coffer
DIR=${COFFER_CONFIG_DIR:-/etc/coffer}
export COFFER_CONFIG_DIR="$DIR"

if [ ! -f "$DIR/coffer.json" ]; then
	PASSWORD=${COFFER_DEMO_PASSWORD:-$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-16)}
	"$COFFER" config init --mode single --admin-name admin --admin-password "$PASSWORD"
	umask 077
	printf '%s\n' "$PASSWORD" >"$DIR/demo-admin-password"
else
	PASSWORD=$(cat "$DIR/demo-admin-password" 2>/dev/null || echo "(the password you chose)")
	"$COFFER" config stop >/dev/null
fi
"$COFFER" config start

# Wait until the Management Server sees every role connected.
i=0
while :; do
	status=$(COFFER_API_PASSWORD="$PASSWORD" "$COFFER" api GetServiceStatus 2>/dev/null || true)
	connected=$(printf '%s' "$status" | grep -c '"state": "connected"' || true)
	[ "$connected" -ge 2 ] && break
	i=$((i + 1))
	if [ $i -ge 60 ]; then
		echo "roles did not all connect within 30 seconds; status:" >&2
		printf '%s\n' "$status" >&2
		exit 1
	fi
	sleep 0.5
done

api() { COFFER_API_PASSWORD="$PASSWORD" "$COFFER" api "$@"; }

# A demo instance with a user and sample mail (generated here, deterministic).
DATA=${COFFER_DEMO_DATA:-/var/lib/coffer/instances}
mkdir -p "$DATA"
chown coffer:coffer "$DATA" 2>/dev/null || true
if ! api GetInstanceConfiguration instanceID=demo >/dev/null 2>&1; then
	ih=$(api GetInstanceHosts | awk -F'"' '/"serverName"/ {print $4; exit}')
	api CreateInstance instanceID=demo displayName="Demo Company" instanceHost="$ih" \
		baseDirectory="$DATA/demo" >/dev/null
	DEMO_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | cut -c1-14)
	api CreateUser instanceID=demo userName=demo password="$DEMO_PASSWORD" fullName="Demo User" \
		emailAddresses=demo@demo.example >/dev/null
	printf '%s\n' "$DEMO_PASSWORD" >"$DIR/demo-user-password"
	chmod 600 "$DIR/demo-user-password"
	/usr/bin/python3 scripts/sample-mail.py "$DATA/demo/import/sample.mbox" 400 >/dev/null
	api ImportFiles instanceID=demo userName=demo path=import/sample.mbox folder="Inbox" >/dev/null 2>&1
fi
DEMO_PASSWORD=$(cat "$DIR/demo-user-password" 2>/dev/null || echo "(see $DIR/demo-user-password)")
messages=$(api GetInstanceStatistics instanceID=demo 2>/dev/null | awk -F': ' '/"messages"/ {gsub(/,/, "", $2); print $2; exit}')

host=$(hostname -f 2>/dev/null || hostname)
http_fp=$("$COFFER" config cert show management-server http | awk '/fingerprint/ {print $2}')
imap_fp=$("$COFFER" config cert show client-access-server imap | awk '/fingerprint/ {print $2}')
cat <<EOT

Coffer is running in single server mode (config directory $DIR).

  Management API   https://$host:8470/api/invoke/<Function>   (also https://localhost:8470)
                   certificate fingerprint $http_fp
  Administrator    admin / $PASSWORD
  Instance Host    role-to-role TCP port 8472
  Client Access    role-to-role TCP port 8473

  Demo instance    demo ("Demo Company"), ${messages:-?} messages archived, base directory $DATA/demo
  Demo user        demo / $DEMO_PASSWORD

  Web Access       https://$host/demo/   (also https://localhost/demo/)
                   log in as demo / $DEMO_PASSWORD
  IMAP (read-only) server $host (or localhost), user name demo@demo, password as above
                   port 993 with SSL/TLS, or port 143 with STARTTLS
                   certificate fingerprint (self-signed) $imap_fp

Try (as root; the API password is asked for, or set COFFER_API_PASSWORD):
  coffer api GetServiceStatus
  coffer api GetInstances
  coffer api Search instanceID=demo query='subject:invoice'
  curl -k --user demo@demo:$DEMO_PASSWORD 'imaps://localhost/INBOX;UID=1'
  coffer api GetUsers instanceID=demo
  coffer config status
  coffer config role show
  coffer config stop
EOT
