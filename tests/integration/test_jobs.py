"""Long work of an instance (import, verify, rebuild) runs as jobs off the
instance's event loop: the instance keeps answering while a job outlasts the
keep-alive window of its link, jobs show progress, can be cancelled, and keep
their outcome across a crash of the instance process.

Real mail: a slice of the linux-mips list archive (../shared/corpus). The
keep-alive of the link between Instance Host and instance is shortened to
KEEPALIVE seconds (closed after three times that of silence), and each
progress report of a job sleeps STEP_DELAY_MS (COFFER_TEST_JOB_STEP_DELAY_MS,
a knob for tests), so that a job of a few thousand messages runs well past
that window without a corpus of millions."""
import json
import os
import signal
import subprocess
import time

import pytest

from daemonfix import ROOT, all_connected, wait_for
from test_instances import data_dir, state

CORPUS = os.path.join(os.path.dirname(ROOT), "shared", "corpus", "linux-mips.mboxrd.zst")
SLICE = 3000
# More than an import keeps in flight (96 MiB): a cancelled import leaves input unread.
BIG_SLICE = 30000
KEEPALIVE = 1
WINDOW = 3 * KEEPALIVE
STEP_DELAY_MS = 150
# token of started work -> the jobIDs GetJobs listed just before it
JOBS_BEFORE = {}


@pytest.fixture(scope="module")
def corpus_slices(tmp_path_factory):
    """The first SLICE and BIG_SLICE messages of linux-mips as mbox files."""
    if not os.path.exists(CORPUS):
        pytest.skip("the linux-mips corpus is absent (%s): these tests need real mail" % CORPUS)
    d = tmp_path_factory.mktemp("corpus")
    small, big = str(d / "small.mbox"), str(d / "big.mbox")
    zstd = subprocess.Popen(["zstd", "-dc", CORPUS], stdout=subprocess.PIPE)
    count = 0
    with open(small, "wb") as out_small, open(big, "wb") as out_big:
        for line in zstd.stdout:
            # mboxrd: a body line starting "From " carries a '>', so this is an envelope
            if line.startswith(b"From "):
                count += 1
                if count > BIG_SLICE:
                    break
            if count <= SLICE:
                out_small.write(line)
            out_big.write(line)
    zstd.kill()
    zstd.wait()
    for path in (small, big):
        os.chmod(path, 0o644)
    return small, big


@pytest.fixture
def inst(monkeypatch, make_server, corpus_slices, request):
    # Before the daemons start: they pass the environment on to instances.
    # A test may ask for slower jobs: @pytest.mark.parametrize("inst", [ms], indirect=True)
    monkeypatch.setenv("COFFER_INSTANCE_KEEPALIVE_SECS", str(KEEPALIVE))
    monkeypatch.setenv("COFFER_TEST_JOB_STEP_DELAY_MS", str(getattr(request, "param", STEP_DELAY_MS)))
    single = request.getfixturevalue("single")
    wait_for(all_connected(single.api), what="every role connected")
    base = data_dir(single, "acme")
    single.api.call("CreateInstance", "instanceID=acme", "instanceHost=127.0.0.1", "baseDirectory=" + base)
    wait_for(lambda: state(single, "acme") == "running", what="acme running")
    single.api.call("CreateUser", "instanceID=acme", "userName=alice")
    os.makedirs(os.path.join(base, "import"), exist_ok=True)
    for path, name in zip(corpus_slices, ("lists.mbox", "big.mbox")):
        subprocess.run(["cp", path, os.path.join(base, "import", name)], check=True)
    single.base = base
    return single


def pid_of(api):
    return api.call("GetInstanceProcessLiveStatistics", "instanceID=acme")["pid"]


def messages(api):
    return api.call("GetInstanceStatistics", "instanceID=acme")["messages"]


def get_job(api, job_id):
    return api.call("GetJob", "instanceID=acme", "jobID=" + job_id)


def start(api, function, *args):
    """Invoke long work without waiting: its token, and its jobID once the instance named it."""
    before = {j["jobID"] for j in api.call("GetJobs", "instanceID=acme")}
    p = api.call_raw(function, "instanceID=acme", *args, extra=["--no-wait"])
    env = json.loads(p.stdout)
    assert env["statusCode"] == "running", env
    JOBS_BEFORE[env["token"]] = before
    return env["token"]


def status(api, token, version=0, timeout_ms=1000):
    p = api.call_raw("/api/get-status", "token=" + token, "millisecondsTimeout=%d" % timeout_ms,
                     "lastKnownStatusVersion=%d" % version, extra=["--no-wait"])
    return json.loads(p.stdout)


def job_id_of(api, token):
    """The instance's jobID for the work behind the token: the job GetJobs
    lists that was not there before start(). Not simply the newest: until the
    instance has started the job, that is the one before it (the import that
    filled the archive)."""
    before = JOBS_BEFORE[token]
    def find():
        fresh = [j["jobID"] for j in api.call("GetJobs", "instanceID=acme")
                 if j["jobID"] not in before]
        return fresh[0] if fresh else None
    return wait_for(find, timeout=60, what="the job to start")


def follow(api, token, timeout=300):
    """Poll the token until the work ended; the envelopes seen on the way."""
    seen = []
    end = time.time() + timeout
    while time.time() < end:
        st = status(api, token, seen[-1]["statusVersion"] if seen else 0, 2000)
        seen.append(st)
        if st["statusCode"] != "running":
            return seen
    raise AssertionError("work did not end within %d s; last: %r" % (timeout, seen[-1]))


def seconds(iso):
    return time.mktime(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


def import_all(api):
    r = api.call("ImportFiles", "instanceID=acme", "userName=alice", "path=import/lists.mbox")
    assert r["archived"] + r["duplicates"] >= SLICE - 10, r
    return r


def test_verify_outlasts_the_keepalive_window(inst):
    api = inst.api
    import_all(api)
    pid = pid_of(api)
    # the shortened window is in force on the instance's link
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert b"\0--keepalive-secs\0%d\0" % KEEPALIVE in f.read()
    token = start(api, "VerifyStores")
    job = job_id_of(api, token)
    # While it runs, the instance answers other calls at once (its event
    # loop is free): bound generous for a loaded machine, far below the
    # verify's length.
    search_secs = []
    percents = []
    while True:
        t = time.time()
        hits = api.call("Search", "instanceID=acme", "query=mips", "limit=5")
        search_secs.append(time.time() - t)
        assert hits["total"] > 0
        j = get_job(api, job)
        if j["state"] != "running":
            break
        if j["percentProgress"] is not None:
            percents.append(j["percentProgress"])
        time.sleep(0.5)
    assert j["state"] == "succeeded", j
    assert j["result"].get("problems") == 0 and j["percentProgress"] == 100, j
    ran = seconds(j["finishedAt"]) - seconds(j["startedAt"])
    assert ran > WINDOW + 1, "verify took %d s: not longer than the keep-alive window" % ran
    assert len(search_secs) >= 3 and max(search_secs) < ran / 2, (search_secs, ran)
    # progress rises between 0 and 99 while running, 100 when done
    assert len(set(percents)) >= 3, percents
    assert percents == sorted(percents) and 0 <= percents[0] and percents[-1] <= 99, percents
    # the same process all along: the link stayed up
    assert pid_of(api) == pid
    final = follow(api, token)[-1]
    assert final["statusCode"] == "succeeded" and final["result"]["problems"] == 0
    assert final["result"]["jobID"] == job


def test_cancelled_import_reports_what_it_archived(inst):
    api = inst.api
    token = start(api, "ImportFiles", "userName=alice", "path=import/big.mbox")
    job = job_id_of(api, token)
    wait_for(lambda: get_job(api, job)["result"].get("archived", 0) > 0, timeout=120,
             what="a first committed batch")
    running = get_job(api, job)
    assert running["state"] == "running" and 0 <= running["percentProgress"] < 100, running
    p = api.call_raw("/api/cancel-async", "token=" + token, extra=["--no-wait"])
    assert json.loads(p.stdout)["statusCode"] in ("running", "cancelled")
    final = follow(api, token)[-1]
    assert final["statusCode"] == "cancelled", final
    n = messages(api)
    assert 0 < n < BIG_SLICE
    assert final["result"]["archived"] == n
    j = get_job(api, job)
    assert j["state"] == "cancelled" and j["result"]["archived"] == n
    # what was archived is whole
    v = api.call("VerifyStores", "instanceID=acme")
    assert v["problems"] == 0


def test_killed_instance_reports_interrupted_import(inst):
    api = inst.api
    token = start(api, "ImportFiles", "userName=alice", "path=import/big.mbox")
    job = job_id_of(api, token)
    wait_for(lambda: get_job(api, job)["result"].get("archived", 0) > 0, timeout=120,
             what="a first committed batch")
    os.kill(pid_of(api), signal.SIGKILL)
    # The Management Server waits for the instance to come back, then ends
    # the work with the instance's account of it.
    final = follow(api, token)[-1]
    assert final["statusCode"] == "failed", final
    assert "interrupted" in final["error"]["message"]
    n = messages(api)
    assert 0 < n < BIG_SLICE
    assert final["result"]["archived"] == n
    j = get_job(api, job)
    assert j["state"] == "interrupted" and j["result"]["archived"] == n, j
    assert j["finishedAt"] is not None
    # running the import again carries on: what is there counts as duplicate
    # (followed here: a 30,000 message import may outlast coffer api's 60 s
    # under sanitizers)
    again = follow(api, start(api, "ImportFiles", "userName=alice", "path=import/big.mbox"), 600)[-1]
    assert again["statusCode"] == "succeeded", again
    r = again["result"]
    assert r["duplicates"] == n and messages(api) == n + r["archived"]


# Steps of 600 ms: the verify lasts ~18 s, far longer than the four calls
# made while it runs take on a loaded machine (with 150 ms it lasted ~4.5 s,
# and once ended before the third call); a cancel ends it within a step.
@pytest.mark.parametrize("inst", [600], indirect=True)
def test_one_job_at_a_time_and_cancel_of_verify(inst):
    api = inst.api
    import_all(api)
    token = start(api, "VerifyStores")
    job = job_id_of(api, token)
    p = api.call_raw("RebuildSelectedStoreIndexes", "instanceID=acme")
    assert p.returncode == 1 and "job (verify) is running" in json.loads(p.stdout)["error"]["message"]
    p = api.call_raw("CreateStore", "instanceID=acme")
    assert p.returncode == 1 and "job (verify) is running" in json.loads(p.stdout)["error"]["message"]
    api.call("CancelJob", "instanceID=acme", "jobID=" + job)
    final = follow(api, token)[-1]
    assert final["statusCode"] == "cancelled"
    assert get_job(api, job)["state"] == "cancelled"
    # a rebuild (reads wait for it) runs afterwards and loses nothing
    n = messages(api)
    r = api.call("RebuildSelectedStoreIndexes", "instanceID=acme")
    assert r["damagedRecords"] == 0
    assert messages(api) == n
    jobs = api.call("GetJobs", "instanceID=acme")
    assert [j["kind"] for j in jobs[:3]] == ["rebuild", "verify", "import"]
    # The job states are sealed like the user database.
    raw = open(os.path.join(inst.base, "jobs.sealed"), "rb").read()
    assert b"lists.mbox" not in raw and b"alice" not in raw
