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
accepted too; then numbers and booleans may be given as JSON values. A
*list* argument (privileges, email addresses) is a JSON array of strings: in
a JSON body as it is, in a form field as JSON text
(`privileges=["login","export"]`, `coffer api ... privileges='["login","export"]'`)
or as comma-separated text (`privileges=login,export`). A NUL character
(`%00`, `\\u0000`) in any value and a JSON key given twice are refused (400).
`GET` or `POST /api/get-metadata` lists every function with its arguments (this
page is generated from it by `scripts/gen-api-doc.py`).

## Authentication

Every request authenticates with HTTP Basic as a system administrator, or
with a Management Console session (docs/console.md).

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
- The log gets one line for each of the first 10 failed logins of a minute
  and one line summarising the rest (how many, the last address and reason)
  when the minute ends.
- A Console session: `CreateConsoleSession`, called with HTTP Basic and the
  administrator's own password (plus `X-Coffer-TOTP` once MFA is on; an API
  password is refused), sets the cookie `coffer_console` (HttpOnly, Secure,
  SameSite=Strict) and returns a CSRF token. Requests with that cookie and
  no Basic credentials are the administrator's; each (but a GET of
  `/api/get-metadata`) must carry the token in `X-CSRF-Token` (403 without
  it). A session ends after
  `COFFER_CONSOLE_IDLE_SECONDS` (the Management Server's environment; 1800 by
  default) without a request (those marked `X-Coffer-Background: 1` do not
  count), after 12 hours, at `DeleteConsoleSession`, and when the
  administrator's password changes or the administrator is deleted; then the
  answer is 401.
- When the password is right but MFA is on and no code came, the 401 carries
  `X-Coffer-MFA: required` and does not count as a failed attempt.
- Every call that changes something is recorded in the Management Server's
  hash-chained audit log (`management-audit.log`: who, when, from where,
  what, with which arguments but never passwords); `VerifyAuditLog` checks
  the chain.

## Long work

Work that takes longer than 5 seconds, and functions marked long-running
(`ImportFiles`, `VerifyStores`, `RebuildSelectedStoreIndexes`), answer with
`"statusCode": "running"` and a `token`:

    POST /api/get-status     token=..., lastKnownStatusVersion=N, millisecondsTimeout=30000
    POST /api/cancel-async   token=...

`get-status` answers as soon as `statusVersion` passes
`lastKnownStatusVersion` (progress in `statusText`, `percentProgress` when
known) or when the timeout (at most 60 s) passes. A token works only for the
administrator who started the work, and is kept 10 minutes after the work
ended. `coffer api` follows tokens by itself (progress on stderr) unless
`--no-wait` is given.

`cancel-async` asks the work to stop. Work that must stop cleanly (an import
commits what is in flight) stays `running` with `statusText` "cancelling"
until it has stopped, then ends `cancelled` with its `result` (what it did,
e.g. the messages it archived). Long work inside an instance is a job of the
instance: `result.jobID` names it, and `GetJobs`, `GetJob` and `CancelJob`
reach it directly, also after the token has expired and across restarts of
the instance. If the instance process dies while a job runs, the job (and the
token's work) ends with the error "interrupted: ..." and the result holds what
was done until then; an interrupted import's `archived` is exactly what it
committed.

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
method other than POST on `/api/invoke/`, 413 for a body over 8 MiB. Every
answer carries `Strict-Transport-Security: max-age=31536000` and
`X-Content-Type-Options: nosniff`.

Every point in time in a result (`startedAt`, `created`, `added`,
`lastContact`, `systemTime`, message dates) is ISO 8601 text in UTC,
`"2026-12-03T17:00:00Z"`; a time that never was (an instance not started) is
`null`. Durations are numbers of seconds (`uptimeSeconds`).

## The command-line client

    coffer api [--server HOST[:PORT]] [--user NAME] [--password PW] \\
               [--fingerprint FP | --trust-on-first-use] FUNCTION [name=value ...]

Defaults come from `COFFER_API_SERVER`, `COFFER_API_USER`,
`COFFER_API_PASSWORD`, `COFFER_API_FINGERPRINT`. On the Management Server
itself the fingerprint is read from the config directory (`--config-dir`),
but only for that server: without `--server`, or with a `--server` that is
one of its HTTPS listeners (by address, or by `localhost`, a loopback address
or its server name when it listens on every address). Any other server needs
`--fingerprint` or `--trust-on-first-use` (which prints the fingerprint it
accepted). `name=@FILE` reads a value from a file. It prints the envelope and
exits 0 on success, 1 on failure, 2 on a usage error (an unknown option among
them); `--help` prints the usage. The server's certificate is always pinned:
credentials are never sent to a server whose fingerprint was not checked.

## Functions
""")
types = {"string": "string", "number": "number", "boolean": "true/false", "json": "JSON",
         "list": "list"}
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
