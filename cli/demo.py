"""``kpl demo``: a real local network and one KP story driven through its HTTP API.

Five authority nodes (BW, RU, AE, EU, IN) and a WDC auditor node run as real
processes on 127.0.0.1, each with its own SQLite store. The story is the one
DOMAIN.md tells: production in Botswana and Russia at 2023 KP prices, sorting
in Gaborone, exports under KP certificates, a mixed Dubai shipment that the
EU's node would not let it confirm for its Russian share (rule 9) and that the
EU then refuses on the ledger (``certificate.refuse``, visible in the audit
report), Antwerp's re-export to India, Russia's direct export to India, and a
Surat manufacturer's merge and split. Every record is composed by
``node.compose.Composer`` from the node's state, exactly as the ``kpl`` officer
commands compose theirs, and goes through an authority's operator API; every
node checks every block it receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from kpledger.cli.governance import sign_proposal, submit_proposal
from kpledger.cli.join import connect_local
from kpledger.keys import load_key, load_public_key
from kpledger.ledger.errors import LedgerError
from kpledger.ledger.kpdata import usd_per_carat
from kpledger.ledger.records import GOVERNANCE_CHAIN, Kind, make_record
from kpledger.node.client import NodeClient
from kpledger.node.compose import Composer
from kpledger.node.config import NodeConfig
from kpledger.node.local import LocalNetwork, free_base_port
from kpledger.node.membership import join_network

__all__ = [
    "AUTHORITIES",
    "DEMO_STORY",
    "Call",
    "DemoResult",
    "Step",
    "Story",
    "admit_participant",
    "check",
    "play",
    "run_story",
    "step",
    "trade_and_suspend",
    "wait_agreement",
]

AUTHORITIES = ("BW", "RU", "AE", "EU", "IN")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cents(code: str, carats: int) -> int:
    """A parcel's value in cents at the 2023 KP average price of its producer."""
    price = usd_per_carat(code) or 100.0
    return round(carats * price * 100)


@dataclass
class DemoResult:
    final_parcel: str
    refused: list[dict[str, Any]] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)


class Story:
    """Builds records, submits them to the right authority, and waits for outcomes."""

    def __init__(
        self,
        clients: dict[str, NodeClient],
        auditor: NodeClient,
        network_id: str,
        say: Callable[[str], None],
    ) -> None:
        self.say = say
        self.network_id = network_id
        self.clients = clients
        self.auditor = auditor

    @classmethod
    def local(cls, net: LocalNetwork, say: Callable[[str], None]) -> Story:
        """The story's builder on the operator clients of a ``LocalNetwork``'s authorities."""
        return cls(
            {c: NodeClient(net.layout.urls[c], net.token(c)) for c in AUTHORITIES},
            NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")),
            net.layout.registry.network_id,
            say,
        )

    @cached_property
    def composers(self) -> dict[str, Composer]:
        """Every record of the story is composed as the ``kpl`` officer commands compose
        theirs (built on first use)."""
        return {c: Composer(client, self.network_id, c) for c, client in self.clients.items()}

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
            parcel, custodian, carats * 100, cents(chain, carats), mine=mine, hs="7102.31"
        )
        return self.record(chain, Kind.PARCEL_REGISTER, body)

    def split(self, chain: str, parcel: str, parts: list[tuple[str, int]]) -> dict[str, Any]:
        """Split by carats; the composer shares the value by weight."""
        body = self.composers[chain].parcel_split(parcel, [(c, ct * 100) for c, ct in parts])
        return self.record(chain, Kind.PARCEL_SPLIT, body)

    def transfer(self, chain: str, parcel: str, to: str) -> dict[str, Any]:
        return self.record(
            chain, Kind.PARCEL_TRANSFER, self.composers[chain].parcel_transfer(parcel, to)
        )

    def merge(self, chain: str, parents: list[str], child: str, custodian: str) -> dict[str, Any]:
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
    record only checked (dry run) that the node must refuse by that rule."""

    text: str
    chain: str
    calls: tuple[Call, ...]
    refusals: int = 0
    rule: str | None = None


def step(text: str, chain: str, *calls: Call, refusals: int = 0) -> Step:
    return Step(text, chain, calls, refusals)


def check(text: str, chain: str, call: Call, *, rule: str) -> Step:
    return Step(text, chain, (call,), rule=rule)


#: the KP story of ``kpl demo`` (DOMAIN.md), played by ``play``
DEMO_STORY: tuple[Step, ...] = (
    step(
        "licensed parties registered",
        "BW",
        Call("party", "BW", "BW-DEBSWANA", "miner", "Debswana Diamond Company"),
        Call("party", "BW", "BW-OKAVANGO", "exporter", "Okavango Diamond Company"),
    ),
    step("licensed miner registered", "RU", Call("party", "RU", "RU-ALROSA", "miner", "ALROSA")),
    step(
        "Dubai traders registered",
        "AE",
        Call("party", "AE", "AE-DMCC1", "trader", "Dubai rough trader"),
    ),
    step(
        "Antwerp importer registered; the EU restricts Russian origin",
        "EU",
        Call("party", "EU", "EU-ANTWERP1", "importer", "Antwerp rough importer"),
        Call("restrict", "EU", "RU"),
    ),
    step(
        "Surat manufacturer registered",
        "IN",
        Call("party", "IN", "IN-SURAT1", "manufacturer", "Surat cutting works"),
    ),
    step(
        "production registered at Jwaneng and Orapa",
        "BW",
        Call("register", "BW", "BW-JW-1", "BW-DEBSWANA", 12_500, "Jwaneng"),
        Call("register", "BW", "BW-OR-1", "BW-DEBSWANA", 8_000, "Orapa"),
    ),
    step(
        "production registered at Mir and Udachny",
        "RU",
        Call("register", "RU", "RU-MI-1", "RU-ALROSA", 9_000, "Mir"),
        Call("register", "RU", "RU-UD-1", "RU-ALROSA", 6_000, "Udachny"),
    ),
    step(
        "sorting in Gaborone: Jwaneng lot split in three",
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
        *(Call("transfer", "BW", p, "BW-OKAVANGO") for p in ("BW-JW-1a", "BW-JW-1b", "BW-OR-1")),
    ),
    step(
        "KP certificates BW-2026-0001 to the EU and BW-2026-0002 to the UAE",
        "BW",
        Call(
            "issue",
            "BW",
            "BW-2026-0001",
            "EU",
            "BW-OKAVANGO",
            ["BW-JW-1a", "BW-OR-1"],
            "Antwerp rough importer",
        ),
        Call(
            "issue", "BW", "BW-2026-0002", "AE", "BW-OKAVANGO", ["BW-JW-1b"], "Dubai rough trader"
        ),
    ),
    step(
        "KP certificate RU-2026-0001 to the UAE",
        "RU",
        Call("issue", "RU", "RU-2026-0001", "AE", "RU-ALROSA", ["RU-MI-1"], "Dubai rough trader"),
    ),
    step(
        "Dubai confirms both imports",
        "AE",
        Call("confirm", "AE", "BW-2026-0002", "AE-DMCC1"),
        Call("confirm", "AE", "RU-2026-0001", "AE-DMCC1"),
    ),
    step(
        "Dubai mixes a Botswana lot with Russian goods",
        "AE",
        Call("merge", "AE", ["BW-JW-1b", "RU-MI-1"], "AE-MIX-1", "AE-DMCC1"),
    ),
    step(
        "mixed-origin shipment certified to the EU",
        "AE",
        Call(
            "issue", "AE", "AE-2026-0001", "EU", "AE-DMCC1", ["AE-MIX-1"], "Antwerp rough importer"
        ),
    ),
    check(
        "a confirmation of AE-2026-0001 (dry run)",
        "EU",
        Call("confirm", "EU", "AE-2026-0001", "EU-ANTWERP1"),
        rule="9",
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
    ),
    step(
        "Antwerp confirms the clean Botswana shipment",
        "EU",
        Call("confirm", "EU", "BW-2026-0001", "EU-ANTWERP1"),
    ),
    step(
        "Antwerp assorts the two Botswana lots",
        "EU",
        Call("merge", "EU", ["BW-JW-1a", "BW-OR-1"], "EU-AW-1", "EU-ANTWERP1"),
    ),
    step(
        "re-export to India under EU-2026-0001",
        "EU",
        Call(
            "issue", "EU", "EU-2026-0001", "IN", "EU-ANTWERP1", ["EU-AW-1"], "Surat cutting works"
        ),
    ),
    step(
        "Russia exports directly to India under RU-2026-0002",
        "RU",
        Call("issue", "RU", "RU-2026-0002", "IN", "RU-ALROSA", ["RU-UD-1"], "Surat cutting works"),
    ),
    step(
        "Surat confirms both imports",
        "IN",
        Call("confirm", "IN", "EU-2026-0001", "IN-SURAT1"),
        Call("confirm", "IN", "RU-2026-0002", "IN-SURAT1"),
    ),
    step(
        "Surat merges the lots for cutting",
        "IN",
        Call("merge", "IN", ["EU-AW-1", "RU-UD-1"], "IN-CUT", "IN-SURAT1"),
    ),
    step(
        "and splits them into two cutting lots",
        "IN",
        Call("split", "IN", "IN-CUT", [("IN-CUT-1", 9_000), ("IN-CUT-2", 10_000)]),
    ),
)


def play(s: Story, steps: Sequence[Step], result: DemoResult, sealed: str = "") -> DemoResult:
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


def run_story(net: LocalNetwork, say: Callable[[str], None]) -> DemoResult:
    """Drive the KP story through the network's APIs."""
    s = Story.local(net, say)
    try:
        return play(s, DEMO_STORY, DemoResult("IN-CUT-2"), sealed="[green]sealed[/] ")
    finally:
        s.close()


def wait_agreement(net: LocalNetwork, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
    """Wait until every node reports the same heads for every chain; return them."""
    clients = [NodeClient(url) for url in net.layout.urls.values()]
    try:
        deadline = time.monotonic() + timeout
        while True:
            heads = [c.heads() for c in clients]
            summary = [{k: (v["height"], v["hash"]) for k, v in h.items()} for h in heads]
            if all(x == summary[0] for x in summary) and summary[0]:
                return heads[0]
            if time.monotonic() > deadline:
                raise LedgerError("nodes did not agree within the deadline")
            time.sleep(0.1)
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------- governance chapter


def _chair(net: LocalNetwork, kind: Kind, body: dict[str, Any], say: Callable[[str], None]) -> None:
    """The KP chair's workflow, as ``kpl governance propose/sign/submit`` runs it:
    the exact record, two governance signatures made offline, one submission."""
    root = net.layout.root
    registry = net.layout.registry
    record = make_record(
        network=registry.network_id,
        chain=GOVERNANCE_CHAIN,
        kind=kind,
        record_id=f"demo-{kind.value}-{body['code']}",
        time=_now(),
        body=body,
    )
    passphrase = str(net.secrets["governance"]["passphrase"]).encode()
    for name in ("gov-0.key", "gov-1.key"):
        record = sign_proposal(record, load_key(root / "governance" / name, passphrase), registry)
    # sent to the EU's node, which points to the KP sealer (BW) as it would for any client
    answer = submit_proposal(record, net.layout.urls["EU"], registry)
    if answer.get("status") != "committed":
        raise LedgerError(f"the chair's {kind.value} was refused: {answer}")
    say(
        f"KP: {kind.value} {body['code']} signed by 2 of {len(registry.governance_keys)} "
        f"governance keys, sealed at KP height {answer['height']}"
    )


def admit_participant(net: LocalNetwork, say: Callable[[str], None]) -> None:
    """Admit Venezuela (VE) into the running network, as its operator and the chair would.

    ``kpl network join`` writes its node folder and peers it with every node,
    the chair's ``member.admit`` lands on chain KP, and its node starts,
    catches up and writes its chain.
    """
    root = net.layout.root
    url = f"http://127.0.0.1:{free_base_port(1) + 1}"
    layout = join_network(root / "genesis.json", root / "VE", code="VE", name="Venezuela", url=url)
    connect_local(layout, root)
    say(f"VE: node folder written and peered with every node (kpl network join), {url}")
    _chair(
        net,
        Kind.MEMBER_ADMIT,
        {
            "code": "VE",
            "name": "Venezuela",
            "role": "authority",
            "url": url,
            "key": load_public_key(layout.public_key).hex(),
        },
        say,
    )
    net.layout.configs["VE"] = layout.config
    net.layout.urls["VE"] = url
    net.start(["VE"])
    net.wait_ready()
    token = NodeConfig.load(layout.config).secret("operator_token", "KPL_DEMO_UNSET")
    if token is None:
        raise LedgerError("VE's operator token is missing from its secrets")
    net.secrets["VE"] = {"operator_token": token}
    with NodeClient(url, token) as client:
        deadline = time.monotonic() + 120
        while "VE" not in client.heads():
            if time.monotonic() > deadline:
                raise LedgerError("VE's node did not catch up and seal within 120s")
            time.sleep(0.2)
    say("VE: its node caught up and writes its chain, admitted at KP height 1")


def trade_and_suspend(net: LocalNetwork, say: Callable[[str], None]) -> None:
    """VE's first certificate, confirmed by India; then the plenary suspends VE.

    After the suspension (as the KP did in 2008) its next certificate is
    refused, and the auditor's report shows its activity after the suspension.
    """
    s = Story.local(net, say)
    s.clients["VE"] = NodeClient(net.layout.urls["VE"], net.token("VE"))
    try:
        s.commit(
            "VE",
            s.party("VE", "VE-GUAYANA", "exporter", "Guayana alluvial exporter"),
            s.register("VE", "VE-GU-1", "VE-GUAYANA", 400, "Guaniamo"),
            s.register("VE", "VE-GU-2", "VE-GUAYANA", 250, "Guaniamo"),
        )
        s.commit(
            "VE",
            s.issue("VE", "VE-2026-0001", "IN", "VE-GUAYANA", ["VE-GU-1"], "Surat cutting works"),
        )
        s.commit("IN", s.confirm("IN", "VE-2026-0001", "IN-SURAT1"))
        say("VE: first KP certificate VE-2026-0001 to India, confirmed by Surat")
        _chair(
            net,
            Kind.MEMBER_SUSPEND,
            {"code": "VE", "reason": "KP plenary: internal controls not in place"},
            say,
        )
        s.wait(
            "every node to hold the suspension",
            lambda: all(c.heads().get("KP", {}).get("height", 0) >= 2 for c in s.clients.values()),
        )
        time.sleep(1.1)  # block times are to the second
        refused = s.commit(
            "VE",
            s.issue("VE", "VE-2026-0002", "IN", "VE-GUAYANA", ["VE-GU-2"], "Surat cutting works"),
            refusals=1,
        )
        say(
            f"VE: certificate VE-2026-0002 refused: rule {refused[0]['rule']}: "
            f"{refused[0]['reason']}"
        )
        s.commit("VE", s.party("VE", "VE-LATE", "trader", "a trader licensed while suspended"))
        s.wait(
            "the auditor's suspended-activity finding",
            lambda: any(
                f["participant"] == "VE"
                for f in s.auditor.get("/v1/audit/report")["suspended_activity"]["items"]
            ),
        )
        say("WDC: the audit report lists VE's records sealed after its suspension")
    finally:
        s.close()
