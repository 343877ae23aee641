"""A throwaway certificate authority for TLS tests: Redis over TLS here, SMTP in auth-local.

:func:`make_test_ca` writes a CA certificate and a server certificate and key it signed, for
the names a test server answers to, with ``cryptography`` (authcore's dependency), imported
only when a certificate is made. :func:`authcore.testing.redis_server.start_redis` takes the
files (``tls=``); :mod:`auth_local.testing` re-exports both names.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["TlsFiles", "make_test_ca"]


class TlsFiles(NamedTuple):
    """PEM files from :func:`make_test_ca`: the CA's certificate, and a server certificate and key it signed."""

    ca_file: Path
    certificate: Path
    key: Path


def make_test_ca(
    directory: str | os.PathLike[str], *, hostnames: Sequence[str] = ("localhost", "127.0.0.1")
) -> TlsFiles:
    """A throwaway CA (``ca.pem``) and a server certificate (``server.pem``, key ``server-key.pem``) in *directory*.

    The server certificate names *hostnames* (names and IP addresses) and is valid from an
    hour ago for a day. The CA's private key is never written: nothing else can be signed
    with it. Needs ``cryptography`` (authcore's dependency through PyJWT[crypto]).
    """
    # Imported here: only the TLS tests pay for it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hostnames:
        raise ValueError("the server certificate needs at least one host name")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"authcore test CA {secrets.token_hex(4)}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    # The extensions Python 3.13's strict verification (VERIFY_X509_STRICT) insists on.
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_alternative_names(hostnames)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _write_files(path, ca, server, server_key)


def _alternative_names(hostnames: Sequence[str]) -> list[Any]:
    """The subject alternative names of *hostnames*: IP addresses as such, the rest as DNS names."""
    from cryptography import x509

    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_files(path: Path, ca: Any, server: Any, server_key: Any) -> TlsFiles:
    """Write the CA's and the server's certificates, and the server's key (created 0600), as PEM."""
    from cryptography.hazmat.primitives import serialization

    files = TlsFiles(path / "ca.pem", path / "server.pem", path / "server-key.pem")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certificate.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files.key.unlink(missing_ok=True)
    # Created private: a key is never readable by others, even for a moment.
    with open(os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(key_pem)
    return files


def _key_usage(*, cert_sign: bool) -> Any:
    """A CA signs certificates; a server signs its TLS handshakes."""
    from cryptography import x509

    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
