"""The reference documents say what the code does: docs/api.md is what
scripts/gen-api-doc.py writes from the running Management Server's own
metadata, so a function, argument or description changed in the code and
not in the docs fails here. COFFER_WRITE_API_DOC=1 rewrites docs/api.md."""
import os
import subprocess
import sys

from daemonfix import COFFER, ROOT, all_connected, wait_for


def test_api_reference_is_generated_from_the_code(single):
    wait_for(all_connected(single.api), what="every role connected")
    env = dict(os.environ, PATH=os.path.dirname(COFFER) + os.pathsep + os.environ["PATH"])
    api = single.api
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gen-api-doc.py"),
                        "--config-dir", single.dir, "--server", "%s:%d" % (api.host, api.port),
                        "--user", api.user, "--password", api.password],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    if os.environ.get("COFFER_WRITE_API_DOC"):  # regenerate: COFFER_WRITE_API_DOC=1 pytest this
        with open(os.path.join(ROOT, "docs", "api.md"), "w") as f:
            f.write(p.stdout)
    with open(os.path.join(ROOT, "docs", "api.md")) as f:
        documented = f.read()
    if p.stdout != documented:
        import difflib
        diff = "".join(list(difflib.unified_diff(documented.splitlines(True), p.stdout.splitlines(True),
                                                 "docs/api.md", "generated"))[:60])
        raise AssertionError("docs/api.md is not what the code says: run this test with "
                             "COFFER_WRITE_API_DOC=1 (or scripts/gen-api-doc.py)\n" + diff)
