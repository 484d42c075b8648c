"""docs/protocol.md names what the sources do on the role-to-role links:
every error code a call is answered with, every call a role or an instance
dispatches on (Client* calls: in docs/client-calls.md) and every event a
role sends or takes. A code, call or event added to the code and not to the
docs fails here."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
# the calls a daemon dispatches on: strcmp(method, "Name") in the roles, and
# the rows of the instance's call table (src/instance/instance-calls.c)
DISPATCH_DIRS = ("mgmt", "host", "instance", "access")
INSTANCE_CALLS = SRC / "instance" / "instance-calls.c"
HTTP_METHODS = {"GET", "HEAD", "POST"}
ERROR_REPLY = re.compile(r'(?:rpc_conn_reply_error|client_fail|export_fail|rights_refuse)'
                         r'\([^;"]*?"([a-z][a-z-]+)"', re.S)
CALLER_SIDE = re.compile(r'->answer\([^;]*?"([a-z][a-z-]+)"')
# an instance call's handler leaves its error code in the call (instance-calls.h)
CODE_SET = re.compile(r'->code = "([a-z][a-z-]+)"')
METHOD = re.compile(r'strcmp\(method, "([A-Z][A-Za-z]+)"\)')
METHOD_TABLE = re.compile(r'\{"(Client[A-Za-z]+)",')
INSTANCE_TABLE = re.compile(r'struct instance_call_def instance_calls\[\] = \{(.*?)\n\};', re.S)
TABLE_ROW = re.compile(r'^\s*\{"([A-Za-z]+)",\s*([a-z_]+),', re.M)
# Client* calls the Client Access Server makes (access_web_api_call, ...)
CLIENT_CALL_MADE = re.compile(r'"(Client(?!AccessServer)[A-Z][A-Za-z]+)"')
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
        codes.update(CODE_SET.findall(text))
    assert {"unknown-method", "bad-request", "timeout", "closed"} <= codes, codes
    missing = sorted(c for c in codes if documented(c) not in doc)
    assert not missing, "error codes missing from docs/protocol.md: %s" % missing


def instance_table():
    """{name: handler} of every row of the instance's call table."""
    match = INSTANCE_TABLE.search(INSTANCE_CALLS.read_text())
    assert match, "no instance_calls[] table in %s" % INSTANCE_CALLS
    rows = TABLE_ROW.findall(match.group(1))
    names = [name for name, _handler in rows]
    assert len(names) == len(set(names)), "a call twice in instance_calls[]"
    # every row opens with `{"Name", handler,`: a row this misses is a row
    # written otherwise, so count the rows' opening braces too
    assert len(rows) == len(re.findall(r'^\s*\{"', match.group(1), re.M)), rows
    return dict(rows)


def test_instance_table_is_read():
    table = instance_table()
    assert {"Ping", "GetLiveStatistics", "Freeze", "Thaw", "GetJobs", "GetJob", "CancelJob",
            "GetUsers", "CreateUser", "RenameUser", "StartImport", "VerifyStores",
            "RebuildSelectedStoreIndexes", "GetStatistics", "Search", "CreateStore",
            "ClientLogin", "ClientFetch", "ClientExport", "ClientExportRead",
            "ClientMessageView", "ClientSetPassword", "ClientDeleteAppPassword"} <= set(table), table
    assert len(table) >= 50, sorted(table)


def test_every_client_call_made_is_dispatched():
    table = instance_table()
    made = set()
    for _path, text in sources(("access",)):
        made.update(CLIENT_CALL_MADE.findall(text))
    assert {"ClientLogin", "ClientFetch", "ClientExport", "ClientPart"} <= made, made
    missing = sorted(made - set(table))
    assert not missing, "Client* calls made but not in instance_calls[]: %s" % missing


def test_every_call_is_documented():
    protocol = (REPO / "docs" / "protocol.md").read_text()
    client = (REPO / "docs" / "client-calls.md").read_text()
    calls = set(instance_table())
    for _path, text in sources(DISPATCH_DIRS):
        calls.update(METHOD.findall(text))
        calls.update(METHOD_TABLE.findall(text))
    calls -= HTTP_METHODS
    assert {"Ping", "InstanceCall", "ClientLogin", "GetJob", "StartImport", "CreateUser",
            "ClientExport", "GetLiveStatistics"} <= calls, calls
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
