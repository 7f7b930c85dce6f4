"""The site certificate: a CA made on the site, once, and a server certificate it signs.

The CA's private key never leaves the site's gateway volume; clients trust the site by its
CA certificate (``ca.crt``, public), which a technician copies once. A change of the names
the site answers to re-issues the server certificate from the same CA, so clients keep
trusting it. Made with the ``openssl`` command: no key material passes through Python.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

CA_DAYS = 3650
SERVER_DAYS = 825


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _subject_alt_names(names: tuple[str, ...]) -> str:
    entries = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            entries.append(f"IP:{name}")
        except ValueError:
            entries.append(f"DNS:{name}")
    return ",".join(entries)


def ensure_site_certificate(tls_dir: Path, names: tuple[str, ...], site: str) -> Path:
    """Make the CA when missing and the server certificate when missing or for other names."""
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.umask(0o077)
    ca_key, ca_crt = tls_dir / "ca.key", tls_dir / "ca.crt"
    key, crt, names_file = tls_dir / "site.key", tls_dir / "site.crt", tls_dir / "site.names"
    if not (ca_key.exists() and ca_crt.exists()):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(ca_key))
        _openssl(
            "req", "-x509", "-new", "-key", str(ca_key), "-out", str(ca_crt), "-days", str(CA_DAYS),
            "-subj", f"/O=tizi/CN=tizi site CA {site}",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        crt.unlink(missing_ok=True)
    wanted = _subject_alt_names(names)
    if crt.exists() and key.exists() and names_file.exists() and names_file.read_text() == wanted:
        return ca_crt
    csr = tls_dir / "site.csr"
    ext = tls_dir / "site.ext"
    ext.write_text(
        f"subjectAltName={wanted}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/O=tizi/CN={names[0]}")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", str(SERVER_DAYS), "-extfile", str(ext),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
    names_file.write_text(wanted)
    ca_crt.chmod(0o644)
    return ca_crt
