"""The governance chain's pure rules: who seals ``KP``, key replacement, suspension.

* ``KP`` is sealed by the registry's ``governance.sealer`` (the KP secretariat)
  with its registry key; governance keys only sign records, never blocks;
* a ``key.replace`` binds every later block of its chain, including blocks
  that never witness the replacement (a thief's way around it);
* a suspended participant can neither export nor import: confirmations of
  its certificates are refused too, until it is reinstated.
"""

from __future__ import annotations

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import seal
from kpledger.ledger.chain import propose
from kpledger.ledger.crypto import Ed25519Signer
from kpledger.ledger.errors import BlockError, ParticipantNotActive, SchemaError
from kpledger.ledger.records import Kind
from kpledger.ledger.registry import Participant, Registry
from kpledger.ledger.state import CertificateStatus, key_at


def signer(label: str) -> Ed25519Signer:
    return Ed25519Signer.from_seed(label.encode().ljust(32, b"%"))


def test_kp_is_sealed_by_the_first_authority_by_default() -> None:
    sc = Scenario(Network.create(("BW", "EU")))
    assert sc.net.registry.sealer == "BW"
    assert sc.net.registry.kp_key == sc.net.signers["BW"].public
    assert key_at(sc.ledger.state, "KP", 1) == sc.net.signers["BW"].public
    suspend = sc.governance(Kind.MEMBER_SUSPEND, {"code": "EU", "reason": "review"})
    # a governance key cannot seal a KP block: it only signs records
    forged = propose(
        sc.ledger.state, sc.net.registry, sc.net.governance[0], "KP", [suspend], sc.tick()
    )
    with pytest.raises(BlockError) as info:
        sc.ledger.append(forged.block)
    assert info.value.field == "header.key_id"
    sc.seal("KP", suspend)  # BW's key seals it
    assert sc.ledger.state.head("KP") is not None


def test_sealer_named_in_the_registry() -> None:
    gov = [signer("g0"), signer("g1")]
    people = [
        Participant("BW", "Botswana", "authority", "http://bw", signer("bw").public),
        Participant("EU", "European Union", "authority", "http://eu", signer("eu").public),
        Participant("WDC", "World Diamond Council", "auditor", "http://wdc", signer("w").public),
    ]
    common = {"name": "n", "created": "2026-01-01T00:00:00Z", "governance": gov, "threshold": 2}
    reg = Registry.create(participants=people, sealer="EU", **common)  # type: ignore[arg-type]
    assert reg.sealer == "EU"
    assert reg.kp_key == people[1].key
    assert Registry.parse(reg.to_bytes()).sealer == "EU"
    with pytest.raises(SchemaError, match="must be an authority") as info:
        Registry.create(participants=people, sealer="WDC", **common)  # type: ignore[arg-type]
    assert info.value.field == "registry.governance.sealer"
    with pytest.raises(SchemaError, match="must be an authority"):
        Registry.create(participants=people, sealer="RU", **common)  # type: ignore[arg-type]
    # a network of auditors only has no KP chain at all
    only = Registry.create(participants=people[2:], **common)  # type: ignore[arg-type]
    assert only.sealer is None
    assert only.kp_key is None


def test_key_replace_binds_blocks_that_do_not_witness_it() -> None:
    sc = Scenario(Network.create(("BW", "EU")))
    state = sc.ledger.state
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    stolen = sc.net.signer("EU")
    new = signer("eu-new")
    eu = state.head("EU")
    assert eu is not None
    sc.seal(
        "KP",
        sc.governance(
            Kind.KEY_REPLACE,
            {
                "code": "EU",
                "key": new.public.hex(),
                "from_height": eu.height + 1,
                "reason": "theft",
            },
        ),
    )
    # the thief signs the next block and witnesses nothing of KP (nor anything else)
    theirs, _ = seal(
        signer=stolen,
        network=sc.net.network_id,
        chain="EU",
        prev=eu,
        frontier=state.frontier("EU"),
        records=[],
        time=sc.tick(),
        witness=[],
    )
    with pytest.raises(BlockError, match="key") as info:
        sc.ledger.append(theirs)
    assert info.value.field == "header.key_id"
    # the same block by the replacement key, witnessing no KP either, is the chain's
    ours, _ = seal(
        signer=new,
        network=sc.net.network_id,
        chain="EU",
        prev=eu,
        frontier=state.frontier("EU"),
        records=[],
        time=sc.now(),
        witness=[],
    )
    sc.ledger.append(ours)
    assert state.head("EU") == ours.header
    # blocks before from_height keep verifying under the old key
    assert key_at(state, "EU", eu.height) == stolen.public


def test_import_from_a_suspended_participant_is_refused() -> None:
    sc = Scenario(Network.create(("BW", "EU")))
    sc.seal(
        "BW",
        sc.party("BW", "BW-MINE", "miner"),
        sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000),
    )
    sc.seal("EU", sc.party("EU", "EU-IMP", "importer"))
    sc.seal("BW", sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    sc.seal("KP", sc.governance(Kind.MEMBER_SUSPEND, {"code": "BW", "reason": "review"}))
    with pytest.raises(ParticipantNotActive, match="BW is suspended") as info:
        sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    assert info.value.field == "body.ref"
    sc.seal("KP", sc.governance(Kind.MEMBER_REINSTATE, {"code": "BW", "reason": "complied"}))
    sc.seal("EU", sc.confirm("EU", "BW-C1", "EU-IMP"))
    cert = sc.ledger.state.certificate("BW-C1")
    assert cert is not None
    assert cert.status is CertificateStatus.CONFIRMED
