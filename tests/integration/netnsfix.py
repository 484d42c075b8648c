"""Servers as network namespaces: each "server" of a test its own network
namespace with its own address and host name, beside its own config
directory and base path; or, where a test runs on loopback, a config
directory on its own 127.0.0.x address (daemonfix).

A test asks the `net` fixture for servers:

    s = net.server("ih", "127.0.0.3", hostname="ih1.example.test")
    s.addr          # its address (198.18.x.y in a namespace, 127.0.0.3 on loopback)
    s.server_name   # the name it registers under: its host name in a namespace,
                    # its address on loopback
    s.config(...)   # `coffer config` in the server's namespace and UTS namespace

`net` is loopback unless a test is parametrized with it (indirect):

    @pytest.mark.parametrize("net", ["loopback", "netns"], indirect=True)

The namespaced variant skips, saying why, where namespaces cannot be made
(not root, no `ip`, `unshare` or `nsenter`, `ip netns add` refused).

The network: a namespace holding a bridge (the LAN); each server a namespace
with `eth0` on the LAN (a veth pair whose other end is a port of the
bridge), `lo` up, and a host name of its own in a UTS namespace kept by a
`sleep` holder process (commands enter it with nsenter). The test process
itself stays in the root namespace and is a client on the LAN through one
more veth pair (`net.client_addr`, the .1 of the subnet): it reaches every
server by address, as a user's mail client or an administrator's
workstation would, and can offer services to the servers there (an SMTP
relay). Names resolve through `/etc/netns/<namespace>/hosts`, which
`ip netns exec` binds over /etc/hosts: one file per server with every
server's name, rewritten in place when a server is renamed.

Each LAN takes a /24 of 198.18.0.0/15 (RFC 2544, never routed), reserved by
an flock()ed file in $TMPDIR/coffer-test-nets like daemonfix's ports; every
name it makes holds this process's pid (`coffer-t<pid>-...`, veth `cft<pid>...`)
so two pytest-xdist workers never collide, and a later run removes what a
killed run left behind (names whose pid no longer lives). Cleanup runs
always: the fixture's teardown (daemons get SIGTERM, then whatever still
runs in a namespace SIGKILL, then the namespaces, the veth and the hosts
files go) and, should the fixture's teardown not run, at exit."""
import atexit
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from daemonfix import ROOT, SANITIZED, Server

_NET_LOCKS = os.path.join(tempfile.gettempdir(), "coffer-test-nets")
_NETS = 512  # /24s in 198.18.0.0/15
_held_nets = {}
_counter = [0]
_open_lans = []


def _ip(*args, check=True, input=None):
    p = subprocess.run(["ip"] + [str(a) for a in args], capture_output=True, text=True, input=input,
                       timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(map(str, args)), p.stderr.strip()))
    return p


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ns_pids(ns):
    p = _ip("netns", "pids", ns, check=False)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def _kill_ns(ns, grace=5.0):
    """SIGTERM, then SIGKILL, whatever runs in namespace ns; then delete it."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        pids = _ns_pids(ns)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        end = time.time() + wait
        while pids and time.time() < end:
            time.sleep(0.05)
            pids = _ns_pids(ns)
        if not pids:
            break
    _ip("netns", "del", ns, check=False)
    shutil.rmtree(os.path.join("/etc/netns", ns), ignore_errors=True)


def _remove_leftovers():
    """Namespaces, veth ends and hosts files of test processes that are gone."""
    own = re.compile(r"^coffer-t(\d+)-")
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = own.match(name)
        if m and not _pid_alive(int(m.group(1))):
            with changing_root_network():  # its veth's root end goes with it
                _kill_ns(name, grace=0.5)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        m = re.match(r"^\d+: (cft(\d+)[a-z]+)[@:]", line)
        if m and not _pid_alive(int(m.group(2))):
            with changing_root_network():
                _ip("link", "del", m.group(1), check=False)
    if os.path.isdir("/etc/netns"):
        for name in os.listdir("/etc/netns"):
            m = own.match(name)
            if m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(os.path.join("/etc/netns", name), ignore_errors=True)


# Chromium ends every navigation and request in flight with
# net::ERR_NETWORK_CHANGED when any interface or address of its network
# namespace changes: the root namespace's end of a Lan's veth, made or
# removed by one pytest-xdist worker, failed a browser scenario of the
# other (a sign-in form that never loaded, a download "canceled"). So those
# changes wait until no browser runs, and browsers wait for them; changes
# made only inside the tests' own namespaces need no lock.
_QUIET_LOCK = os.path.join(_NET_LOCKS, "root-netns-quiet.lock")


class _RootNetLock:
    def __init__(self, mode):
        self.mode = mode

    def __enter__(self):
        os.makedirs(_NET_LOCKS, mode=0o1777, exist_ok=True)
        self.fd = os.open(_QUIET_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self.fd, self.mode)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # releases the lock
        return False


def browser_running():
    """Held (shared) while a browser runs: the root namespace's interfaces
    do not change meanwhile."""
    return _RootNetLock(fcntl.LOCK_SH)


def changing_root_network():
    """Held (exclusive) while this process changes the root namespace's
    interfaces or addresses."""
    return _RootNetLock(fcntl.LOCK_EX)


def run_browser(script, env_name, cfg, timeout):
    """Runs tests/web/SCRIPT under node with cfg (JSON) in $ENV_NAME, while
    the root namespace's network stays as it is; its CompletedProcess."""
    with browser_running():
        return subprocess.run(["node", script], cwd=os.path.join(ROOT, "tests", "web"),
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, **{env_name: json.dumps(cfg)}))


def _wait_link_settled(dev):
    """The kernel reports a link's new state (carrier, operstate) up to a
    second later (linkwatch): wait for it inside the lock."""
    end = time.time() + 3
    while time.time() < end:
        try:
            with open("/sys/class/net/%s/operstate" % dev) as f:
                if f.read().strip() == "up":
                    break
        except OSError:
            break
        time.sleep(0.05)
    time.sleep(0.2)


def _reserve_net():
    """The index of a /24 of 198.18.0.0/15 that no other test process holds."""
    os.makedirs(_NET_LOCKS, mode=0o1777, exist_ok=True)
    start = (os.getpid() * 7) % _NETS
    for i in range(_NETS):
        n = (start + i) % _NETS
        if n in _held_nets:
            continue
        fd = os.open(os.path.join(_NET_LOCKS, str(n)), os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _held_nets[n] = fd
        return n
    raise RuntimeError("no free subnet left in 198.18.0.0/15")


def _release_net(n):
    fd = _held_nets.pop(n, None)
    if fd is not None:
        os.close(fd)


def skip_reason():
    """Why namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); this runs as uid %d" % os.geteuid()
    for tool in ("ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return "network namespaces need the %s command, which is not installed" % tool
    return None


class NsServer(Server):
    """A server in a network namespace (and UTS namespace) of its own."""

    def __init__(self, base, name, addr, lan, hostname):
        super().__init__(base, name, addr)
        self.lan, self.ns, self.hostname = lan, "%s-%s" % (lan.prefix, name), hostname
        self.holder = None

    @property
    def server_name(self):
        return self.hostname

    def wrap(self):
        return ["ip", "netns", "exec", self.ns, "nsenter", "--uts=/proc/%d/ns/uts" % self.holder.pid, "--"]

    def server_name_args(self):
        # The default server name is the host name (gethostname(), made
        # canonical through /etc/hosts): here it is the server's own.
        return []

    def sh(self, script, check=True, timeout=60):
        """A shell script on this server (its network and host name)."""
        p = subprocess.run(self.wrap() + ["sh", "-c", script], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError("%s on %s failed (%d): %s %s" % (script, self.name, p.returncode, p.stdout, p.stderr))
        return p

    def popen(self, args, **kw):
        return subprocess.Popen(self.wrap() + list(args), **kw)


class Lan:
    """Servers in network namespaces on one bridged LAN."""
    kind = "netns"

    def __init__(self, make_server, domain="example.test"):
        self.make_server = make_server
        self.domain = domain
        self.servers = []
        self.namespaces = []
        _counter[0] += 1
        self.prefix = "coffer-t%d-%d" % (os.getpid(), _counter[0])
        self.root_veth = "cft%d%s" % (os.getpid(), "abcdefghijklmnopqrstuvwxyz"[_counter[0] % 26])
        self.net = None
        _open_lans.append(self)
        _remove_leftovers()
        self.net = _reserve_net()
        self.subnet = "198.%d.%d" % (18 + self.net // 256, self.net % 256)
        self.client_addr = self.subnet + ".1"
        self.lan_ns = self.prefix + "-lan"
        self._add_ns(self.lan_ns)
        # What every server needs: `ip netns exec` (a mount namespace of its
        # own) and a UTS namespace. Where that is refused, the test skips.
        p = subprocess.run(["ip", "netns", "exec", self.lan_ns, "unshare", "--uts", "true"],
                           capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise RuntimeError("ip netns exec ... unshare --uts: %s" % p.stderr.strip())
        _ip("-n", self.lan_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan_ns, "link", "set", "br0", "up")
        with changing_root_network():
            _ip("link", "add", self.root_veth, "type", "veth", "peer", "name", "up0", "netns",
                self.lan_ns)
            # no IPv6 link-local address: it would come (another change)
            # after the lock is released
            _ip("link", "set", self.root_veth, "addrgenmode", "none")
            _ip("-n", self.lan_ns, "link", "set", "up0", "master", "br0", "up")
            _ip("addr", "add", self.client_addr + "/24", "dev", self.root_veth)
            _ip("link", "set", self.root_veth, "up")
            _wait_link_settled(self.root_veth)

    def _add_ns(self, ns):
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def server(self, name, loopback_addr=None, hostname=None):
        """A new server `name`: its namespace, address (loopback_addr is for
        the loopback variant only) and host name (NAME.example.test unless
        given)."""
        n = len(self.servers)
        addr = "%s.%d" % (self.subnet, 11 + n)
        # Made through daemonfix: its teardown stops the daemons and checks their logs.
        s = self.make_server(name, addr, cls=NsServer, lan=self, hostname=hostname or "%s.%s" % (name, self.domain))
        self._add_ns(s.ns)
        _ip("link", "add", "eth0", "netns", s.ns, "type", "veth", "peer", "name", "p%d" % n,
            "netns", self.lan_ns)
        _ip("-n", self.lan_ns, "link", "set", "p%d" % n, "master", "br0", "up")
        _ip("-n", s.ns, "addr", "add", addr + "/24", "dev", "eth0")
        _ip("-n", s.ns, "link", "set", "eth0", "up")
        self.servers.append(s)
        self._write_hosts()
        # The holder of its UTS namespace: the host name lives as long as it.
        s.holder = subprocess.Popen(
            ["ip", "netns", "exec", s.ns, "unshare", "--uts", "sh", "-c",
             'hostname "$1" && echo ready && exec sleep 1000000', "sh", s.hostname],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = s.holder.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("cannot give %s its host name: %s" % (name, s.holder.stderr.read()))
        return s

    def assert_placed(self, s, *roles):
        """Each role's daemon runs in the server's network namespace and
        with its host name (not in the test's)."""
        net = os.stat(os.path.join("/run/netns", s.ns)).st_ino
        uts = os.stat("/proc/%d/ns/uts" % s.holder.pid).st_ino
        assert net != os.stat("/proc/self/ns/net").st_ino and uts != os.stat("/proc/self/ns/uts").st_ino
        for role in roles:
            pid = s.pid(role)
            assert os.stat("/proc/%d/ns/net" % pid).st_ino == net, "%s of %s not in %s" % (role, s.name, s.ns)
            assert os.stat("/proc/%d/ns/uts" % pid).st_ino == uts, "%s of %s: another host name" % (role, s.name)

    def rename_host(self, s, hostname):
        """The server gets another host name; the LAN's names follow (the old
        one no longer resolves)."""
        s.hostname = hostname
        p = subprocess.run(["nsenter", "--uts=/proc/%d/ns/uts" % s.holder.pid, "--", "hostname", hostname],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        self._write_hosts()

    def _write_hosts(self):
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n" + "".join(
            "%s\t%s %s\n" % (s.addr, s.hostname, s.hostname.split(".")[0]) for s in self.servers)
        for s in self.servers:
            d = os.path.join("/etc/netns", s.ns)
            os.makedirs(d, exist_ok=True)
            # In place: a running `ip netns exec` has this very file bound over /etc/hosts.
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write(text)

    def close(self):
        for s in self.servers:
            s.stop_all()
        # the root namespace's end first: removing the namespaces below
        # then changes nothing a browser sees
        with changing_root_network():
            _ip("link", "del", self.root_veth, check=False)
        for ns in reversed(self.namespaces):
            # Time to stop (and, under the sanitizers, to write their reports).
            _kill_ns(ns, grace=20.0 if SANITIZED else 5.0)
        for s in self.servers:
            if s.holder is not None:
                s.holder.wait()
                s.holder.stdout.close()
                s.holder.stderr.close()
        self.namespaces = []
        if self.net is not None:
            _release_net(self.net)
            self.net = None
        if self in _open_lans:
            _open_lans.remove(self)


class Loopback:
    """Servers as config directories on loopback addresses (daemonfix)."""
    kind = "loopback"
    client_addr = "127.0.0.1"

    def __init__(self, make_server):
        self.make_server = make_server

    def server(self, name, loopback_addr="127.0.0.1", hostname=None):
        return self.make_server(name, loopback_addr)

    def assert_placed(self, s, *roles):
        pass

    def rename_host(self, s, hostname):
        pass

    def close(self):
        pass


@atexit.register
def _close_all():
    for lan in list(_open_lans):
        try:
            lan.close()
        except Exception:  # noqa: BLE001 (at exit: clean what can be cleaned)
            pass


def make_net(kind, make_server):
    if kind == "loopback":
        return Loopback(make_server)
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    try:
        return Lan(make_server)
    except (RuntimeError, OSError) as e:
        for lan in list(_open_lans):
            lan.close()
        pytest.skip("cannot make network namespaces here: %s" % e)


@pytest.fixture
def net(request, make_server):
    """Where a test's servers live: "loopback" (the default) or "netns"
    (parametrize the test with indirect=True)."""
    n = make_net(getattr(request, "param", "loopback"), make_server)
    try:
        yield n
    finally:
        n.close()
