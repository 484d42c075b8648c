#!/usr/bin/python3
"""Sum the results of every suite in a results directory and print
`tests: N passed, M failed` (skipped tests are reported separately)."""
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET

d = sys.argv[1]
passed = failed = skipped = 0
for path in glob.glob(os.path.join(d, "meson-*.json")):
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)["result"]
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
for path in glob.glob(os.path.join(d, "pytest-*.xml")):
    root = ET.parse(path).getroot()
    for s in [root] if root.tag == "testsuite" else root.iter("testsuite"):
        t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
        passed += t - f - e - k
        failed += f + e
        skipped += k
failed += len(glob.glob(os.path.join(d, "*.failed")))
if skipped:
    print("skipped: %d" % skipped)
print("tests: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed or passed == 0 else 0)
