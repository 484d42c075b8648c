"""Helpers and fixtures for integration tests: real `coffer` daemons on
loopback, each "server" a config directory of its own bound to its own
127.0.0.x address. Tests import them from here (`from daemonfix import ...`),
a name of its own, so that one pytest call can collect every suite;
conftest.py hands the fixtures to pytest."""
import errno
import fcntl
import json
import os
import glob
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COFFER = os.environ.get("COFFER_BIN", os.path.join(ROOT, "build", "src", "cli", "coffer"))
SANITIZED = os.environ.get("COFFER_SANITIZED") == "1"

# Ports for test servers: below the kernel's ephemeral range (32768-60999
# here), which outgoing connections draw from, so no client socket can take
# one between free_port() and the daemon's bind; and reserved across
# processes by a lock file each, held while this process lives, so that two
# test runs at once (or a test run beside a benchmark) never pick the same.
_PORT_FIRST, _PORT_LAST = 20000, 32767
_PORT_LOCKS = os.path.join(tempfile.gettempdir(), "coffer-test-ports")
_next_port = [_PORT_FIRST + (os.getpid() * 37) % (_PORT_LAST - _PORT_FIRST)]
_held_ports = {}


def _reserve_port(p):
    """Whether this process now holds the lock file of port p."""
    os.makedirs(_PORT_LOCKS, mode=0o1777, exist_ok=True)
    fd = os.open(os.path.join(_PORT_LOCKS, str(p)), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_ports[p] = fd
    return True


def free_port(host="127.0.0.1"):
    """A port free on host that no other test process will pick."""
    for _ in range(_PORT_LAST - _PORT_FIRST + 1):
        _next_port[0] += 1
        if _next_port[0] > _PORT_LAST:
            _next_port[0] = _PORT_FIRST
        p = _next_port[0]
        if p in _held_ports or not _reserve_port(p):
            continue
        with socket.socket() as s:
            try:
                s.bind((host, p))
            except OSError as e:
                if e.errno == errno.EADDRNOTAVAIL:
                    return p  # an address in a network namespace of its own (netnsfix)
                continue  # in use outside the tests: keep the lock, skip it
            return p
    raise RuntimeError("no free port left in %d-%d" % (_PORT_FIRST, _PORT_LAST))


class Server:
    """One server: a config directory and an address (netnsfix.NsServer adds
    a network namespace and a host name of its own)."""

    def __init__(self, base, name, addr):
        self.name = name
        self.addr = addr
        self.dir = os.path.join(base, name)

    @property
    def server_name(self):
        """The name its roles register under: on loopback, its address."""
        return self.addr

    def server_name_args(self):
        return ["--server-name", self.server_name]

    def wrap(self):
        """What runs a command on this server: here, nothing."""
        return []

    def run(self, *args, check=True, input=None, timeout=60):
        cmd = self.wrap() + [COFFER] + [str(a) for a in args]
        p = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s failed (%d):\nstdout: %s\nstderr: %s"
                                 % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
        return p

    def config(self, *args, **kw):
        return self.run("config", "--config-dir", self.dir, *args, **kw)

    def show(self, role):
        return json.loads(self.config("role", "show", role, "--json").stdout)

    def fingerprint(self, role, kind="tcp"):
        return self.show(role)["certificateFingerprints"][kind]

    def pid(self, role):
        with open(os.path.join(self.dir, "run", role + ".pid")) as f:
            return int(f.read().strip())

    def kill(self, role):
        """SIGKILL a role's daemon and wait until it is gone as `coffer config
        start` sees it: its pid file's lock released. The kernel drops the
        lock as the process exits, a moment after kill() returns; a start
        in that moment said "already running" and started nothing."""
        path = os.path.join(self.dir, "run", role + ".pid")
        pid = self.pid(role)
        os.kill(pid, signal.SIGKILL)
        end = time.time() + 15
        while time.time() < end:
            with open(path) as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return pid
                except BlockingIOError:
                    time.sleep(0.02)
        raise AssertionError("the %s (pid %d) still holds its pid file 15 s after SIGKILL" % (role, pid))

    def logs(self):
        out = ""
        for path in sorted(glob.glob(os.path.join(self.dir, "log", "*"))):
            with open(path, errors="replace") as f:
                out += "==> %s\n%s" % (path, f.read())
        return out

    def stop_all(self):
        for pidfile in glob.glob(os.path.join(self.dir, "run", "*.pid")):
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGTERM)
            except (OSError, ValueError):
                pass


class Api:
    """`coffer api` against one Management Server."""

    def __init__(self, server, host, port, password, user="admin"):
        self.server, self.host, self.port, self.user, self.password = server, host, port, user, password

    def call_raw(self, function, *args, password=None, user=None, extra=()):
        cmd = [COFFER, "api", "--config-dir", self.server.dir, "--server", "%s:%d" % (self.host, self.port),
               "--user", user or self.user, "--password", password or self.password] + list(extra) + [function] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)

    def call(self, function, *args, **kw):
        p = self.call_raw(function, *args, **kw)
        assert p.returncode == 0, "%s failed: %s %s" % (function, p.stdout, p.stderr)
        return json.loads(p.stdout)["result"]

    def status(self):
        return self.call("GetServiceStatus")


def wait_for(predicate, timeout=15, interval=0.2, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def role_states(status, kind):
    return {s["serverName"]: s["state"] for s in status[kind]}


def _workdir():
    base = tempfile.mkdtemp(prefix="coffer-it-", dir="/tmp")
    # Daemons drop privileges to the run-as user: it must reach the config dirs.
    os.chmod(base, 0o755)
    servers = []
    yield base, servers
    for s in servers:
        s.stop_all()
    time.sleep(0.3)
    problems = []
    for s in servers:
        for path in glob.glob(os.path.join(s.dir, "log", "*.stderr")):
            with open(path, errors="replace") as f:
                text = f.read()
            if "AddressSanitizer" in text or "runtime error:" in text or "LeakSanitizer" in text:
                problems.append("%s:\n%s" % (path, text[-4000:]))
    shutil.rmtree(base, ignore_errors=True)
    assert not problems, "sanitizer reports:\n" + "\n".join(problems)


def _maker(workdir):
    base, servers = workdir

    def make(name, addr="127.0.0.1", cls=Server, **kw):
        s = cls(base, name, addr, **kw)
        servers.append(s)
        return s
    return make


def start_single(make, server=None):
    """A running single server mode setup with high ports: on 127.0.0.1, or
    on `server` (a netnsfix server: its address, its host name)."""
    s = server or make("single")
    a = s.addr
    name = ["--server-name", "single.test"] if server is None else s.server_name_args()
    s.config("init", "--mode", "single", *name, "--admin-password", "pw-single")
    ports = {k: free_port(a) for k in ("mtcp", "mhttp", "itcp", "ctcp", "chttp", "cimap", "cimaps")}
    s.config("role", "configure", "management-server", "--tcp-listeners", "%s:%d" % (a, ports["mtcp"]),
             "--http-listeners", "%s:%d" % (a, ports["mhttp"]))
    s.config("role", "configure", "instance-host", "--tcp-listeners", "%s:%d" % (a, ports["itcp"]))
    s.config("role", "configure", "client-access-server", "--tcp-listeners", "%s:%d" % (a, ports["ctcp"]),
             "--http-listeners", "%s:%d" % (a, ports["chttp"]), "--imap-listeners", "%s:%d" % (a, ports["cimap"]),
             "--imaps-listeners", "%s:%d" % (a, ports["cimaps"]))
    s.config("start")
    s.ports = ports
    s.api = Api(s, a, ports["mhttp"], "pw-single")
    return s


@pytest.fixture
def workdir():
    yield from _workdir()


@pytest.fixture
def make_server(workdir):
    return _maker(workdir)


@pytest.fixture
def single(make_server):
    """A running single server mode setup on 127.0.0.1 with high ports."""
    return start_single(make_server)


@pytest.fixture(scope="module")
def module_single():
    """The same as single, shared by the tests of a module (a system's
    start-up costs seconds, more under the sanitizers): for tests that
    leave nothing behind that another one would trip on."""
    dirs = _workdir()
    try:
        yield start_single(_maker(next(dirs)))
    finally:
        for _ in dirs:  # stops the daemons, checks their logs
            pass


def all_connected(api, hosts=1, cas=1):
    def check():
        st = api.status()
        ih = [h for h in st["instanceHosts"] if h["state"] == "connected" and h["eventLink"] == "connected"]
        ca = [c for c in st["clientAccessServers"] if c["state"] == "connected" and c["eventLink"] == "connected"]
        return st if len(ih) == hosts and len(ca) == cas else None
    return check
