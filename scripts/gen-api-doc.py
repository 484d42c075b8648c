#!/usr/bin/python3
"""Write docs/api.md from the Management API's own metadata (/api/get-metadata),
so the reference cannot drift from the code. Usage (a Management Server runs):
  scripts/gen-api-doc.py [coffer api options...] > docs/api.md"""
import json
import subprocess
import sys

out = subprocess.run(["coffer", "api"] + sys.argv[1:] + ["--metadata"], capture_output=True, text=True)
if out.returncode != 0:
    sys.exit(out.stderr)
functions = json.loads(out.stdout)["result"]

print("""# Management API

The Management API is served by the Management Server on its HTTPS listener
(default port 8470).

## Requests

    POST /api/invoke/<Function>
    Authorization: Basic base64(name:password)      (a system administrator)
    Content-Type: application/x-www-form-urlencoded  (or application/json)

Arguments are form fields (`serverName=ih1&port=8472`); structured values go as
JSON text in a field. A JSON object body with the arguments as members is
accepted too; then numbers and booleans may be given as JSON values.
`GET` or `POST /api/get-metadata` lists every function with its arguments (this
page is generated from it by `scripts/gen-api-doc.py`).

## Authentication

Every request authenticates with HTTP Basic as a system administrator.

- Once an administrator's MFA is active (`InitializeSystemAdministratorMFA`,
  then one request with a valid code), requests with the password also need
  the current TOTP code in the header `X-Coffer-TOTP` (`coffer api --totp
  CODE`). A code is accepted once; a replayed code is refused.
- An API password (`CreateSystemAdministratorAPIPassword`, shown once) works
  without a code: use it for scripts while MFA is on.
- After three failed attempts for the same name from the same address, or
  ten for any names from the same address, further attempts from that
  address wait 1, 2, 4, ... seconds (up to 5 minutes): the answer is 429 with
  `Retry-After`. Never per name alone: guesses from elsewhere do not lock the
  real administrator out. An attempt counts when it begins, so concurrent
  guesses beyond the limit are refused unchecked.
- Passwords are checked (Argon2id) on worker threads, not on the thread that
  serves requests; when 16 checks already wait, the answer is 503 with
  `Retry-After: 1` (not a failed attempt).
- Every call that changes something is recorded in the Management Server's
  hash-chained audit log (`management-audit.log`: who, when, from where,
  what, with which arguments but never passwords); `VerifyAuditLog` checks
  the chain.

## Long work

Work that takes longer than 5 seconds, and functions marked long-running
(`ImportFiles`), answer with `"statusCode": "running"` and a `token`:

    POST /api/get-status     token=..., lastKnownStatusVersion=N, millisecondsTimeout=30000
    POST /api/cancel-async   token=...

`get-status` answers as soon as `statusVersion` passes
`lastKnownStatusVersion` (progress in `statusText`, `percentProgress` when
known) or when the timeout (at most 60 s) passes. A token works only for the
administrator who started the work, and is kept 10 minutes after the work
ended. `coffer api` follows tokens by itself (progress on stderr) unless
`--no-wait` is given.

## Answers

Every answer is this envelope:

```json
{"error": null, "token": null, "statusVersion": 2, "statusCode": "succeeded",
 "percentProgress": null, "statusText": null, "result": ..., "logOutput": null}
```

On failure `statusCode` is `"failed"` and `error` is
`{"message": "...", "details": null}`. HTTP status: 200 for every call that
reached its function (look at `statusCode`), 400 for malformed requests or
arguments (unknown argument, missing argument, wrong type, bad form or JSON
body), 401 without valid administrator credentials (with
`WWW-Authenticate: Basic`), 404 for an unknown function or path, 405 for a
method other than POST on `/api/invoke/`, 413 for a body over 1 MiB.

## The command-line client

    coffer api [--server HOST[:PORT]] [--user NAME] [--password PW] \\
               [--fingerprint FP | --trust-on-first-use] FUNCTION [name=value ...]

Defaults come from `COFFER_API_SERVER`, `COFFER_API_USER`,
`COFFER_API_PASSWORD`, `COFFER_API_FINGERPRINT`; on the Management Server itself
the fingerprint is read from the config directory. `name=@FILE` reads a value
from a file. It prints the envelope and exits 0 on success, 1 on failure, 2 on
a usage error. The server's certificate is always pinned: credentials are
never sent to a server whose fingerprint was not checked.

## Functions
""")
types = {"string": "string", "number": "number", "boolean": "true/false", "json": "JSON"}
for f in functions:
    print("### %s\n\n%s\n" % (f["name"], f["description"]))
    if f["args"]:
        print("| argument | type | required | meaning |\n|---|---|---|---|")
        for a in f["args"]:
            print("| `%s` | %s | %s | %s |" % (a["name"], types.get(a["type"], a["type"]),
                                            "yes" if a["required"] else "no", a["description"]))
        print()
    else:
        print("No arguments.\n")
