#!/usr/bin/python3
"""Write an mbox of sample mail for the demo instance: a small company's
correspondence over a year, with threads, HTML mail, attachments and
non-ASCII text. Deterministic (same output every run).
usage: sample-mail.py OUT.mbox [COUNT]"""
import email.policy
import email.utils
import random
import sys
from email.message import EmailMessage

PEOPLE = [("Alice Archer", "alice@demo.example"), ("Bob Baker", "bob@demo.example"),
          ("Chloé Dubois", "chloe@partner.example"), ("Dmitri Ivanov", "dmitri@supplier.example"),
          ("Eva Müller", "eva@demo.example"), ("Fatima Khan", "fatima@customer.example")]
TOPICS = [("Quarterly report Q%d", "the numbers for the quarter are attached; revenue is up and costs are flat."),
          ("Invoice %d-%04d", "please find the invoice for last month's delivery attached."),
          ("Project Falcon: status", "the migration is on track; the cut-over is planned for the weekend."),
          ("Lunch on Friday?", "shall we try the new place around the corner?"),
          ("Contract renewal", "the contract runs out at the end of the year; can we meet to discuss terms?"),
          ("Server maintenance window", "the mail servers will be patched on Saturday between 02:00 and 04:00."),
          ("Réunion de lancement", "merci pour votre participation à la réunion de lancement.")]


def build(i, rnd):
    sender, to = rnd.sample(PEOPLE, 2)
    subject_tpl, text = TOPICS[i % len(TOPICS)]
    if subject_tpl.startswith("Quarterly"):
        subject = subject_tpl % ((i % 4) + 1)
    elif subject_tpl.startswith("Invoice"):
        subject = subject_tpl % (2024, i)
    else:
        subject = subject_tpl
    if i % 5 == 3:
        subject = "Re: " + subject
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = email.utils.formataddr(sender)
    msg["To"] = email.utils.formataddr(to)
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(1704067200 + i * 86400 * 365 // 400 + rnd.randrange(3600), usegmt=True)
    msg["Message-ID"] = "<sample-%d@demo.example>" % i
    body = "Hello %s,\n\n%s\n\nBest regards,\n%s\n" % (to[0].split()[0], text, sender[0])
    msg.set_content(body)
    if i % 4 == 1:
        msg.add_alternative("<html><body><p>Hello %s,</p><p><b>%s</b></p>"
                            "<p><img src=\"https://tracker.example/pixel.gif\"></p>"
                            "<p>Best regards,<br>%s</p></body></html>" % (to[0], text, sender[0]),
                            subtype="html")
    if "report" in subject.lower() or "invoice" in subject.lower():
        rows = "\n".join("%s,%d,%d" % (m, rnd.randrange(1000, 9000), rnd.randrange(100, 900))
                         for m in ("January", "February", "March"))
        msg.add_attachment(("month,revenue,costs\n" + rows + "\n").encode(), maintype="text",
                           subtype="csv", filename="figures-%d.csv" % i)
    return msg.as_bytes()


def main():
    out = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    rnd = random.Random(2024)
    with open(out, "wb") as f:
        for i in range(count):
            data = build(i, rnd).replace(b"\r\n", b"\n")
            lines = [(b">" + l if l.lstrip(b">").startswith(b"From ") else l) for l in data.split(b"\n")]
            f.write(b"From demo@demo.example Mon Jan  1 00:00:00 2024\n" + b"\n".join(lines) + b"\n\n")
    print("%d messages written to %s" % (count, out))


main()
