"""Every Management API function with bad input: missing arguments, wrong
types, oversized and odd values. Each answer is an envelope with an error;
no daemon dies; nothing changes."""
import base64
import http.client
import json
import os
import ssl

from daemonfix import all_connected, wait_for


_conn = {}


def post(single, path, body, ctype="application/x-www-form-urlencoded"):
    """One keep-alive connection for the whole sweep."""
    for attempt in range(2):
        c = _conn.get(single.ports["mhttp"])
        if c is None:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", single.ports["mhttp"], context=ctx, timeout=60)
            _conn[single.ports["mhttp"]] = c
        try:
            c.request("POST", path, body=body, headers={
                "Content-Type": ctype,
                "Authorization": "Basic " + base64.b64encode(b"admin:pw-single").decode()})
            r = c.getresponse()
            return r.status, json.loads(r.read())
        except (http.client.HTTPException, OSError):
            c.close()
            _conn.pop(single.ports["mhttp"], None)
    raise AssertionError("no answer for " + path)


def test_every_function_rejects_bad_input(single):
    wait_for(all_connected(single.api), what="every role connected")
    functions = single.api.call_raw("Ping", extra=["--metadata"])
    functions = json.loads(functions.stdout)["result"]
    assert len(functions) >= 40
    db_before = open(os.path.join(single.dir, "management-database.json")).read()
    bad_values = {"string": ["", "\u0001\u007f", "x" * 100000, "*"],
                  "number": ["x", "-1", "99999999999999999999", ""],
                  "boolean": ["maybe", ""], "json": ["{", "[]"],
                  "list": ["", "[", "[1]", '["a",null]', "\u0001"]}
    checked = 0
    for f in functions:
        name = f["name"]
        required = [a for a in f["args"] if a["required"]]
        if required:
            st, env = post(single, "/api/invoke/" + name, b"")
            assert st == 400 and env["statusCode"] == "failed", (name, env)
            assert "missing argument" in env["error"]["message"]
            checked += 1
        for a in f["args"]:
            for value in bad_values[a["type"]]:
                # The other required arguments are invalid too ("bad name!" is no
                # valid name, ID or host), so no call can succeed and change things.
                body = "&".join("%s=%s" % (b["name"], "bad+name!" if b["type"] == "string" else "1")
                                for b in required if b["name"] != a["name"])
                body = (body + "&" if body else "") + "%s=%s" % (a["name"], value)
                st, env = post(single, "/api/invoke/" + name, body.encode())
                assert env["statusCode"] in ("failed", "succeeded"), (name, a["name"], env)
                if a["type"] in ("number", "boolean") and value not in ("-1",):
                    assert st == 400, (name, a["name"], value, env)
                if a["type"] == "list" and value.startswith("["):
                    assert st == 400 and "JSON" in env["error"]["message"], (name, a["name"], env)
                checked += 1
        # A JSON body of the wrong shape.
        st, env = post(single, "/api/invoke/" + name, b'{"instanceID": [1, {"a": null}]}',
                       "application/json")
        assert env["statusCode"] == "failed"
    assert checked > 200
    # Still running, still connected, and nothing was written.
    assert single.config("status").returncode == 0
    wait_for(all_connected(single.api), what="still connected")
    after = json.loads(open(os.path.join(single.dir, "management-database.json")).read())
    assert [i["instanceID"] for i in after.get("instances", [])] == []
    assert [a["name"] for a in after["systemAdministrators"]] == ["admin"]
    assert json.loads(db_before)["instanceHosts"] == after["instanceHosts"]
