"""The code a printed KP certificate carries (its QR code): ``kpledger-cert/1``.

The code is a URL under a node's *public* base URL (``node.public_url`` in
its configuration, never the Host header of a request)::

    {base}/#/certificate/{number}?network={network id}&record={record hash}

``network`` is the network id (64 lower-case hex digits: the genesis
registry's hash, ``ledger.registry``), ``number`` the certificate number and
``record`` the hash of the ``certificate.issue`` record that made it
(``SHA-256(0x00 || canonical(record))``, its log leaf, 64 hex digits). The
base URL only says where a buyer may look first: the network id and the
record hash are what a check compares, against the registry the buyer holds
and against any node of the network, not only the one that printed it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from kpledger.ledger.errors import SchemaError
from kpledger.ledger.schema import LOCAL_ID

__all__ = ["CertificateCode", "check_base_url"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_BASE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~\-/%]*)?")


def check_base_url(url: str, field: str = "public_url") -> str:
    """A public base URL: http(s), a host, an optional path; no query, fragment or
    credentials. Returned without a trailing slash."""
    if _BASE.fullmatch(url) is None:
        raise SchemaError(
            "expected an http:// or https:// URL with a host and an optional path "
            "(no user, query or fragment)",
            field=field,
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class CertificateCode:
    """What a certificate's QR code states: network, number, issue record hash."""

    base: str
    network: str
    number: str
    record: bytes

    def __post_init__(self) -> None:
        check_base_url(self.base, "base")
        if _HEX64.fullmatch(self.network) is None:
            raise SchemaError("expected 64 lower-case hex digits", field="network")
        if LOCAL_ID.fullmatch(self.number) is None:
            raise SchemaError("not a certificate number (ISSUER-...)", field="number")
        if len(self.record) != 32:
            raise SchemaError("expected a 32-byte record hash", field="record")

    def url(self) -> str:
        return (
            f"{self.base.rstrip('/')}/#/certificate/{self.number}"
            f"?network={self.network}&record={self.record.hex()}"
        )

    @classmethod
    def parse(cls, text: str) -> CertificateCode:
        """Read a scanned code; every part must be present and well formed."""
        base, sep, rest = text.strip().partition("/#/certificate/")
        if not sep:
            raise SchemaError("not a certificate code: no '/#/certificate/' in it", field="code")
        number, sep, query = rest.partition("?")
        if not sep:
            raise SchemaError("the code names no network and record hash", field="code")
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False)
        if set(params) != {"network", "record"} or any(len(v) != 1 for v in params.values()):
            raise SchemaError("expected exactly ?network=...&record=...", field="code")
        record = params["record"][0]
        if _HEX64.fullmatch(record) is None:
            raise SchemaError("expected 64 lower-case hex digits", field="record")
        return cls(base.rstrip("/"), params["network"][0], number, bytes.fromhex(record))
