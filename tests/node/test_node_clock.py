"""A node with a skewed clock cannot move the network's time (issue 9, item 2).

BW, AE and RU run as real processes; BW exports a parcel to AE. AE's node is
then restarted with its clock 40 days ahead (``node.clock_offset``, a setting
for tests only), later 40 days behind:

* ahead: AE used to seal headers dated 40 days ahead, which its peers took; its
  own confirmation of the fresh certificate was refused as expired, and BW's
  void citing AE's future header committed, returning the parcels to BW while
  the goods were with AE. Now AE seals at the median of the chains' times, its
  headers stay near the real time on every node, BW's void is refused and AE's
  confirmation commits;
* behind: AE's chain time used to stand still (times never go back), so AE
  could confirm a certificate that had expired weeks ago. Now AE's headers
  keep the real time and the confirmation is refused as expired.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from kpledger.ledger.records import Kind, Record, make_record
from kpledger.ledger.rules import certificate_origin

DAY = 86_400
SKEW = 40 * DAY


def _when(offset_seconds: float = 0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _age(time_text: str) -> float:
    """Seconds from ``time_text`` to now (negative: in the future)."""
    moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds()


def _record(net: Any, chain: str, kind: Kind, rid: str, body: dict[str, Any], at: str) -> Record:
    return make_record(
        network=net.network_id, chain=chain, kind=kind, record_id=rid, time=at, body=body
    )


def _issue(net: Any, writer: Any, number: str, *, issued_at: str, days: int) -> Record:
    parcel = writer.live()[0]
    custodian, weight, value = writer.parcels[parcel]
    writer.spent.add(parcel)
    origin = {"BW": weight}
    issued = issued_at[:10]
    expires = (datetime.fromisoformat(issued) + timedelta(days=days)).date().isoformat()
    body = {
        "number": number,
        "destination": "AE",
        "exporter": custodian,
        "importer": {"name": "Importer in AE", "address": "Dubai"},
        "lines": [
            {"parcel": parcel, "weight": weight, "value": value, "hs": "7102.31", "origin": origin}
        ],
        "carats": weight,
        "value": value,
        "parcels": 1,
        "origin": certificate_origin([tuple(origin.items())]),
        "issued": issued,
        "expires": expires,
        "seal": f"SEAL-{number}",
    }
    return _record(net, "BW", Kind.CERTIFICATE_ISSUE, f"issue-{number}", body, issued_at)


def _confirm(
    net: Any, number: str, ref: dict[str, Any], custodian: str, parcel: str, weight: int, at: str
) -> Record:
    body = {
        "number": number,
        "ref": ref,
        "custodian": custodian,
        "received": [{"parcel": parcel, "weight": weight}],
    }
    return _record(net, "AE", Kind.CERTIFICATE_CONFIRM, f"confirm-{number}", body, at)


def _void(net: Any, number: str, importer_height: int) -> Record:
    body = {
        "number": number,
        "reason": "not confirmed before expiry",
        "importer_height": importer_height,
    }
    return _record(net, "BW", Kind.CERTIFICATE_VOID, f"void-{number}", body, _when())


def _settle(client: Any, record: Record) -> dict[str, Any]:
    answer = client.submit([record])[0]
    if answer["status"] in ("invalid", "rejected"):
        return dict(answer)
    return dict(client.wait_settled([record.id], timeout=30)[record.id])


def _restart_skewed(net: Any, code: str, offset: float) -> None:
    net.stop(code)
    net.configure(code, lambda doc: doc["node"].update({"clock_offset": offset}))
    net.start(code)


def _ae_moves_on_in_real_time(net: Any, since: int) -> dict[str, Any]:
    """Wait until every node holds AE blocks sealed after ``since``; their times must
    be the real time, not AE's clock."""
    deadline = time.monotonic() + 60
    while True:
        heads = {c: net.heads(c)["AE"] for c in ("BW", "RU", "AE")}
        if all(h["height"] >= since + 2 for h in heads.values()):
            break
        assert time.monotonic() < deadline, heads
        time.sleep(0.2)
    for code, head in heads.items():
        assert abs(_age(head["time"])) < 300, (code, head)
    return heads["BW"]


def _skew_metric(net: Any, code: str) -> float:
    text = httpx.get(f"{net.nodes[code].url}/metrics", timeout=5.0).text
    for line in text.splitlines():
        if line.startswith("kpl_clock_skew_seconds "):
            return float(line.split()[1])
    raise AssertionError("kpl_clock_skew_seconds missing")


@pytest.mark.timeout(480)  # three nodes started, AE restarted twice: minutes when loaded
def test_a_skewed_clock_moves_neither_time_nor_expiry(cluster: Any, harness: Any) -> None:
    net = cluster(("BW", "AE", "RU"), ())
    net.start()
    bw, ae = net.operator("BW"), net.operator("AE")
    bw_w = harness.ChainWriter(net.network_id, "BW", "clk")
    ae_w = harness.ChainWriter(net.network_id, "AE", "clk")
    bw.wait_settled(harness.submit_all(bw, [bw_w.party(), bw_w.parcel(), bw_w.parcel()]))
    ae.wait_settled(harness.submit_all(ae, [ae_w.party()]))
    importer = ae_w.parties[0]

    # a fresh certificate, valid 10 days, and an old one that expired 20 days ago
    fresh_parcel = bw_w.live()[0]
    fresh = _issue(net, bw_w, "BW-CLK-1", issued_at=_when(), days=10)
    old_parcel = bw_w.live()[0]
    old = _issue(net, bw_w, "BW-CLK-2", issued_at=_when(-30 * DAY), days=10)
    refs = {}
    for record in (fresh, old):
        got = _settle(bw, record)
        assert got["status"] == "committed", got
        refs[record.id] = {"chain": "BW", "index": got["index"], "hash": got["hash"]}
    heads = net.wait_converged(("BW", "AE", "RU"), timeout=60, chains=("BW", "AE", "RU"))

    # ---- AE's clock 40 days ahead
    _restart_skewed(net, "AE", SKEW)
    head = _ae_moves_on_in_real_time(net, heads["AE"]["height"])
    assert _skew_metric(net, "AE") > SKEW - 600
    # BW cannot void the delivered certificate on AE's clock
    void = _settle(bw, _void(net, "BW-CLK-1", head["height"]))
    assert void["status"] == "rejected", void
    assert void["code"] == "void-invalid", void
    # and AE confirms it: not expired in the network's time
    weight = bw_w.parcels[fresh_parcel][1]
    confirm = _confirm(net, "BW-CLK-1", refs[fresh.id], importer, fresh_parcel, weight, _when())
    got = _settle(ae, confirm)
    assert got["status"] == "committed", got
    net.wait_converged(("BW", "AE", "RU"), timeout=60)
    for code in ("BW", "RU"):
        seen = net.reader(code).outcome(confirm.id, "AE")
        assert seen is not None
        assert seen["status"] == "committed", (code, seen)

    # ---- AE's clock 40 days behind
    before = net.heads("BW")["AE"]["height"]
    _restart_skewed(net, "AE", -SKEW)
    _ae_moves_on_in_real_time(net, before)
    assert _skew_metric(net, "AE") < -(SKEW - 600)
    weight = bw_w.parcels[old_parcel][1]
    late = _confirm(net, "BW-CLK-2", refs[old.id], importer, old_parcel, weight, _when(-41 * DAY))
    got = _settle(ae, late)
    assert got["status"] == "rejected", got
    assert "expired" in got["reason"], got

    # the clock fixed, the node's own time is used again
    _restart_skewed(net, "AE", 0)
    before = net.heads("BW")["AE"]["height"]
    _ae_moves_on_in_real_time(net, before)
    assert _skew_metric(net, "AE") == 0
