"""Bundles for differential tests of the two verifiers: single-field mutations of the
conformance vectors, and random stories sealed without the rules (so that step 5
sees both valid and invalid records).

Each is a seeded generator: the same seed gives the same bundles.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from typing import Any

from kpledger.devtools.replay_vectors import RawChains, _base, _issue_body
from kpledger.ledger.errors import InvalidData
from kpledger.ledger.records import Kind, Record


def _paths(x: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _paths(v, (*path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _paths(v, (*path, i))
    yield path


def _variants(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, -1, 0, 2**53, "1"]
    if isinstance(value, str):
        out: list[Any] = [value + "x", value[:-1], "", value.upper()]
        if value and all(c in "0123456789abcdef" for c in value):
            out.append(("1" if value[0] == "0" else "0") + value[1:])
        return out
    if isinstance(value, list):
        return [[], value[:-1], value + value[-1:], list(reversed(value))]
    if isinstance(value, dict):
        return [{}, {**value, "zz": 1}]
    return []


def mutated(doc: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], str]:
    """A copy of ``doc`` with one field changed, added or removed, and what was done."""
    while True:
        new = copy.deepcopy(doc)
        path = rng.choice([p for p in _paths(new) if p])
        parent = new
        for k in path[:-1]:
            parent = parent[k]
        choices = _variants(parent[path[-1]])
        if isinstance(parent, dict):
            choices.append(_DELETE)
        if not choices:
            continue
        change = rng.choice(choices)
        if change is _DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = change
        return new, f"{'.'.join(map(str, path))} <- {change!r:.40}"


_DELETE = object()

KINDS = (
    "transfer",
    "split",
    "merge",
    "issue",
    "confirm",
    "refuse",
    "void",
    "restrict",
    "lift",
    "release",
    "revoke",
    "party",
    "register",
)


class _Story:
    """A random story on BW and EU (cosign 0), sealed without the rules."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.raw: RawChains = _base(rng.randrange(1, 4))
        self.parcels = ["BW-P1", "BW-P2"]
        self.weights = {"BW-P1": 100_000, "BW-P2": 50_000}
        self.parties = ["BW-MINE", "BW-EXP", "BW-T", "EU-IMP"]
        self.issues: dict[str, Record] = {}
        self.seen: dict[str, set[str]] = {"BW": set(), "EU": set()}
        self.steps: list[str] = []

    def seal(self, chain: str, *records: Record, witness: tuple[str, ...] = ()) -> None:
        """Seal, never dropping a chain once witnessed (step 3 would refuse that first)."""
        self.seen[chain] |= {c for c in witness if c != chain}
        self.raw.seal(chain, *records, witness=sorted(self.seen[chain]))

    def _index(self, record: Record) -> int:
        return next(i for i, r, _ in self.raw.placed if r is record)

    def step(self, n: int) -> None:
        rng, sc = self.rng, self.raw.sc
        kind = rng.choice(KINDS)
        p, who = rng.choice(self.parcels), rng.choice(self.parties)
        chain, witness = "BW", rng.choice([(), ("EU",)])
        if kind == "transfer":
            record = sc.transfer("BW", p, who)
        elif kind == "split":
            w = self.weights.get(p, 1000)
            a = rng.randrange(1, w) if w > 1 else 1
            b = w - a + rng.choice([0, 0, 0, 1, -1])
            kids = [(f"BW-S{n}a", a, 10), (f"BW-S{n}b", b, 10)]
            record = sc.split("BW", p, kids)
            self.parcels += [k[0] for k in kids]
            self.weights.update({k[0]: k[1] for k in kids})
        elif kind == "merge":
            q = rng.choice([x for x in self.parcels if x != p])
            body = {
                "parents": [p, q],
                "parcel": f"BW-M{n}",
                "custodian": who if who.startswith("BW") else "BW-T",
                "weight": self.weights.get(p, 0) + self.weights.get(q, 0) + rng.choice([0, 0, 1]),
                "value": 5,
            }
            record = sc.record("BW", Kind.PARCEL_MERGE, body)
            self.parcels.append(f"BW-M{n}")
        elif kind == "issue":
            self.seal("BW", sc.transfer("BW", p, "BW-EXP"))
            extra = rng.choice([{}, {}, {}, {"expires": "2026-03-05"}, {"origin": "mixed"}])
            body = _issue_body(f"BW-C{n}", p, self.weights.get(p, 1000), 1000, **extra)
            record = sc.record("BW", Kind.CERTIFICATE_ISSUE, body)
            self.issues[f"BW-C{n}"] = record
            witness = ("EU",)
        elif kind in ("confirm", "refuse", "void"):
            if not self.issues:
                return
            number = rng.choice(sorted(self.issues))
            issue = self.issues[number]
            ref = {"chain": "BW", "index": self._index(issue), "hash": issue.leaf.hex()}
            lines = issue.as_json()["body"]["lines"]
            if kind == "confirm":
                got = [
                    {"parcel": x["parcel"], "weight": x["weight"] + rng.choice([0, 0, 900])}
                    for x in lines
                ]
                body = {"number": number, "ref": ref, "custodian": "EU-IMP", "received": got}
                record, chain = sc.record("EU", Kind.CERTIFICATE_CONFIRM, body), "EU"
            elif kind == "refuse":
                code = rng.choice(["documents", "restricted-origin"])
                body = {"number": number, "ref": ref, "code": code, "reason": "x"}
                record, chain = sc.record("EU", Kind.CERTIFICATE_REFUSE, body), "EU"
            else:
                body = {"number": number, "reason": "x", "importer_height": rng.randrange(1, 4)}
                record = sc.record("BW", Kind.CERTIFICATE_VOID, body)
            witness = ("BW",) if chain == "EU" else ("EU",)
        elif kind in ("restrict", "lift"):
            k = Kind.POLICY_RESTRICT_ORIGIN if kind == "restrict" else Kind.POLICY_LIFT_ORIGIN
            record, chain = sc.record("EU", k, {"origin": "BW", "reason": "x"}), "EU"
        elif kind == "release":
            chain = rng.choice(["BW", "EU"])
            record = sc.record(chain, Kind.PARCEL_RELEASE, {"parcel": p, "reason": "x"})
        elif kind == "revoke":
            chain = who[:2]
            record = sc.record(chain, Kind.PARTY_REVOKE, {"party": who, "reason": "x"})
        elif kind == "party":
            record = sc.party("BW", f"BW-Q{n}", "trader")
            self.parties.append(f"BW-Q{n}")
        else:
            record = sc.register("BW", f"BW-R{n}", who, 1000, 10)
            self.parcels.append(f"BW-R{n}")
            self.weights[f"BW-R{n}"] = 1000
        if rng.random() < 0.3:  # the other chain seals an empty block
            other = "EU" if chain == "BW" else "BW"
            self.seal(other, witness=rng.choice([(), (chain,)]))
        self.seal(chain, record, witness=witness)
        self.steps.append(kind)


def random_story(rng: random.Random) -> tuple[bytes, str, list[str]]:
    """A bundle of a random story (one to eight steps), its subject and its steps."""
    while True:
        story = _Story(rng)
        for n in range(rng.randrange(1, 9)):
            try:
                story.step(n)
            except InvalidData:
                continue  # the record builder refused the body: no record that step
        subject = rng.choice(story.parcels)
        return story.raw.bundle(subject), subject, story.steps
