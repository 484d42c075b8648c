"""Certificate export, import (PEM and PKCS#12) and renewal."""
import subprocess

from daemonfix import all_connected, wait_for


def test_export_import_renew(make_server, tmp_path):
    s = make_server("certs")
    s.config("init", "--mode", "multi")
    s.config("role", "add", "client-access-server", "--server-name", "cas.test",
             "--tcp-listeners", "127.0.0.1:40011")
    fp = s.fingerprint("client-access-server", "http")
    show = s.config("cert", "show", "client-access-server", "http").stdout
    assert fp in show and "self-signed" in show and "CN=cas.test" in show
    p12 = str(tmp_path / "http.p12")
    pem = str(tmp_path / "http.pem")
    s.config("cert", "export", "client-access-server", "http", p12, "--password", "pkcs-pw")
    s.config("cert", "export", "client-access-server", "http", pem)
    s.config("cert", "renew", "client-access-server", "http")
    assert s.fingerprint("client-access-server", "http") != fp
    p = s.config("cert", "import", "client-access-server", "http", p12, "--password", "wrong", check=False)
    assert p.returncode == 1
    s.config("cert", "import", "client-access-server", "http", p12, "--password", "pkcs-pw")
    assert s.fingerprint("client-access-server", "http") == fp
    s.config("cert", "renew", "client-access-server", "http")
    s.config("cert", "import", "client-access-server", "http", pem)
    assert s.fingerprint("client-access-server", "http") == fp
    # A CA-signed chain from openssl is accepted; a key that does not match is not.
    ca_key, ca_crt = str(tmp_path / "ca.key"), str(tmp_path / "ca.crt")
    leaf_key, leaf_csr, leaf_crt = str(tmp_path / "l.key"), str(tmp_path / "l.csr"), str(tmp_path / "l.crt")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Test CA", "-days", "2",
        "-keyout", ca_key, "-out", ca_crt)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=cas.test", "-keyout", leaf_key, "-out", leaf_csr)
    run("openssl", "x509", "-req", "-in", leaf_csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-out", leaf_crt)
    chain = str(tmp_path / "chain.pem")
    with open(chain, "w") as f:
        f.write(open(leaf_crt).read() + open(ca_crt).read())
    before = s.fingerprint("client-access-server", "http")
    p = s.config("cert", "import", "client-access-server", "http", chain, "--key", ca_key, check=False)
    assert p.returncode == 1 and "match" in p.stderr
    assert s.fingerprint("client-access-server", "http") == before
    s.config("cert", "import", "client-access-server", "http", chain, "--key", leaf_key)
    show = s.config("cert", "show", "client-access-server", "http").stdout
    assert "CN=Test CA" in show and "self-signed" not in show
    p = s.config("cert", "show", "client-access-server", "smtp", check=False)
    assert p.returncode == 1 and "tcp, http or imap" in p.stderr
    p = s.config("cert", "renew", "client-access-server", "tcp", "--days", "0", check=False)
    assert p.returncode == 1 and "days" in p.stderr


def test_single_mode_renewal_repins_local_roles(single):
    wait_for(all_connected(single.api), what="every role connected")
    single.config("stop")
    for role in ("management-server", "instance-host", "client-access-server"):
        single.config("cert", "renew", role, "tcp")
    single.config("start")
    wait_for(all_connected(single.api), timeout=30, what="connected after renewing every tcp certificate")
