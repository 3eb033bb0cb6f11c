"""Refusals and releases in a store: derived state, and bundles that verify offline."""

from __future__ import annotations

from kpledger.ledger.bundle import serialize_bundle
from kpledger.ledger.state import CertificateStatus, ParcelStatus
from kpledger.ledger.store.bundles import build_bundle
from tests.store.test_store_bundles import Opener, Story, kinds, verified


def test_refused_parcel_goes_back_and_its_bundle_verifies(open_store: Opener) -> None:
    s = Story(open_store, ("BW", "EU", "AE"))
    s.seal(
        "BW",
        s.sc.party("BW", "BW-MINE", "miner"),
        s.sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000),
    )
    s.seal("EU", s.sc.party("EU", "EU-IMP", "importer"))
    s.seal("AE", s.sc.party("AE", "AE-HUB", "trader"))
    s.seal("BW", s.sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    s.seal("EU", s.sc.refuse("EU", "BW-C1", "seal-broken", "seal SEAL-BW-C1 cut"))
    cert = s.store.certificate("BW-C1")
    assert cert is not None
    assert cert.status is CertificateStatus.REFUSED
    assert cert.closed_ref is not None
    assert cert.closed_ref.chain == "EU"
    assert s.store.confirmation_index("EU", "BW-C1") == cert.closed_ref.index
    p = s.store.parcel("BW-P1")
    assert p is not None
    assert (p.chain, p.custodian, p.status) == ("BW", "BW-MINE", ParcelStatus.ACTIVE)
    # the refused parcel's bundle proves it is back with the exporter
    s.checkpoint()
    verdict = verified(s.store, "BW-P1")
    assert [(c.number, c.status) for c in verdict.certificates] == [
        ("BW-C1", CertificateStatus.REFUSED)
    ]
    # shipped again elsewhere: the replay puts the refusal before the new export
    s.seal("BW", s.sc.issue("BW", "BW-C2", "AE", "BW-MINE", ["BW-P1"]))
    s.seal("AE", s.sc.confirm("AE", "BW-C2", "AE-HUB"))
    s.checkpoint()
    verdict = verified(s.store, "BW-P1")
    assert verdict.chain == "AE"
    doc = build_bundle(s.store, "BW-P1")
    assert [(c, k) for c, _, k in kinds(doc) if k.startswith("certificate.")] == [
        ("AE", "certificate.confirm"),
        ("BW", "certificate.issue"),
        ("BW", "certificate.issue"),
        ("EU", "certificate.refuse"),
    ]
    assert serialize_bundle(doc) == serialize_bundle(build_bundle(s.store, "BW-P1"))


def test_restricted_origin_refusal_bundle_carries_the_policy(open_store: Opener) -> None:
    s = Story(open_store, ("RU", "EU"))
    s.seal(
        "RU",
        s.sc.party("RU", "RU-MINE", "miner"),
        s.sc.register("RU", "RU-P1", "RU-MINE", 5_000, 475_000),
    )
    s.seal("EU", s.sc.party("EU", "EU-IMP", "importer"), s.sc.restrict("EU", "RU"))
    s.seal("RU", s.sc.issue("RU", "RU-C1", "EU", "RU-MINE", ["RU-P1"]))
    s.seal("EU", s.sc.refuse("EU", "RU-C1", "restricted-origin", "G7/EU ban on Russian rough"))
    s.checkpoint()
    doc = build_bundle(s.store, "RU-P1")
    assert "policy.restrict_origin" in [k for _, _, k in kinds(doc)]
    verdict = verified(s.store, "RU-P1")
    assert verdict.status is ParcelStatus.ACTIVE
    assert verdict.chain == "RU"


def test_release_in_store(open_store: Opener) -> None:
    s = Story(open_store)
    s.seal(
        "BW",
        s.sc.party("BW", "BW-MINE", "miner"),
        s.sc.register("BW", "BW-P1", "BW-MINE", 10_000, 1_340_000),
    )
    s.seal("EU", s.sc.party("EU", "EU-IMP", "importer"))
    s.seal("BW", s.sc.issue("BW", "BW-C1", "EU", "BW-MINE", ["BW-P1"]))
    s.seal("EU", s.sc.confirm("EU", "BW-C1", "EU-IMP", {"BW-P1": 9_000}))
    held = s.store.parcel("BW-P1")
    assert held is not None
    assert held.status is ParcelStatus.HELD
    s.seal("EU", s.sc.release("EU", "BW-P1", "re-weighed"))
    released = s.store.parcel("BW-P1")
    assert released is not None
    assert (released.status, released.certificate) == (ParcelStatus.ACTIVE, None)
    s.checkpoint()
    verdict = verified(s.store, "BW-P1")
    assert verdict.status is ParcelStatus.ACTIVE
