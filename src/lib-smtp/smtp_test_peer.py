"""aiosmtpd handlers for test-smtp-client (run with
/usr/bin/python3 -m aiosmtpd -n -c smtp_test_peer.Record MAILDIR).

Record stores each message's bytes exactly as received (after SMTP
dot-unstuffing) in MAILDIR/new/ (through MAILDIR/tmp/, like a Maildir) and the
envelope next to it as MAILDIR/envelope/NAME.json. It refuses recipients whose
local part is "nobody" the way Postfix does, and accepts AUTH PLAIN for
alice / s3cret (AUTH is only offered after STARTTLS).
"""
import base64
import itertools
import json
import os
import time

from aiosmtpd.smtp import AuthResult, LoginPassword

_counter = itertools.count()


class Record:
    def __init__(self, maildir):
        self.maildir = maildir
        for sub in ("tmp", "new", "cur", "envelope"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("Record needs exactly one argument: the Maildir")
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0] == "nobody":
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time():.6f}.{os.getpid()}.{next(_counter)}.coffer-test"
        tmp = os.path.join(self.maildir, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content)
        tls = session.ssl is not None or (
            server.transport is not None
            and server.transport.get_extra_info("ssl_object") is not None)
        login = session.auth_data.login.decode() if session.authenticated else None
        with open(os.path.join(self.maildir, "envelope", name + ".json"), "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": tls, "login": login}, f)
        os.rename(tmp, os.path.join(self.maildir, "new", name))
        return "250 2.0.0 Ok: queued"

    async def auth_PLAIN(self, server, args):
        # handled=False: let aiosmtpd answer "535 5.7.8 Authentication
        # credentials invalid" (AuthResult's default handled=True means
        # "already answered", and the client would wait forever).
        refused = AuthResult(success=False, handled=False)
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return refused
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except ValueError:
                return refused
        parts = blob.split(b"\0")
        if len(parts) != 3 or parts[1] != b"alice" or parts[2] != b"s3cret":
            return refused
        return AuthResult(success=True, auth_data=LoginPassword(parts[1], parts[2]))
