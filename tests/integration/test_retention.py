"""Legal hold, deletion and retention policies (src/instance/instance-retention.h,
src/lib-archive/archive-delete.h, docs/compliance.md) through the Management
API, as a provider's administrator uses them: a retention dry run lists, and a
run deletes, exactly what the policy says on mail whose dates the test knows
(mailgen: 1700000000 + i*3600); a legal hold and a minimum keep time refuse an
administrator and retention alike, and the message stays readable byte for
byte; a content two folders hold stays readable in one after it was deleted
from the other; deleted mail is gone from folders, IMAP and search (the
full-text index row too: verify finds the index consistent); deleting as a
user needs the delete privilege and right; every deletion, hold change and
retention run is in the instance's audit log once.

One system serves the module; each test makes its own users and limits its
policies to them, so tests do not see each other's mail. Time bounds: every
wait is at most 60 s (wait_for), imports are a few dozen small messages."""
import glob
import imaplib
import itertools
import json
import os
import shutil
import ssl
import tempfile
import time

import pytest

from daemonfix import Api, Server, all_connected, free_port, wait_for
from mailgen import write_mbox
from test_instances import data_dir, state
from webfix import Web

PASSWORD = "retention-pass-1"
ADMIN_PASSWORD = "pw-single"
_serial = itertools.count(1)


def start_system(prefix):
    base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(base, 0o755)
    s = Server(base, "single", "127.0.0.1")
    s.tmp = base
    s.config("init", "--mode", "single", "--server-name", "single.test",
             "--admin-password", ADMIN_PASSWORD)
    ports = {k: free_port() for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps")}
    s.config("role", "configure", "management-server", "--tcp-listeners",
             "127.0.0.1:%d" % ports["mtcp"], "--http-listeners", "127.0.0.1:%d" % ports["mhttp"])
    s.config("role", "configure", "instance-host", "--tcp-listeners", "127.0.0.1:%d" % ports["itcp"])
    s.config("role", "configure", "client-access-server",
             "--tcp-listeners", "127.0.0.1:%d" % ports["ctcp"],
             "--http-listeners", "127.0.0.1:%d" % ports["chttp"],
             "--imap-listeners", "127.0.0.1:%d" % ports["cimap"],
             "--imaps-listeners", "127.0.0.1:%d" % ports["cimaps"])
    s.config("start")
    s.ports = ports
    s.api = api = Api(s, "127.0.0.1", ports["mhttp"], ADMIN_PASSWORD)
    wait_for(all_connected(api), what="every role connected")
    s.base = data_dir(s, "acme")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + s.base)
    wait_for(lambda: state(s, "acme") == "running", what="acme running")
    os.makedirs(os.path.join(s.base, "import"), exist_ok=True)
    return s


def stop_system(s):
    s.stop_all()
    time.sleep(0.3)
    problems = []
    for path in glob.glob(os.path.join(s.dir, "log", "*.stderr")):
        with open(path, errors="replace") as f:
            text = f.read()
        if "AddressSanitizer" in text or "runtime error:" in text:
            problems.append("%s:\n%s" % (path, text[-4000:]))
    shutil.rmtree(s.tmp, ignore_errors=True)
    assert not problems, "sanitizer reports:\n" + "\n".join(problems)


@pytest.fixture(scope="module")
def system():
    s = start_system("coffer-retention-")
    try:
        yield s
    finally:
        stop_system(s)


def new_user(s, privileges="login,archive"):
    user = "r%d" % next(_serial)
    s.api.call("CreateUser", "instanceID=acme", "userName=" + user, "password=" + PASSWORD,
               "privileges=" + privileges, "loginPrivileges=web,imap,api")
    return user


def import_mail(s, user, folder, count, start):
    name = "%s-%s-%d.mbox" % (user, folder, start)
    write_mbox(os.path.join(s.base, "import", name), count, start=start)
    r = s.api.call("ImportFiles", "instanceID=acme", "userName=" + user,
                   "path=import/" + name, "folder=" + folder)
    return r


def folder_ids(s, user, folder):
    r = s.api.call("GetMessages", "instanceID=acme", "folder=%s/%s" % (user, folder), "limit=1000")
    return {m["id"]: m for m in r["messages"]}


def raw(s, user, message_id):
    web = Web("127.0.0.1", s.ports["chttp"])
    r = web.get("/acme/api/messages/%d/raw" % message_id, basic=(user, PASSWORD))
    return r.status, r.raw


def fails(s, function, *args):
    p = s.api.call_raw(function, "instanceID=acme", *args)
    assert p.returncode != 0, "%s should have been refused: %s" % (function, p.stdout)
    return p.stdout + p.stderr


def set_policies(s, policies):
    return s.api.call("SetRetentionPolicies", "instanceID=acme", "policies=" + json.dumps(policies))


def run_retention(s, dry_run, list_limit):
    return s.api.call("ProcessRetentionPolicies", "instanceID=acme",
                      "dryRun=" + ("true" if dry_run else "false"), "listLimit=%d" % list_limit)


def audit_count(s, action, text):
    r = s.api.call("GetInstanceAuditLog", "instanceID=acme", "action=" + action, "text=" + text)
    return r["total"]


def search_total(s, query):
    return s.api.call("Search", "instanceID=acme", "query=" + query)["total"]


def day(iso):
    """The UTC day of a date as the API gives it (2024-06-19T05:13:20Z)."""
    return iso[:10]


class Imap(imaplib.IMAP4_SSL):
    def __init__(self, s):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        super().__init__("127.0.0.1", s.ports["cimaps"], ssl_context=ctx, timeout=30)


def test_retention_dry_run_then_run_deletes_exactly_what_the_policy_says(system):
    s = system
    user = new_user(s)
    start = 5000 + 100 * next(_serial)
    count = 30  # 30 hours: at least one UTC midnight inside
    import_mail(s, user, "Inbox", count, start)
    import_mail(s, user, "Keep", 5, start - 50)  # older than the cutoff too, other folder
    inbox = folder_ids(s, user, "Inbox")
    keep = folder_ids(s, user, "Keep")
    assert len(inbox) == count and len(keep) == 5
    dates = sorted(m["date"] for m in inbox.values())
    # the last message's UTC day: 30 hours always cross a midnight, so some
    # are before it whatever hour the series starts at
    cutoff = day(dates[-1])  # before: is by UTC day
    expected = {i for i, m in inbox.items() if day(m["date"]) < cutoff}
    assert 0 < len(expected) < count
    # a maximum keep time of one day covers all of 2023; the query, the user
    # and the folder limit it to exactly `expected`
    set_policies(s, [{"name": "inbox-%s" % user, "type": "maximum", "days": 1,
                      "users": [user], "folders": ["Inbox"], "query": "before:" + cutoff}])
    got = s.api.call("GetRetentionPolicies", "instanceID=acme")
    assert got == [{"name": "inbox-%s" % user, "type": "maximum", "days": 1, "users": [user],
                    "folders": ["Inbox"], "query": "before:" + cutoff}], got

    dry = run_retention(s, True, 411)
    assert dry["wouldDelete"] == len(expected), dry
    assert {int(x) for x in dry["report"]} == expected, dry
    assert folder_ids(s, user, "Inbox").keys() == inbox.keys()  # nothing went

    # one kept message's bytes, and a deleted one's unique words
    gone = min(expected)
    kept = max(set(inbox) - expected)
    status, kept_bytes = raw(s, user, kept)
    assert status == 200
    gone_number = int(inbox[gone]["subject"].split("#")[1])
    assert search_total(s, '"Message number %d"' % gone_number) == 1

    # a session that has the folder selected while the run deletes
    selected = Imap(s)
    selected.login(user + "@acme", PASSWORD)
    selected.select("INBOX", readonly=True)
    done = run_retention(s, False, 412)
    assert done["deleted"] == len(expected), done
    assert {int(x) for x in done["report"]} == expected
    left = folder_ids(s, user, "Inbox")
    assert left.keys() == inbox.keys() - expected
    assert folder_ids(s, user, "Keep").keys() == keep.keys()
    assert raw(s, user, kept) == (200, kept_bytes)
    assert raw(s, user, gone)[0] == 404
    assert search_total(s, '"Message number %d"' % gone_number) == 0
    # IMAP: the selected session learns it at its next NOOP (EXPUNGE, from
    # the highest sequence number down), a new SELECT sees only what is left
    typ, _ = selected.noop()
    typ, data = selected.response("EXPUNGE")
    seqs = [int(x) for x in data if x is not None]
    assert len(seqs) == len(expected) and seqs == sorted(seqs, reverse=True), data
    typ, data = selected.uid("SEARCH", "ALL")
    assert {int(u) for u in data[0].split()} == set(left)
    selected.logout()
    imap = Imap(s)
    imap.login(user + "@acme", PASSWORD)
    typ, data = imap.select("INBOX", readonly=True)
    assert int(data[0]) == count - len(expected)
    typ, data = imap.uid("SEARCH", "ALL")
    assert {int(u) for u in data[0].split()} == set(left)
    imap.logout()
    # a second run finds nothing more; each run is audited once
    assert run_retention(s, False, 413)["deleted"] == 0
    for limit in (411, 412, 413):
        assert audit_count(s, "ProcessRetentionPolicies", '"listLimit":%d' % limit) == 1
    set_policies(s, [])


def test_legal_hold_and_minimum_keep_refuse_admins_and_retention(system):
    s = system
    user = new_user(s)
    import_mail(s, user, "Inbox", 4, 9000 + 100 * next(_serial))
    ids = sorted(folder_ids(s, user, "Inbox"))
    before = {i: raw(s, user, i) for i in ids}
    assert all(st == 200 for st, _ in before.values())

    reason = "case-%s" % user
    s.api.call("SetComplianceConfiguration", "instanceID=acme", "legalHold=true",
               "userName=" + user, "reason=" + reason)
    conf = s.api.call("GetComplianceConfiguration", "instanceID=acme")
    assert conf["legalHold"]["on"] is False
    assert [h["archive"] for h in conf["userLegalHolds"]] == [user]
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "reason=test")
    assert "legal hold" in out and user in out, out
    out = fails(s, "DeleteMessages", "query=folder:Inbox", "reason=test")
    assert "legal hold" in out, out
    set_policies(s, [{"name": "max-" + user, "type": "maximum", "days": 1, "users": [user]}])
    r = run_retention(s, False, 421)
    assert r["expired"] == 4 and r["keptByLegalHold"] == 4 and r["deleted"] == 0, r
    assert {i: raw(s, user, i) for i in ids} == before

    # the whole instance's hold covers this user's mail as well
    s.api.call("SetComplianceConfiguration", "instanceID=acme", "legalHold=false",
               "userName=" + user, "reason=" + reason + "-lifted")
    s.api.call("SetComplianceConfiguration", "instanceID=acme", "legalHold=true",
               "reason=" + reason + "-instance")
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "reason=test")
    assert "whole instance" in out, out
    assert run_retention(s, False, 422)["deleted"] == 0
    s.api.call("SetComplianceConfiguration", "instanceID=acme", "legalHold=false",
               "reason=" + reason + "-instance-lifted")
    assert s.api.call("GetComplianceConfiguration", "instanceID=acme")["legalHold"]["on"] is False

    # a minimum keep time of 100 years: not even an administrator deletes
    set_policies(s, [{"name": "max-" + user, "type": "maximum", "days": 1, "users": [user]},
                     {"name": "min-" + user, "type": "minimum", "days": 36500,
                      "users": [user]}])
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "reason=test")
    assert "minimum keep time" in out and "min-" + user in out, out
    r = run_retention(s, False, 423)
    assert r["keptByMinimum"] == 4 and r["deleted"] == 0, r
    assert {i: raw(s, user, i) for i in ids} == before
    set_policies(s, [])
    # without either, the administrator's deletion goes through
    r = s.api.call("DeleteMessage", "instanceID=acme", "messageID=%d" % ids[0],
                   "reason=" + reason + "-delete")
    assert r["deleted"] == 1
    assert raw(s, user, ids[0])[0] == 404
    # a minimum keep time limited by a query protects exactly its matches
    subject = folder_ids(s, user, "Inbox")[ids[1]]["subject"]
    set_policies(s, [{"name": "q-" + user, "type": "minimum", "days": 36500,
                      "query": 'subject:"%s"' % subject}])
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[1], "reason=test")
    assert "q-" + user in out, out
    assert s.api.call("DeleteMessage", "instanceID=acme", "messageID=%d" % ids[2],
                      "reason=test")["deleted"] == 1
    assert raw(s, user, ids[1]) == before[ids[1]]
    set_policies(s, [])
    # each hold change once in the audit log, refusals as well as deletions
    for suffix in ("", "-lifted", "-instance", "-instance-lifted"):
        assert audit_count(s, "SetComplianceConfiguration", '"reason":"%s%s"' % (reason, suffix)) == 1
    assert audit_count(s, "DeleteMessage", '"reason":"%s-delete"' % reason) == 1


def test_shared_content_stays_for_the_other_folder(system):
    s = system
    user = new_user(s)
    other = new_user(s)
    start = 2000 + 100 * next(_serial)
    import_mail(s, user, "A", 2, start)
    import_mail(s, user, "B", 2, start)      # the same messages: stored once
    import_mail(s, other, "Inbox", 2, start)  # and in another user's archive
    a, b, o = (sorted(folder_ids(s, u, f)) for u, f in ((user, "A"), (user, "B"), (other, "Inbox")))
    status, original = raw(s, user, b[0])
    assert status == 200
    phrase = '"Message number %d"' % start
    assert search_total(s, phrase) == 3
    pending = s.api.call("GetComplianceConfiguration", "instanceID=acme")["pendingRemoval"]
    r = s.api.call("DeleteMessage", "instanceID=acme", "messageID=%d" % a[0], "reason=dup-" + user)
    assert r == {"deleted": 1, "contentsRemoved": 0}, r
    assert raw(s, user, a[0])[0] == 404
    assert raw(s, user, b[0]) == (200, original)
    assert raw(s, other, o[0]) == (200, original)
    assert search_total(s, phrase) == 2
    # the last references go: then the content, its index row and its words
    r = s.api.call("DeleteMessages", "instanceID=acme", "query=" + phrase,
                   "reason=dup-all-" + user)
    assert r == {"deleted": 2, "contentsRemoved": 1}, r
    assert search_total(s, phrase) == 0
    assert search_total(s, '"Message number %d"' % (start + 1)) == 3
    after = s.api.call("GetComplianceConfiguration", "instanceID=acme")["pendingRemoval"]
    assert after["records"] > pending["records"] and after["bytes"] > pending["bytes"]
    # the index and catalog agree with the stores (FTS5 integrity, one
    # index row per content)
    v = s.api.call("VerifyStores", "instanceID=acme")
    assert v["problems"] == 0, v
    assert audit_count(s, "DeleteMessages", "dup-all-" + user) == 1
    # a rebuild from the segments (where the records still are until a
    # compaction) brings back no deleted message
    counts = {(u, f): len(folder_ids(s, u, f)) for u, f in ((user, "A"), (user, "B"), (other, "Inbox"))}
    s.api.call("RebuildSelectedStoreIndexes", "instanceID=acme")
    assert search_total(s, phrase) == 0
    assert search_total(s, '"Message number %d"' % (start + 1)) == 3
    assert {k: len(folder_ids(s, *k)) for k in counts} == counts
    assert s.api.call("GetComplianceConfiguration", "instanceID=acme")["pendingRemoval"] == after
    v = s.api.call("VerifyStores", "instanceID=acme")
    assert v["problems"] == 0, v


def test_deleting_as_a_user_needs_the_privilege_and_the_right(system):
    s = system
    user = new_user(s)
    import_mail(s, user, "Inbox", 3, 1000 + 100 * next(_serial))
    ids = sorted(folder_ids(s, user, "Inbox"))
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "reason=mine", "userName=" + user)
    assert "delete privilege" in out, out
    s.api.call("SetUserPrivileges", "instanceID=acme", "userName=" + user,
               "privileges=login,archive,delete")
    # the privilege alone is not enough: nothing is deletable without a right
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "reason=mine", "userName=" + user)
    assert "delete right" in out, out
    out = fails(s, "DeleteMessage", "messageID=%d" % ids[0], "userName=" + user)
    assert "reason" in out, out
    s.api.call("SetUserPrivilegesOnFolder", "instanceID=acme", "userName=" + user,
               "folder=%s/Inbox" % user, "privileges=read,write,delete")
    r = s.api.call("DeleteMessage", "instanceID=acme", "messageID=%d" % ids[0],
                   "reason=mine-" + user, "userName=" + user)
    assert r["deleted"] == 1
    assert sorted(folder_ids(s, user, "Inbox")) == ids[1:]
    assert audit_count(s, "DeleteMessage", "mine-" + user) == 1


def test_the_instance_runs_retention_on_its_own(monkeypatch):
    """The daily run, with its period shortened to 2 s for the test
    (COFFER_TEST_RETENTION_PERIOD_SECS): it deletes what a maximum keep time
    says, and the audit log names the scheduler."""
    monkeypatch.setenv("COFFER_TEST_RETENTION_PERIOD_SECS", "2")
    s = start_system("coffer-retention-sched-")
    try:
        user = new_user(s)
        import_mail(s, user, "Inbox", 3, 400)  # 2023: long expired
        assert len(folder_ids(s, user, "Inbox")) == 3
        set_policies(s, [{"name": "gone", "type": "maximum", "days": 1, "users": [user]}])
        wait_for(lambda: len(folder_ids(s, user, "Inbox")) == 0, timeout=60,
                 what="the scheduled run deleted the expired mail")
        r = s.api.call("GetInstanceAuditLog", "instanceID=acme",
                       "action=ProcessRetentionPolicies", "user=scheduler")
        assert r["total"] >= 1, r
        assert '"scheduled":true' in json.dumps(r["entries"][0]["details"], separators=(",", ":")), r
    finally:
        stop_system(s)
