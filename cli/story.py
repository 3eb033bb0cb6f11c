"""The KP story, written once as data, and the one builder and player that run it.

``KP_STORY`` follows DOMAIN.md: production in Botswana, sorting in Gaborone,
exports under KP certificates to the EU and the UAE, Dubai's re-export to
India, Antwerp's assortment and re-export, and Surat's merge and split for
cutting. Steps that need Russia (``needs={"RU"}``, or written on chain RU)
add its chapter when RU takes part: ALROSA's production at Mir and Udachny, a
mixed Dubai shipment the EU restricts by origin (a dry-run confirmation the
EU's node must refuse by rule 9, then a ``certificate.refuse`` on the ledger),
and Russia's direct export to India, which Surat adds to a cutting lot.

``story_for(codes)`` is the story a network of those authorities can play:
``kpl demo`` plays it with RU (``cli.demo``), ``kpl ops story`` on the
four-authority network of ``docker/`` without (``cli.ops``). Each record is
composed by ``node.compose.Composer`` from the node's state, as the ``kpl``
officer commands compose theirs, and submitted to the authority's operator
API (``Story``); ``play`` submits each step and waits until it is sealed.
``kpl example`` plays the same story through the same builder on authorities
held in memory (``cli.example``), sealing into one SQL store; it then closes
the story's quarter (``LATE_PRODUCTION``, ``quarter_reports``: each
authority's ``stats.report``).

One concept, under 600 lines: the story as data and its one builder,
one short method per kind of record the story writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Any, Protocol

from kpledger.ledger.errors import InvalidData, LedgerError
from kpledger.ledger.kpdata import usd_per_carat
from kpledger.ledger.records import Kind
from kpledger.node.compose import Composer

__all__ = [
    "KP_STORY",
    "LATE_PRODUCTION",
    "PARTIES",
    "REQUIRED",
    "Authority",
    "Call",
    "Step",
    "Story",
    "StoryResult",
    "cents",
    "check",
    "final_parcel",
    "play",
    "quarter_reports",
    "step",
    "story_for",
]

#: the authorities every version of the story needs (RU's chapter is added when it takes part)
REQUIRED = ("BW", "AE", "EU", "IN")


def cents(code: str, carats: int) -> int:
    """A parcel's value in cents at the 2023 KP average price of its producer."""
    price = usd_per_carat(code) or 100.0
    return round(carats * price * 100)


class Authority(Protocol):
    """What the story needs of an authority: a ``NodeClient`` on its operator API, or
    ``cli.example``'s node in memory."""

    def get(self, path: str, **params: Any) -> Any: ...

    def submit(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def check(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...

    def wait_settled(
        self, record_ids: Iterable[str], *, timeout: float = 30.0, poll: float = 0.05
    ) -> dict[str, dict[str, Any]]: ...

    def close(self) -> None: ...


@dataclass
class StoryResult:
    """What a played story left: its final parcel, the refusals met, one line per step,
    the quarter it reported."""

    final_parcel: str
    refused: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    #: the quarter whose ``stats.report`` records the play sealed, if it sealed them
    reported: str | None = None


class Story:
    """Builds records, submits them to the right authority, and waits for outcomes.

    ``produced`` dates the story's production (``parcel.register``'s ``produced``, a day
    not after the record's), by default the day the record is written: ``kpl demo``
    registers production of the quarter before today's, so that the quarter is over
    and its reports can be sealed (rule S1)."""

    def __init__(
        self,
        clients: Mapping[str, Authority],
        auditor: Authority,
        network_id: str,
        say: Callable[[str], None],
        clock: Callable[[], str] | None = None,
        produced: str | None = None,
    ) -> None:
        self.say = say
        self.network_id = network_id
        self.clients = clients
        self.auditor = auditor
        self.clock = clock
        self.produced = produced

    @cached_property
    def composers(self) -> dict[str, Composer]:
        """Every record of the story is composed as the ``kpl`` officer commands compose
        theirs (built on first use), dated by ``clock`` if given, else by the time now."""
        dated = {} if self.clock is None else {"clock": self.clock}
        return {c: Composer(k, self.network_id, c, **dated) for c, k in self.clients.items()}

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.auditor.close()

    def record(self, chain: str, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = self.composers[chain].record(kind, body)
        return found

    def commit(
        self, chain: str, *records: dict[str, Any], refusals: int = 0
    ) -> list[dict[str, Any]]:
        """Submit to ``chain``'s node and wait until sealed; return the refusals."""
        client = self.clients[chain]
        answers = client.submit(list(records))
        bad = [a for a in answers if a["status"] == "invalid"]
        if bad:
            raise LedgerError(f"{chain} refused the demo's records as invalid: {bad[0]}")
        outcomes = client.wait_settled([r["id"] for r in records], timeout=60)
        refused = [o for o in outcomes.values() if o["status"] == "rejected"]
        if len(refused) != refusals:
            raise LedgerError(f"{chain}: expected {refusals} refusals, got {refused}")
        return refused

    def parcel(self, chain: str, parcel_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.clients[chain].get(f"/v1/parcels/{parcel_id}")
        return found

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise LedgerError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def has_certificate(self, chain: str, number: str) -> bool:
        try:
            self.clients[chain].get(f"/v1/certificates/{number}")
        except LedgerError:
            return False
        return True

    # ------------------------------------------------------------ record bodies
    def party(self, chain: str, party: str, role: str, name: str) -> dict[str, Any]:
        body = self.composers[chain].party_register(party, name, role, name)
        return self.record(chain, Kind.PARTY_REGISTER, body)

    def register(
        self, chain: str, parcel: str, custodian: str, carats: int, mine: str
    ) -> dict[str, Any]:
        body = self.composers[chain].parcel_register(
            parcel,
            custodian,
            carats * 100,
            cents(chain, carats),
            mine=mine,
            hs="7102.31",
            produced=self.produced,
        )
        return self.record(chain, Kind.PARCEL_REGISTER, body)

    def _shown(self, chain: str, parcels: list[str]) -> None:
        """Wait until ``chain``'s node shows each parcel's custodian and value: a parcel
        that arrived on a certificate gets its value from the exporter's disclosure,
        which gossip pulls after the block (a moment later on a loaded machine)."""
        for p in parcels:
            self.wait(f"{chain} to hold {p}'s disclosed value", partial(self._valued, chain, p))

    def _valued(self, chain: str, parcel: str) -> bool:
        return self.parcel(chain, parcel).get("value") is not None

    def split(self, chain: str, parcel: str, parts: list[tuple[str, int]]) -> dict[str, Any]:
        """Split by carats; the composer shares the value by weight."""
        self._shown(chain, [parcel])
        body = self.composers[chain].parcel_split(parcel, [(c, ct * 100) for c, ct in parts])
        return self.record(chain, Kind.PARCEL_SPLIT, body)

    def transfer(self, chain: str, parcel: str, to: str) -> dict[str, Any]:
        return self.record(
            chain, Kind.PARCEL_TRANSFER, self.composers[chain].parcel_transfer(parcel, to)
        )

    def merge(self, chain: str, parents: list[str], child: str, custodian: str) -> dict[str, Any]:
        self._shown(chain, parents)
        body = self.composers[chain].parcel_merge(parents, child, custodian)
        return self.record(chain, Kind.PARCEL_MERGE, body)

    def restrict(self, chain: str, origin: str) -> dict[str, Any]:
        body = self.composers[chain].policy_origin(
            origin, "ban on rough diamonds of this origin, also through third countries"
        )
        return self.record(chain, Kind.POLICY_RESTRICT_ORIGIN, body)

    def issue(
        self,
        chain: str,
        number: str,
        destination: str,
        exporter: str,
        parcels: list[str],
        importer: str,
    ) -> dict[str, Any]:
        self._shown(chain, parcels)
        body = self.composers[chain].certificate_issue(
            number, parcels, destination, importer, importer, exporter=exporter
        )
        return self.record(chain, Kind.CERTIFICATE_ISSUE, body)

    def _incoming(self, chain: str, number: str) -> None:
        self.wait(
            f"{chain} to receive certificate {number}", lambda: self.has_certificate(chain, number)
        )

    def confirm(self, chain: str, number: str, custodian: str) -> dict[str, Any]:
        self._incoming(chain, number)
        body = self.composers[chain].certificate_confirm(number, custodian)
        return self.record(chain, Kind.CERTIFICATE_CONFIRM, body)

    def check(self, chain: str, record: dict[str, Any]) -> dict[str, Any]:
        """The node's dry-run verdict on a record (``kpl ... --dry-run``)."""
        answer: dict[str, Any] = self.clients[chain].check([record])[0]
        return answer

    def refuse(self, chain: str, number: str, code: str, reason: str) -> dict[str, Any]:
        self._incoming(chain, number)
        body = self.composers[chain].certificate_refuse(number, code, reason)
        return self.record(chain, Kind.CERTIFICATE_REFUSE, body)

    def stats_report(self, chain: str, quarter: str) -> dict[str, Any]:
        """The authority's quarterly report, composed by its node (``kpl stats report``)."""
        body = self.composers[chain].stats_report(quarter)
        found: dict[str, Any] = self.composers[chain].record(
            Kind.STATS_REPORT, body, f"stats-{quarter}"
        )
        return found


# ---------------------------------------------------------------- the story as data


@dataclass(frozen=True)
class Call:
    """One record of a step: the name of a ``Story`` builder and its arguments."""

    builder: str
    args: tuple[Any, ...]

    def __init__(self, builder: str, *args: Any) -> None:
        object.__setattr__(self, "builder", builder)
        object.__setattr__(self, "args", args)

    def build(self, story: Story) -> dict[str, Any]:
        made: dict[str, Any] = getattr(story, self.builder)(*self.args)
        return made


@dataclass(frozen=True)
class Step:
    """Records submitted together to ``chain``'s node and sealed, or (with ``rule``) one
    record only checked (dry run) that the node must refuse by that rule.

    A step is played only when ``chain`` and every chain in ``needs`` take part;
    ``final`` names the parcel the story ends with once this step is played.
    """

    text: str
    chain: str
    calls: tuple[Call, ...]
    refusals: int = 0
    rule: str | None = None
    needs: frozenset[str] = frozenset()
    final: str | None = None


def step(
    text: str,
    chain: str,
    *calls: Call,
    refusals: int = 0,
    needs: Collection[str] = (),
    final: str | None = None,
) -> Step:
    return Step(text, chain, calls, refusals, needs=frozenset(needs), final=final)


def check(text: str, chain: str, call: Call, *, rule: str, needs: Collection[str] = ()) -> Step:
    return Step(text, chain, (call,), rule=rule, needs=frozenset(needs))


RU = ("RU",)

#: the story's licensed parties by (chain, role). Their ids have the form ``kpl party
#: register`` draws (``Composer.new_party_id``: the chain's code, then eight random
#: base32 characters) and, as every party id, carry no name: the name is a committed
#: field of ``party.register``. They are fixed here so that tests and docs can name them.
PARTIES: dict[tuple[str, str], str] = {
    ("BW", "miner"): "BW-ACL2HHH6",
    ("BW", "exporter"): "BW-M67M3DE7",
    ("RU", "miner"): "RU-ME4A2QUB",
    ("AE", "trader"): "AE-F6F7FV5W",
    ("EU", "importer"): "EU-LVESSCDL",
    ("IN", "manufacturer"): "IN-JDAV2W3X",
}

#: the KP story (DOMAIN.md): see the module's docstring; ``story_for`` selects its steps
KP_STORY: tuple[Step, ...] = (
    step(
        "licensed parties registered",
        "BW",
        Call("party", "BW", "BW-ACL2HHH6", "miner", "Debswana Diamond Company"),
        Call("party", "BW", "BW-M67M3DE7", "exporter", "Okavango Diamond Company"),
    ),
    step("licensed miner registered", "RU", Call("party", "RU", "RU-ME4A2QUB", "miner", "ALROSA")),
    step(
        "Dubai trader registered", "AE", Call("party", "AE", "AE-F6F7FV5W", "trader", "DMCC trader")
    ),
    step(
        "Antwerp importer registered",
        "EU",
        Call("party", "EU", "EU-LVESSCDL", "importer", "Antwerp rough importer"),
    ),
    step("the EU restricts Russian origin", "EU", Call("restrict", "EU", "RU"), needs=RU),
    step(
        "Surat manufacturer registered",
        "IN",
        Call("party", "IN", "IN-JDAV2W3X", "manufacturer", "Surat cutting works"),
    ),
    step(
        "production registered at Jwaneng and Orapa",
        "BW",
        Call("register", "BW", "BW-JW-1", "BW-ACL2HHH6", 12_500, "Jwaneng"),
        Call("register", "BW", "BW-OR-1", "BW-ACL2HHH6", 8_000, "Orapa"),
    ),
    step(
        "production registered at Mir and Udachny",
        "RU",
        Call("register", "RU", "RU-MI-1", "RU-ME4A2QUB", 9_000, "Mir"),
        Call("register", "RU", "RU-UD-1", "RU-ME4A2QUB", 6_000, "Udachny"),
    ),
    step(
        "sorting in Gaborone: the Jwaneng lot split in three",
        "BW",
        Call(
            "split",
            "BW",
            "BW-JW-1",
            [("BW-JW-1a", 5_000), ("BW-JW-1b", 4_500), ("BW-JW-1c", 3_000)],
        ),
    ),
    step(
        "lots sold to the exporter",
        "BW",
        *(
            Call("transfer", "BW", p, "BW-M67M3DE7")
            for p in ("BW-JW-1a", "BW-JW-1b", "BW-JW-1c", "BW-OR-1")
        ),
    ),
    step(
        "KP certificates BW-2026-0001 to the EU and BW-2026-0002 to the UAE",
        "BW",
        Call(
            "issue",
            "BW",
            "BW-2026-0001",
            "EU",
            "BW-M67M3DE7",
            ["BW-JW-1a", "BW-OR-1"],
            "Antwerp rough importer",
        ),
        Call(
            "issue",
            "BW",
            "BW-2026-0002",
            "AE",
            "BW-M67M3DE7",
            ["BW-JW-1b", "BW-JW-1c"],
            "DMCC trader",
        ),
    ),
    step(
        "KP certificate RU-2026-0001 to the UAE",
        "RU",
        Call("issue", "RU", "RU-2026-0001", "AE", "RU-ME4A2QUB", ["RU-MI-1"], "DMCC trader"),
    ),
    step("Dubai confirms its import", "AE", Call("confirm", "AE", "BW-2026-0002", "AE-F6F7FV5W")),
    step(
        "Dubai confirms the Russian import",
        "AE",
        Call("confirm", "AE", "RU-2026-0001", "AE-F6F7FV5W"),
        needs=RU,
    ),
    step(
        "Dubai mixes a Botswana lot with Russian goods",
        "AE",
        Call("merge", "AE", ["BW-JW-1c", "RU-MI-1"], "AE-MIX-1", "AE-F6F7FV5W"),
        needs=RU,
    ),
    step(
        "mixed-origin shipment certified to the EU",
        "AE",
        Call(
            "issue",
            "AE",
            "AE-2026-0001",
            "EU",
            "AE-F6F7FV5W",
            ["AE-MIX-1"],
            "Antwerp rough importer",
        ),
        needs=RU,
    ),
    check(
        "a confirmation of AE-2026-0001 (dry run)",
        "EU",
        Call("confirm", "EU", "AE-2026-0001", "EU-LVESSCDL"),
        rule="9",
        needs=RU,
    ),
    step(
        "the EU refuses the mixed shipment (certificate.refuse, restricted-origin); "
        "the lot goes back to Dubai",
        "EU",
        Call(
            "refuse",
            "EU",
            "AE-2026-0001",
            "restricted-origin",
            "holds Russian-origin rough: EU ban, also through third countries",
        ),
        needs=RU,
    ),
    step(
        "Dubai re-exports a Botswana lot to India under AE-2026-0002",
        "AE",
        Call(
            "issue", "AE", "AE-2026-0002", "IN", "AE-F6F7FV5W", ["BW-JW-1b"], "Surat cutting works"
        ),
    ),
    step(
        "Antwerp confirms the Botswana shipment",
        "EU",
        Call("confirm", "EU", "BW-2026-0001", "EU-LVESSCDL"),
    ),
    step(
        "Antwerp assorts the two Botswana lots",
        "EU",
        Call("merge", "EU", ["BW-JW-1a", "BW-OR-1"], "EU-AW-1", "EU-LVESSCDL"),
    ),
    step(
        "re-export to India under EU-2026-0001",
        "EU",
        Call(
            "issue", "EU", "EU-2026-0001", "IN", "EU-LVESSCDL", ["EU-AW-1"], "Surat cutting works"
        ),
    ),
    step(
        "Russia exports directly to India under RU-2026-0002",
        "RU",
        Call(
            "issue", "RU", "RU-2026-0002", "IN", "RU-ME4A2QUB", ["RU-UD-1"], "Surat cutting works"
        ),
    ),
    step(
        "Surat confirms the imports from Antwerp and Dubai",
        "IN",
        Call("confirm", "IN", "EU-2026-0001", "IN-JDAV2W3X"),
        Call("confirm", "IN", "AE-2026-0002", "IN-JDAV2W3X"),
    ),
    step(
        "Surat confirms the Russian import",
        "IN",
        Call("confirm", "IN", "RU-2026-0002", "IN-JDAV2W3X"),
        needs=RU,
    ),
    step(
        "Surat merges the Botswana lots for cutting",
        "IN",
        Call("merge", "IN", ["EU-AW-1", "BW-JW-1b"], "IN-CUT", "IN-JDAV2W3X"),
    ),
    step(
        "and splits them into two cutting lots",
        "IN",
        Call("split", "IN", "IN-CUT", [("IN-CUT-1", 9_000), ("IN-CUT-2", 8_500)]),
        final="IN-CUT-2",
    ),
    step(
        "Surat adds the Russian lot to the second cutting lot",
        "IN",
        Call("merge", "IN", ["IN-CUT-2", "RU-UD-1"], "IN-CUT-3", "IN-JDAV2W3X"),
        needs=RU,
        final="IN-CUT-3",
    ),
)


#: Botswana's third parcel of the quarter the story's production is dated in, registered
#: before that quarter's reports, so that one public statistics cell (BW's production)
#: holds enough records to show its USD
LATE_PRODUCTION = step(
    "the quarter's last production registered at Letlhakane",
    "BW",
    Call("register", "BW", "BW-LE-1", "BW-ACL2HHH6", 3_500, "Letlhakane"),
)


def quarter_reports(authorities: Sequence[str], quarter: str) -> tuple[Step, ...]:
    """Each authority seals its ``stats.report`` of ``quarter`` (rule S1: only once the
    quarter is over, so a story dated by the time now reports the quarter before, in
    which ``kpl demo`` dates its production)."""
    return tuple(
        step(f"statistics of {quarter} sealed", c, Call("stats_report", c, quarter))
        for c in authorities
    )


def story_for(authorities: Collection[str]) -> tuple[Step, ...]:
    """The steps of ``KP_STORY`` a network of ``authorities`` plays: those whose chain
    and needs all take part. Refuses a network without the ``REQUIRED`` authorities."""
    present = set(authorities)
    missing = sorted(set(REQUIRED) - present)
    if missing:
        raise InvalidData(f"the story needs the authorities {missing}", field="participants")
    return tuple(s for s in KP_STORY if {s.chain, *s.needs} <= present)


def final_parcel(steps: Sequence[Step]) -> str:
    """The parcel ``steps`` end with: the last ``final`` among them."""
    finals = [s.final for s in steps if s.final is not None]
    if not finals:
        raise InvalidData("the story names no final parcel", field="story")
    return finals[-1]


def play(s: Story, steps: Sequence[Step], result: StoryResult, sealed: str = "") -> StoryResult:
    """Play ``steps`` through ``s``: build each step's records, submit, wait until sealed.

    Each sealed step is told through ``s.say`` (prefixed by ``sealed``) and kept in
    ``result.steps``; refusals, expected ones and dry-run verdicts, go to
    ``result.refused``.
    """
    for st in steps:
        records = [call.build(s) for call in st.calls]
        if st.rule is not None:
            verdict = s.check(st.chain, records[0])
            if verdict["status"] != "rejected" or verdict.get("rule") != st.rule:
                raise LedgerError(
                    f"{st.chain}'s node should refuse {st.text} by rule {st.rule}: {verdict}"
                )
            result.refused.append(verdict)
            s.say(f"[yellow]checked[/] {st.chain}: {st.text}: rule {st.rule}: {verdict['reason']}")
            continue
        started = time.monotonic()
        refused = s.commit(st.chain, *records, refusals=st.refusals)
        result.refused += refused
        line = f"{st.chain}: {st.text} ({len(records)} records, {time.monotonic() - started:.1f}s)"
        result.steps.append(line)
        s.say(f"{sealed}{line}")
        for r in refused:
            s.say(f"    refused: rule {r['rule']}: {r['reason']}")
    return result
