"""CompactStore through the Management API (a job of the instance): after
DeleteMessage, the store shrinks, kept messages read back byte for byte
over the web client, deleted ones stay gone, and VerifyStores is clean.
Time bounds: the fixture's waits (60 s each), a few dozen small messages."""
import os

import pytest

from test_retention import (folder_ids, import_mail, new_user, raw, start_system,
                            stop_system)


@pytest.fixture(scope="module")
def system():
    s = start_system("coffer-compact-")
    try:
        yield s
    finally:
        stop_system(s)


def store_bytes(base):
    total = 0
    for root, _, files in os.walk(os.path.join(base, "stores")):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def test_compact_store_drops_deleted_and_keeps_the_rest(system):
    s = system
    user = new_user(s)
    import_mail(s, user, "Inbox", 30, 9000)
    ids = sorted(folder_ids(s, user, "Inbox"))
    assert len(ids) == 30
    doomed = ids[::3]
    kept = {}
    for i in ids:
        status, body = raw(s, user, i)
        assert status == 200
        if i not in doomed:
            kept[i] = body
    for i in doomed:
        s.api.call("DeleteMessage", "instanceID=acme", "messageID=%d" % i, "reason=compact test")
    before = store_bytes(s.base)
    r = s.api.call("CompactStore", "instanceID=acme")
    assert r["segments"] >= 1 and r["recordsDropped"] >= len(doomed), r
    assert r["bytesAfter"] < r["bytesBefore"], r
    assert store_bytes(s.base) < before
    for i, body in kept.items():
        assert raw(s, user, i) == (200, body), i
    for i in doomed:
        assert raw(s, user, i)[0] == 404, i
    assert s.api.call("VerifyStores", "instanceID=acme")["problems"] == 0
    # nothing left: a second run rewrites nothing
    assert s.api.call("CompactStore", "instanceID=acme")["segments"] == 0
