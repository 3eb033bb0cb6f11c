"""One participant's node: submission, block production, and applying peers' blocks.

Everything here is synchronous and guarded by one lock: the store has a single
writer. The asynchronous parts (HTTP, timers, gossip) live in ``node.gossip``
and ``api`` and call into this class from worker threads.

Guarantees:

* a record answered ``pending`` is in the ``pending`` table (committed) before
  the answer leaves; it is sealed, or refused with its reason recorded, later;
* the same record id gets the same outcome however often it is submitted;
* a block from a peer is applied only after full verification, atomically;
  blocks that witness headers not held yet wait in a bounded buffer.

One concept, with a reason for its size: everything here runs under the
node's one lock over its pending layer (submission, sealing, receiving
blocks and evidence, node time); splitting it would spread that lock's
invariants over modules.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from kpledger.ledger.blocks import Block, Evidence, Header
from kpledger.ledger.canonical import canonical_bytes
from kpledger.ledger.chain import detect_equivocation, effective_witness, fork_sizes, propose
from kpledger.ledger.crypto import PublicKey, Signer
from kpledger.ledger.errors import (
    BlockError,
    DependencyMissing,
    InvalidData,
    LedgerError,
    RecordConflict,
    RuleViolation,
    StoreError,
    WitnessInvalid,
)
from kpledger.ledger.forks import (
    kp_now,
    live_forks,
    resumed_at,
    sealing_witness,
    verify_evidence,
    witness_needs,
)
from kpledger.ledger.records import GOVERNANCE_CHAIN, GOVERNANCE_KINDS, Record
from kpledger.ledger.rules import Context, apply_record
from kpledger.ledger.state import State, key_at, member_role
from kpledger.ledger.store import Store
from kpledger.ledger.store.outcome import Outcome, OutcomeStatus
from kpledger.node.config import NodeConfig
from kpledger.node.disclose import Sealer
from kpledger.node.keyring import KeyRing

__all__ = ["CLOCK_TOLERANCE", "MAX_BLOCKS_BODY", "Node", "NotSealer", "ReceiveResult", "utc_now"]

log = logging.getLogger("kpl.node")


class NotSealer(LedgerError):
    """A governance record was sent to a node that does not seal chain ``KP``."""

    code = "not-kp-sealer"

    def __init__(self, sealer: str | None, url: str | None) -> None:
        self.sealer = sealer
        self.url = url
        where = f"{sealer}'s node at {url}" if sealer else "no node (the network has no authority)"
        super().__init__(f"chain KP is sealed by {where}: submit governance records there")


#: bytes of blocks in one answer to a pull, whatever number of blocks was asked
#: for (the first block always goes, so a block up to ``node.gossip.MAX_BODY``
#: still travels): small enough that a catching-up node parses a few MiB at a
#: time, not tens, and asks again
MAX_BLOCKS_BODY = 4 * 1024 * 1024
_READ_BLOCKS = 32  # blocks read from the store at a time to answer a pull


#: how far ahead of the node's clock a submitted record may be dated (seconds)
MAX_AHEAD = 60

#: the network's clock tolerance (seconds): a peer's header dated further ahead
#: of this node's time waits until it is not; a clock further off the median of
#: the other authorities' chains is not used for sealing
CLOCK_TOLERANCE = 60

#: seconds a node just started waits at least for a peer's header before sealing
FIRST_SEAL_WAIT = 10

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _seconds(time_text: str) -> float:
    moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds()


def _text(seconds: float) -> str:
    return (_EPOCH + timedelta(seconds=int(seconds))).strftime("%Y-%m-%dT%H:%M:%SZ")


def _later(time_text: str, seconds: int) -> str:
    moment = datetime.strptime(time_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (moment + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now(offset: float = 0.0) -> str:
    """The wall clock as an RFC 3339 UTC time; ``offset`` seconds added (tests only)."""
    return (datetime.now(UTC) + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Wait(LedgerError):
    """A peer's block that cannot be judged yet (not a verdict): it waits in the buffer."""


@dataclass
class ReceiveResult:
    applied: int = 0
    known: int = 0
    waiting: int = 0
    missing: set[tuple[str, int]] = field(default_factory=set)
    #: (chain, height) of each block applied, in the order applied
    blocks: list[tuple[str, int]] = field(default_factory=list)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.height = Gauge(
            "kpl_chain_height", "height of each chain held", ["chain"], registry=self.registry
        )
        self.pending = Gauge(
            "kpl_pending_records", "records acknowledged, not sealed", registry=self.registry
        )
        self.peers_up = Gauge(
            "kpl_peers_reachable", "peers that answered the last exchange", registry=self.registry
        )
        self.sync_lag = Gauge(
            "kpl_sync_lag_blocks",
            "blocks behind the best peer, per chain",
            ["chain"],
            registry=self.registry,
        )
        self.rejected_blocks = Counter(
            "kpl_rejected_blocks", "blocks refused from peers", ["reason"], registry=self.registry
        )
        self.records = Counter(
            "kpl_records", "records submitted, by outcome", ["outcome"], registry=self.registry
        )
        self.sealed = Counter(
            "kpl_blocks_sealed", "blocks sealed by this node", registry=self.registry
        )
        self.applied = Counter(
            "kpl_blocks_applied", "peers' blocks applied", registry=self.registry
        )
        self.pulls = Counter(
            "kpl_pulls", "requests for blocks this node sent to peers", registry=self.registry
        )
        self.pulled = Counter(
            "kpl_blocks_pulled",
            "blocks received in answers to pulls (more than applied: pulled twice, or refused)",
            registry=self.registry,
        )
        self.evidence = Gauge("kpl_evidence", "equivocation evidence held", registry=self.registry)
        self.clock_skew = Gauge(
            "kpl_clock_skew_seconds",
            "this node's clock minus the median time of the other authorities' chains "
            "(0 while within the tolerance)",
            registry=self.registry,
        )
        self.deferred = Gauge(
            "kpl_deferred_blocks",
            "peers' blocks waiting: dated ahead of this node's time, or witnessing a "
            "header that differs from the one held (until evidence settles it)",
            registry=self.registry,
        )


class Node:
    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        signer: Signer | None,
        *,
        clock: Callable[[], str] | None = None,
        keyring: KeyRing | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = store.registry
        offset = config.clock_offset
        self.clock: Callable[[], str] = clock or (lambda: utc_now(offset))
        #: other chains' latest header time seen, and the monotonic moment it was seen
        self._seen: dict[str, tuple[float, float]] = {}
        self._skew = 0.0
        self._started = time.monotonic()
        self.lock = threading.RLock()
        self.metrics = NodeMetrics()
        self.on_sealed: Callable[[Block], None] | None = None
        #: called after blocks from a peer were applied (to pass them on at once), with
        #: those blocks and the nodes known to hold them already (None: not known)
        self.on_applied: (
            Callable[[Sequence[tuple[str, int]], frozenset[str] | None], None] | None
        ) = None
        #: called after new evidence was stored (to spread it, and what it settles, at once)
        self.on_evidence: Callable[[], None] | None = None
        participant = self.registry.participant(config.code)
        admitted = member_role(store, config.code, 2**63)
        if participant is None and admitted is None and signer is None:
            raise LedgerError(
                f"{config.code} is not a participant of network {self.registry.network_id[:16]}"
            )
        role = participant.role if participant is not None else admitted
        # a node with a key whose code is not a member yet is a joining authority: it
        # replicates, and writes its chain once a member.admit reaches it (``admitted``)
        self.chain = config.code if role in ("authority", None) else None
        self._admitted = role == "authority"
        if self.chain is not None and signer is None:
            raise LedgerError(f"{config.code} is an authority: its node needs its key")
        self.keys = keyring if keyring is not None else KeyRing([] if signer is None else [signer])
        if signer is not None:
            self.keys.add(signer)
        self.signer = signer
        self._waiting_key: str | None = None
        if not self._admitted:
            log.warning("%s: not a member yet: replicating until its admission", config.code)
        elif self.chain is not None and self.signer_for(self.chain) is None:
            head = store.head(self.chain)
            want = key_at(store, self.chain, (head.height if head else 0) + 1)
            if head is None or want is None:
                raise LedgerError(f"the key given is not {config.code}'s current key")
            # a replacement key installed before the governance record reached this
            # node: it starts, catches up, and seals once the ledger names a key it holds
            log.warning(
                "%s: the chain's current key %s is not among this node's keys: "
                "not sealing until it is",
                config.code,
                want.key_id[:16],
            )
        #: commits officers' clear submissions and checks their disclosure rules
        self.sealer = Sealer(store)
        self._pending: list[Record] = []
        self._pending_ids: set[str] = set()
        self._layer = State(base=store)
        self._oldest = 0.0
        self._last_seal = time.monotonic()
        self._buffer: dict[tuple[str, int], Block] = {}
        self.forks: dict[str, int] = {}
        #: the ids of the evidence held, as ``evidence_ids`` answers them (every gossip
        #: message carries them): kept here, and read again whenever evidence is added
        self._evidence_ids: list[str] = []
        for ev in store.evidence.all():
            self._note_fork(ev)
            self._evidence_ids.append(ev.id)
        if not store.READ_ONLY:
            self._settle()  # a drop a crash interrupted is done again (it is atomic)
        if self.chain is not None:
            self._reload_pending()
        self._refresh_metrics()

    # ------------------------------------------------------------ time
    def _observe(self, chain: str, header_time: str) -> None:
        """Note the time of another chain's validly signed header, seen from a peer now.

        Only headers received while this process runs count: a stored head's age
        is unknown (the node may have been down for days). Chain ``KP`` does not
        count either: it is sealed only when a governance record arrives, so its
        last header may be weeks old (``rules.witnessed_median_time`` leaves it
        out for the same reason).
        """
        if chain in (self.chain, GOVERNANCE_CHAIN):
            return
        seconds = _seconds(header_time)
        seen = self._seen.get(chain)
        if seen is None or seconds > seen[0]:
            self._seen[chain] = (seconds, time.monotonic())

    def now(self) -> str:
        """The time this node seals and judges submissions at.

        Its own clock, unless that is more than ``CLOCK_TOLERANCE`` off the
        median of its clock and the other chains' latest header times (each
        carried forward by the monotonic time since it was seen): then that
        median. While the node catches up, the headers it holds are old and
        the median lags: it then seals a little in the past, which is harmless
        (times never go back), where a clock far ahead would seal headers its
        peers hold back until the real time reaches them. One authority's
        clock, this node's included, cannot move the times this node signs by
        more than the tolerance while most chains agree; a skew is reported
        (``kpl_clock_skew_seconds`` and the log) for the operator to fix.
        """
        own_text = self.clock()
        if not self._seen:
            return own_text
        own = _seconds(own_text)
        mono = time.monotonic()
        estimates = [t + (mono - at) for t, at in self._seen.values()]
        median = statistics.median_low([own, *estimates])
        skew = own - median
        if abs(skew) <= CLOCK_TOLERANCE:
            if self._skew:
                log.warning("clock back within %ss of the network's time", CLOCK_TOLERANCE)
                self._skew = 0.0
                self.metrics.clock_skew.set(0)
            return own_text
        if not self._skew:
            log.warning(
                "this node's clock is %+.0fs off the median of the other chains' times: "
                "sealing at the median; fix the clock",
                skew,
            )
        self._skew = skew
        self.metrics.clock_skew.set(skew)
        return _text(median)

    def clock_skew(self) -> float:
        """Seconds this node's clock is off the network's time (0 within the tolerance)."""
        return self._skew

    # ------------------------------------------------------------ views
    def heads(self) -> dict[str, dict[str, Any]]:
        return {
            chain: {
                "height": h.height,
                "hash": h.hash.hex(),
                "size": h.size,
                "root": h.root.hex(),
                "time": h.time,
            }
            for chain, h in sorted(self.store.heads().items())
        }

    def admitted(self) -> bool:
        """Whether this node's chain may be written: its code is an authority on the ledger."""
        if (
            not self._admitted
            and self.chain is not None
            and member_role(self.store, self.chain, 2**63) == "authority"
        ):
            self._admitted = True
            log.warning("%s: admitted on chain KP: writing its chain", self.chain)
        return self._admitted

    def signer_for(self, chain: str) -> Signer | None:
        """The signer for ``chain``'s next block: the one whose key the ledger names.

        Reads the key files again when the ledger names a key not loaded yet
        (after ``kpl keys rotate`` or a governance ``key.replace``); None when
        this node holds no such key, and then it does not seal that chain.
        """
        head = self.store.head(chain)
        want = key_at(self.store, chain, (head.height if head else 0) + 1)
        if want is None:
            return None
        found = self.keys.find(want.key_id)
        if found is None and self._waiting_key != want.key_id:
            log.warning("%s: no key file holds %s's key %s", self.config.code, chain, want.key_id)
        self._waiting_key = None if found is not None else want.key_id
        return found

    def key_for(self, chain: str, height: int) -> PublicKey:
        key = key_at(self.store, chain, height)
        if key is None:
            raise BlockError(f"no key known for {chain} at height {height}")
        return key

    def reload(self) -> None:
        """Take in what the store now holds (heads, evidence): a read replica's refresh."""
        for ev in self.store.evidence.all():
            self._note_fork(ev)
        self._refresh_metrics()

    def _refresh_metrics(self) -> None:
        for chain, h in self.store.heads().items():
            self.metrics.height.labels(chain).set(h.height)
        self.metrics.pending.set(len(self._pending))
        self.metrics.deferred.set(len(self._buffer))

    # ------------------------------------------------------------ submission
    def _context(self) -> Context:
        assert self.chain is not None
        head = self.store.head(self.chain)
        refs = sealing_witness(self.store, self.chain)
        return Context(
            self.registry,
            self.chain,
            (head.height if head else 0) + 1,
            self.now(),
            effective_witness(self.store, refs, self.forks),
            fork_sizes(self.store, live_forks(self.store, self.forks, kp_now(self.store))),
        )

    def _next_index(self) -> int:
        assert self.chain is not None
        head = self.store.head(self.chain)
        return (head.size if head else 0) + len(self._pending)

    def _reload_pending(self) -> None:
        """Rebuild the pending layer from the queue (after a restart or a seal)."""
        assert self.chain is not None
        self._rebuild_layer(self.store.queue.pending(self.chain))

    def _rebuild_layer(self, queued: Sequence[Record]) -> None:
        """Re-judge queued records on top of the store; refusals are recorded."""
        assert self.chain is not None
        self._pending, self._pending_ids, self._layer = [], set(), State(base=self.store)
        self.store.prefetch(queued)
        try:
            refused = self._judge_queue(queued)
        finally:
            self.store.forget_prefetched()
        if refused:
            self.store.writer.commit(State(base=self.store), refused)
        self._oldest = time.monotonic() if self._pending else 0.0

    def _judge_queue(self, queued: Sequence[Record]) -> list[tuple[Record, LedgerError]]:
        refused: list[tuple[Record, LedgerError]] = []
        ctx = self._context()
        for record in queued:
            trial = State(base=self._layer)
            try:
                apply_record(trial, record, self._next_index(), ctx)
            except RuleViolation as exc:
                refused.append((record, exc))
                continue
            trial.merge_into(self._layer)
            self._pending.append(record)
            self._pending_ids.add(record.id)
        return refused

    def submit(self, values: Sequence[object]) -> list[Outcome]:
        """Check and queue records for this node's chain; answer one outcome per record."""
        if self.chain is None:
            raise InvalidData(f"{self.config.code} has no chain: it does not take records")
        if not self.admitted():
            raise InvalidData(
                f"{self.chain} is not admitted yet: records wait until its member.admit is "
                "on chain KP and this node holds it"
            )
        results: list[Outcome] = []
        with self.lock:
            accepted: list[Record] = []
            refused: list[tuple[Record, LedgerError]] = []
            ctx = self._context()
            batch_ids: set[str] = set()
            parsed: list[Record | InvalidData] = []
            for value in values:
                try:
                    parsed.append(self.sealer.seal(value))
                except InvalidData as exc:
                    parsed.append(exc)
            records = [r for r in parsed if isinstance(r, Record)]
            known = self.store.queue.outcomes(self.chain, [r.id for r in records])
            self._refuse_conflicts(parsed, known)
            self.store.prefetch(records)
            try:
                self._check_batch(parsed, known, ctx, batch_ids, accepted, refused, results)
            finally:
                self.store.forget_prefetched()
            try:
                self.store.queue.enqueue(accepted, refused)
            except StoreError:
                self._reload_pending()
                raise
            if accepted and not self._pending:
                self._oldest = time.monotonic()
            self._pending += accepted
            self._pending_ids.update(r.id for r in accepted)
            self.metrics.records.labels("pending").inc(len(accepted))
            self.metrics.records.labels("rejected").inc(len(refused))
            self.metrics.pending.set(len(self._pending))
        return results

    def _refuse_conflicts(
        self, parsed: Sequence[Record | InvalidData], known: dict[str, Outcome]
    ) -> None:
        """Raise ``RecordConflict`` if an id is taken by a pending or committed record with
        other bytes (or twice in the batch with different bytes): nothing is queued then.

        The same bytes again are idempotent (the first outcome is answered); a refused id
        answers its refusal again (the node keeps no content of refused records).
        """
        assert self.chain is not None
        pending: dict[str, Record] | None = None
        first: dict[str, Record] = {}
        for position, record in enumerate(parsed):
            if not isinstance(record, Record) or record.chain != self.chain:
                continue  # answered invalid by the checks that follow
            earlier = first.setdefault(record.id, record)
            if earlier.leaf != record.leaf:
                raise RecordConflict(
                    record.id,
                    self.chain,
                    status="batch",
                    hash_hex=earlier.leaf.hex(),
                    position=position,
                )
            if record.id in self._pending_ids:
                if pending is None:
                    pending = {r.id: r for r in self._pending}
                prior = pending.get(record.id)
                if prior is not None and prior.leaf != record.leaf:
                    raise RecordConflict(
                        record.id,
                        self.chain,
                        status="pending",
                        hash_hex=prior.leaf.hex(),
                        position=position,
                    )
                continue
            done = known.get(record.id)
            if (
                done is not None
                and done.status is OutcomeStatus.COMMITTED
                and done.hash != record.leaf.hex()
            ):
                raise RecordConflict(
                    record.id,
                    self.chain,
                    status="committed",
                    hash_hex=str(done.hash),
                    position=position,
                    index=done.index,
                    height=done.height,
                )

    def _check_batch(
        self,
        parsed: Sequence[Record | InvalidData],
        known: dict[str, Outcome],
        ctx: Context,
        batch_ids: set[str],
        accepted: list[Record],
        refused: list[tuple[Record, LedgerError]],
        results: list[Outcome],
    ) -> None:
        """Judge each record of a batch in order against the state plus the pending ones."""
        assert self.chain is not None
        ahead = _later(ctx.time, MAX_AHEAD)
        for i, record in enumerate(parsed):
            if isinstance(record, InvalidData):
                results.append(Outcome.unparsed(record).at(i, None))
                continue
            if record.chain != self.chain or record.network != self.registry.network_id:
                reason = (
                    f"this node writes chain {self.chain} of network "
                    f"{self.registry.network_id[:16]}"
                )
                results.append(Outcome.invalid("wrong-chain", "chain", reason).at(i, record.id))
                continue
            if record.time > ahead:
                reason = (
                    f"dated {record.time}, more than {MAX_AHEAD}s after this "
                    f"node's clock ({ctx.time})"
                )
                results.append(Outcome.invalid("schema", "time", reason).at(i, record.id))
                continue
            if record.id in batch_ids:
                results.append(Outcome.pending(self.chain).at(i, record.id, duplicate=True))
                continue
            prior = (
                Outcome.pending(self.chain)
                if record.id in self._pending_ids
                else known.get(record.id)
            )
            if prior is not None:
                results.append(prior.at(i, record.id, duplicate=True))
                continue
            trial = State(base=self._layer)
            try:
                apply_record(trial, record, self._next_index() + len(accepted), ctx)
                self.sealer.check(self._layer, record)
            except RuleViolation as exc:
                refused.append((record, exc))
                batch_ids.add(record.id)
                results.append(Outcome.refused(self.chain, exc).at(i, record.id))
                continue
            trial.merge_into(self._layer)
            self.sealer.accepted(record)
            accepted.append(record)
            batch_ids.add(record.id)
            results.append(Outcome.pending(self.chain).at(i, record.id))

    def check(self, values: Sequence[object]) -> list[dict[str, Any]]:
        """A dry run of ``submit``: the same judgment against the state plus the pending
        records, on a scratch layer that is dropped; nothing is queued or stored.

        A record ``submit`` would accept answers ``valid``; the others answer as
        ``submit`` would (``rejected`` with rule and field, ``invalid``, or the first
        outcome of an id already submitted, marked ``duplicate``).
        """
        if self.chain is None:
            raise InvalidData(f"{self.config.code} has no chain: it does not take records")
        results: list[Outcome] = []
        with self.lock:
            saved = self._layer
            self._layer = State(base=saved)
            try:
                parsed: list[Record | InvalidData] = []
                for value in values:
                    try:
                        parsed.append(self.sealer.seal(value))
                    except InvalidData as exc:
                        parsed.append(exc)
                records = [r for r in parsed if isinstance(r, Record)]
                known = self.store.queue.outcomes(self.chain, [r.id for r in records])
                self.store.prefetch(records)
                try:
                    self._check_batch(parsed, known, self._context(), set(), [], [], results)
                finally:
                    self.store.forget_prefetched()
            finally:
                self._layer = saved
        answers: list[dict[str, Any]] = []
        for result in results:
            wire = result.to_json()
            if result.status is OutcomeStatus.PENDING and not result.duplicate:
                wire["status"] = "valid"
            answers.append(wire)
        return answers

    def _outcome(self, record_id: str) -> Outcome | None:
        assert self.chain is not None
        if record_id in self._pending_ids:
            return Outcome.pending(self.chain)
        return self.store.queue.outcome(self.chain, record_id)

    def outcome(self, record_id: str, chain: str | None = None) -> Outcome | None:
        """Status of a record id: on this node's chain, or on ``chain`` when given."""
        target = chain or self.chain
        if target is None:
            return None
        if target == self.chain:
            with self.lock:
                return self._outcome(record_id)
        return self.store.queue.outcome(target, record_id)

    def outcomes(
        self, record_ids: Sequence[str], chain: str | None = None
    ) -> dict[str, Outcome | None]:
        """``outcome`` of each id, in one call (a batch importer's poll)."""
        target = chain or self.chain
        if target is None:
            return dict.fromkeys(record_ids)
        if target == self.chain:
            with self.lock:
                pending = [rid for rid in record_ids if rid in self._pending_ids]
                found: dict[str, Outcome] = dict.fromkeys(pending, Outcome.pending(target))
                rest = [rid for rid in record_ids if rid not in found]
                found.update(self.store.queue.outcomes(target, rest) if rest else {})
        else:
            found = self.store.queue.outcomes(target, record_ids)
        return {rid: found.get(rid) for rid in record_ids}

    # ------------------------------------------------------------ production
    def seal_due(self) -> bool:
        if self.chain is None:
            return False
        now = time.monotonic()
        if (
            not self._seen
            and now - self._started < max(3 * self.config.heartbeat, FIRST_SEAL_WAIT)
            and any(c != self.chain for c in self.store.heads())
        ):
            # just started: wait a little for a peer's fresh header, so that a clock
            # far off is noticed before the first seal (live chains seal every
            # heartbeat); bounded, or a network restarting at once would wait forever
            return False
        if len(self._pending) >= self.config.max_block_records:
            return True
        if self._pending and now - self._oldest >= self.config.block_interval:
            return True
        return now - self._last_seal >= self.config.heartbeat

    def seal(self) -> Block | None:
        """Seal the next block of this node's chain from the pending records."""
        if self.chain is None or self.signer is None:
            return None
        if self.frozen(self.chain):
            return None  # our own chain has been shown to equivocate: stop writing
        with self.lock:
            self._settle()
            signer = self.signer_for(self.chain) if self.admitted() else None
            if signer is None:
                self._last_seal = time.monotonic()
                return None
            self.signer = signer
            take = self._pending[: self.config.max_block_records]
            self.store.prefetch(take)
            try:
                proposal = propose(
                    self.store,
                    self.registry,
                    signer,
                    self.chain,
                    take,
                    self.now(),
                    self.forks,
                )
            finally:
                self.store.forget_prefetched()
            self.store.writer.commit(proposal.layer, proposal.rejected)
            self._pending = proposal.deferred + self._pending[len(take) :]
            self._pending_ids = {r.id for r in self._pending}
            self.sealer.sealed()
            self._last_seal = time.monotonic()
            if self._pending:
                self._rebuild_layer(self._pending)
            else:
                self._layer = State(base=self.store)
                self._oldest = 0.0
            self.metrics.sealed.inc()
            self.metrics.records.labels("committed").inc(len(proposal.block.records))
            self.metrics.records.labels("rejected").inc(len(proposal.rejected))
            self._refresh_metrics()
        if self.on_sealed is not None:
            self.on_sealed(proposal.block)
        return proposal.block

    # ------------------------------------------------------------ governance
    def submit_governance(self, value: object) -> dict[str, Any]:
        """Seal one threshold-signed governance record on chain ``KP`` at once.

        Only a node whose key files hold the key chain ``KP`` names for its next
        block does this: the registry's ``governance.sealer`` from genesis, and
        whoever holds the key of a later ``key.replace`` of ``KP``
        (``NotSealer`` elsewhere, pointing to the registry's sealer). The
        record gets a block of its own, sealed under the node lock like every
        block of this node, so ``KP`` has one writer and one order. Outcomes:
        ``committed`` (with height and index; the same again for a record id
        already on ``KP``) or ``rejected`` with the rule and reason (nothing is
        sealed then). Governance records are rare: no queue, no batching.
        """
        record = Record.from_value(value)
        if record.chain != GOVERNANCE_CHAIN or record.network != self.registry.network_id:
            raise InvalidData(
                f"this endpoint takes records of chain KP of network "
                f"{self.registry.network_id[:16]}",
                field="chain",
            )
        if record.kind not in GOVERNANCE_KINDS:
            raise InvalidData(f"{record.kind.value} is not a governance record", field="kind")
        head = self.store.head(GOVERNANCE_CHAIN)
        want = key_at(self.store, GOVERNANCE_CHAIN, (head.height if head else 0) + 1)
        signer = self.keys.find(want.key_id) if want is not None else None
        if signer is None or self.chain is None:
            sealer = self.registry.sealer
            found = self.registry.participant(sealer) if sealer else None
            raise NotSealer(sealer, found.url if found else None)
        with self.lock:
            prior = self.store.queue.outcome(GOVERNANCE_CHAIN, record.id)
            if prior is not None and prior.status is OutcomeStatus.COMMITTED:
                return replace(prior, id=record.id, duplicate=True).to_json()
            now = self.clock()
            if record.time > _later(now, MAX_AHEAD):
                raise InvalidData(
                    f"dated {record.time}, more than {MAX_AHEAD}s after this node's clock ({now})",
                    field="time",
                )
            proposal = propose(
                self.store, self.registry, signer, GOVERNANCE_CHAIN, [record], now, self.forks
            )
            if proposal.rejected:
                exc = proposal.rejected[0][1]
                return {
                    "id": record.id,
                    "status": "rejected",
                    "chain": GOVERNANCE_CHAIN,
                    "code": exc.code,
                    "rule": exc.rule,
                    "field": exc.field,
                    "reason": exc.reason,
                }
            if proposal.deferred:  # dated after the block's time: seal nothing now
                raise InvalidData(
                    f"dated {record.time}, after this node's clock ({now}); try again shortly",
                    field="time",
                )
            self.store.writer.commit(proposal.layer)
            self.metrics.sealed.inc()
            self._settle()  # a key.replace restarting an equivocating chain
            self._refresh_metrics()
            if self.chain is not None:
                self._reload_pending()  # membership may have changed under pending records
        if self.on_sealed is not None:
            self.on_sealed(proposal.block)
        h = proposal.block.header
        return {
            "id": record.id,
            "status": "committed",
            "chain": GOVERNANCE_CHAIN,
            "height": h.height,
            "index": h.size - 1,
            "hash": record.leaf.hex(),
        }

    # ------------------------------------------------------------ replication
    def blocks_json(self, chain: str, start: int, limit: int) -> bytes:
        """``{"blocks": [...]}`` for peers, assembled from the stored bytes.

        At most ``limit`` blocks, and no more than fit in ``MAX_BLOCKS_BODY``
        bytes (the first block always goes): a batch of full blocks must not
        outgrow what a puller accepts, or it could never catch up. Blocks are
        read a few at a time, so a large ``limit`` never loads more than that.
        """
        parts: list[bytes] = []
        size = 0
        while len(parts) < limit:
            step = min(_READ_BLOCKS, limit - len(parts))
            got = self.store.log.raw_blocks(chain, start + len(parts), step)
            for header_raw, sig, records in got:
                part = (
                    b'{"header":'
                    + header_raw
                    + b',"records":['
                    + b",".join(records)
                    + b'],"sig":"'
                    + sig.hex().encode()
                    + b'"}'
                )
                size += len(part) + 1
                if parts and size > MAX_BLOCKS_BODY:
                    return b'{"blocks":[' + b",".join(parts) + b"]}"
                parts.append(part)
            if len(got) < step:
                break
        return b'{"blocks":[' + b",".join(parts) + b"]}"

    def receive(
        self, chain: str, values: Sequence[object], *, informed: frozenset[str] | None = None
    ) -> ReceiveResult:
        """Verify and apply a peer's blocks of ``chain``, in order.

        Raises ``InvalidData`` on the first block that fails a check (the
        caller backs the peer off); blocks already applied stay applied.
        ``informed``: the nodes that hold these blocks or are being sent them
        (a push says so), which relaying them need not reach.
        """
        result = ReceiveResult()
        max_records = self.registry.params.max_block_records
        with self.lock:
            for value in values:
                try:
                    block = Block.from_json(value, max_records=max_records)
                    if block.header.chain != chain:
                        raise BlockError(
                            f"asked for {chain}, got a block of {block.header.chain}",
                            field="header.chain",
                        )
                except InvalidData as exc:
                    self.metrics.rejected_blocks.labels(exc.code).inc()
                    raise
                h = block.header
                fork = self.forks.get(chain)
                if fork is not None and h.height > fork and self.frozen(chain):
                    result.known += 1
                    continue
                if fork is not None and h.height >= fork and self._old_version(h):
                    result.known += 1  # the old key's version of a restarted chain
                    continue
                head = self.store.head(chain)
                if head is not None and h.height <= head.height:
                    ev = detect_equivocation(self.store, block.signed)
                    if ev is not None:
                        self.add_evidence(ev)
                    result.known += 1
                    continue
                if (head.height if head else 0) + 1 < h.height:
                    self._hold(block, result)
                    continue
                gap = self._unwitnessed(block)
                if gap is not None:  # found before any SQL work, not after the prefetch
                    self._observe_signed(block)
                    result.missing.add(gap)
                    self._hold(block, result)
                    continue
                try:
                    self._apply(block)
                except (DependencyMissing, _Wait) as wait:
                    if isinstance(wait, DependencyMissing):
                        result.missing.add((wait.chain, wait.height))
                    self._hold(block, result)
                    continue
                result.applied += 1
                result.blocks.append((h.chain, h.height))
            result.applied += self._drain(result)
            if self._settle():  # a key.replace just applied restarts an equivocating chain
                result.applied += self._drain(result)
            result.waiting = len(self._buffer)
            self._refresh_metrics()
        if result.applied and self.on_applied is not None:
            # what ``informed`` hold is this chain's blocks, not those they released
            mine = [b for b in result.blocks if b[0] == chain]
            others = [b for b in result.blocks if b[0] != chain]
            if mine:
                self.on_applied(mine, informed)
            if others:
                self.on_applied(others, None)
        return result

    def _apply(self, block: Block) -> None:
        """Apply a peer's block, or raise ``_Wait`` / ``DependencyMissing`` if it must wait.

        A block waits, rather than being refused, when its header is dated more
        than ``CLOCK_TOLERANCE`` ahead of this node's time (refusing would make
        its validity depend on when it arrived), and when it witnesses a
        header that differs from the one held: that is either a lie of its
        signer or an equivocation of the witnessed chain that the evidence,
        on its way, will settle (``resolve_witness``).
        """
        h = block.header
        self._observe_signed(block)
        # ahead of both the node's clock and its time: a correct clock whose
        # view is stale (catching up) never holds back fresh blocks
        limit = max(_seconds(self.clock()), _seconds(self.now())) + CLOCK_TOLERANCE
        if _seconds(h.time) > limit:
            raise _Wait(f"{h.chain}/{h.height} is dated {h.time}, ahead of this node's time")
        try:
            self.store.writer.apply(block, forks=self.forks)
        except WitnessInvalid as exc:
            raise _Wait(exc.message) from exc
        except InvalidData as exc:
            self.metrics.rejected_blocks.labels(exc.code).inc()
            raise
        self.metrics.applied.inc()
        if block.header.chain == self.chain:
            self._reload_pending()

    def _observe_signed(self, block: Block) -> None:
        """Take a peer's header time into this node's time, if its authority signed it.

        Called for every block that arrives, also one that waits for a witnessed
        header: a node whose clock is far off learns the network's time from the
        first headers it sees, before it can apply them.
        """
        h = block.header
        key = key_at(self.store, h.chain, h.height)
        if key is None or h.chain == self.chain:
            return
        try:  # only a header its authority signed tells the time
            block.signed.verify_signature(key)
        except InvalidData as exc:
            self.metrics.rejected_blocks.labels(exc.code).inc()
            raise
        self._observe(h.chain, h.time)

    def holds(self, chain: str, height: int) -> bool:
        """Whether block ``height`` of ``chain`` waits in the buffer (for what it witnesses)."""
        return (chain, height) in self._buffer

    def _unwitnessed(self, block: Block) -> tuple[str, int] | None:
        """The first header ``block`` needs that is not held yet (from the heads in
        memory): applying it would fail with ``DependencyMissing`` after loading its state.
        Of a chain capped at its fork, only the last common header is needed
        (``ledger.forks.witness_needs``), whatever height the witness names."""
        h = block.header
        head = self.store.head(h.chain)
        prev = head if head is not None and head.height + 1 == h.height else None
        try:
            needs = witness_needs(self.store, h, self.forks, prev)
        except DependencyMissing as dm:
            return (dm.chain, dm.height)
        for chain, height in needs.items():
            head = self.store.head(chain)
            if (head.height if head else 0) < height:
                return (chain, height)
        return None

    def _hold(self, block: Block, result: ReceiveResult) -> None:
        if len(self._buffer) >= self.config.max_buffered_blocks:
            oldest = next(iter(self._buffer))
            del self._buffer[oldest]
        self._buffer[(block.header.chain, block.header.height)] = block
        head = self.store.head(block.header.chain)
        if head is None or head.height + 1 < block.header.height:
            result.missing.add((block.header.chain, block.header.height - 1))

    def _drain(self, result: ReceiveResult) -> int:
        applied = 0
        progress = True
        while progress and self._buffer:
            progress = False
            for key in sorted(self._buffer):
                chain, height = key
                head = self.store.head(chain)
                if height <= (head.height if head else 0):
                    del self._buffer[key]
                    continue
                if height != (head.height if head else 0) + 1:
                    continue
                block = self._buffer[key]
                gap = self._unwitnessed(block)
                if gap is not None:
                    result.missing.add(gap)
                    continue
                try:
                    self._apply(block)
                except DependencyMissing as dm:
                    result.missing.add((dm.chain, dm.height))
                    continue
                except _Wait:
                    continue
                except InvalidData:
                    del self._buffer[key]
                    continue
                del self._buffer[key]
                applied += 1
                result.blocks.append(key)
                progress = True
        return applied

    # ------------------------------------------------------------ evidence
    def _note_fork(self, ev: Evidence) -> None:
        height = min(ev.a.header.height, ev.b.header.height)
        self.forks[ev.chain] = min(self.forks.get(ev.chain, height), height)
        self.metrics.evidence.set(len(self.forks))

    def frozen(self, chain: str) -> bool:
        """Whether ``chain`` is shown to equivocate and no ``key.replace`` restarted it."""
        return chain in self.forks and chain not in resumed_at(self.store, self.forks)

    def _old_version(self, header: Header) -> bool:
        """Whether ``header`` is of a restarted chain, at or past its fork, under a key
        that is not the chain's there (the old key's blocks: no longer the chain)."""
        if header.chain not in resumed_at(self.store, self.forks):
            return False
        key = key_at(self.store, header.chain, header.height)
        return key is not None and key.key_id != header.key_id

    def _settle(self) -> bool:
        """Drop the old key's blocks of every chain a ``key.replace`` restarted at its
        fork height (``store.resume``); True if anything was dropped.

        Called under the lock after anything that may bring such a replacement
        or its evidence: a peer's blocks, evidence, a governance record sealed
        here, and at start (a drop is atomic: one a crash interrupted is done
        again). What is dropped is logged, record by record, for the operator
        to check and submit again (``kpl db dropped`` lists it too).
        """
        if not self.forks:
            return False
        dropped = False
        for chain in sorted(resumed_at(self.store, self.forks)):
            fork = self.forks[chain]
            held = self.store.header(chain, fork)
            if held is None or not self._old_version(held):
                continue
            part = self.store.resume.drop(chain, fork, self.forks)
            dropped = True
            log.warning(
                "%s restarted at height %d under its new key: dropped the old key's %d "
                "block(s) %d-%d and their %d record(s); records acknowledged there are no "
                "longer on the ledger: check them and submit them again (kpl db dropped)",
                chain,
                fork,
                part.blocks,
                fork,
                part.last_height,
                len(part.records),
            )
            for height, index, record in part.records:
                log.warning(
                    "dropped %s/%d record %s (%s) at index %d",
                    chain,
                    height,
                    record.id,
                    record.kind.value,
                    index,
                )
            for key in [k for k in self._buffer if k[0] == chain]:
                if self._old_version(self._buffer[key].header):
                    del self._buffer[key]
        if dropped and self.chain is not None:
            self._reload_pending()  # judged again on the state without the dropped part
        return dropped

    def add_evidence(self, ev: Evidence) -> bool:
        """Verify, store and act on evidence; True if it was new.

        Blocks that waited because they witness the other version of the fork
        are judged again at once.
        """
        verify_evidence(self.store, ev)
        result = ReceiveResult()
        with self.lock:
            new = self.store.evidence.add(ev)
            self._note_fork(ev)
            if new:
                self._evidence_ids = [e.id for e in self.store.evidence.all()]
                result.applied = self._drain(result)
                if self._settle():
                    result.applied += self._drain(result)
                self._refresh_metrics()
        if result.applied and self.on_applied is not None:
            self.on_applied(result.blocks, None)
        if new and self.on_evidence is not None:
            self.on_evidence()
        return new

    def evidence_json(self) -> list[dict[str, Any]]:
        return [ev.to_json() for ev in self.store.evidence.all()]

    def evidence_ids(self) -> list[str]:
        """The ids of the equivocation evidence held (from memory: this node is the only
        writer of its store, and every piece of evidence it adds goes through
        ``add_evidence``); a node on a read-only store asks the store."""
        if self.store.READ_ONLY:
            return [ev.id for ev in self.store.evidence.all()]
        return list(self._evidence_ids)

    def receive_evidence(self, values: Sequence[object]) -> int:
        added = 0
        for value in values:
            if self.add_evidence(Evidence.from_json(value)):
                added += 1
        return added

    def snapshot(self) -> Mapping[str, Any]:
        return {
            "code": self.config.code,
            "chain": self.chain,
            "heads": self.heads(),
            "pending": len(self._pending),
            "forks": dict(self.forks),
            "clock_skew": self.clock_skew(),
        }

    def dumps(self, value: Any) -> bytes:
        return canonical_bytes(value)
