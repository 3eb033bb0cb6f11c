"""The in-process example: the KP story (``cli.story``) played in memory into a SQL store.

Five authorities (BW, RU, AE, EU, IN) play ``KP_STORY`` through the story's
one builder (``cli.story.Story``), as ``kpl demo`` does on a network of node
processes; here each authority is a ``MemoryAuthority``, which answers the
builder's reads from one SQL store and seals each submitted step at once as
that authority's next block, fully verified on the way in, as a node of the
network would. No process starts and no socket opens. The story's clock
(``StoryClock``) starts on 2 March 2026 at 09:00 UTC and moves a minute per
block, so every run is dated alike. When the story is played, Botswana
registers one more parcel and the clock passes the quarter's end (1 April),
where every authority seals its ``stats.report`` of 2026-Q1 (the public
statistics take their USD from those reports). The story ends by
printing a parcel's lineage back to the mines and an RFC 9162 inclusion proof
checked against a signed checkpoint.

The keys are made afresh on each run (``Network.create(seed=None)``) and live
only in memory: the shipped command holds no fixed key. The network and its
keys come back in ``ExampleResult.net``, for a caller that signs more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from kpledger.api.deps import Caller
from kpledger.api.provenance import certificate_view, parcel_view, reveal
from kpledger.cli.story import (
    KP_STORY,
    LATE_PRODUCTION,
    Story,
    StoryResult,
    final_parcel,
    play,
    quarter_reports,
)
from kpledger.devtools.workload import Network
from kpledger.ledger.blocks import Block
from kpledger.ledger.canonical import sha256
from kpledger.ledger.chain import propose
from kpledger.ledger.commit import commit, keyed_salts
from kpledger.ledger.disclosed import check_disclosed
from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.merkle import verify_inclusion
from kpledger.ledger.records import Record, seal_record
from kpledger.ledger.state import key_at
from kpledger.ledger.store import Store
from kpledger.ledger.store.outcome import Outcome

__all__ = ["AUTHORITIES", "ExampleResult", "MemoryAuthority", "StoryClock", "run_example"]

#: the authorities of the example: every chapter of ``KP_STORY`` is played
AUTHORITIES = ("BW", "RU", "AE", "EU", "IN")
#: the quarter the example's story happens in, and when its reports are sealed
REPORTED_QUARTER = "2026-Q1"
REPORTED_AFTER = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


@dataclass
class StoryClock:
    """The example's time: records are dated ``now()``, and each block is sealed a
    minute later (``tick``), so that a run is dated the same way every time."""

    at: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))

    def now(self) -> str:
        return self.at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def tick(self) -> str:
        self.at += timedelta(minutes=1)
        return self.now()


@dataclass
class ExampleResult:
    store: Store
    final_parcel: str
    net: Network
    #: the story's builder on the in-memory authorities, for a caller that adds steps
    story: Story
    #: the refusals met: outcomes as a node answers them (``rule``, ``reason``, ...)
    refused: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    proof_size: int = 0
    proof_steps: int = 0


@dataclass
class MemoryAuthority:
    """An authority held in memory, answering what ``Story`` asks of a node's operator
    API: the operator's view of parcels and certificates, read from ``store`` as the
    API's routes render them, and each submission sealed at once as the authority's
    next block (its refusals answered as the node answers them)."""

    chain: str
    net: Network
    store: Store
    clock: StoryClock
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, path: str, **params: Any) -> Any:
        caller = Caller("operator", self.chain)
        kind, _, key = path.removeprefix("/v1/").partition("/")
        key = unquote(key)
        if kind == "parcels" and (parcel := self.store.parcel(key)) is not None:
            clear = reveal(self.store, [parcel.value])
            return parcel_view(parcel, caller, self.chain, clear).model_dump(mode="json")
        if kind == "certificates" and (cert := self.store.certificate(key)) is not None:
            view = certificate_view(self.store, cert, caller, self.chain)
            return view.model_dump(mode="json")
        if kind == "officer" and key == "stats-report":
            body = self.store.audit.report_body(self.chain, str(params["quarter"]))
            return {"record": {"body": body}}
        raise LedgerError(f"{self.chain} holds nothing at {path}")

    def seal(self, records: Sequence[Record] = ()) -> tuple[Block, list[Outcome]]:
        """Seal ``records`` (none: a heartbeat) as this chain's next block, into the store."""
        signer = self.net.signer(self.chain)
        proposal = propose(
            self.store, self.net.registry, signer, self.chain, records, self.clock.tick()
        )
        if proposal.deferred:
            raise InvalidData(f"{self.chain} could not seal {len(proposal.deferred)} records")
        self.store.writer.apply(proposal.block)
        refused = [Outcome.refused(self.chain, exc).at(0, r.id) for r, exc in proposal.rejected]
        return proposal.block, refused

    def commit(self, draft: dict[str, Any]) -> Record:
        """The committed record of a clear draft, as the writer's node makes it (salts
        keyed by the example network's fixed secret, so a run repeats), its disclosure
        rules checked against the store."""
        scope = f"{draft.get('network')}\n{draft.get('chain')}\n{draft.get('id')}"
        secret = sha256(f"kpledger-test-salts:{self.net.network_id}".encode())
        record = seal_record(draft, salts=keyed_salts(secret, scope))
        check_disclosed(self.store, record, self._clear(record))
        return record

    def _clear(self, record: Record) -> Callable[[str], int | str | None]:
        own = {commit(d.value, d.salt).digest.hex(): d.value for d in record.disclosures}
        return lambda c: own[c] if c in own else self.store.disclosures.clear([c]).get(c)

    def submit(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        parsed = [self.commit(r) for r in records]
        block, refused = self.seal(parsed)
        position = {r.id: i for i, r in enumerate(parsed)}
        for outcome in refused:
            rid = str(outcome.id)
            self.outcomes[rid] = outcome.at(position[rid], rid).to_json()
        committed = self.store.queue.outcomes(self.chain, [r.id for r in block.records])
        self.outcomes.update(
            (rid, o.at(position[rid], rid).to_json()) for rid, o in committed.items()
        )
        return [Outcome.pending(self.chain).at(i, r.id).to_json() for i, r in enumerate(parsed)]

    def check(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        parsed = [self.commit(r) for r in records]
        signer = self.net.signer(self.chain)
        proposal = propose(
            self.store, self.net.registry, signer, self.chain, parsed, self.clock.now()
        )
        refused = {r.id: Outcome.refused(self.chain, exc) for r, exc in proposal.rejected}
        answers = []
        for i, record in enumerate(parsed):
            wire = refused.get(record.id, Outcome.pending(self.chain)).at(i, record.id).to_json()
            if record.id not in refused:
                wire["status"] = "valid"
            answers.append(wire)
        return answers

    def wait_settled(
        self, record_ids: Iterable[str], *, timeout: float = 30.0, poll: float = 0.05
    ) -> dict[str, dict[str, Any]]:
        return {rid: self.outcomes[rid] for rid in record_ids}

    def close(self) -> None:
        """Nothing to close: the store is the caller's."""


def run_example(url: str) -> ExampleResult:
    """Play ``KP_STORY`` into the store at ``url``; every block is verified on the way in."""
    net = Network.create(AUTHORITIES, ("WDC",), seed=None)
    store = Store.open(url, net.registry)
    clock = StoryClock()
    authorities = {c: MemoryAuthority(c, net, store, clock) for c in AUTHORITIES}
    story = Story(authorities, authorities["BW"], net.network_id, lambda _: None, clock.now)
    played = play(story, KP_STORY, StoryResult(final_parcel(KP_STORY)))
    # The quarter closes: Botswana's last registration of it, then, a day after the
    # quarter's end, every authority's report, so the public tables show USD (rule S1).
    play(story, (LATE_PRODUCTION,), played)
    clock.at = max(clock.at, REPORTED_AFTER)
    play(story, quarter_reports(AUTHORITIES, REPORTED_QUARTER), played)
    played.reported = REPORTED_QUARTER
    # Heartbeats: two other authorities' next blocks witness the latest ones, so
    # every block is cosigned (the registry's cosign: 2) and its bundles verify.
    for chain in ("EU", "BW"):
        block, _ = authorities[chain].seal()
        played.steps.append(
            f"{chain}: heartbeat, witnessing the others' heads (block {block.header.height})"
        )
    result = ExampleResult(store, played.final_parcel, net, story, played.refused, played.steps)

    # The proof: the final parcel's registration at the mine, against BW's signed head.
    signed = store.log.signed_head("BW")
    assert signed is not None
    key = key_at(store, "BW", signed.header.height)
    assert key is not None
    signed.verify_signature(key)
    origin_event = store.lineage.events("BW-JW-1")[0]
    proof = store.proofs.inclusion("BW", origin_event.ref.index, signed.header.size)
    verify_inclusion(
        origin_event.ref.hash, origin_event.ref.index, signed.header.size, proof, signed.header.root
    )
    result.proof_size = signed.header.size
    result.proof_steps = len(proof)
    return result
