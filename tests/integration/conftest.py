"""The integration suite's fixtures, defined in daemonfix.py (tests import
helpers from there, never from conftest: several suites have a conftest)."""
from daemonfix import make_server, single, workdir  # noqa: F401 (fixtures)
