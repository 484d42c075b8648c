"""The architecture's layering, checked on the source tree (DEVELOPERS.md):

- src/lib uses libc only; every third-party API is included in exactly the
  src/lib-<concern> directory that owns it (libevent's core is the shared
  event loop vocabulary, allowed everywhere above src/lib);
- dependencies point down: src/lib <- src/lib-* <- roles <- src/cli, and the
  src/lib-* directories form no cycle;
- roles (mgmt, host, instance, access) never include each other's headers,
  and src/cli includes only each role's one entry header (*-main.h).
"""
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
ROLES = {"mgmt", "host", "instance", "access"}

# Third-party header (prefix) -> the one directory that may include it.
# OpenSSL is two libraries: libssl/X.509 for TLS and certificates (lib-tls)
# and libcrypto's digests, used by lib-crypto for SHA-256 because it uses the
# CPU's SHA instructions (1.4 GB/s here against libsodium's 250 MB/s);
# lib-crypto includes only <openssl/evp.h> for that.
OWNERS = {
    "event2/http.h": {"lib-http"},
    "event2/keyvalq_struct.h": {"lib-http"},
    "event2/bufferevent_ssl.h": {"lib-tls"},
    "openssl/": {"lib-tls"},
    "sqlite3.h": {"lib-index"},
    "jemalloc/": {"lib-alloc"},
    "gmime/": {"lib-mime"},
    "glib": {"lib-mime"},
    "zstd.h": {"lib-store"},
    "zdict.h": {"lib-store"},
    "sodium": {"lib-crypto"},
    "xxhash.h": {"lib-crypto"},
    "liboath/": {"lib-auth"},
    "qrencode.h": {"lib-auth"},
    "jansson.h": {"lib-json"},
    "curl/": {"lib-smtp"},
    "zip.h": {"lib-zip"},
    "libpff.h": {"lib-pst"},
}
EXCEPTIONS = {("lib-crypto", "openssl/evp.h")}
# libevent's core: the event loop every daemon runs on (not in src/lib).
SHARED_VOCABULARY = ("event2/",)
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def sources():
    for path in sorted(SRC.rglob("*")):
        if path.suffix in (".c", ".h"):
            yield path


def directory(path):
    return path.relative_to(SRC).parts[0]


def includes(path):
    return INCLUDE.findall(path.read_text(errors="replace"))


def is_system(name):
    """A header of libc, POSIX, Linux or cmocka (tests): no owner."""
    return not any(name.startswith(p) for p in list(OWNERS) + list(SHARED_VOCABULARY))


def header_homes():
    homes = {}
    for path in sources():
        if path.suffix == ".h":
            homes.setdefault(path.name, set()).add(directory(path))
    return homes


def rank(d):
    if d == "lib":
        return 0
    if d.startswith("lib-"):
        return 1
    if d in ROLES:
        return 2
    return 3  # cli


def test_third_party_headers_live_in_their_own_lib():
    wrong = []
    for path in sources():
        d = directory(path)
        for kind, name in includes(path):
            if kind != "<":
                continue
            for prefix, owners in OWNERS.items():
                if name.startswith(prefix) and d not in owners and (d, name) not in EXCEPTIONS:
                    wrong.append("%s includes <%s> (owned by %s)" % (path.relative_to(REPO), name,
                                                                    ", ".join(sorted(owners))))
            if d == "lib" and not is_system(name):
                wrong.append("%s: src/lib is libc only, includes <%s>" % (path.relative_to(REPO), name))
    assert not wrong, "\n".join(wrong)


def local_edges():
    homes = header_homes()
    for path in sources():
        d = directory(path)
        for kind, name in includes(path):
            if kind != '"':
                continue
            home = homes.get(os.path.basename(name), set())
            if d in home or not home:
                continue
            assert len(home) == 1, "header %s exists in several directories: %s" % (name, home)
            yield path, d, next(iter(home)), name


def test_dependencies_point_down():
    wrong = []
    for path, d, home, name in local_edges():
        if rank(home) > rank(d) or (rank(home) == rank(d) and rank(d) != 1):
            wrong.append("%s (%s) includes %s from %s" % (path.relative_to(REPO), d, name, home))
        if d == "cli" and home in ROLES and not name.endswith("-main.h"):
            wrong.append("%s includes %s: cli uses only a role's *-main.h" % (path.relative_to(REPO), name))
    assert not wrong, "\n".join(wrong)


def test_libraries_form_no_cycle():
    graph = {}
    for _path, d, home, _name in local_edges():
        if d.startswith("lib-") and home.startswith("lib-"):
            graph.setdefault(d, set()).add(home)
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return None
        if state.get(node) == "open":
            return trail[trail.index(node):] + [node]
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            cycle = visit(nxt, trail + [node])
            if cycle:
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        cycle = visit(node, [])
        assert not cycle, "library cycle: " + " -> ".join(cycle)


def test_checker_sees_a_violation(tmp_path):
    """The include pattern finds both kinds of include (so the checks above
    cannot pass by reading nothing)."""
    sample = '#include <sqlite3.h>\n#  include "host-main.h"\n'
    assert INCLUDE.findall(sample) == [("<", "sqlite3.h"), ('"', "host-main.h")]
    assert sum(1 for _ in sources()) > 100
    assert any(True for _ in local_edges())
