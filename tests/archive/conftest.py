"""Fixtures for the archive engine's tests; the helpers live in archivefix.py."""
from pathlib import Path

import pytest

from archivefix import Archive, coffer_bin


@pytest.fixture
def archive(tmp_path):
    (tmp_path / "keys").mkdir()
    return Archive(tmp_path / "base", tmp_path / "keys" / "instance.key")


@pytest.fixture(scope="session", autouse=True)
def _binary_present():
    if not Path(coffer_bin()).exists():
        pytest.fail("coffer binary not found at %s (set COFFER_BIN or build first)" % coffer_bin())
