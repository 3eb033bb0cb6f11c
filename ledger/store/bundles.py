"""Building provenance bundles (``ledger.bundle``) from a node's store.

``build_bundle(store, parcel_id)`` gathers what the format's "What a bundle
holds" list demands, reading the store through its public methods and a few
SQL reads of the log tables of ``ledger.store.tables``:

1. the custody closure: every record that acted on the subject; for every
   record taken, each parcel it acted on, with that parcel's history up to that
   record. A parcel's history is ordered causally: the records of its chain in
   log order, and after a certificate issue, the confirmation on the importer's
   chain (a void stays on the issuer's chain; after an importer's refusal the
   history goes on on the issuer's chain);
2. the registration and every revocation of every party those records name, and
   for a first sale (``parcel.purchase``) the registration and every end of its
   claim and of the buyer's and the digger's licences (the rules A1-A3 read them);
3. the origin policy records of each confirming chain below its last
   confirmation taken;
4. to a fixpoint: each record's block header and the one before it; the
   witnessed headers confirmations, refusals and voids need (and, for every
   record, the header it witnesses of a chain whose refusal the bundle holds:
   a returned parcel is acted on only in blocks that witness its refusal); the
   ``KP`` header of every header that witnesses ``KP``; every ``KP`` record below the largest ``KP``
   size reached; every ``key.rotate`` of a chain below its highest header;
   and, for every block holding a record taken, the signed headers of
   ``registry.cosign`` other authorities that witness it (directly or through
   later headers of its chain, which are taken too): for each other authority
   the first of its headers that witnesses the block, the ``cosign`` that reach
   it soonest. ``NotYetCosigned`` if fewer exist (``partial=True`` skips that);
5. each record's RFC 9162 inclusion proof against its block's root;
6. the subject's state: for every chain whose records taken act on it or to
   which a certificate taken that carries it goes, that chain's newest header
   witnessed by ``cosign`` other authorities (with those cosigners' headers,
   taken in step 4 like the others), and the subject's slot in the chain's
   parcel state tree as of the newest such header the bundle holds
   (``ledger.bundle.checkpoint``), read from the store
   (``StoreState.state_tree_at``, which keeps the last few).

One concept, a little over 500 lines: building the closure listed above
from one store.
"""

from __future__ import annotations

import bisect
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select

from kpledger.ledger.blocks import Header, SignedHeader
from kpledger.ledger.bundle import BundleRecord, BundleState, assemble_bundle, checkpoint
from kpledger.ledger.canonical import parse_canonical
from kpledger.ledger.errors import NotYetCosigned, StoreError, UnknownReference
from kpledger.ledger.records import (
    GOVERNANCE_CHAIN,
    CertificateConfirm,
    CertificateIssue,
    CertificateRefuse,
    CertificateVoid,
    Kind,
    LicenceEnd,
    ParcelMerge,
    ParcelPurchase,
    ParcelRegister,
    ParcelSplit,
    ParcelTransfer,
    PartyRevoke,
    Record,
)
from kpledger.ledger.state import CertificateStatus
from kpledger.ledger.store import tables as t
from kpledger.ledger.store.store import Store

__all__ = ["build_bundle"]

Key = tuple[str, int]  # (chain, index) of a record, or (chain, height) of a header
_CHUNK = 500
_POLICY = (Kind.POLICY_RESTRICT_ORIGIN.value, Kind.POLICY_LIFT_ORIGIN.value)


def build_bundle(
    store: Store,
    parcel_id: str,
    *,
    partial: bool = False,
    disclose: Callable[[Record], bool] | None = None,
) -> dict[str, Any]:
    """The provenance bundle of ``parcel_id`` as the store holds it now (a JSON value).

    Its records are committed (format 2): anyone may hold it. ``disclose`` says of
    which records the bundle also carries the disclosures this node holds (those
    the caller is entitled to). Serialise it with ``ledger.bundle.serialize_bundle``. Raises
    ``UnknownReference`` if the store holds no such parcel, and
    ``NotYetCosigned`` if a block it needs is not yet witnessed by enough other
    authorities (with ``partial``, the bundle is returned as it is: it will not
    verify; for tests of the verifier).
    """
    doc = _Builder(store, partial=partial).build(parcel_id)
    if disclose is not None:
        records = [Record.from_value(r["record"]) for r in doc["records"]]
        leaves = [r.leaf for r in records if disclose(r)]
        held = store.disclosures.of_records(leaves) if leaves else []
        if held:
            doc["disclosures"] = sorted(
                (h.disclosure.to_json() for h in held), key=lambda d: (d["record"], d["path"])
            )
    return doc


class _Builder:
    def __init__(self, store: Store, *, partial: bool = False) -> None:
        self.store = store
        self.partial = partial
        self.peeked: dict[Key, Header | None] = {}  # headers read, in the bundle or not
        self.cosigned: set[Key] = set()  # blocks whose cosigners are taken
        self.records: dict[Key, Record] = {}
        self.headers: dict[Key, SignedHeader] = {}
        self.sizes: dict[str, tuple[list[int], list[int]]] = {}  # chain -> (heights, sizes)
        self.timelines: dict[str, list[Key]] = {}
        self.refusers: set[str] = set()  # chains whose refusals the bundle holds
        self.licence_ids: set[str] = set()  # claims and licences whose records are taken
        self.registry_keys: set[Key] = set()  # their registrations and ends
        self.ends: dict[str, list[Key]] = {}  # chain -> its licence.end records
        self.late: list[NotYetCosigned] = []  # checkpoints no `cosign` others have witnessed

    # ------------------------------------------------------------ SQL reads
    def _load_records(self, keys: Iterable[Key]) -> None:
        wanted: dict[str, list[int]] = {}
        for chain, idx in keys:
            if (chain, idx) not in self.records:
                wanted.setdefault(chain, []).append(idx)
        r = t.records.c
        with self.store.engine.connect() as conn:
            for chain, idxs in wanted.items():
                for i in range(0, len(idxs), _CHUNK):
                    q = select(r.idx, r.raw).where(
                        r.chain == chain, r.idx.in_(idxs[i : i + _CHUNK])
                    )
                    for idx, raw in conn.execute(q):
                        self.records[(chain, int(idx))] = Record.parse(bytes(raw))
        for chain, idxs in wanted.items():
            for idx in idxs:
                if (chain, idx) not in self.records:
                    raise StoreError(f"record {chain}/{idx} is not stored")

    def _load_headers(self, keys: Iterable[Key]) -> list[SignedHeader]:
        wanted: dict[str, list[int]] = {}
        for chain, height in keys:
            if (chain, height) not in self.headers:
                wanted.setdefault(chain, []).append(height)
        h = t.headers.c
        new: list[SignedHeader] = []
        with self.store.engine.connect() as conn:
            for chain, heights in wanted.items():
                for i in range(0, len(heights), _CHUNK):
                    q = select(h.header, h.sig).where(
                        h.chain == chain, h.height.in_(heights[i : i + _CHUNK])
                    )
                    for raw, sig in conn.execute(q):
                        header = Header.from_json(parse_canonical(bytes(raw), what="stored header"))
                        signed = SignedHeader(header, bytes(sig))
                        self.headers[(header.chain, header.height)] = signed
                        new.append(signed)
        for chain, heights in wanted.items():
            for height in heights:
                if (chain, height) not in self.headers:
                    raise StoreError(f"header {chain}/{height} is not stored")
        return new

    def _block_height(self, chain: str, idx: int) -> int:
        """Height of the block holding record ``idx``: the first header with size > idx."""
        if chain not in self.sizes:
            h = t.headers.c
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    select(h.height, h.size).where(h.chain == chain).order_by(h.height)
                ).all()
            self.sizes[chain] = ([int(r[0]) for r in rows], [int(r[1]) for r in rows])
        heights, sizes = self.sizes[chain]
        pos = bisect.bisect_right(sizes, idx)
        if pos == len(heights):
            raise StoreError(f"no stored header of {chain} holds record {idx}")
        return heights[pos]

    def _parcels_of(self, keys: Iterable[Key]) -> dict[Key, list[str]]:
        """The parcels each record acted on (``parcel_events``)."""
        by_chain: dict[str, list[int]] = {}
        for chain, idx in keys:
            by_chain.setdefault(chain, []).append(idx)
        out: dict[Key, list[str]] = {}
        e = t.parcel_events.c
        with self.store.engine.connect() as conn:
            for chain, idxs in by_chain.items():
                for i in range(0, len(idxs), _CHUNK):
                    q = select(e.idx, e.parcel).where(
                        e.chain == chain, e.idx.in_(idxs[i : i + _CHUNK])
                    )
                    for idx, parcel in conn.execute(q):
                        out.setdefault((chain, int(idx)), []).append(parcel)
        return out

    def _indexes(
        self,
        chain: str,
        kinds: Iterable[str],
        *,
        below_idx: int | None = None,
        below_height: int | None = None,
    ) -> list[int]:
        r = t.records.c
        q = select(r.idx).where(r.chain == chain, r.kind.in_(list(kinds)))
        if below_idx is not None:
            q = q.where(r.idx < below_idx)
        if below_height is not None:
            q = q.where(r.height < below_height)
        with self.store.engine.connect() as conn:
            return [int(i) for (i,) in conn.execute(q)]

    # ------------------------------------------------------------ custody closure
    def _timeline(self, parcel_id: str) -> list[Key]:
        """The records that acted on a parcel, in causal order."""
        if parcel_id in self.timelines:
            return self.timelines[parcel_id]
        parcel = self.store.parcel(parcel_id)
        if parcel is None:
            raise StoreError(f"parcel {parcel_id} has events but no row")
        by_chain: dict[str, list[int]] = {}
        for ev in self.store.lineage.events(parcel_id):
            by_chain.setdefault(ev.ref.chain, []).append(ev.ref.index)
        for idxs in by_chain.values():
            idxs.sort()
        total = sum(len(v) for v in by_chain.values())
        seq: list[Key] = []
        chain, start = parcel.created.chain, parcel.created.index
        while True:
            moved = False
            for idx in by_chain.get(chain, []):
                if idx < start:
                    continue
                seq.append((chain, idx))
                self._load_records([(chain, idx)])
                body = self.records[(chain, idx)].body
                if not isinstance(body, CertificateIssue):
                    continue
                cert = self.store.certificate(body.number)
                closed = None if cert is None else cert.closed_ref
                if closed is None or closed.chain == chain:
                    continue
                seq.append((closed.chain, closed.index))
                if cert is not None and cert.status is CertificateStatus.REFUSED:
                    continue  # refused: the parcel is back on this chain, after the refusal
                chain, start, moved = closed.chain, closed.index + 1, True  # confirmed
                break
            if not moved:
                break
        if len(seq) != total or len(set(seq)) != total:
            raise StoreError(f"cannot order the {total} records of parcel {parcel_id}")
        self.timelines[parcel_id] = seq
        return seq

    def _custody(self, subject: str) -> set[Key]:
        taken: set[Key] = set()
        need: dict[str, int] = {}
        work: deque[Key] = deque()

        def want(parcel_id: str, upto: int) -> None:
            had = need.get(parcel_id, -1)
            if upto <= had:
                return
            need[parcel_id] = upto
            for key in self._timeline(parcel_id)[had + 1 : upto + 1]:
                if key not in taken:
                    taken.add(key)
                    work.append(key)

        want(subject, len(self._timeline(subject)) - 1)
        while work:
            batch = list(work)
            work.clear()
            for key, parcels in self._parcels_of(batch).items():
                for q in parcels:
                    want(q, self._timeline(q).index(key))
        return taken

    # ------------------------------------------------------------ parties and policy
    def _parties(self, keys: Iterable[Key]) -> set[Key]:
        names: set[str] = set()
        confirms: dict[str, int] = {}
        for chain, idx in keys:
            body = self.records[(chain, idx)].body
            match body:
                case ParcelRegister():
                    names.add(body.custodian)
                case ParcelTransfer():
                    names.add(body.to)
                case ParcelSplit():
                    names.update(c.custodian for c in body.children if c.custodian)
                case ParcelMerge():
                    names.add(body.custodian)
                case CertificateIssue():
                    names.add(body.exporter)
                case CertificateConfirm():
                    names.add(body.custodian)
                    confirms[chain] = max(confirms.get(chain, 0), idx)
                case CertificateRefuse():  # a restricted-origin refusal reads the policy
                    confirms[chain] = max(confirms.get(chain, 0), idx)
                case ParcelPurchase():
                    names.add(self._licences(chain, body))
                case _:
                    pass
        out = self._party_records(names) | self.registry_keys
        for chain, last in confirms.items():
            out.update((chain, i) for i in self._indexes(chain, _POLICY, below_idx=last))
        return out

    def _party_records(self, names: set[str]) -> set[Key]:
        """The registration and every revocation of the parties ``names``."""
        out: set[Key] = set()
        chains: set[str] = set()
        for name in names:
            party = self.store.party(name)
            if party is None:
                raise StoreError(f"party {name} is named by a record but not stored")
            out.add((party.registered.chain, party.registered.index))
            chains.add(party.chain)
        for chain in chains:
            revokes = [(chain, i) for i in self._indexes(chain, [Kind.PARTY_REVOKE.value])]
            self._load_records(revokes)
            for key in revokes:
                body = self.records[key].body
                if isinstance(body, PartyRevoke) and body.party in names:
                    out.add(key)
        return out

    def _licences(self, chain: str, body: ParcelPurchase) -> str:
        """Take the registration and every end of a first sale's claim and licences;
        answer the buyer's party (its licence names it)."""
        wanted = {body.buyer, body.digger, body.claim} - self.licence_ids
        for lid in wanted:
            found = self.store.licence(lid)
            if found is None:
                raise StoreError(f"claim or licence {lid} is named by a record but not stored")
            self.registry_keys.add((found.registered.chain, found.registered.index))
        self.licence_ids |= wanted
        if wanted and chain not in self.ends:
            self.ends[chain] = [(chain, i) for i in self._indexes(chain, [Kind.LICENCE_END.value])]
            self._load_records(self.ends[chain])
        for key in self.ends.get(chain, []):
            end = self.records[key].body
            if isinstance(end, LicenceEnd) and end.licence in self.licence_ids:
                self.registry_keys.add(key)
        buyer = self.store.licence(body.buyer)
        if buyer is None:
            raise StoreError(f"buyer licence {body.buyer} is named by a record but not stored")
        return buyer.holder

    # ------------------------------------------------------------ headers to a fixpoint
    def _close(self, taken: set[Key], checkpoints: set[Key]) -> None:
        new_records = set(taken)
        placed: set[Key] = set()
        kp_size = 0
        rotations: dict[str, int] = {}
        first = self._load_headers(checkpoints)
        while new_records:
            self._load_records(new_records)
            want: set[Key] = set()
            for chain, idx in new_records:
                height = self._block_height(chain, idx)
                want.add((chain, height))
                if height > 1:
                    want.add((chain, height - 1))
            fresh = first + self._load_headers(want)
            first = []
            for key in sorted(want - self.cosigned):
                fresh += self._load_headers(self._cosigners(*key))
                self.cosigned.add(key)
            extra: set[Key] = set()
            for chain, idx in new_records:
                extra |= self._witnessed_for(chain, idx)
            fresh += self._load_headers(extra)
            placed |= new_records
            new_records = set()
            # the KP header that every new header witnesses (KP headers witness no KP)
            kp_wanted = {
                (w.chain, w.height)
                for s in fresh
                for w in s.header.witness
                if w.chain == GOVERNANCE_CHAIN
            }
            self._load_headers(kp_wanted)
            # the governance prefix those KP headers reach
            top = max(
                (s.header.size for (c, _), s in self.headers.items() if c == GOVERNANCE_CHAIN),
                default=0,
            )
            if top > kp_size:
                new_records.update((GOVERNANCE_CHAIN, i) for i in range(kp_size, top))
                kp_size = top
            # the key rotations below each chain's highest header
            highest: dict[str, int] = {}
            for c, h in self.headers:
                highest[c] = max(highest.get(c, 0), h)
            for c, h in highest.items():
                if c != GOVERNANCE_CHAIN and h > rotations.get(c, 1):
                    rotations[c] = h
                    new_records.update(
                        (c, i) for i in self._indexes(c, [Kind.KEY_ROTATE.value], below_height=h)
                    )
            new_records -= placed
        taken |= placed

    def _peek(self, chain: str, height: int) -> Header | None:
        if (chain, height) not in self.peeked:
            h = t.headers.c
            with self.store.engine.connect() as conn:
                raw = conn.execute(
                    select(h.header).where(h.chain == chain, h.height == height)
                ).scalar()
            self.peeked[(chain, height)] = (
                None
                if raw is None
                else Header.from_json(parse_canonical(bytes(raw), what="stored header"))
            )
        return self.peeked[(chain, height)]

    def _cosigners(self, chain: str, height: int) -> set[Key]:
        """The headers that show ``cosign`` other authorities witnessed block
        ``chain/height``: each one's first header witnessing ``chain`` at ``height`` or
        above, and ``chain``'s headers from ``height`` to the height it witnesses."""
        need = self.store.registry.cosign
        if need == 0:
            return set()
        found: list[tuple[int, int, str]] = []  # (height witnessed, cosigner height, cosigner)
        for other in self._chains():
            if other in (chain, GOVERNANCE_CHAIN):
                continue
            top = self._top(other)
            lo, hi = 1, top + 1  # witness heights never go back: binary search
            while lo < hi:
                mid = (lo + hi) // 2
                h = self._peek(other, mid)
                seen = (
                    0
                    if h is None
                    else max((w.height for w in h.witness if w.chain == chain), default=0)
                )
                if seen >= height:
                    hi = mid
                else:
                    lo = mid + 1
            if lo <= top:
                header = self._peek(other, lo)
                assert header is not None
                seen = max(w.height for w in header.witness if w.chain == chain)
                found.append((seen, lo, other))
        found.sort()
        if len(found) < need and not self.partial:
            raise NotYetCosigned(chain, height, tuple(sorted(o for _, _, o in found)), need)
        out: set[Key] = set()
        for seen, at, other in found[:need]:
            out.add((other, at))
            out.update((chain, h) for h in range(height, seen + 1))
        return out

    def _chains(self) -> list[str]:
        h = t.headers.c
        with self.store.engine.connect() as conn:
            return sorted(str(c) for c in conn.execute(select(h.chain).distinct()).scalars())

    def _top(self, chain: str) -> int:
        if chain not in self.sizes:
            with contextlib.suppress(StoreError):  # no record yet: the heights are loaded
                self._block_height(chain, 0)
        heights = self.sizes[chain][0]
        return heights[-1] if heights else 0

    def _witnessed_for(self, chain: str, idx: int) -> set[Key]:
        """The other chains' headers a confirmation, refusal or void is judged against,
        and those of chains whose refusals returned parcels to this record's chain."""
        body = self.records[(chain, idx)].body
        header = self.headers[(chain, self._block_height(chain, idx))].header
        out = {(w.chain, w.height) for w in header.witness if w.chain in self.refusers - {chain}}
        if not isinstance(body, CertificateConfirm | CertificateRefuse | CertificateVoid):
            return out
        cert = self.store.certificate(body.number)
        if cert is None:
            raise StoreError(f"certificate {body.number} is not stored")
        other = cert.destination if isinstance(body, CertificateVoid) else cert.issuer
        out |= {(w.chain, w.height) for w in header.witness if w.chain == other}
        if isinstance(body, CertificateVoid):
            out.add((other, body.importer_height))
        return out

    # ------------------------------------------------------------ the bundle
    def build(self, parcel_id: str) -> dict[str, Any]:
        if self.store.parcel(parcel_id) is None:
            raise UnknownReference(f"no parcel {parcel_id}", field="parcel")
        taken = self._custody(parcel_id)
        self._load_records(taken)
        self.refusers = {
            chain
            for chain, idx in taken
            if isinstance(self.records[(chain, idx)].body, CertificateRefuse)
        }
        chains = self._state_chains(parcel_id, taken)
        taken |= self._parties(taken)
        self._close(taken, self._checkpoint_headers(chains))
        if self.late and not self.partial:
            raise self.late[0]
        entries: list[BundleRecord] = []
        for chain, idx in sorted(taken):
            header = self.headers[(chain, self._block_height(chain, idx))].header
            proof = self.store.proofs.inclusion(chain, idx, header.size)
            entries.append(BundleRecord(idx, self.records[(chain, idx)], tuple(proof)))
        held = {k: s.header for k, s in self.headers.items()}
        states: list[BundleState] = []
        for chain in sorted(chains):
            top = checkpoint(held, chain, self.store.registry.cosign)
            if top is None:
                continue  # partial: it will not verify
            slot = self.store.state_tree_at(chain, top).prove(parcel_id)
            states.append(BundleState(chain, top, slot))
        return assemble_bundle(
            self.store.registry, parcel_id, self.headers.values(), entries, states=states
        )

    # ------------------------------------------------------------ the subject's state
    def _state_chains(self, subject: str, taken: set[Key]) -> set[str]:
        """The chains whose records taken act on the subject, and the destinations of
        the certificates taken that carry it."""
        out: set[str] = set()
        for (chain, idx), parcels in self._parcels_of(taken).items():
            if subject not in parcels:
                continue
            out.add(chain)
            body = self.records[(chain, idx)].body
            if isinstance(body, CertificateIssue):
                out.add(body.destination)
        return out

    def _checkpoint_headers(self, chains: Iterable[str]) -> set[Key]:
        """For each chain, its newest header ``cosign`` other authorities have witnessed
        (each other authority's head says how far it has), with those cosigners."""
        need = self.store.registry.cosign
        heads = self.store.heads()
        out: set[Key] = set()
        for chain in chains:
            head = heads.get(chain)
            if head is None:
                continue
            if need == 0:
                out.add((chain, head.height))
                continue
            seen = sorted(
                (
                    (w.height, other)
                    for other, h in heads.items()
                    if other not in (chain, GOVERNANCE_CHAIN)
                    for w in h.witness
                    if w.chain == chain
                ),
                reverse=True,
            )
            if len(seen) < need:
                # the blocks of the records taken report it first (in _close), unless the
                # chain holds none of them (a destination the subject has not reached)
                self.late.append(
                    NotYetCosigned(chain, head.height, tuple(sorted(o for _, o in seen)), need)
                )
                continue
            top = seen[need - 1][0]
            out.add((chain, top))
            out |= self._cosigners(chain, top)
            self.cosigned.add((chain, top))
        return out
