"""A network's TLS material: its certificate authority and one certificate per node.

``kpl network init --tls`` makes the CA (``make_ca``: ``ca.pem``, and
``ca-key.pem``, owner-only, to keep offline) and each node's certificate;
``kpl ops cert`` issues more from the CA (``load_ca``, ``issue_node_certificate``):
a new participant, a renewal, another name for a node. Keys are ECDSA P-256;
a node's certificate serves both ends of mutual TLS (server and client
authentication), for the DNS names and IP addresses it is given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kpledger.keys import write_private
from kpledger.ledger.errors import InvalidData

__all__ = ["CA_DAYS", "NODE_CERT_DAYS", "issue_node_certificate", "load_ca", "make_ca"]

#: days a network CA is valid, and a node certificate (at most its CA's remaining life)
CA_DAYS = 3650
NODE_CERT_DAYS = 825


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(folder: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A network CA under ``folder``: ``ca.pem`` and ``ca-key.pem`` (0600, keep it offline)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} network CA"),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    write_private(folder / "ca-key.pem", _key_pem(key), what="CA key")
    (folder / "ca.pem").write_bytes(_cert_pem(cert))
    return key, cert


def load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The network CA written by ``init_network(..., tls=True)`` (``ca.pem``, ``ca-key.pem``)."""
    try:
        key = serialization.load_pem_private_key((folder / "ca-key.pem").read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidData(f"{folder}: not a kpledger network CA: {exc}", field="ca") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidData(f"{folder}/ca-key.pem: expected an EC key", field="ca")
    return key, cert


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_node_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    code: str,
    names: Sequence[str],
    folder: Path,
    *,
    days: int = NODE_CERT_DAYS,
) -> Path:
    """Write ``ca.pem``, ``node.pem`` and ``node-key.pem`` (0600) for ``code`` in ``folder``.

    The certificate serves both ends of mutual TLS (server and client
    authentication) for the DNS names and IP addresses in ``names``.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    unique = list(dict.fromkeys(names))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kpledger"),
                    x509.NameAttribute(NameOID.COMMON_NAME, code),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=days), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in unique]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("node-key.pem", "node.pem", "ca.pem"):
        (folder / name).unlink(missing_ok=True)
    write_private(folder / "node-key.pem", _key_pem(key), what="TLS key")
    (folder / "node.pem").write_bytes(_cert_pem(cert))
    (folder / "ca.pem").write_bytes(_cert_pem(ca_cert))
    return folder / "node.pem"
