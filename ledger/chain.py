"""Applying whole blocks: the verdict every honest node reaches alike.

``apply_block(view, block, registry)`` returns a ``State`` layer holding every
effect of the block, or raises. It is a pure function of the block, of its own
chain's earlier blocks, and of exactly the headers of other chains that the
block witnesses, so arrival order never changes a verdict. The caller commits
the layer (``State.merge_into`` in memory, ``store.writer.commit`` in SQL) or drops it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kpledger.ledger.blocks import (
    Block,
    Evidence,
    Header,
    SignedHeader,
    WitnessRef,
    check_link,
    seal,
)
from kpledger.ledger.crypto import Signer
from kpledger.ledger.errors import (
    BlockError,
    DependencyMissing,
    RuleViolation,
    SignatureError,
    WitnessInvalid,
)
from kpledger.ledger.forks import (
    kp_now,
    kp_seen,
    live_forks,
    sealing_witness,
    stale_witness,
)
from kpledger.ledger.merkle import MemoryTree, NewNode
from kpledger.ledger.records import GOVERNANCE_CHAIN, Record
from kpledger.ledger.registry import Registry
from kpledger.ledger.rules import Context, apply_record
from kpledger.ledger.state import (
    KeyEvent,
    MemberEvent,
    State,
    StateView,
    key_at,
    member_role,
)
from kpledger.ledger.statetree import StateTree

__all__ = [
    "MemoryLedger",
    "Proposal",
    "apply_block",
    "detect_equivocation",
    "effective_witness",
    "fork_heights",
    "fork_sizes",
    "genesis",
    "propose",
    "resolve_witness",
    "state_after",
]


def genesis(registry: Registry) -> State:
    """The state before any block: the registry's members and keys.

    The governance chain's blocks are signed by the KP sealer's registry key
    (``Registry.sealer``, the KP secretariat); its records need the
    governance threshold on top, so the sealer orders governance records
    but cannot make one.
    """
    state = State()
    for p in registry.participants:
        state.members.append(MemberEvent(p.code, 0, p.role, True))
        state.keys.append(KeyEvent(p.code, 1, p.key, 0))
    if registry.kp_key is not None:
        state.keys.append(KeyEvent(GOVERNANCE_CHAIN, 1, registry.kp_key, 0))
    return state


def fork_heights(evidence: Iterable[Evidence]) -> dict[str, int]:
    """For each chain shown to equivocate, the lowest height its evidence contradicts.

    Heights below it are the chain's last common prefix: every node holds the
    same headers there, whichever version of the fork it saw first.
    """
    out: dict[str, int] = {}
    for ev in evidence:
        height = min(ev.a.header.height, ev.b.header.height)
        out[ev.chain] = min(out.get(ev.chain, height), height)
    return out


def fork_sizes(view: StateView, forks: Mapping[str, int]) -> dict[str, int]:
    """For each forked chain, its log size at the last common header (height fork - 1)."""
    out: dict[str, int] = {}
    for chain, height in forks.items():
        common = view.header(chain, height - 1) if height > 1 else None
        out[chain] = 0 if common is None else common.size
    return out


def _common(view: StateView, chain: str, fork: int) -> Header | None:
    """The last header of ``chain`` before its fork (None when the fork is at height 1)."""
    if fork <= 1:
        return None
    held = view.header(chain, fork - 1)
    if held is None:
        raise DependencyMissing(chain, fork - 1)
    return held


def resolve_witness(
    view: StateView,
    header: Header,
    forks: Mapping[str, int] | None = None,
    prev: Header | None = None,
) -> dict[str, Header]:
    """The headers a block witnesses, each checked against the one this node holds.

    ``forks`` maps each chain with equivocation evidence to its fork height.
    A witness of such a chain at or past the fork names one of two signed
    histories, and which one a node holds depends on what reached it first;
    so it is accepted whatever its hash, and the block is judged as if it
    witnessed the chain's last common header: nothing past a fork counts
    for any other chain, on any node. A block that sees the ``key.replace``
    restarting the chain at its fork height (``live_forks``) is past that:
    it witnesses the new key's blocks, checked like any other, or repeats
    its previous block's witness of an old version (``stale_witness``), which counts
    as the last common header. ``prev``: the previous header of its chain.
    """
    forks = forks or {}
    live = live_forks(view, forks, kp_seen(view, header)) if forks else {}
    out: dict[str, Header] = {}
    for w in header.witness:
        fork = live.get(w.chain)
        if fork is None and forks and stale_witness(view, w, prev, forks, live):
            fork = forks[w.chain]
        if fork is not None and w.height >= fork:
            common = _common(view, w.chain, fork)
            if common is not None:
                out[w.chain] = common
            continue
        held = view.header(w.chain, w.height)
        if held is None:
            raise DependencyMissing(w.chain, w.height)
        if held.hash != w.hash:
            raise WitnessInvalid(
                f"{header.chain}/{header.height} witnesses a {w.chain}/{w.height} that differs "
                "from the one this node verified",
                field="header.witness",
            )
        out[w.chain] = held
    return out


def effective_witness(
    view: StateView, witness: Iterable[WitnessRef], forks: Mapping[str, int]
) -> dict[str, Header]:
    """What rules see of the chains a block being sealed here witnesses (held heads)."""
    live = live_forks(view, forks, kp_now(view)) if forks else {}
    out: dict[str, Header] = {}
    for w in witness:
        fork = live.get(w.chain)
        held = view.header(w.chain, w.height)
        stale = held is None or held.hash != w.hash  # a repeated old version
        if fork is None and w.chain in forks and w.height >= forks[w.chain] and stale:
            fork = forks[w.chain]
        if fork is not None and w.height >= fork:
            common = view.header(w.chain, fork - 1) if fork > 1 else None
            if common is not None:
                out[w.chain] = common
            continue
        if held is not None:
            out[w.chain] = held
    return out


def _kp_size(chain: str, witness: dict[str, Header]) -> int | None:
    if chain == GOVERNANCE_CHAIN:
        return None
    kp = witness.get(GOVERNANCE_CHAIN)
    return 0 if kp is None else kp.size


def apply_block(
    view: StateView, block: Block, registry: Registry, forks: Mapping[str, int] | None = None
) -> State:
    """Verify ``block`` completely against ``view``; return its effects as a layer.

    ``forks`` (chain -> fork height, from the equivocation evidence held) caps
    what the block's rules see of a forked chain at its last common header
    (``resolve_witness``), until the block sees the ``key.replace`` that
    restarts that chain (``live_forks``).
    """
    h = block.header
    if h.network != registry.network_id:
        raise BlockError("header belongs to another network", field="header.network")
    forks = forks or {}
    prev = view.head(h.chain)
    witness = resolve_witness(view, h, forks, prev)
    kp_size = _kp_size(h.chain, witness)
    if h.chain != GOVERNANCE_CHAIN and member_role(view, h.chain, kp_size or 0) != "authority":
        raise BlockError(f"{h.chain} is not an authority with a chain", field="header.chain")
    key = key_at(view, h.chain, h.height)
    if key is None:
        raise BlockError(f"no key for {h.chain} at height {h.height}", field="header.key_id")
    nodes: list[NewNode] = []
    frontier = check_link(
        block,
        network=registry.network_id,
        prev=prev,
        frontier=view.frontier(h.chain),
        key=key,
        params=registry.params,
        nodes=nodes,
    )
    layer = State(base=view)
    live = live_forks(view, forks, kp_seen(view, h)) if forks else {}
    ctx = Context(
        registry,
        h.chain,
        h.height,
        h.time,
        witness,
        fork_sizes(view, live),
        heights={w.chain: w.height for w in h.witness},
        fork_heights=dict(forks),
    )
    start = 0 if prev is None else prev.size
    for i, record in enumerate(block.records):
        try:
            apply_record(layer, record, start + i, ctx)
        except RuleViolation as exc:
            raise type(exc)(
                f"record {record.id}: {exc.reason}", field=f"records[{i}].{exc.field}".rstrip(".")
            ) from exc
    tree = state_after(view, layer, h.chain)
    if tree.root() != h.state:
        raise BlockError(
            f"state {h.state.hex()} does not match the parcel state after the records "
            f"{tree.root().hex()}",
            field="header.state",
        )
    layer.headers[(h.chain, h.height)] = h
    layer.signatures[(h.chain, h.height)] = block.signed.sig
    layer.heads[h.chain] = h
    layer.frontiers[h.chain] = frontier
    layer.merkle_nodes[h.chain] = nodes
    layer.state_trees[h.chain] = tree
    return layer


def state_after(view: StateView, layer: State, chain: str) -> StateTree:
    """``chain``'s parcel state tree after the block whose effects ``layer`` holds:
    an overlay of ``view``'s, each parcel event of the block recorded in order."""
    tree = view.state_tree(chain).child()
    tree.record_all((event.parcel, event.ref.hash) for event in layer.events)
    return tree


def detect_equivocation(view: StateView, signed: SignedHeader) -> Evidence | None:
    """Evidence if ``signed`` validly contradicts a header this node holds, else None."""
    h = signed.header
    held = view.header(h.chain, h.height)
    if held is None or held.hash == h.hash:
        return None
    key = key_at(view, h.chain, h.height)
    if key is None:
        return None
    try:
        signed.verify_signature(key)
    except (SignatureError, BlockError):
        return None
    sig = _signature_of(view, h.chain, h.height)
    if sig is None:
        return None
    return Evidence.build(SignedHeader(held, sig), signed)


def _signature_of(view: StateView, chain: str, height: int) -> bytes | None:
    getter = getattr(view, "signature", None)
    if getter is None:
        return None
    sig: bytes | None = getter(chain, height)
    return sig


@dataclass
class Proposal:
    """A sealed block, its effects, the records the rules refused, and the records
    left for a later block (past the block's limits, or dated after its time)."""

    block: Block
    layer: State
    rejected: list[tuple[Record, RuleViolation]] = field(default_factory=list)
    deferred: list[Record] = field(default_factory=list)


def propose(
    view: StateView,
    registry: Registry,
    signer: Signer,
    chain: str,
    records: Sequence[Record],
    time: str,
    forks: Mapping[str, int] | None = None,
) -> Proposal:
    """Seal this authority's next block from candidate records.

    Each record is checked in order against the state plus the ones accepted
    before it; refused ones are left out and reported. Records past the
    block's limits (``max_block_records``, ``max_block_bytes``) and records
    dated after the block's time are left for a later block and reported as
    ``deferred``. The block witnesses the head of every other chain this
    node holds; the rules see a forked chain only up to its last common
    header, as every node will when it judges the block.
    """
    forks = forks or {}
    prev = view.head(chain)
    if prev is not None and time < prev.time:
        time = prev.time
    witness = sealing_witness(view, chain)
    witnessed = effective_witness(view, witness, forks)
    height = 1 if prev is None else prev.height + 1
    live = live_forks(view, forks, kp_now(view)) if forks else {}
    ctx = Context(
        registry,
        chain,
        height,
        time,
        witnessed,
        fork_sizes(view, live),
        heights={w.chain: w.height for w in witness},
        fork_heights=dict(forks),
    )
    layer = State(base=view)
    accepted: list[Record] = []
    rejected: list[tuple[Record, RuleViolation]] = []
    start = 0 if prev is None else prev.size
    room = registry.params.max_block_bytes
    candidates = records[: registry.params.max_block_records]
    deferred: list[Record] = []
    for i, record in enumerate(candidates):
        if len(record.raw) > room:
            deferred.extend(candidates[i:])
            break
        if record.time > time:  # later records may build on it: keep their order
            deferred.extend(candidates[i:])
            break
        trial = State(base=layer)
        try:
            apply_record(trial, record, start + len(accepted), ctx)
        except RuleViolation as exc:
            rejected.append((record, exc))
            continue
        trial.merge_into(layer)
        accepted.append(record)
        room -= len(record.raw)
    deferred.extend(records[len(candidates) :])
    tree = state_after(view, layer, chain)
    block, frontier = seal(
        signer=signer,
        network=registry.network_id,
        chain=chain,
        prev=prev,
        frontier=view.frontier(chain),
        records=accepted,
        time=time,
        witness=witness,
        state=tree.root(),
    )
    h = block.header
    layer.headers[(chain, h.height)] = h
    layer.signatures[(chain, h.height)] = block.signed.sig
    layer.heads[chain] = h
    layer.frontiers[chain] = frontier
    layer.state_trees[chain] = tree
    return Proposal(block, layer, rejected, deferred)


class MemoryLedger:
    """Every chain of a network in memory: for examples, tests and offline checks."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.state = genesis(registry)
        self.blocks: dict[str, list[Block]] = {}
        self.trees: dict[str, MemoryTree] = {}

    def signature(self, chain: str, height: int) -> bytes | None:
        return self.state.signatures.get((chain, height))

    def append(self, block: Block) -> None:
        """Verify and apply a block received from anyone."""
        apply_block(self.state, block, self.registry).merge_into(self.state)
        self._keep(block)

    def seal(self, signer: Signer, chain: str, records: Sequence[Record], time: str) -> Proposal:
        """Seal and apply this authority's next block."""
        proposal = propose(self.state, self.registry, signer, chain, records, time)
        self.commit(proposal)
        return proposal

    def commit(self, proposal: Proposal) -> None:
        """Apply a block proposed (by ``propose``) on this ledger's current state."""
        proposal.layer.merge_into(self.state)
        self._keep(proposal.block)

    def _keep(self, block: Block) -> None:
        chain = block.header.chain
        self.blocks.setdefault(chain, []).append(block)
        self.trees.setdefault(chain, MemoryTree()).extend(r.leaf for r in block.records)
