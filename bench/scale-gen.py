#!/usr/bin/python3
"""scale-gen.py CORPUS_MBOX OUT_MBOX [COUNT]: a COUNT-message mboxrd (default
1,000,000) made from corpus A for the scale benchmark.

Copy 0 is corpus A as it is; copy k (k = 1, 2, ...) of every message gets
varied headers so that each is a distinct message with its own hash:
  - Message-ID, In-Reply-To and References: every <id> becomes <ck.id>, so the
    copies form their own threads;
  - Date: moved k x (3 days 1 h 7 min) later, in the message's own zone;
  - X-Scale-Copy: k, a new first header.
Bodies are copied byte for byte (their mboxrd quoting included), so the text,
attachments and parse defects of corpus A recur in every copy, as the mail of
a larger organisation's archive would.
"""
import email.utils
import re
import sys

SHIFT_SECONDS = 3 * 86400 + 3600 + 7 * 60
ID_HEADERS = (b"message-id:", b"in-reply-to:", b"references:")
ANGLE_ID = re.compile(rb"<([^<>\s]*)>")


def read_messages(path):
    """Yield each message of an mbox as (from_line, header_lines, body_bytes)."""
    with open(path, "rb") as f:
        current = None
        for line in f:
            if line.startswith(b"From "):
                if current is not None:
                    yield current
                current = [line, []]
                continue
            if current is None:
                continue
            current[1].append(line)
        if current is not None:
            yield current


def split_headers(lines):
    for i, line in enumerate(lines):
        if line in (b"\n", b"\r\n"):
            return lines[:i], lines[i:]
    return lines, []


def shifted_date(value, k):
    parsed = email.utils.parsedate_tz(value.decode("latin-1").strip())
    if parsed is None or parsed[9] is None:
        return None
    stamp = email.utils.mktime_tz(parsed) + k * SHIFT_SECONDS
    zone = parsed[9]
    text = email.utils.formatdate(stamp + zone, usegmt=False)
    # formatdate(localtime=False) writes -0000; put the message's own zone back
    sign = "+" if zone >= 0 else "-"
    zone = abs(zone)
    return (text[:-5] + "%s%02d%02d" % (sign, zone // 3600, zone % 3600 // 60)).encode()


def fields(headers):
    """Group header lines into fields (a first line and its continuations)."""
    field = []
    for line in headers:
        if line[:1] in (b" ", b"\t") and field:
            field.append(line)
            continue
        if field:
            yield field
        field = [line]
    if field:
        yield field


def vary(headers, k):
    out = [b"X-Scale-Copy: %d\n" % k]
    for field in fields(headers):
        name = field[0].split(b":", 1)[0].lower() + b":"
        if name in ID_HEADERS:
            field = [ANGLE_ID.sub(lambda m: b"<c%d.%s>" % (k, m.group(1)), line)
                     for line in field]
        elif name == b"date:":
            label, _, value = b"".join(field).partition(b":")
            date = shifted_date(value, k)
            if date is not None:
                field = [label + b": " + date + b"\n"]
        out.extend(field)
    return out


def main():
    corpus, out_path = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
    written = 0
    with open(out_path, "wb") as out:
        k = 0
        while written < count:
            for from_line, lines in read_messages(corpus):
                if written >= count:
                    break
                if k > 0:
                    headers, body = split_headers(lines)
                    lines = vary(headers, k) + body
                out.write(from_line)
                out.writelines(lines)
                written += 1
            k += 1
    print("scale-gen: %d messages in %d copies of corpus A" % (written, k), file=sys.stderr)


if __name__ == "__main__":
    main()
