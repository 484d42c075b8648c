"""The integration suite's fixtures, defined in daemonfix.py and netnsfix.py
(tests import helpers from there, never from conftest: several suites have a
conftest)."""
from daemonfix import make_server, module_single, single, workdir  # noqa: F401 (fixtures)
from netnsfix import net  # noqa: F401 (a fixture)


def pytest_configure(config):
    # scripts/test.sh runs the suite on two processes at once (pytest-xdist),
    # then the tests marked serial on their own: those that compare latency
    # under load with a baseline, which another test's load would skew.
    config.addinivalue_line("markers", "serial: measures latency; run alone, not beside other tests")
