"""Deterministic test mail: an mbox of N messages whose senders, subjects,
dates and bodies the tests know."""
import email.utils
import random

SENDERS = ["alice@acme.test", "bob@example.org", "carol@example.net", "dave@acme.test"]
TOPICS = ["quarterly report", "kernel panic", "invoice", "holiday plans", "cache flush"]


def message(i, size_pad=0):
    rnd = random.Random(i)
    sender = SENDERS[i % len(SENDERS)]
    topic = TOPICS[i % len(TOPICS)]
    date = email.utils.formatdate(1700000000 + i * 3600, usegmt=True)
    body = "Message number %d about the %s.\nregards,\n%s\n" % (i, topic, sender)
    body += ("filler %d " % rnd.randrange(10**6)) * size_pad
    return ("From: %s\nTo: archive@acme.test\nSubject: %s #%d\nDate: %s\n"
            "Message-ID: <gen-%d@coffer.test>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n\n%s" % (sender, topic, i, date, i, body))


def write_mbox(path, count, size_pad=0, start=0):
    with open(path, "w") as f:
        for i in range(start, start + count):
            text = message(i, size_pad)
            # mboxrd: escape From_ lines in the body
            lines = ["From archive@acme.test Thu Jan  1 00:00:00 2024"]
            for line in text.split("\n"):
                if line.lstrip(">").startswith("From ") and not lines[-1] is None:
                    line = ">" + line
                lines.append(line)
            f.write("\n".join(lines) + "\n\n")
    return count
