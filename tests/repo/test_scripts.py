"""Every script the docs run by its path can be run so: a file under bench/,
scripts/ or .ci/ that starts with "#!" is executable (a benchmark run as
docs/benchmarks.md writes it once answered "Permission denied"). Checked
in git's index where there is one, else on the files."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DIRS = ("bench", "scripts", ".ci")


def scripts_and_modes():
    p = subprocess.run(["git", "ls-files", "-s", *DIRS], cwd=REPO, capture_output=True, text=True)
    if p.returncode == 0 and p.stdout:
        for line in p.stdout.splitlines():
            mode, _, _, path = line.split(None, 3)
            yield path, mode == "100755"
        return
    for d in DIRS:
        for path in sorted((REPO / d).rglob("*")):
            if path.is_file():
                yield str(path.relative_to(REPO)), os.access(path, os.X_OK)


def test_scripts_with_a_shebang_are_executable():
    not_executable = []
    for path, executable in scripts_and_modes():
        with open(REPO / path, "rb") as f:
            if f.read(2) == b"#!" and not executable:
                not_executable.append(path)
    assert not not_executable, "not executable (git update-index --chmod=+x): %s" % not_executable
