"""Commercial confidentiality between real node processes (DESIGN.md section 9).

BW exports a parcel to the EU; AE has no part in the trade; WDC audits. The
EU (the certificate's counterpart) and WDC (an auditor) pull the
certificate's disclosures from BW beside its blocks and see the value, the
importer and the exporter's name; AE holds the same blocks, the same heads and
the same derived state, but no clear value or name of the trade: not in its
API answers, not anywhere in its SQLite files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kpledger.ledger.records import Kind
from kpledger.ledger.store import Store
from kpledger.ledger.store.verify import DERIVED
from kpledger.node.client import NodeClient
from kpledger.node.compose import Composer

EXPORTER = ("Okavango Quiet Trading", "12 Hidden Road, Gaborone")
IMPORTER = ("Schelde Discreet NV", "7 Silent Quay, Antwerp")
SEAL = "SEAL-QX-77310"
VALUE = 987_654_321  # US cents
SECOND = 123_456_789  # US cents: a shipment sent while the importer's node is down
SECOND = 123_456_789  # US cents: the second shipment, sent while the EU's node is down
SECRETS = [*EXPORTER, *IMPORTER, SEAL, str(VALUE), str(SECOND)]


def submit(client: NodeClient, composer: Composer, kind: Kind, body: dict[str, Any]) -> Any:
    draft = composer.record(kind, body)
    [result] = client.submit([draft])
    assert result["status"] == "pending", result
    outcome = client.wait_settled([draft["id"]], timeout=30)[draft["id"]]
    assert outcome["status"] == "committed", outcome
    return outcome


def until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.2)


def files_of(db: Path) -> list[Path]:
    return [p for p in db.parent.iterdir() if p.name.startswith(db.name)]


@pytest.mark.timeout(240)
def test_the_uninvolved_node_holds_no_clear_value_or_name(cluster: Any) -> None:
    net = cluster(("BW", "EU", "AE"), ("WDC",))
    net.start()
    bw, eu = net.operator("BW"), net.operator("EU")
    cb, ce = Composer.connect(bw), Composer.connect(eu)
    exporter, importer = cb.new_party_id(), ce.new_party_id()
    assert "OKAVANGO" not in exporter.upper()  # party ids carry no name
    name, address = EXPORTER
    submit(bw, cb, Kind.PARTY_REGISTER, cb.party_register(exporter, name, "exporter", address))
    name, address = IMPORTER
    submit(eu, ce, Kind.PARTY_REGISTER, ce.party_register(importer, name, "importer", address))
    parcel = cb.parcel_register("BW-CF1", exporter, 12_345, VALUE, mine="Jwaneng")
    submit(bw, cb, Kind.PARCEL_REGISTER, parcel)
    body = cb.certificate_issue("BW-CF-001", ["BW-CF1"], "EU", *IMPORTER, seal=SEAL)
    assert body["value"] == VALUE
    submit(bw, cb, Kind.CERTIFICATE_ISSUE, body)

    # the importer sees the certificate once its node pulled BW's block and disclosures
    until(lambda: _held(eu) and eu.get("/v1/certificates/BW-CF-001").get("value") == VALUE)
    cert = eu.get("/v1/certificates/BW-CF-001")
    assert (cert["importer"], cert["seal"]) == (IMPORTER[0], SEAL)
    submit(eu, ce, Kind.CERTIFICATE_CONFIRM, ce.certificate_confirm("BW-CF-001", importer))
    # the imported parcel is worth its certificate line: the EU needs no other disclosure
    parcel = eu.get("/v1/parcels/BW-CF1")
    assert (parcel["jurisdiction"], parcel["value"]) == ("EU", VALUE)
    parties = eu.get("/v1/certificates/BW-CF-001/parties")
    assert (parties["exporter"]["name"], parties["exporter"]["address"]) == EXPORTER

    codes = ["BW", "EU", "AE", "WDC"]
    net.wait_converged(codes, timeout=60, chains=("BW", "EU", "AE"))
    wdc = NodeClient(net.nodes["WDC"].url, net.token("WDC", "auditor_token"), timeout=10)
    until(lambda: wdc.get("/v1/certificates/BW-CF-001").get("value") == VALUE)
    ae = NodeClient(net.nodes["AE"].url, net.token("WDC", "auditor_token"), timeout=10)
    seen = ae.get("/v1/certificates/BW-CF-001")  # even an auditor's token on AE's node
    assert "value" not in seen
    assert "importer" not in seen
    assert set(seen["committed"]) == {"value", "importer", "seal"}
    assert seen["status"] == "confirmed"
    for client in (wdc, ae):
        client.close()

    # the EU's node restarts while BW ships again: it pulls the new certificate's
    # disclosures from the place its store kept (node.disclose.pull_disclosures)
    net.nodes["EU"].stop()
    second = cb.parcel_register("BW-CF2", exporter, 2_000, SECOND, mine="Orapa")
    submit(bw, cb, Kind.PARCEL_REGISTER, second)
    body = cb.certificate_issue("BW-CF-002", ["BW-CF2"], "EU", *IMPORTER, seal=SEAL + "-2")
    submit(bw, cb, Kind.CERTIFICATE_ISSUE, body)
    net.nodes["EU"].start()
    net.nodes["EU"].wait_ready()
    eu = net.operator("EU")
    until(lambda: _value(eu, "BW-CF-002") == SECOND, timeout=60)
    net.wait_converged(codes, timeout=60, chains=("BW", "EU", "AE"))

    net.stop()
    stores = {c: Store.open(net.nodes[c].db_url, create=False) for c in codes}
    try:
        # identical state: every derived table row for row, whatever each may see
        for name in DERIVED:
            rows = {c: s.verifier.table_rows(name) for c, s in stores.items()}
            assert all(r == rows["BW"] for r in rows.values()), name
        assert stores["AE"].disclosures.of_records([cert_leaf(stores["BW"])]) == []
        assert len(stores["EU"].disclosures.of_records([cert_leaf(stores["BW"])])) == 5
        # the EU's place in BW's disclosures survived the restart and reached BW's head
        bw_size = stores["BW"].head("BW").size  # type: ignore[union-attr]
        assert stores["EU"].disclosures.pulled("BW") == bw_size
        assert stores["AE"].disclosures.pulled("BW") == bw_size  # asked, answered nothing
    finally:
        for s in stores.values():
            s.close()
    # and not one clear value or name of the trade in any file of AE's store
    for path in files_of(net.nodes["AE"].db_path):
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path.name, secret)
    eu_data = b"".join(p.read_bytes() for p in files_of(net.nodes["EU"].db_path))
    assert IMPORTER[0].encode() in eu_data  # the search finds what is there


def _value(client: NodeClient, number: str) -> Any:
    try:
        return client.get(f"/v1/certificates/{number}").get("value")
    except Exception:  # noqa: BLE001 - not replicated yet
        return None


def _held(client: NodeClient) -> bool:
    try:
        client.get("/v1/certificates/BW-CF-001")
    except Exception:  # noqa: BLE001 - not replicated yet
        return False
    return True


def cert_leaf(store: Store) -> bytes:
    cert = store.certificate("BW-CF-001")
    assert cert is not None
    return cert.issue_ref.hash


@pytest.mark.timeout(240)
def test_a_restarted_node_pulls_disclosures_from_its_kept_place(cluster: Any) -> None:
    """The EU's node stops while BW ships a second certificate to the EU, then starts
    again: it pulls the new certificate's disclosures, and the place its store kept for
    BW's disclosures (``node.disclose.pull_disclosures``) reaches BW's log size."""
    net = cluster(("BW", "EU"), ())
    net.start()
    bw, eu = net.operator("BW"), net.operator("EU")
    cb, ce = Composer.connect(bw), Composer.connect(eu)
    exporter, importer = cb.new_party_id(), ce.new_party_id()
    submit(
        bw,
        cb,
        Kind.PARTY_REGISTER,
        cb.party_register(exporter, *EXPORTER[:1], "exporter", EXPORTER[1]),
    )
    submit(
        eu,
        ce,
        Kind.PARTY_REGISTER,
        ce.party_register(importer, *IMPORTER[:1], "importer", IMPORTER[1]),
    )
    for parcel, value in (("BW-RS1", VALUE), ("BW-RS2", SECOND)):
        submit(
            bw,
            cb,
            Kind.PARCEL_REGISTER,
            cb.parcel_register(parcel, exporter, 2_000, value, mine="Orapa"),
        )
    submit(
        bw,
        cb,
        Kind.CERTIFICATE_ISSUE,
        cb.certificate_issue("BW-RS-001", ["BW-RS1"], "EU", *IMPORTER),
    )
    until(lambda: _value(eu, "BW-RS-001") == VALUE, timeout=60)

    net.nodes["EU"].stop()
    submit(
        bw,
        cb,
        Kind.CERTIFICATE_ISSUE,
        cb.certificate_issue("BW-RS-002", ["BW-RS2"], "EU", *IMPORTER),
    )
    net.nodes["EU"].start()
    net.nodes["EU"].wait_ready()
    eu = net.operator("EU")
    until(lambda: _value(eu, "BW-RS-002") == SECOND, timeout=60)
    net.wait_converged(("BW", "EU"), timeout=60, chains=("BW", "EU"))
    net.stop()
    stores = {c: Store.open(net.nodes[c].db_url, create=False) for c in ("BW", "EU")}
    try:
        size = stores["BW"].head("BW").size  # type: ignore[union-attr]
        assert stores["EU"].disclosures.pulled("BW") == size
    finally:
        for s in stores.values():
            s.close()


def _value(client: NodeClient, number: str) -> Any:
    try:
        return client.get(f"/v1/certificates/{number}").get("value")
    except Exception:  # noqa: BLE001 - not replicated yet
        return None
