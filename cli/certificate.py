"""``kpl verify-certificate CODE --registry genesis.json [--node URL ...]``: check a
printed KP certificate's QR code (``ledger.certcode``) without trusting the node
that printed it.

Offline, against the genesis registry the buyer holds (the anchor): the code's
network id must be the registry's. Then against each node given with
``--node`` (by default the issuing authority's node as the *registry* lists it,
never the URL in the code): the node must be on that network and prove the
certificate's issue record, by an RFC 9162 inclusion proof against a header of
the issuer's chain signed by the key that chain has at that height, and that
record's hash must be the one in the code. The key is the registry's unless
the chain's own records changed it: the node sends every ``key.rotate`` of the
chain and every ``member.admit`` or ``key.replace`` of it on ``KP``, each with
its inclusion proof and signed block header, and ``ledger.keyhistory`` checks
them one by one from the registry key, as a node applies them (so a code
still checks after a rotation). A code printed by a forger's node names a record
no honest node holds, so it fails there; a code of another network fails
offline. With several ``--node`` the answers are compared too: nodes that report
different statuses fail the check (each node's is shown), and a node whose log of
the issuer's or the destination's chain is shorter than another's is named as
behind or leaving records out. Exit 0 the code checks out, 1 it does not, 2 an
input cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from kpledger.cli.exits import Exit
from kpledger.ledger.blocks import SignedHeader
from kpledger.ledger.canonical import canonical_bytes, from_hex, load_json
from kpledger.ledger.certcode import CertificateCode
from kpledger.ledger.chain import genesis
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.keyhistory import MAX_KEY_PROOFS, KeyProof, learn_keys
from kpledger.ledger.merkle import leaf_hash, verify_inclusion
from kpledger.ledger.registry import Registry
from kpledger.ledger.state import key_at

__all__ = ["ProofAnchor", "check_certificate_proof", "verify_certificate_command"]

TIMEOUT = 10.0
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


@dataclass(frozen=True)
class ProofAnchor:
    """What a certificate's inclusion proof was checked against: the issuer's header
    ``chain``/``height``, signed by ``key_id`` (the registry's key of the chain, or one
    its key records prove: ``rotated``); the issue record is ``chain``/``index`` with
    hash ``record``."""

    chain: str
    height: int
    index: int
    key_id: str
    record: bytes
    rotated: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "chain": self.chain,
            "height": self.height,
            "index": self.index,
            "key_id": self.key_id,
            "record": self.record.hex(),
            "rotated": self.rotated,
        }

    @property
    def signer(self) -> str:
        """Whose key signed the header, in words."""
        if self.rotated:
            return f"key {self.key_id[:16]}, which the chain's own key records prove"
        return "the registry's key"


def check_certificate_proof(cert: dict[str, Any], registry: Registry) -> ProofAnchor:
    """Check the inclusion proof of a certificate document (``GET /v1/certificates/N``)
    against ``registry``: the header is one of the issuer's chain on the registry's
    network, signed by the key the issuer's chain has at that height (the registry's,
    or one the proof's ``keys`` records prove), and the issue record is in its tree
    (RFC 9162). Raises ``InvalidData`` naming what fails."""
    try:
        proof = cert["proof"]
        signed = SignedHeader.from_json({"header": proof["header"], "sig": proof["sig"]})
        index, size = int(proof["index"]), int(proof["size"])
        path = [from_hex(h, field="proof", size=32) for h in proof["proof"]]
        record = proof["record"]
        held = (
            from_hex(record["hash"], field="record.hash", size=32)
            if set(record) == {"hash"}
            else leaf_hash(canonical_bytes(record))
        )
    except (ValueError, KeyError, TypeError, InvalidData) as exc:
        raise InvalidData(f"answered a certificate without a usable proof: {exc}") from None
    h = signed.header
    if h.network != registry.network_id or h.chain != cert.get("issuer") or size != h.size:
        raise InvalidData(
            "its proof's header is not a header of the issuer's chain on this network"
        )
    issue = cert.get("issue")
    if isinstance(issue, dict) and (
        (issue.get("chain"), issue.get("index"), issue.get("hash")) != (h.chain, index, held.hex())
    ):
        raise InvalidData(
            f"its proof is for record {h.chain}/{index} ({held.hex()[:16]}...), not the "
            f"certificate's issue record {issue.get('chain')}/{issue.get('index')}"
        )
    try:
        known = learn_keys(registry, h.chain, _key_proofs(proof.get("keys")))
    except InvalidData as exc:
        raise InvalidData(f"its key history does not check: {exc}") from None
    key = key_at(known, h.chain, h.height)
    rotated = key != key_at(genesis(registry), h.chain, h.height)
    whose = (
        f"the key of {h.chain} at height {h.height} that its key records prove"
        if rotated
        else f"the registry's key of {h.chain}"
    )
    try:
        if key is None:
            raise InvalidData(f"no key of {h.chain} at height {h.height}")
        signed.verify_signature(key)
        verify_inclusion(held, index, size, path, h.root)
    except InvalidData as exc:
        raise InvalidData(f"its proof does not check under {whose}: {exc}") from None
    assert key is not None
    return ProofAnchor(h.chain, h.height, index, key.key_id, held, rotated)


def _key_proofs(value: object) -> list[KeyProof]:
    """The proof's ``keys`` (absent: the chain still signs with its registry key)."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_KEY_PROOFS:
        raise InvalidData(f"keys must be a list of at most {MAX_KEY_PROOFS} key proofs")
    return [KeyProof.from_json(item, f"keys[{i}]") for i, item in enumerate(value)]


class _Fails(Exception):
    """The code does not check out against this anchor; the message says why."""


@dataclass(frozen=True)
class _Proved:
    """What one node proved: the line to print, the certificate's status there, and the
    node's log size of the issuer's and the destination's chains (None: not said)."""

    text: str
    status: str
    sizes: dict[str, int | None]


def _sizes(client: httpx.Client, base: str, chains: list[str]) -> dict[str, int | None]:
    """The node's log size of each of ``chains`` from ``GET /v1/network`` (None if unknown)."""
    try:
        heads = client.get(f"{base}/v1/network").json()["heads"]
        return {c: int(heads[c]["size"]) if c in heads else None for c in chains}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return dict.fromkeys(chains)


def _chains(answer: httpx.Response) -> list[str]:
    """The issuer's and destination's chains a certificate answer names (none if unusable)."""
    try:
        body = answer.json() if answer.status_code == 200 else {}
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    return [str(body[k]) for k in ("issuer", "destination") if isinstance(body.get(k), str)]


def _node(url: str, code: CertificateCode, registry: Registry) -> _Proved:
    """Check the code against one node; return what it proved, or raise ``_Fails``."""
    base = url.rstrip("/")
    try:
        with httpx.Client(timeout=TIMEOUT) as client:
            reg = client.get(f"{base}/v1/registry")
            answer = client.get(f"{base}/v1/certificates/{code.number}")
            sizes = _sizes(client, base, _chains(answer))
    except httpx.HTTPError as exc:
        raise _Fails(f"cannot be reached: {exc}") from None
    try:
        network = Registry.parse(
            canonical_bytes(load_json(reg.content, what="registry"))
        ).network_id
    except InvalidData as exc:
        raise _Fails(f"serves no valid registry: {exc}") from None
    if network != registry.network_id:
        raise _Fails(f"is on network {network[:16]}..., not the registry's")
    if answer.status_code == 404:
        raise _Fails(f"holds no certificate {code.number}")
    if answer.status_code != 200:
        raise _Fails(f"answered {answer.status_code} for certificate {code.number}")
    try:
        cert: dict[str, Any] = answer.json()
        anchor = check_certificate_proof(cert, registry)
    except (ValueError, InvalidData) as exc:
        raise _Fails(str(exc)) from None
    held = anchor.record
    if held != code.record:
        raise _Fails(
            f"proves issue record {held.hex()[:16]}... for {code.number}; the code names "
            f"{code.record.hex()[:16]}...: this code was not printed from the network's record"
        )
    status = str(cert.get("status"))
    return _Proved(
        f"{anchor.chain}/{anchor.index} in block {anchor.chain}/{anchor.height}, "
        f"signed by {anchor.signer}; status {status}",
        status,
        sizes,
    )


def _disagreements(proved: dict[str, _Proved]) -> tuple[list[str], bool]:
    """Compare what the nodes that proved the code say: each node whose log of the
    issuer's or destination's chain is shorter than another's is named (behind, or
    leaving records out); a different status fails the check, naming every node's."""
    lines: list[str] = []
    chains = sorted({c for p in proved.values() for c in p.sizes})
    for c in chains:
        held = [(p.sizes[c], url) for url, p in proved.items() if p.sizes.get(c) is not None]
        if len(held) < 2:
            continue
        top, top_url = max((n, u) for n, u in held if n is not None)
        for n, url in held:
            if n is not None and n < top:
                lines.append(
                    f"node {url} holds a shorter log of {c} ({n} records) than node {top_url} "
                    f"({top}): it is behind, or it leaves records out"
                )
    statuses = {p.status for p in proved.values()}
    if len(statuses) > 1:
        said = ", ".join(f"{url}: {p.status}" for url, p in proved.items())
        lines.insert(
            0,
            f"the nodes report different statuses ({said}): a node that lacks a "
            "confirmation, refusal or void reports an older one",
        )
    return lines, len(statuses) > 1


def verify_certificate_command(code_text: str, registry_path: Path, nodes: list[str]) -> int:
    try:
        code = CertificateCode.parse(code_text)
    except InvalidData as exc:
        err.print(f"[bold red]error:[/] not a certificate code: {escape(str(exc))}")
        return int(Exit.INVALID_INPUT)
    try:
        registry = Registry.parse(
            canonical_bytes(load_json(registry_path.read_bytes(), what="registry file"))
        )
    except (OSError, InvalidData) as exc:
        err.print(f"[bold red]error:[/] {escape(str(registry_path))}: {escape(str(exc))}")
        return int(Exit.INVALID_INPUT)
    anchor = f"the genesis registry {registry_path} (network {registry.network_id[:16]}...)"
    if code.network != registry.network_id:
        err.print(f"[bold red]NOT verified[/]: certificate {escape(code.number)}")
        err.print(
            escape(
                f"offline: the code names network {code.network[:16]}..., not {anchor}: "
                "it is not a certificate of the network you trust"
            )
        )
        return int(Exit.VERIFICATION_FAILED)
    if not nodes:
        issuer = registry.participant(code.number.split("-", 1)[0])
        if issuer is None:
            err.print(f"[bold red]NOT verified[/]: no participant issues {escape(code.number)}")
            return int(Exit.VERIFICATION_FAILED)
        nodes = [issuer.url]
    failed = False
    lines: list[str] = []
    proved: dict[str, _Proved] = {}
    for url in nodes:
        try:
            proved[url] = _node(url, code, registry)
            lines.append(f"  node {url}: {proved[url].text}")
        except _Fails as exc:
            failed = True
            lines.append(f"  node {url}: FAILS: {exc}")
    differ, differ_fails = _disagreements(proved)
    failed = failed or differ_fails
    lines += [f"  disagreement: {line}" for line in differ]
    target = err if failed else out
    if failed:
        target.print(f"[bold red]NOT verified[/]: certificate {escape(code.number)}")
    else:
        target.print(f"[bold green]verified[/]: certificate {escape(code.number)}")
    target.print(escape(f"anchor trusted: {anchor}; the code's own URL ({code.base}) was not"))
    for line in lines:
        target.print(escape(line))
    return int(Exit.VERIFICATION_FAILED if failed else Exit.OK)
