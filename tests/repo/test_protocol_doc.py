"""docs/protocol.md names what the sources do on the role-to-role links:
every error code a call is answered with, every call a role or an instance
dispatches on (Client* calls: in docs/client-calls.md) and every event a
role sends or takes. A code, call or event added to the code and not to the
docs fails here."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
# the calls a daemon dispatches on: strcmp(method, "Name") in the roles
DISPATCH_DIRS = ("mgmt", "host", "instance", "access")
HTTP_METHODS = {"GET", "HEAD", "POST"}
ERROR_REPLY = re.compile(r'(?:rpc_conn_reply_error|client_fail|export_fail|rights_refuse)'
                         r'\([^;"]*?"([a-z][a-z-]+)"', re.S)
CALLER_SIDE = re.compile(r'->answer\([^;]*?"([a-z][a-z-]+)"')
METHOD = re.compile(r'strcmp\(method, "([A-Z][A-Za-z]+)"\)')
METHOD_TABLE = re.compile(r'\{"(Client[A-Za-z]+)",')
EVENT_SENT = re.compile(r'role_daemon_management_event\([^,]+, "([A-Za-z]+)"')
EVENT_TAKEN = re.compile(r'strcmp\(name, "([A-Za-z]+)"\)')


def sources(dirs=None):
    for path in sorted(SRC.rglob("*.c")):
        if path.name.startswith("test-"):
            continue
        if dirs is None or path.relative_to(SRC).parts[0] in dirs:
            yield path, path.read_text(errors="replace")


def documented(name):
    return "`%s`" % name


def test_every_error_code_is_documented():
    doc = (REPO / "docs" / "protocol.md").read_text()
    codes = set()
    for _path, text in sources():
        codes.update(ERROR_REPLY.findall(text))
        codes.update(CALLER_SIDE.findall(text))
    assert {"unknown-method", "bad-request", "timeout", "closed"} <= codes, codes
    missing = sorted(c for c in codes if documented(c) not in doc)
    assert not missing, "error codes missing from docs/protocol.md: %s" % missing


def test_every_call_is_documented():
    protocol = (REPO / "docs" / "protocol.md").read_text()
    client = (REPO / "docs" / "client-calls.md").read_text()
    calls = set()
    for _path, text in sources(DISPATCH_DIRS):
        calls.update(METHOD.findall(text))
        calls.update(METHOD_TABLE.findall(text))
    calls -= HTTP_METHODS
    assert {"Ping", "InstanceCall", "ClientLogin", "GetJob"} <= calls, calls
    missing = sorted(c for c in calls
                     if documented(c) not in (client if c.startswith("Client") else protocol))
    assert not missing, "calls missing from docs/protocol.md or docs/client-calls.md: %s" % missing


def test_every_event_is_documented():
    doc = (REPO / "docs" / "protocol.md").read_text()
    events = set()
    for _path, text in sources():
        events.update(EVENT_SENT.findall(text))
    for path, text in sources(("mgmt",)):
        if path.name == "mgmt-links.c":  # where the Management Server takes events
            events.update(EVENT_TAKEN.findall(text))
    assert {"peerRefused", "instanceStateChanged"} <= events, events
    missing = sorted(e for e in events if documented(e) not in doc)
    assert not missing, "events missing from docs/protocol.md: %s" % missing
