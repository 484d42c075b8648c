"""Users, stores, imports, statistics and search inside an instance, through
the Management API (coffer api)."""
import json
import os

import pytest

from daemonfix import all_connected, wait_for
from mailgen import write_mbox
from test_instances import data_dir, state


@pytest.fixture
def inst(single):
    wait_for(all_connected(single.api), what="every role connected")
    base = data_dir(single, "acme")
    single.api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    single.base = base
    return single


def test_users(inst):
    api = inst.api
    u = api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1",
                 "fullName=Alice A", "emailAddresses=alice@acme.test, a.a@acme.test")
    assert u["privileges"] == ["login", "archive"] and u["loginPrivileges"] == ["web", "imap"]
    assert u["emailAddresses"] == ["alice@acme.test", "a.a@acme.test"]
    api.call("CreateUser", "instanceID=acme", "userName=bob")
    assert [x["userName"] for x in api.call("GetUsers", "instanceID=acme")] == ["alice", "bob"]
    bad = [
        (["userName=ALICE"], "exists"),
        (["userName=bad name"], "invalid userName"),
        (["userName=carl", "password=short"], "8 to 1024"),
        (["userName=carl", "privileges=admin,superuser"], "'superuser' is not one of"),
        (["userName=carl", "loginPrivileges=telnet"], "'telnet'"),
        (["userName=carl", "emailAddresses=not-an-address"], "email address"),
    ]
    for args, needle in bad:
        p = api.call_raw("CreateUser", "instanceID=acme", *args)
        assert p.returncode == 1 and needle in json.loads(p.stdout)["error"]["message"], (args, p.stdout)
    api.call("SetUserPassword", "instanceID=acme", "userName=bob", "password=bob-pass-22")
    api.call("SetUserFullName", "instanceID=acme", "userName=bob", "fullName=Bob B")
    api.call("SetUserEmailAddresses", "instanceID=acme", "userName=bob", "emailAddresses=bob@acme.test")
    api.call("SetUserPrivileges", "instanceID=acme", "userName=bob", "privileges=login,archive,export")
    api.call("SetUserLoginPrivileges", "instanceID=acme", "userName=bob", "loginPrivileges=imap")
    api.call("SetUserPrivilegesOnFolder", "instanceID=acme", "userName=bob", "folder=alice/Inbox",
             "privileges=read")
    info = api.call("GetUserInfo", "instanceID=acme", "userName=bob")
    assert info["fullName"] == "Bob B" and info["loginPrivileges"] == ["imap"]
    assert info["folderRights"] == {"alice/Inbox": ["read"]}
    mfa = api.call("InitializeMFA", "instanceID=acme", "userName=bob")
    assert mfa["uri"].startswith("otpauth://totp/") and "<svg" in mfa["qrCodeSvg"]
    assert api.call("GetUserInfo", "instanceID=acme", "userName=bob")["mfa"] == "pending"
    api.call("DisableMFA", "instanceID=acme", "userName=bob")
    r = api.call("RenameUser", "instanceID=acme", "oldUserName=bob", "newUserName=robert")
    assert r["userName"] == "robert" and r["archiveName"] == "bob"
    api.call("DeleteUser", "instanceID=acme", "userName=robert")
    assert [x["userName"] for x in api.call("GetUsers", "instanceID=acme")] == ["alice"]
    # The users live in the catalog, encrypted page by page (and its WAL too):
    # neither names nor hashes are readable on disk.
    assert not os.path.exists(os.path.join(inst.base, "users.sealed"))
    for name in ("catalog.db", "catalog.db-wal"):
        path = os.path.join(inst.base, name)
        raw = open(path, "rb").read() if os.path.exists(path) else b""
        assert b"alice" not in raw and b"argon2" not in raw and b"Alice A" not in raw, name
    # Everything survives a restart of the instance.
    api.call("RestartInstances", "instanceFilter=acme")
    assert api.call("GetUserInfo", "instanceID=acme", "userName=alice")["fullName"] == "Alice A"


def test_import_search_statistics_stores(inst):
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    os.makedirs(os.path.join(inst.base, "import"), exist_ok=True)
    write_mbox(os.path.join(inst.base, "import", "mail.mbox"), 200)
    p = api.call_raw("ImportFiles", "instanceID=acme", "userName=alice", "path=import/mail.mbox",
                     "folder=Lists/test")
    assert p.returncode == 0, p.stdout + p.stderr
    result = json.loads(p.stdout)["result"]
    assert result["archived"] == 200 and result["skipped"] == 0
    assert "import started" in p.stderr
    stats = api.call("GetInstanceStatistics", "instanceID=acme")
    assert stats["messages"] == 200
    # parse defects per kind (docs/archive.md): these messages have none
    assert stats["messages_with_defects"] == 0 and stats["defects"] == {}
    hits = api.call("Search", "instanceID=acme", "query=subject:invoice", "limit=5")
    assert hits["total"] == 40 and len(hits["messages"]) == 5
    assert all("invoice" in m["subject"] for m in hits["messages"])
    assert hits["messages"][0]["user"] == "alice"
    # Newest first.
    dates = [m["date"] for m in hits["messages"]]
    assert dates == sorted(dates, reverse=True)
    # Importing the same file again stores nothing twice.
    again = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/mail.mbox",
                     "folder=Lists/test")
    assert again["archived"] == 0 and again["duplicates"] == 200
    stores = api.call("GetStores", "instanceID=acme")
    assert len(stores) >= 1
    api.call("CreateStore", "instanceID=acme")
    assert len(api.call("GetStores", "instanceID=acme")) == len(stores) + 1
    v = api.call("VerifyStores", "instanceID=acme")
    assert v["problems"] == 0
    r = api.call("RebuildSelectedStoreIndexes", "instanceID=acme")
    assert r["damagedRecords"] == 0
    assert api.call("Search", "instanceID=acme", "query=subject:invoice")["total"] == 40
    # The users live in the catalog but not in the stores: the rebuilt
    # catalog keeps them, and they can still be changed afterwards.
    assert [u["userName"] for u in api.call("GetUsers", "instanceID=acme")] == ["alice"]
    api.call("SetUserFullName", "instanceID=acme", "userName=alice", "fullName=After Rebuild")
    api.call("RestartInstances", "instanceFilter=acme")
    assert api.call("GetUserInfo", "instanceID=acme", "userName=alice")["fullName"] == "After Rebuild"


def test_import_says_why_per_kind(inst):
    """The import job's result names each kind of skipped input and of parse
    defect with its count (issue 11, 1), as `coffer archive import` does."""
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    d = os.path.join(inst.base, "import", "mixed")
    os.makedirs(d, exist_ok=True)
    with open("/usr/bin/true", "rb") as f, open(os.path.join(d, "program"), "wb") as out:
        out.write(f.read())
    open(os.path.join(d, "empty.eml"), "wb").close()
    with open(os.path.join(d, "broken.eml"), "wb") as f:
        f.write(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: no boundary\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\nbody\r\n")
    with open(os.path.join(d, "fine.eml"), "wb") as f:
        f.write(b"From: a@example.com\r\nTo: b@example.com\r\nSubject: fine\r\n\r\nhello\r\n")
    r = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/mixed")
    assert r["archived"] == 2 and r["skipped"] == 2, r
    assert r["skippedByKind"] == {"not-a-message": 1, "empty": 1}, r
    assert r["defects"] == 1 and r["defectsByKind"] == {"missing-boundary": 1}, r
    stats = api.call("GetInstanceStatistics", "instanceID=acme")
    assert stats["defects"] == {"missing-boundary": 1}, stats


def test_import_paths_stay_inside_the_instance(inst):
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    other = data_dir(inst, "other-customer")
    os.makedirs(other, exist_ok=True)
    write_mbox(os.path.join(other, "secret.mbox"), 3)
    for path in (other + "/secret.mbox", "import/../../other-customer/secret.mbox", "/etc/passwd",
                 "import/missing.mbox"):
        p = api.call_raw("ImportFiles", "instanceID=acme", "userName=alice", "path=" + path)
        assert p.returncode == 1, path
        assert "import" in json.loads(p.stdout)["error"]["message"]
    p = api.call_raw("ImportFiles", "instanceID=acme", "userName=nobody", "path=import")
    assert p.returncode == 1 and "no such user" in p.stdout
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 0


def test_large_import_reports_progress_and_can_be_cancelled(inst):
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    os.makedirs(os.path.join(inst.base, "import"), exist_ok=True)
    write_mbox(os.path.join(inst.base, "import", "big.mbox"), 30000, size_pad=20)
    p = api.call_raw("ImportFiles", "instanceID=acme", "userName=alice", "path=import/big.mbox",
                     extra=["--no-wait"])
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running"
    token = env["token"]
    seen = []

    def progressed():
        p = api.call_raw("/api/get-status", "token=" + token, "millisecondsTimeout=2000",
                         "lastKnownStatusVersion=%d" % (seen[-1] if seen else 0), extra=["--no-wait"])
        st = json.loads(p.stdout)
        seen.append(st["statusVersion"])
        return st["statusText"] and "archived" in st["statusText"] and \
            int(st["statusText"].split(" archived")[0].split()[-1]) > 0
    wait_for(progressed, timeout=60, what="import progress")
    p = api.call_raw("/api/cancel-async", "token=" + token, extra=["--no-wait"])
    # The import commits what is in flight before it stops: the job ends
    # "cancelled" once it has, with what it archived.
    env = json.loads(p.stdout)
    assert env["statusCode"] in ("running", "cancelled"), env

    def ended():
        p = api.call_raw("/api/get-status", "token=" + token, "millisecondsTimeout=2000",
                         "lastKnownStatusVersion=0", extra=["--no-wait"])
        st = json.loads(p.stdout)
        return st if st["statusCode"] != "running" else None
    final = wait_for(ended, timeout=120, what="import stopped")
    assert final["statusCode"] == "cancelled", final
    assert api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    n = api.call("GetInstanceStatistics", "instanceID=acme")["messages"]
    assert 0 < n < 30000
    assert final["result"]["archived"] == n


def test_frozen_instance_refuses_changes(inst):
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    api.call("FreezeInstances", "instanceFilter=acme")
    p = api.call_raw("CreateUser", "instanceID=acme", "userName=bob")
    assert p.returncode == 1 and "frozen" in p.stdout
    assert [u["userName"] for u in api.call("GetUsers", "instanceID=acme")] == ["alice"]
    api.call("ThawInstances", "instanceFilter=acme")
    api.call("CreateUser", "instanceID=acme", "userName=bob")


def test_folders_and_messages(inst):
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    api.call("CreateUser", "instanceID=acme", "userName=bob")
    os.makedirs(os.path.join(inst.base, "import"), exist_ok=True)
    write_mbox(os.path.join(inst.base, "import", "a.mbox"), 30)
    write_mbox(os.path.join(inst.base, "import", "b.mbox"), 12, start=100)
    api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/a.mbox", "folder=Lists/dev")
    api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/b.mbox", "folder=Inbox")
    api.call("ImportFiles", "instanceID=acme", "userName=bob", "path=import/b.mbox", "folder=Inbox")
    top = api.call("GetChildFolders", "instanceID=acme")
    assert [(f["folder"], f["hasChildren"]) for f in top] == [("alice", True), ("bob", True)]
    kids = api.call("GetChildFolders", "instanceID=acme", "folder=alice")
    assert {f["folder"]: (f["messages"], f["hasChildren"]) for f in kids} == \
        {"alice/Inbox": (12, False), "alice/Lists": (0, True)}
    assert api.call("GetChildFolders", "instanceID=acme", "folder=alice/Lists")[0]["folder"] == "alice/Lists/dev"
    stats = {f["folder"]: f["messages"] for f in api.call("GetFolderStatistics", "instanceID=acme")}
    assert stats == {"alice/Inbox": 12, "alice/Lists/dev": 30, "bob/Inbox": 12}
    page = api.call("GetMessages", "instanceID=acme", "folder=alice/Lists/dev", "limit=10", "offset=5")
    assert page["total"] == 30 and len(page["messages"]) == 10
    dates = [m["date"] for m in page["messages"]]
    assert dates == sorted(dates, reverse=True)
    # Dedup: bob's copy is the same stored content, yet his own message.
    assert api.call("GetInstanceStatistics", "instanceID=acme")["unique_contents"] == 42
    for bad in ("alice", "nobody/Inbox", "alice/Nope", "/Inbox"):
        p = api.call_raw("GetMessages", "instanceID=acme", "folder=" + bad)
        assert p.returncode == 1, bad


PST = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "corpus", "pst", "support.pst")


@pytest.mark.skipif(not os.path.exists(PST), reason="PST corpus absent: ../shared/corpus/pst")
def test_import_pst(inst):
    """ImportFiles takes an Outlook PST: each message into its folder below
    the import's folder, for the import's user, once (docs/sources.md "PST");
    a truncated one is one clear skip, nothing of it archived."""
    api = inst.api
    api.call("CreateUser", "instanceID=acme", "userName=alice")
    d = os.path.join(inst.base, "import")
    os.makedirs(d, exist_ok=True)
    with open(PST, "rb") as f:
        data = f.read()
    with open(os.path.join(d, "support.pst"), "wb") as f:
        f.write(data)
    with open(os.path.join(d, "cut.pst"), "wb") as f:
        f.write(data[:len(data) // 2])
    r = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/support.pst",
                 "folder=PST")
    assert r["archived"] == 17 and r["skipped"] == 0, r
    stats = {f["folder"]: f["messages"] for f in api.call("GetFolderStatistics", "instanceID=acme")}
    assert stats == {"alice/PST/Drafts": 6, "alice/PST/Sent Messages": 11}, stats
    page = api.call("GetMessages", "instanceID=acme", "folder=alice/PST/Sent Messages", "limit=20")
    assert "IMPORTANT: Support portal downtime for maintenance" in \
        [m["subject"] for m in page["messages"]]
    again = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/support.pst",
                     "folder=PST")
    assert again["archived"] == 0 and again["duplicates"] == 17, again
    p = api.call_raw("ImportFiles", "instanceID=acme", "userName=alice", "path=import/cut.pst")
    r = json.loads(p.stdout)["result"]
    assert r["archived"] == 0 and r["skippedByKind"] == {"unreadable": 1}, r
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 17
