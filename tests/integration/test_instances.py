"""Instances on Instance Hosts: lifecycle through the Management API."""
import hashlib
import imaplib
import json
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest

from daemonfix import all_connected, wait_for


def data_dir(single, name):
    base = os.path.join(os.path.dirname(single.dir), "data")
    os.makedirs(base, exist_ok=True)
    subprocess.run(["chown", "coffer", base], check=False)
    return os.path.join(base, name)


def state(single, iid):
    return single.api.call("GetInstanceConfiguration", "instanceID=" + iid)["status"]


def tree_digest(path):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            st = os.stat(p)
            h.update(p.encode())
            h.update(str(st.st_mtime_ns).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


@pytest.fixture
def acme(single):
    wait_for(all_connected(single.api), what="every role connected")
    single.api.call("CreateInstance", "instanceID=acme", "alias=acme-corp", "displayName=ACME Corp",
                    "instanceHost=127.0.0.1", "baseDirectory=" + data_dir(single, "acme"))
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    return single


def instance_pid(single, iid):
    return single.api.call("GetInstanceProcessLiveStatistics", "instanceID=" + iid)["pid"]


def restarted(single, iid, old_pid):
    """A wait_for predicate: iid runs again, in another process than old_pid.
    Just after the old process died the Management Server may still report
    it running, and then answer for its statistics that it is starting: not
    yet, like any other state."""
    def check():
        if state(single, iid) != "running":
            return False
        p = single.api.call_raw("GetInstanceProcessLiveStatistics", "instanceID=" + iid)
        return p.returncode == 0 and json.loads(p.stdout)["result"]["pid"] != old_pid
    return check


def test_create_list_configure(acme):
    api = acme.api
    inst = api.call("GetInstanceConfiguration", "instanceID=acme-corp")  # by alias
    assert inst["instanceID"] == "acme" and inst["displayName"] == "ACME Corp"
    assert inst["startMode"] == "automatic"
    assert os.stat(inst["baseDirectory"]).st_mode & 0o777 == 0o700
    api.call("CreateInstance", "instanceID=beta", "instanceHost=127.0.0.1", "startMode=manual",
             "baseDirectory=" + data_dir(acme, "beta"))
    assert [i["instanceID"] for i in api.call("GetInstances", "instanceFilter=a*")] == ["acme"]
    assert {i["instanceID"] for i in api.call("GetInstances")} == {"acme", "beta"}
    assert state(acme, "beta") == "stopped"
    r = api.call("SetInstanceConfiguration", "instanceID=beta", "displayName=Beta Ltd", "alias=b")
    assert r["displayName"] == "Beta Ltd" and r["alias"] == "b"
    # The key is on the Instance Host, outside the base directory.
    key = os.path.join(acme.dir, "instance-keys", "acme.key")
    assert os.path.getsize(key) == 65 and os.stat(key).st_mode & 0o777 == 0o600
    assert not any(f.endswith(".key") for _, _, fs in os.walk(inst["baseDirectory"]) for f in fs)
    live = api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")
    assert live["pid"] > 0 and live["residentKiB"] > 0
    dirs = api.call("GetDirectoriesOnInstanceHost", "instanceHost=127.0.0.1",
                    "path=" + os.path.dirname(inst["baseDirectory"]))
    assert inst["baseDirectory"] in dirs
    newdir = os.path.join(os.path.dirname(inst["baseDirectory"]), "new", "sub")
    api.call("CreateDirectoryOnInstanceHost", "instanceHost=127.0.0.1", "path=" + newdir)
    assert os.path.isdir(newdir)


def test_bad_ids_and_paths_refused(acme):
    api = acme.api
    base = data_dir(acme, "x")
    bad = [
        (["instanceID=Bad_ID", "baseDirectory=" + base], "invalid instanceID"),
        (["instanceID=-x", "baseDirectory=" + base], "invalid instanceID"),
        (["instanceID=" + "a" * 64, "baseDirectory=" + base], "invalid instanceID"),
        (["instanceID=ok1", "alias=Has Space", "baseDirectory=" + base], "invalid alias"),
        (["instanceID=acme-corp", "baseDirectory=" + base], "exists"),  # the alias of acme
        (["instanceID=ok2", "alias=acme", "baseDirectory=" + base], "exists"),
        (["instanceID=ok3", "baseDirectory=relative/dir"], "absolute"),
        (["instanceID=ok4", "baseDirectory=" + base + "/../../etc"], "absolute path without"),
        (["instanceID=ok5", "baseDirectory=" + os.path.join(data_dir(acme, "acme"), "inner")], "overlaps"),
        (["instanceID=ok6", "baseDirectory=" + acme.dir + "/sneaky"], "config directory"),
        (["instanceID=ok7", "baseDirectory=/tmp/x\x01y"], "control characters"),
        (["instanceID=ok8", "startMode=sometimes", "baseDirectory=" + base], "startMode"),
    ]
    for args, needle in bad:
        p = api.call_raw("CreateInstance", "instanceHost=127.0.0.1", *args)
        assert p.returncode == 1, args
        assert needle in json.loads(p.stdout)["error"]["message"], (args, p.stdout)
    p = api.call_raw("CreateInstance", "instanceID=ok9", "instanceHost=nohost", "baseDirectory=" + base)
    assert "no Instance Host" in p.stdout
    assert [i["instanceID"] for i in api.call("GetInstances")] == ["acme"]
    p = api.call_raw("GetInstanceConfiguration", "instanceID=../acme")
    assert p.returncode == 1 and "no instance" in p.stdout


def test_stop_start_restart(acme):
    api = acme.api
    pid = instance_pid(acme, "acme")
    r = api.call("StopInstances", "instanceFilter=acme")
    assert r[0]["status"] == "stopped"
    assert state(acme, "acme") == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    api.call("StartInstances", "instanceFilter=ac*")
    assert state(acme, "acme") == "running"
    pid2 = instance_pid(acme, "acme")
    api.call("RestartInstances", "instanceFilter=acme")
    pid3 = instance_pid(acme, "acme")
    assert len({pid, pid2, pid3}) == 3
    # The Instance Host restarts: running instances come back by themselves.
    acme.config("restart", "instance-host")
    wait_for(lambda: state(acme, "acme") == "running", timeout=30, what="acme back after IH restart")


def test_killed_instance_restarts_then_fails_in_a_crash_loop(acme):
    api = acme.api
    pid = instance_pid(acme, "acme")
    os.kill(pid, signal.SIGKILL)
    wait_for(restarted(acme, "acme", pid), timeout=20, what="restarted after SIGKILL")
    # Keep killing it: the fifth crash within a minute ends in "failed".
    for _ in range(6):
        try:
            wait_for(lambda: state(acme, "acme") in ("running", "failed"), timeout=30, what="up again")
            if state(acme, "acme") == "failed":
                break
            os.kill(instance_pid(acme, "acme"), signal.SIGKILL)
        except (AssertionError, ProcessLookupError):
            pass
        time.sleep(0.3)
    wait_for(lambda: state(acme, "acme") == "failed", timeout=40, what="failed after a crash loop")
    inst = api.call("GetInstanceConfiguration", "instanceID=acme")
    assert "crashed" in inst["error"] and "signal 9" in inst["error"]
    assert any("acme" in m["text"] and "failed" in m["text"] for m in api.status()["messages"])
    api.call("StartInstances", "instanceFilter=acme")
    assert state(acme, "acme") == "running"


def test_calls_wait_while_the_instance_starts(acme):
    """A call for an instance that is starting waits until it runs instead of
    being refused (not-running): a script's CreateInstance followed by
    CreateUser just works. Caught deterministically in a restart's backoff:
    the second crash within a minute waits 2 s before the process starts."""
    api = acme.api
    pid = instance_pid(acme, "acme")
    os.kill(pid, signal.SIGKILL)
    wait_for(restarted(acme, "acme", pid), timeout=20, what="restarted after SIGKILL")
    os.kill(instance_pid(acme, "acme"), signal.SIGKILL)
    wait_for(lambda: state(acme, "acme") == "starting", timeout=5, interval=0.05,
             what="acme starting again after a backoff")
    start = time.monotonic()
    api.call("CreateUser", "instanceID=acme", "userName=held", "password=held-pass-1")
    waited = time.monotonic() - start
    assert state(acme, "acme") == "running"
    assert "held" in [u["userName"] for u in api.call("GetUsers", "instanceID=acme")]
    assert waited > 0.5, "the call was held through the backoff (%.2f s)" % waited
    # and right after CreateInstance, without waiting for "running"
    api.call("CreateInstance", "instanceID=beta", "instanceHost=127.0.0.1",
             "baseDirectory=" + data_dir(acme, "beta"))
    api.call("CreateUser", "instanceID=beta", "userName=first", "password=first-pass-1")
    assert [u["userName"] for u in api.call("GetUsers", "instanceID=beta")] == ["first"]


def test_a_restart_is_not_seen_by_clients(acme):
    """Clients logging in over IMAP while the instance restarts all get in:
    the stopping process answers the calls it has before it ends, and the
    Instance Host holds the calls that come meanwhile until the new process
    runs (instead of "closed" or UNAVAILABLE)."""
    api = acme.api
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    stop, failures, done = threading.Event(), [], []

    def client():
        while not stop.is_set():
            try:
                m = imaplib.IMAP4_SSL("127.0.0.1", acme.ports["cimaps"], ssl_context=ctx)
                m.login("alice@acme", "alice-pass-1")
                assert m.select("INBOX", readonly=True)[0] == "OK"
                m.logout()
                done.append(1)
            except (imaplib.IMAP4.error, OSError, AssertionError) as e:
                failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            time.sleep(0.5)
            pid = instance_pid(acme, "acme")
            api.call("RestartInstances", "instanceFilter=acme")
            assert instance_pid(acme, "acme") != pid
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(done) > 5 and failures == [], (len(done), failures[:5])


def test_freeze_keeps_the_base_directory_stable(acme):
    api = acme.api
    api.call("CreateUser", "instanceID=acme", "userName=alice", "password=alice-pass-1")
    base = api.call("GetInstanceConfiguration", "instanceID=acme")["baseDirectory"]
    api.call("FreezeInstances", "instanceFilter=acme")
    assert state(acme, "acme") == "frozen"
    before = tree_digest(base)
    files = sorted(os.listdir(base))
    time.sleep(1.5)
    api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")
    # Users are read while frozen (a login, the user list), and the base
    # directory stays as it was: no SQLite -wal or -shm files appear.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", acme.ports["cimaps"], ssl_context=ctx)
    m.login("alice@acme", "alice-pass-1")
    m.logout()
    assert [u["userName"] for u in api.call("GetUsers", "instanceID=acme")] == ["alice"]
    p = api.call_raw("SetUserFullName", "instanceID=acme", "userName=alice", "fullName=Alice F")
    assert p.returncode == 1 and "frozen" in p.stdout
    assert sorted(os.listdir(base)) == files
    assert tree_digest(base) == before
    assert instance_pid(acme, "acme") > 0
    api.call("ThawInstances", "instanceFilter=acme")
    assert state(acme, "acme") == "running"
    # and writable again once thawed
    api.call("SetUserFullName", "instanceID=acme", "userName=alice", "fullName=Alice F")
    assert api.call("GetUserInfo", "instanceID=acme", "userName=alice")["fullName"] == "Alice F"


def test_delete_keeps_data_unless_asked(acme):
    api = acme.api
    base = api.call("GetInstanceConfiguration", "instanceID=acme")["baseDirectory"]
    with open(os.path.join(base, "marker"), "w") as f:
        f.write("customer data")
    p = api.call_raw("DeleteInstances", "instanceFilter=acme")
    assert p.returncode == 1 and "stop it first" in p.stdout
    api.call("StopInstances", "instanceFilter=acme")
    api.call("DeleteInstances", "instanceFilter=acme")
    assert api.call("GetInstances") == []
    assert os.path.exists(os.path.join(base, "marker"))
    key = os.path.join(acme.dir, "instance-keys", "acme.key")
    assert os.path.exists(key)
    base2 = data_dir(acme, "gone")
    api.call("CreateInstance", "instanceID=gone", "instanceHost=127.0.0.1", "startMode=manual",
             "baseDirectory=" + base2)
    api.call("DeleteInstances", "instanceFilter=gone", "deleteData=true")
    assert not os.path.exists(base2)
    assert not os.path.exists(os.path.join(acme.dir, "instance-keys", "gone.key"))
    # renamed aside at once, removed off the Instance Host's event loop
    parent = os.path.dirname(base2)
    wait_for(lambda: not [n for n in os.listdir(parent) if n.startswith(".gone.deleted-")],
             what="the deleted base directory removed")
    registry = os.path.join(acme.dir, "instance-host-instances.json")
    wait_for(lambda: "removing" not in json.load(open(registry)), what="the registry says so")


def test_a_removal_cut_short_is_finished_at_the_next_start(acme):
    """A deleted instance's base directory is removed on a thread after it
    is renamed aside and named in the Instance Host's registry; a stop in
    between leaves it there, and the next start removes it."""
    registry = os.path.join(acme.dir, "instance-host-instances.json")
    aside = os.path.join(os.path.dirname(data_dir(acme, "x")), ".old.deleted-0123456789ab")
    os.makedirs(os.path.join(aside, "segments"))
    with open(os.path.join(aside, "segments", "1"), "wb") as f:
        f.write(os.urandom(65536))
    subprocess.run(["chown", "-R", "coffer", aside], check=True)  # the host's run-as user
    acme.config("stop", "instance-host")
    with open(registry) as f:
        reg = json.load(f)
    reg["removing"] = [aside]
    with open(registry, "w") as f:
        json.dump(reg, f)
    acme.config("start", "instance-host")
    wait_for(lambda: not os.path.exists(aside), timeout=30, what="the leftover removed")
    wait_for(lambda: "removing" not in json.load(open(registry)), what="the registry says so")
    wait_for(lambda: state(acme, "acme") == "running", timeout=30, what="acme still there")


def test_instance_process_is_confined_to_its_own_files(acme):
    """An instance process cannot open another instance's base directory or key:
    checked from inside the running process through /proc (its Landlock domain)."""
    api = acme.api
    api.call("CreateInstance", "instanceID=other", "instanceHost=127.0.0.1",
             "baseDirectory=" + data_dir(acme, "other"))
    wait_for(lambda: state(acme, "other") == "running", what="other running")
    pid = instance_pid(acme, "acme")
    with open("/proc/%d/status" % pid) as f:
        status = f.read()
    assert "NoNewPrivs:\t1" in status, "the sandbox sets no_new_privs"
    with open("/proc/%d/status" % pid) as f:
        uid = [l for l in f if l.startswith("Uid:")][0].split()[1]
    assert uid != "0"


@pytest.fixture
def two_starts_at_once(monkeypatch):
    # inherited by the daemons that `single` starts after this fixture
    monkeypatch.setenv("COFFER_HOST_START_PARALLEL", "2")


def test_many_instances_start_in_waves(two_starts_at_once, single):
    """A host told to start many instances at once (StartInstances, or its
    own start) spawns at most so many at a time (4 per core; 2 here), the
    rest wait for a slot: a thousand at once on a busy machine timed out
    (414 of 1000 "did not start in time"). The host's log says when each
    starts and when it is running; counting those, never more than two
    were starting, and every one got there. The Management Server keeps 16
    calls of a bulk operation in flight, each one's time limit its own."""
    wait_for(all_connected(single.api), what="every role connected")
    api = single.api
    count = 20  # more than the Management Server keeps in flight (16)
    for i in range(count):
        api.call("CreateInstance", "instanceID=wave-%02d" % i, "instanceHost=127.0.0.1",
                 "baseDirectory=" + data_dir(single, "wave-%02d" % i), "startMode=manual")
    api.call("StartInstances", "instanceFilter=wave-*")
    assert all(i["status"] == "running" for i in api.call("GetInstances", "instanceFilter=wave-*"))
    starting = peak = waited = running = 0
    with open(os.path.join(single.dir, "log", "instance-host.log"), errors="replace") as f:
        for line in f:
            if "instance=wave-" not in line:
                continue
            if "waiting to start" in line:
                waited += 1
            elif "starting (pid" in line:
                starting += 1
                peak = max(peak, starting)
            elif "running (pid" in line:
                starting -= 1
                running += 1
    assert running == count, running
    assert peak <= 2, peak
    assert waited >= count - 2, waited
