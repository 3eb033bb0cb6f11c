"""A chain's keys learnt from its own records (``ledger.keyhistory``): a rotation
proved under the key it replaces, governance acts under the threshold, nothing else."""

from __future__ import annotations

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import SignedHeader
from kpledger.ledger.canonical import Tag
from kpledger.ledger.chain import genesis
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.keyhistory import KeyProof, learn_keys
from kpledger.ledger.records import GOVERNANCE_CHAIN, Kind, Record
from kpledger.ledger.state import key_at


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer.from_seed(label.encode().ljust(32, b"#"))


def proof_of(sc: Scenario, record: Record) -> KeyProof:
    """``record``'s key proof as a node would send it: against its own block's header."""
    for block in sc.ledger.blocks[record.chain]:
        if record in block.records:
            h = block.header
            index = h.size - len(block.records) + block.records.index(record)
            path = sc.ledger.trees[record.chain].inclusion_proof(index, h.size)
            sig = sc.ledger.signature(record.chain, h.height)
            assert sig is not None
            return KeyProof(record, index, tuple(path), SignedHeader(h, sig))
    raise AssertionError(f"{record.id} is not sealed")


def head(sc: Scenario, chain: str) -> SignedHeader:
    h = sc.ledger.state.head(chain)
    assert h is not None
    sig = sc.ledger.signature(chain, h.height)
    assert sig is not None
    return SignedHeader(h, sig)


@pytest.fixture
def rotated() -> tuple[Scenario, list[Record], Ed25519Signer]:
    """BW rotates twice, sealing a block after each; returns the two rotations."""
    sc = Scenario(Network.create(("BW", "EU"), ()))
    sc.seal("BW", sc.party("BW", "BW-MINE", "miner"))
    rotations = []
    for label in ("bw-2027", "bw-2028"):
        new = signer(label)
        rotation = sc.record("BW", Kind.KEY_ROTATE, {"key": new.public.hex()})
        sc.seal("BW", rotation)
        sc.net.signers["BW"] = new
        sc.seal("BW", sc.party("BW", f"BW-T-{label}", "trader"))
        rotations.append(rotation)
    return sc, rotations, new


def test_rotations_prove_the_key_that_signs_the_head(
    rotated: tuple[Scenario, list[Record], Ed25519Signer],
) -> None:
    sc, rotations, last = rotated
    signed = head(sc, "BW")
    registry = sc.net.registry
    # the registry alone names the first key: the head does not verify under it
    first = key_at(genesis(registry), "BW", signed.header.height)
    assert first is not None
    with pytest.raises(InvalidData, match="names key"):
        signed.verify_signature(first)
    known = learn_keys(registry, "BW", [proof_of(sc, r) for r in reversed(rotations)])
    key = key_at(known, "BW", signed.header.height)
    assert key == last.public
    signed.verify_signature(key)
    # each rotation's block is still the old key's, the next block the new one's
    blocks = sc.ledger.blocks["BW"]
    for height in range(1, len(blocks) + 1):
        h = blocks[height - 1].header
        assert key_at(known, "BW", height) is not None
        assert key_at(known, "BW", height).key_id == h.key_id  # type: ignore[union-attr]


def test_a_rotation_is_proved_only_under_the_key_it_replaces(
    rotated: tuple[Scenario, list[Record], Ed25519Signer],
) -> None:
    sc, rotations, _ = rotated
    registry = sc.net.registry
    # the second rotation alone: its block is signed by a key the registry never had
    with pytest.raises(InvalidData, match=r"key record BW/\d+"):
        learn_keys(registry, "BW", [proof_of(sc, rotations[1])])
    # the first rotation with its header signed again by a thief's key
    forged = proof_of(sc, rotations[0])
    header = forged.signed.header
    other = KeyProof(
        forged.record,
        forged.index,
        forged.proof,
        SignedHeader(header, signer("thief").sign(Tag.SIG_HEADER, header.raw)),
    )
    with pytest.raises(InvalidData, match="key record"):
        learn_keys(registry, "BW", [other])
    # a rotation of another chain, or a record that is not in the header's tree
    with pytest.raises(InvalidData, match=r"is not a key\.rotate of EU"):
        learn_keys(registry, "EU", [forged])
    moved = KeyProof(forged.record, forged.index + 1, forged.proof, forged.signed)
    with pytest.raises(InvalidData, match="key record"):
        learn_keys(registry, "BW", [moved])


def test_a_governance_replacement_counts_only_with_the_threshold() -> None:
    sc = Scenario(Network.create(("BW", "EU"), ()))
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    eu = sc.ledger.state.head("EU")
    assert eu is not None
    fresh = signer("eu-fresh")
    body = {"code": "EU", "key": fresh.public.hex(), "from_height": eu.height + 1, "reason": "x"}
    replace = sc.governance(Kind.KEY_REPLACE, body)
    sc.seal(GOVERNANCE_CHAIN, replace)
    sc.net.signers["EU"] = fresh
    sc.seal("EU", sc.party("EU", "EU-AFTER", "trader"))
    registry = sc.net.registry
    known = learn_keys(registry, "EU", [proof_of(sc, replace)])
    signed = head(sc, "EU")
    assert key_at(known, "EU", signed.header.height) == fresh.public
    signed.verify_signature(fresh.public)
    # the old key no longer signs EU after from_height
    assert key_at(known, "EU", eu.height) == Network.create(("BW", "EU"), ()).signers["EU"].public
    # the same record with one governance signature of the two the registry asks for
    doc = replace.as_json()
    doc["sigs"] = doc["sigs"][:1]
    held = proof_of(sc, replace)
    weak = KeyProof(Record.from_value(doc), held.index, held.proof, held.signed)
    with pytest.raises(InvalidData, match="signed by 1 of 2 required"):
        learn_keys(registry, "EU", [weak])
    # a replacement of another participant changes nothing of EU's
    with pytest.raises(InvalidData, match="changes no key of BW"):
        learn_keys(registry, "BW", [held])
