"""Every C file of the tree is laid out as .clang-format says (clang-format
from Debian, installed by scripts/install-deps.sh), so a change's diff shows
its content, not a reformatting."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def c_files():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=REPO, capture_output=True,
                         text=True)
    if out.returncode != 0:  # not a git checkout: every C file below src/ and fuzz/
        return sorted(str(p.relative_to(REPO)) for d in ("src", "fuzz")
                      for p in (REPO / d).rglob("*") if p.suffix in (".c", ".h"))
    return out.stdout.split()


def test_c_files_are_formatted():
    if shutil.which("clang-format") is None:
        pytest.skip("clang-format is not installed (scripts/install-deps.sh installs it)")
    files = c_files()
    assert len(files) > 100
    p = subprocess.run(["clang-format", "--dry-run", "--Werror"] + files, cwd=REPO,
                       capture_output=True, text=True)
    places = [l for l in p.stderr.splitlines() if "error:" in l]
    assert p.returncode == 0, ("clang-format would change %d places (run clang-format -i on "
                               "these files):\n%s" % (len(places), "\n".join(places[:20])))
