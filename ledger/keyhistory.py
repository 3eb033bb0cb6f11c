"""A chain's signing keys after its genesis key, learnt from the chain's own records.

A header of chain ``C`` at height ``h`` is signed by the key ``C`` has at ``h``
(``state.key_at``): the registry key, unless a record changed it. Three kinds
of record do, as the nodes apply them:

* ``key.rotate`` on ``C`` itself, sealed in block ``C/b``: its key signs from
  ``b + 1`` on (kp_size 0);
* ``member.admit`` of ``C`` on the governance chain ``KP``, at index ``i``: the
  admitted participant's key, from height 1 (kp_size ``i + 1``);
* ``key.replace`` of ``C`` on ``KP`` at index ``i``: its key, from its
  ``from_height`` (kp_size ``i + 1``).

A verifier that holds only the genesis registry learns them from
``KeyProof`` items: the record, its RFC 9162 inclusion proof and the signed
header of its block. ``learn_keys`` checks each against what is already
known, in this order: the ``KP`` records by index (each must carry the
governance threshold of signatures, and its ``KP`` header must be signed by
the key ``KP`` has at that height), then ``C``'s rotations by height (each
block header signed by the key ``C`` has at that height: a rotation is proved
under the key it replaces). The header given must be the record's block or a
later one of its chain (the index must lie below its size): a later one only
delays the new key, so a node that answers with it makes proofs fail, never
pass. What cannot be learnt this way is a record the answering node leaves
out; that is why a certificate is checked against more than one node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kpledger.ledger.blocks import SignedHeader
from kpledger.ledger.canonical import Tag, from_hex
from kpledger.ledger.chain import genesis
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.errors import InvalidData, SchemaError
from kpledger.ledger.merkle import verify_inclusion
from kpledger.ledger.records import (
    GOVERNANCE_CHAIN,
    KeyReplace,
    KeyRotate,
    MemberAdmit,
    Record,
)
from kpledger.ledger.registry import Registry, verify_threshold
from kpledger.ledger.state import KeyEvent, State, key_at

__all__ = ["KEY_KINDS", "MAX_KEY_PROOFS", "KeyProof", "learn_keys"]

#: the kinds of record that change a chain's key
KEY_KINDS = frozenset({"key.rotate", "member.admit", "key.replace"})
#: at most this many key records in one proof (each is a rotation or a governance act)
MAX_KEY_PROOFS = 1000


@dataclass(frozen=True)
class KeyProof:
    """A key record, its index in its chain's log, and its proof against ``signed``."""

    record: Record
    index: int
    proof: tuple[bytes, ...]
    signed: SignedHeader

    @classmethod
    def from_json(cls, value: object, path: str = "keys") -> KeyProof:
        """``{"record": {...}, "index": N, "proof": [hex, ...], "header": {...},
        "sig": hex}``; raises ``SchemaError`` naming the field at ``path``."""
        if not isinstance(value, dict) or set(value) != {
            "record",
            "index",
            "proof",
            "header",
            "sig",
        }:
            raise SchemaError("a key proof is {record, index, proof, header, sig}", field=path)
        index = value["index"]
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise SchemaError("must be an index (0 or more)", field=f"{path}.index")
        hashes = value["proof"]
        if not isinstance(hashes, list) or len(hashes) > 64:
            raise SchemaError("must be a list of at most 64 hashes", field=f"{path}.proof")
        record = Record.from_value(value["record"])
        if record.kind.value not in KEY_KINDS:
            raise SchemaError(
                f"a {record.kind.value} record changes no key", field=f"{path}.record.kind"
            )
        return cls(
            record,
            index,
            tuple(from_hex(h, field=f"{path}.proof", size=32) for h in hashes),
            SignedHeader.from_json({"header": value["header"], "sig": value["sig"]}, path),
        )

    def to_json(self) -> dict[str, Any]:
        signed = self.signed.to_json()
        return {
            "record": self.record.as_json(),
            "index": self.index,
            "proof": [p.hex() for p in self.proof],
            "header": signed["header"],
            "sig": signed["sig"],
        }

    @property
    def name(self) -> str:
        return f"{self.record.chain}/{self.index}"


def learn_keys(registry: Registry, chain: str, proofs: Sequence[KeyProof]) -> State:
    """The key events of ``chain`` (and of ``KP``) from the registry and ``proofs``.

    Returns a state holding only key events, for ``state.key_at``. Raises
    ``InvalidData`` naming the key record that does not prove what it claims.
    """
    if len(proofs) > MAX_KEY_PROOFS:
        raise SchemaError(f"more than {MAX_KEY_PROOFS} key records", field="keys")
    keys = genesis(registry)
    governance = sorted(
        (p for p in proofs if p.record.chain == GOVERNANCE_CHAIN), key=lambda p: p.index
    )
    own = sorted((p for p in proofs if p.record.chain != GOVERNANCE_CHAIN), key=lambda p: p.index)
    for p in (*governance, *own):
        try:
            keys.keys.append(_event(registry, chain, keys, p))
        except InvalidData as exc:
            raise InvalidData(f"key record {p.name}: {exc}", field="keys") from None
    return keys


def _event(registry: Registry, chain: str, keys: State, p: KeyProof) -> KeyEvent:
    """Check one key proof against the keys known so far; return the event it proves."""
    r, h = p.record, p.signed.header
    if r.network != registry.network_id or h.network != registry.network_id:
        raise SchemaError("is not of this network", field="network")
    if h.chain != r.chain:
        raise SchemaError(f"comes with a header of {h.chain}", field="header.chain")
    body = r.body
    if r.chain == GOVERNANCE_CHAIN:
        if not isinstance(body, KeyReplace | MemberAdmit) or body.code not in (
            chain,
            GOVERNANCE_CHAIN,
        ):
            raise SchemaError(f"changes no key of {chain}", field="record")
        verify_threshold(
            Tag.SIG_RECORD,
            r.unsigned_bytes(),
            [(s.key_id, s.sig) for s in r.sigs],
            registry.governance_keys,
            registry.threshold,
            what=f"governance record {r.id}",
        )
    elif r.chain != chain or not isinstance(body, KeyRotate):
        raise SchemaError(f"is not a key.rotate of {chain}", field="record")
    key = _key_at(keys, h.chain, h.height)
    p.signed.verify_signature(key)
    verify_inclusion(r.leaf, p.index, h.size, list(p.proof), h.root)
    if isinstance(body, KeyRotate):
        return KeyEvent(r.chain, h.height + 1, body.key, 0)
    if isinstance(body, MemberAdmit):
        return KeyEvent(body.code, 1, body.key, p.index + 1)
    assert isinstance(body, KeyReplace)
    return KeyEvent(body.code, body.from_height, body.key, p.index + 1)


def _key_at(keys: State, chain: str, height: int) -> PublicKey:
    key = key_at(keys, chain, height)
    if key is None:
        raise SchemaError(f"no key of {chain} at height {height}", field="header.key_id")
    return key
