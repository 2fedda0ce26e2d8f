"""The local CA and the server certificate Dovecot presents (for 127.0.0.1 and localhost)."""

from __future__ import annotations

import secrets
from pathlib import Path

from inboxsync.localenv.layout import Layout, LocalEnvError
from inboxsync.localenv.system import output_tail, run


def ensure_tls(layout: Layout) -> bool:
    """Create a local CA and a server certificate for 127.0.0.1/localhost if needed.

    Returns:
        True if new files were made (a running Dovecot still serves the old certificate).
    """
    files = (layout.ca_file, layout.server_cert, layout.server_key)
    if all(f.exists() for f in files) and _cert_valid_for_a_day(layout.server_cert):
        return False
    tls = layout.tls_dir
    cnf = tls / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ca_key = tls / "ca.key"
    csr = tls / "server.csr"
    for key in (ca_key, layout.server_key):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        key.chmod(0o600)
    _openssl(
        "req", "-config", cnf, "-new", "-x509", "-key", ca_key, "-out", layout.ca_file,
        "-days", "3650", "-subj", "/CN=inboxsync local CA", "-extensions", "v3_ca",
    )  # fmt: skip
    _openssl(
        "req", "-config", cnf, "-new", "-key", layout.server_key, "-out", csr,
        "-subj", "/CN=localhost",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", layout.ca_file, "-CAkey", ca_key,
        "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "825",
        "-extfile", cnf, "-extensions", "v3_server", "-out", layout.server_cert,
    )  # fmt: skip
    csr.unlink()
    layout.ca_file.chmod(0o644)
    layout.server_cert.chmod(0o644)
    return True


# Strict enough for Python 3.13's VERIFY_X509_STRICT (key identifiers, critical constraints).
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = inboxsync
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _openssl(*args: str | Path) -> None:
    result = run(["openssl", *map(str, args)], check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"openssl {args[0]} failed:\n{output_tail(result)}")


def _cert_valid_for_a_day(cert: Path) -> bool:
    cmd = ["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(cert)]
    return run(cmd, check=False).returncode == 0
