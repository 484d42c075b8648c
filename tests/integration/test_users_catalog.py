"""The users of an instance live in its catalog (schema 11, docs/storage.md):
an instance that still has the sealed users file of earlier versions moves
its users in on first start, and a directory sync of many users is one
transaction whose cost grows with the list, not with its square.

- Upgrade: tests/integration/fixtures/users-v1 was made by the code before
  the move (make.py there says how): its users.sealed and instance key go
  into a new instance, which must then answer GetUsers and GetUserInfo
  exactly as the old code did, and every password, app password, MFA code,
  privilege and login privilege must work as before (and wrong ones fail).
  The old file is removed once the catalog holds the users; put back (as a
  crash between the commit and the removal would leave it), the next start
  removes it again and changes nothing.
- SyncUsers: 10,000 users in one call within a generous bound (SYNC_BOUND
  seconds on a busy machine; the old one-file store rewrote the whole file
  for every user, which at 10,000 users is 50 million user records written),
  then a second sync of the same list writes nothing, a changed and shortened
  list with deleteMissing updates and deletes, and a bad entry refuses the
  whole sync."""
import json
import os
import ssl
import subprocess
import time
import urllib.request
import base64


from daemonfix import all_connected, wait_for
from test_instances import data_dir, state
from webfix import Web

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "users-v1")
SYNC_USERS = 10000
SYNC_BOUND = 120  # seconds, for the call on a loaded machine (it takes about a second idle)


def totp(secret):
    return subprocess.run(["oathtool", "--totp", "-b", secret], capture_output=True, text=True,
                          check=True).stdout.strip()


def start_acme(single):
    api = single.api
    wait_for(all_connected(api), what="every role connected")
    base = data_dir(single, "acme")
    api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    return base


def put_file(src, dest, owner_of):
    """Copy src to dest with the owner of `owner_of` (the instance runs as
    its own user)."""
    st = os.stat(owner_of)
    with open(src, "rb") as f:
        data = f.read()
    with open(dest, "wb") as f:
        f.write(data)
    os.chown(dest, st.st_uid, st.st_gid)
    os.chmod(dest, 0o600)


def invoke(single, function, body):
    """A Management API call with a JSON body (too big for a command line)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(
        "https://127.0.0.1:%d/api/invoke/%s" % (single.ports["mhttp"], function),
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + base64.b64encode(b"admin:pw-single").decode()})
    env = post(req, ctx)
    deadline = time.monotonic() + SYNC_BOUND + 60
    while env.get("statusCode") == "running" and time.monotonic() < deadline:
        # a call that takes longer than the answer wait goes on as a job
        req = urllib.request.Request(
            "https://127.0.0.1:%d/api/get-status" % single.ports["mhttp"],
            data=json.dumps({"token": env["token"], "lastKnownStatusVersion": env["statusVersion"],
                             "millisecondsTimeout": 30000}).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": "Basic " + base64.b64encode(b"admin:pw-single").decode()})
        env = post(req, ctx)
    return env


def post(req, ctx):
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=SYNC_BOUND + 60) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read())


def test_upgrade_from_the_sealed_users_file(single):
    api = single.api
    base = start_acme(single)
    with open(os.path.join(FIXTURE, "expect.json")) as f:
        expect = json.load(f)
    api.call("StopInstances", "instanceFilter=acme")
    key = os.path.join(single.dir, "instance-keys", "acme.key")
    put_file(os.path.join(FIXTURE, "instance.key"), key, key)
    put_file(os.path.join(FIXTURE, "users.sealed"), os.path.join(base, "users.sealed"), base)
    api.call("StartInstances", "instanceFilter=acme")
    wait_for(lambda: state(single, "acme") == "running", what="acme running again")

    def same_as_before():
        assert api.call("GetUsers", "instanceID=acme") == expect["users"]
        for name, info in expect["info"].items():
            assert api.call("GetUserInfo", "instanceID=acme", "userName=" + name) == info, name
    same_as_before()
    assert not os.path.exists(os.path.join(base, "users.sealed")), "moved into the catalog"

    web = Web("127.0.0.1", single.ports["chttp"], source="127.0.1.1")
    wait_for(lambda: web.get("/acme/api/session", basic=("alice", "alice-pass-1")).status == 200,
             timeout=30, what="acme reachable through the Client Access Server")
    pw, apps = expect["passwords"], expect["appPasswords"]

    def client(n):
        return Web("127.0.0.1", single.ports["chttp"], source="127.0.1.%d" % n)
    # alice: password (web, api) and her app password; folder rights as before.
    w = client(2)
    assert w.login("acme", "alice", pw["alice"]).status == 200
    session = w.get("/acme/api/session").json["user"]
    assert session["folderRights"] == expect["info"]["alice"]["folderRights"]
    assert "export" in session["effectivePrivileges"]
    assert client(3).get("/acme/api/folders", basic=("alice", apps["alice"][1])).status == 200
    assert client(4).login("acme", "alice", "wrong-password").status == 401
    # bob: MFA on, so the web wants a code and scripts an app password.
    r = client(5).login("acme", "bob", pw["bob"])
    assert r.status == 401 and r.json["error"]["code"] == "mfa-required"
    code = totp(expect["mfaSecret"]["bob"])
    assert client(6).login("acme", "bob", pw["bob"], totp=code).status == 200
    # A code works once, also after a restart (the used step is in the catalog).
    api.call("RestartInstances", "instanceFilter=acme")
    wait_for(lambda: client(12).get("/acme/api/session", basic=("alice", pw["alice"])).status == 200,
             timeout=30, what="acme back")
    r = client(13).login("acme", "bob", pw["bob"], totp=code)
    assert r.status == 401 and r.json["error"]["code"] == "auth-failed"
    assert client(7).get("/acme/api/folders", basic=("bob", apps["bob"][1])).status == 200
    assert client(8).get("/acme/api/folders", basic=("bob", pw["bob"])).status == 401
    # carol (renamed from caroline): api only; her archive name stayed.
    assert client(9).get("/acme/api/folders", basic=("carol", pw["carol"])).status == 200
    assert client(10).login("acme", "carol", pw["carol"]).status == 401
    assert expect["info"]["carol"]["archiveName"] == "caroline"
    # dave has no password: no login.
    assert client(11).login("acme", "dave", "any-password-1").status == 401

    # A crash after the commit but before the removal leaves the file: the
    # next start finds its users in the catalog already and only removes it.
    api.call("StopInstances", "instanceFilter=acme")
    put_file(os.path.join(FIXTURE, "users.sealed"), os.path.join(base, "users.sealed"), base)
    api.call("StartInstances", "instanceFilter=acme")
    wait_for(lambda: state(single, "acme") == "running", what="acme running again")
    same_as_before()
    assert not os.path.exists(os.path.join(base, "users.sealed"))
    # Changes after the upgrade are kept (row by row in the catalog).
    api.call("SetUserFullName", "instanceID=acme", "userName=alice", "fullName=Alice New")
    api.call("RestartInstances", "instanceFilter=acme")
    assert api.call("GetUserInfo", "instanceID=acme", "userName=alice")["fullName"] == "Alice New"


def counts(created, updated, unchanged, deleted):
    return {"usersCreated": created, "usersUpdated": updated, "usersUnchanged": unchanged,
            "usersDeleted": deleted}


def test_sync_many_users(single):
    api = single.api
    start_acme(single)
    api.call("CreateUser", "instanceID=acme", "userName=keeper", "password=keeper-pass-1",
             "loginPrivileges=api")
    users = [{"userName": "user%05d" % i, "fullName": "User %d" % i,
              "emailAddresses": ["user%05d@dir.test" % i],
              "privileges": ["login", "archive"] if i % 7 else ["login", "archive", "export"]}
             for i in range(SYNC_USERS)]
    start = time.monotonic()
    r = invoke(single, "SyncUsers", {"instanceID": "acme", "users": users})
    took = time.monotonic() - start
    assert r["error"] is None, r["error"]
    assert r["result"] == counts(SYNC_USERS, 0, 0, 0)
    assert took < SYNC_BOUND, "SyncUsers of %d users took %.1f s" % (SYNC_USERS, took)
    listed = api.call("GetUsers", "instanceID=acme")
    assert [u["userName"] for u in listed] == ["keeper"] + [u["userName"] for u in users]
    info = api.call("GetUserInfo", "instanceID=acme", "userName=user00007")
    assert info["privileges"] == ["login", "archive", "export"]
    assert info["loginPrivileges"] == ["web", "imap"] and info["emailAddresses"] == ["user00007@dir.test"]

    # The same list again changes nothing.
    r = invoke(single, "SyncUsers", {"instanceID": "acme", "users": users})
    assert r["result"] == counts(0, 0, SYNC_USERS, 0)

    # A directory that renamed one, dropped the last 1,000 and added one.
    changed = users[:SYNC_USERS - 1000]
    changed[5] = dict(changed[5], fullName="Renamed Five")
    changed.append({"userName": "newcomer", "loginPrivileges": ["api"]})
    r = invoke(single, "SyncUsers", {"instanceID": "acme", "users": changed, "deleteMissing": True})
    assert r["result"] == counts(1, 1, SYNC_USERS - 1001, 1001), r  # the 1,000 and keeper
    assert api.call("GetUserInfo", "instanceID=acme", "userName=user00005")["fullName"] == "Renamed Five"
    p = api.call_raw("GetUserInfo", "instanceID=acme", "userName=user09999")
    assert p.returncode == 1 and "no user" in p.stdout

    # A bad entry anywhere refuses the whole sync: nothing is written.
    bad = changed + [{"userName": "x1", "privileges": ["superuser"]}]
    bad[0] = dict(bad[0], fullName="Should Not Stick")
    r = invoke(single, "SyncUsers", {"instanceID": "acme", "users": bad})
    assert "users[%d]" % (len(bad) - 1) in r["error"]["message"] and "superuser" in r["error"]["message"]
    for entry, needle in (({"userName": "bad name"}, "invalid userName"),
                          ({"userName": "y1", "password": "secret-pass-1"}, "SetUserPassword"),
                          ({"userName": "USER00001"}, None)):
        r = invoke(single, "SyncUsers", {"instanceID": "acme", "users": changed + [entry]})
        if needle is None:  # names are unique regardless of case
            assert "listed twice" in r["error"]["message"], r
        else:
            assert needle in r["error"]["message"], r
    assert api.call("GetUserInfo", "instanceID=acme", "userName=user00000")["fullName"] == "User 0"
    assert len(api.call("GetUsers", "instanceID=acme")) == SYNC_USERS - 1000 + 1

    # Everything is in the catalog: a restart reads it back.
    api.call("RestartInstances", "instanceFilter=acme")
    assert len(api.call("GetUsers", "instanceID=acme")) == SYNC_USERS - 1000 + 1
    api.call("SetUserPassword", "instanceID=acme", "userName=newcomer", "password=newcomer-pass-1")
    web = Web("127.0.0.1", single.ports["chttp"], source="127.0.2.1")
    wait_for(lambda: web.get("/acme/api/session", basic=("newcomer", "newcomer-pass-1")).status == 200,
             timeout=30, what="a synced user logs in once given a password")


def test_lost_catalog_is_rebuilt_without_its_users(single):
    """The users live only in catalog.db: with it gone (stores left) the
    instance says to rebuild rather than start an empty catalog over the
    archive, the rebuild can still be started, and after it the mail is
    back and the users are not (docs/storage.md: back up catalog.db)."""
    from mailgen import write_mbox
    api = single.api
    base = start_acme(single)
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    write_mbox(os.path.join(base, "import", "m.mbox"), 20)
    assert api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/m.mbox",
                    "folder=Inbox")["archived"] == 20
    api.call("StopInstances", "instanceFilter=acme")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(os.path.join(base, "catalog.db" + suffix)):
            os.unlink(os.path.join(base, "catalog.db" + suffix))
    api.call("StartInstances", "instanceFilter=acme")
    wait_for(lambda: state(single, "acme") == "running", what="acme running again")
    p = api.call_raw("GetUsers", "instanceID=acme")
    assert p.returncode == 1 and "run `rebuild`" in p.stdout, p.stdout
    assert not os.path.exists(os.path.join(base, "catalog.db")), "no empty catalog made over the stores"
    assert api.call("RebuildSelectedStoreIndexes", "instanceID=acme")["damagedRecords"] == 0
    assert api.call("GetInstanceStatistics", "instanceID=acme")["messages"] == 20
    assert api.call("GetUsers", "instanceID=acme") == []
