"""Hostile peers: lies, tampered blocks, huge and slow answers are refused and backed off.

The victim (AE's node) is configured with one honest peer (BW's node, behind a
proxy that stays cut at first) and nine fake peers, one per kind of
misbehaviour, each speaking as a participant that is not running (RU, EU,
...), with that participant's real peer token. The fakes hold a copy of BW's
real chain, taken from BW's node, announce it (one of them announces far more
than it has), push their heads to the victim every 0.3 s, and answer pulls
with blocks tampered in one way each (a changed record, a wrong root, a bad
signature, a wrong prev, a missing field), with bodies over
``gossip.MAX_BODY`` (declared or streamed), too slowly, or a byte at a time
(each just in time for the read timeout). The victim must never hold a
tampered block, count the refusals in ``kpl_rejected_blocks``, pull from the
fakes less and less (backoff, pushed heads included), and still sync BW's
chain from BW, by its own gossip rounds (BW cannot reach the victim)."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import pytest

from kpledger.ledger.blocks import Header
from kpledger.node.gossip import MAX_BODY

FAKES = {
    "RU": "record",  # a digit of a record changed: the root no longer matches
    "EU": "root",  # the header's root changed: the signature no longer matches
    "IN": "sig",  # a flipped signature byte
    "NA": "prev",  # the header's prev changed: not linked to the previous header
    "GH": "malformed",  # a header without its root: not even a block
    "CD": "declared",  # Content-Length over MAX_BODY
    "ZA": "streamed",  # a chunked body that runs past MAX_BODY
    "AO": "slow",  # answers after the victim's timeout
    "ZW": "trickle",  # answers a byte at a time, each just within the timeout
    "CA": "overclaim",  # honest blocks, but claims far more than it has
}
PHASE = 14.0  # seconds the victim spends with the fakes only
TIMEOUT = 1.0  # the victim's gossip.timeout
BATCHES = 8  # blocks of BW's chain written before the copy is taken


def _flip_hex(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


def tamper(block: dict[str, Any], mode: str) -> dict[str, Any]:
    bad = copy.deepcopy(block)
    if mode == "record":
        record = next(r for r in bad["records"] if "weight" in r["body"])
        record["body"]["weight"] += 1
    elif mode == "root":
        bad["header"]["root"] = _flip_hex(bad["header"]["root"])
    elif mode == "sig":
        bad["sig"] = _flip_hex(bad["sig"])
    elif mode == "prev":
        bad["header"]["prev"] = _flip_hex(bad["header"]["prev"])
    elif mode == "malformed":
        del bad["header"]["root"]
    else:
        raise AssertionError(mode)
    return bad


def behave(fake: Any, mode: str, chain: list[dict[str, Any]], honest_top: int) -> None:
    """Make ``fake`` misbehave in ``mode`` with a copy of BW's chain."""
    top = chain[-1]["header"]
    fake.claim = {"BW": {"height": top["height"], "hash": "00" * 32}}
    if mode == "overclaim":
        fake.chains = {"BW": chain[:honest_top]}
        fake.claim = {"BW": {"height": top["height"] + 1000, "hash": "00" * 32}}
        return

    def serve(handler: Any, name: str, start: int, limit: int) -> None:
        if mode == "declared":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(MAX_BODY + 1))
            handler.end_headers()
            handler.wfile.write(b'{"blocks": [')
            return
        if mode == "streamed":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            chunk = b" " * (1 << 20)
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
            handler.wfile.write(b'3\r\n{"b\r\n')
            for _ in range(MAX_BODY // len(chunk) + 2):
                handler.wfile.write(frame)
            handler.wfile.write(b"0\r\n\r\n")
            return
        if mode == "trickle":
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(1 << 20))
            handler.end_headers()
            while not fake.closed:
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(TIMEOUT / 2)
            return
        if mode == "slow":
            time.sleep(TIMEOUT * 3)
            fake.send_json(handler, {"blocks": chain[start - 1 : start - 1 + limit]})
            return
        blocks = [tamper(b, mode) for b in chain[start - 1 : start - 1 + limit]]
        fake.send_json(handler, {"blocks": blocks})

    fake.serve_blocks = serve


@pytest.mark.timeout(120)
def test_hostile_peers_are_refused_and_backed_off(
    cluster: Any, proxies: Any, fake_peer: Any, harness: Any
) -> None:
    net = cluster(
        ("BW", "AE", *FAKES),
        (),
        blocks={"heartbeat": 60.0},  # every block of the copy holds records
        gossip={"timeout": TIMEOUT},
    )
    to_bw = proxies.add("AE->BW", harness.port_of(net.nodes["BW"].url))
    to_ae = proxies.add("BW->AE", harness.port_of(net.nodes["AE"].url))
    proxies.set_cut([to_bw, to_ae], True)  # BW never reaches AE: AE must come to BW itself
    net.route("AE", "BW", to_bw.url)
    net.route("BW", "AE", to_ae.url)
    fakes = {code: fake_peer(net.network_id, code) for code in FAKES}
    for code, fake in fakes.items():
        net.route("AE", code, fake.url)

    # BW writes a chain of a few blocks, each with records; the fakes copy it
    net.start("BW")
    writer = harness.ChainWriter(net.network_id, "BW", "hp")
    bw = net.operator("BW")
    for _ in range(BATCHES):
        ids = harness.submit_all(bw, writer.mixed(20))
        bw.wait_settled(ids, timeout=20)
    answer = net.reader("BW").get("/v1/chains/BW/blocks", **{"from": 1, "limit": 1000})
    chain = answer["blocks"]
    assert len(chain) >= BATCHES
    assert all(b["records"] for b in chain)
    genuine = {b["header"]["height"]: Header.from_json(b["header"]).hash.hex() for b in chain}
    for code, mode in FAKES.items():
        behave(fakes[code], mode, chain, honest_top=len(chain) // 2)

    # the victim starts with only the fakes to talk to; they push to it as well. The
    # phase counts from the victim's readiness: a loaded machine may take half a minute
    # to start a process, which must not eat the time the victim has with the fakes
    start = time.monotonic()
    net.start("AE")
    end = time.monotonic() + PHASE
    victim = net.nodes["AE"].url
    for code, fake in fakes.items():
        fake.push(victim, net.token(code), interval=0.3)
    seen_heights: set[int] = set()
    with httpx.Client(base_url=victim, timeout=5.0) as http:
        while time.monotonic() < end:
            head = http.get("/v1/heads").json()["heads"].get("BW")
            if head is not None:  # never a tampered block
                assert head["hash"] == genuine.get(head["height"]), head
                seen_heights.add(head["height"])
            time.sleep(0.1)
    # the honest part of the overclaimer's copy was taken, and nothing more
    assert max(seen_heights) == len(chain) // 2, seen_heights
    rejected = _rejections(httpx.get(f"{victim}/metrics", timeout=5.0).text)
    assert rejected.get("block", 0) >= 2, rejected  # the record and prev cases
    assert rejected.get("signature", 0) >= 2, rejected  # the root and signature cases
    assert rejected.get("schema", 0) >= 1, rejected  # the malformed case

    # backoff: each fake was asked for blocks less and less often
    for code, fake in fakes.items():
        hits = [t - start for t in fake.hits() if t >= start]
        # halves of the time from the victim's first call on (a loaded machine may
        # take seconds to start the victim), so the backoff is judged on its own clock
        middle = (hits[0] + end - start) / 2 if hits else (end - start) / 2
        early = sum(1 for t in hits if t < middle)
        late = sum(1 for t in hits if t >= middle)
        shown = (code, FAKES[code], [round(t, 1) for t in hits])
        assert early >= 1, shown
        if FAKES[code] == "trickle":  # an answer that takes all of REQUEST_TIMEOUTS, then again
            assert len(hits) <= 3, shown
            continue
        assert late < early, shown
        assert late <= 2, shown

    # the honest peer comes back: the victim syncs BW's chain from it
    proxies.set_cut([to_bw], False)
    net.wait_converged(("AE", "BW"), timeout=30, at_least={"BW": len(chain)})
    held = net.reader("AE").get("/v1/chains/BW/blocks", **{"from": 1, "limit": 1000})["blocks"]
    real = net.reader("BW").get("/v1/chains/BW/blocks", **{"from": 1, "limit": 1000})["blocks"]
    assert held == real
    net.stop("AE", "BW")
    net.verify_stores(("AE",))


def _rejections(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("kpl_rejected_blocks_total{"):
            labels, value = line.rsplit(" ", 1)
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = out.get(reason, 0.0) + float(value)
    return out
