"""Equivocating chains for the block rules: where a fork caps a witness, and a restart.

A chain ``X`` shown to equivocate at fork height ``F`` (``chain.fork_heights``)
is seen by every other chain only up to its last common header ``F - 1``
(``chain.resolve_witness``). A governance ``key.replace`` whose
``from_height`` is ``F`` restarts ``X`` there under a new key
(``resumed_at``); which ``X`` a block sees is fixed by the ``KP`` log size it
witnesses (``kp_seen``, ``live_forks``), so every node judges it alike. What
a block must hold to be judged (``witness_needs``) and what a block sealed
here witnesses (``sealing_witness``: never lower than its previous block,
``stale_witness``) follow from the same rule, and so does checking evidence
signed with a key the ledger no longer names (``verify_evidence``). Pure
functions of a ``StateView``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kpledger.ledger.blocks import Evidence, Header, WitnessRef
from kpledger.ledger.crypto import PublicKey
from kpledger.ledger.errors import DependencyMissing, InvalidData, SignatureError
from kpledger.ledger.records import GOVERNANCE_CHAIN
from kpledger.ledger.state import KeyEvent, StateView, chains_of

__all__ = [
    "kp_now",
    "kp_seen",
    "live_forks",
    "resumed_at",
    "sealing_witness",
    "stale_witness",
    "verify_evidence",
    "witness_needs",
]


def resumed_at(view: StateView, forks: Mapping[str, int]) -> dict[str, int]:
    """For each forked chain restarted by a ``key.replace``, the KP log size holding it.

    A chain shown to equivocate at fork height ``F`` is restarted by a
    governance ``key.replace`` whose ``from_height`` is ``F``: its blocks from
    ``F`` on are the new key's (README, "When an authority equivocates").
    Admissions also set a key from height 1, so their KP sizes are left out.
    """
    out: dict[str, int] = {}
    for chain, fork in forks.items():
        admitted = {m.kp_size for m in view.member_events(chain)}
        sizes = [
            e.kp_size
            for e in view.key_events(chain)
            if e.kp_size > 0 and e.from_height == fork and e.kp_size not in admitted
        ]
        if sizes:
            out[chain] = min(sizes)
    return out


def kp_seen(view: StateView, header: Header) -> int:
    """The governance log size a block sees: for a ``KP`` block, the size before it;
    for any other, the size of the ``KP`` header it witnesses (0 without one)."""
    if header.chain == GOVERNANCE_CHAIN:
        if header.height <= 1:
            return 0
        before = view.header(GOVERNANCE_CHAIN, header.height - 1)
        if before is None:
            raise DependencyMissing(GOVERNANCE_CHAIN, header.height - 1)
        return before.size
    for w in header.witness:
        if w.chain == GOVERNANCE_CHAIN:
            held = view.header(GOVERNANCE_CHAIN, w.height)
            if held is None:
                raise DependencyMissing(GOVERNANCE_CHAIN, w.height)
            return held.size
    return 0


def live_forks(view: StateView, forks: Mapping[str, int], seen: int) -> dict[str, int]:
    """The forks that bind a block seeing ``KP`` up to log size ``seen``.

    A forked chain stays capped at its last common header for every block
    that does not see the ``key.replace`` restarting it; a block that sees
    it judges the chain's new blocks like any other chain's. The verdict
    rests on the block's own ``KP`` witness, so it is the same on every node.
    """
    resumed = resumed_at(view, forks)
    return {c: f for c, f in forks.items() if not (c in resumed and resumed[c] <= seen)}


def stale_witness(
    view: StateView,
    w: WitnessRef,
    prev: Header | None,
    forks: Mapping[str, int],
    live: Mapping[str, int],
) -> bool:
    """Whether witness ``w`` repeats, unchanged, an old key's header of a restarted chain.

    A chain ``X`` restarted at its fork height ``F`` has new headers from
    ``F`` on; a block whose previous block witnessed ``X`` above what the new
    chain has reached may name that same old-version header again, so that
    witness heights never go back (``blocks.check_link``, and the offline
    verifier's same rule). Such a repeat counts as witnessing ``X``'s last
    common header. It is told apart from a new header by not being held:
    a new header that the previous block named was checked when that block
    was applied, so every node judging this block holds it.
    """
    fork = forks.get(w.chain)
    if fork is None or w.chain in live or w.height < fork or prev is None:
        return False
    if not any(p == w for p in prev.witness):
        return False
    held = view.header(w.chain, w.height)
    return held is None or held.hash != w.hash


def witness_needs(
    view: StateView, header: Header, forks: Mapping[str, int], prev: Header | None = None
) -> dict[str, int]:
    """The height of each chain a node must hold to judge ``header``'s block.

    The witnessed height, except for a chain capped at its fork (``live_forks``)
    and for a repeated old-version witness of a restarted chain (``stale_witness``):
    there only the last common header is read, whatever the witness names.
    ``prev``: the previous header of the block's chain.
    """
    live = live_forks(view, forks, kp_seen(view, header)) if forks else {}
    out: dict[str, int] = {}
    for w in header.witness:
        fork = live.get(w.chain)
        if fork is not None or (forks and stale_witness(view, w, prev, forks, live)):
            fork = forks[w.chain]
            out[w.chain] = min(w.height, fork - 1)
        else:
            out[w.chain] = w.height
    return out


def sealing_witness(view: StateView, chain: str) -> list[WitnessRef]:
    """What the next block of ``chain`` sealed here witnesses: the head of every other
    chain held, except where the previous block witnessed a chain higher than its head
    (an old version of a chain restarted at its fork): that witness is repeated."""
    prev = view.head(chain)
    before = {w.chain: w for w in prev.witness} if prev is not None else {}
    out: list[WitnessRef] = []
    for c in chains_of(view):
        if c == chain:
            continue
        head = view.head(c)
        earlier = before.get(c)
        if earlier is not None and (head is None or head.height < earlier.height):
            out.append(earlier)
        elif head is not None:
            out.append(WitnessRef(head.chain, head.height, head.hash))
    return out


def kp_now(view: StateView) -> int:
    """The governance log size this node holds (what a block it seals now sees)."""
    head = view.head(GOVERNANCE_CHAIN)
    return 0 if head is None else head.size


def _key_as_of(view: StateView, chain: str, height: int, kp_size: int) -> PublicKey | None:
    """``state.key_at`` with only the key events of governance log size up to ``kp_size``."""
    best: KeyEvent | None = None
    for event in view.key_events(chain):
        if event.kp_size > kp_size or event.from_height > height:
            continue
        if best is None or (event.from_height, event.kp_size) >= (best.from_height, best.kp_size):
            best = event
    return None if best is None else best.key


def verify_evidence(view: StateView, ev: Evidence) -> None:
    """Raise unless ``ev`` proves that one key of its chain signed two histories.

    Both headers are checked against the chain's keys as the key history
    stood at one governance log size, the latest first: evidence against a
    chain restarted at its fork was signed with the old key, which the
    ledger no longer names there, and a node that receives it after the
    ``key.replace`` (a node catching up, an import) must still take it. An
    old-key header and a new-key one at the same height are no evidence: no
    single state of the key history names both keys.
    """
    cuts = sorted({e.kp_size for e in view.key_events(ev.chain)}, reverse=True)
    error: InvalidData = SignatureError(f"no key of {ev.chain} signed this evidence")
    for cut in cuts:

        def key_for(chain: str, height: int, cut: int = cut) -> PublicKey:
            key = _key_as_of(view, chain, height, cut)
            if key is None:
                raise SignatureError(f"no key of {chain} at height {height}")
            return key

        try:
            ev.verify(key_for)
        except InvalidData as exc:
            error = exc
            continue
        return
    raise error
