"""``kpl demo``: a real local network and one KP story driven through its HTTP API.

Five authority nodes (BW, RU, AE, EU, IN) and a WDC auditor node run as real
processes on 127.0.0.1, each with its own SQLite store. The story is
``cli.story.KP_STORY`` with Russia's chapter: production in Botswana and Russia
at 2023 KP prices, sorting in Gaborone, exports under KP certificates, a mixed
Dubai shipment that the EU's node would not let it confirm for its Russian
share (rule 9) and that the EU then refuses on the ledger
(``certificate.refuse``, visible in the audit report), Dubai's and Antwerp's
re-exports to India, Russia's direct export to India, and a Surat
manufacturer's merges and split. Every node checks every block it receives.

Around the story, the KP's governance acts on the running network: a new
participant (VE) is admitted before it, trades and is suspended after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kpledger.cli.governance import (
    load_proposal,
    sign_proposal_file,
    submit_proposal,
    write_proposal,
)
from kpledger.cli.join import connect_local
from kpledger.cli.story import (
    LATE_PRODUCTION,
    Story,
    StoryResult,
    final_parcel,
    play,
    quarter_reports,
    story_for,
)
from kpledger.keys import load_key, load_public_key
from kpledger.ledger.errors import LedgerError
from kpledger.ledger.records import Kind
from kpledger.node.client import NodeClient
from kpledger.node.config import NodeConfig
from kpledger.node.local import LocalNetwork, free_base_port
from kpledger.node.membership import join_network

__all__ = [
    "AUTHORITIES",
    "admit_participant",
    "closed_quarter",
    "local_story",
    "public_production",
    "run_story",
    "trade_and_suspend",
    "wait_agreement",
]

AUTHORITIES = ("BW", "RU", "AE", "EU", "IN")


def local_story(
    net: LocalNetwork,
    say: Callable[[str], None],
    codes: Sequence[str],
    produced: str | None = None,
) -> Story:
    """The story's builder on the operator clients of a ``LocalNetwork``'s ``codes``
    (``produced``: the day its production is dated, by default the day it is written)."""
    return Story(
        {c: NodeClient(net.layout.urls[c], net.token(c)) for c in codes},
        NodeClient(net.layout.urls["WDC"], net.token("WDC", "auditor_token")),
        net.layout.registry.network_id,
        say,
        produced=produced,
    )


def closed_quarter(today: date) -> tuple[str, date]:
    """The last quarter over on ``today`` (the one before today's) and its last day."""
    last = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1) - timedelta(days=1)
    return f"{last.year}-Q{(last.month - 1) // 3 + 1}", last


def run_story(net: LocalNetwork, say: Callable[[str], None]) -> StoryResult:
    """Drive the KP story, Russia's chapter included, through the network's APIs, then
    seal every authority's ``stats.report`` of the quarter before today's.

    The nodes date their blocks by their own clocks, so the trade happens today. The
    mines' production is dated the last day of the previous quarter: a registration
    made late, which the rules allow (never dated after the record). With Botswana's
    third parcel of that quarter (``LATE_PRODUCTION``), its production cell holds enough
    parcels to show USD, and since the quarter is over each authority can seal its
    report (rule S1), from which the public statistics take their USD.
    """
    quarter, last = closed_quarter(datetime.now(UTC).date())
    steps = story_for(AUTHORITIES)
    s = local_story(net, say, AUTHORITIES, produced=last.isoformat())
    try:
        result = play(s, steps, StoryResult(final_parcel(steps)), sealed="[green]sealed[/] ")
        reports = (LATE_PRODUCTION, *quarter_reports(AUTHORITIES, quarter))
        play(s, reports, result, sealed="[green]sealed[/] ")
        result.reported = quarter
    finally:
        s.close()
    say(public_production(net, quarter, "BW", "IN"))
    return result


def public_production(net: LocalNetwork, quarter: str, participant: str, node: str) -> str:
    """What the public reads of ``participant``'s production in ``quarter`` on ``node``
    (no token), once the node shows it with its USD (from the participant's report)."""
    deadline = time.monotonic() + 60
    with NodeClient(net.layout.urls[node]) as public:
        while True:
            stats = public.get("/v1/stats", period=quarter)
            row = next((r for r in stats["production"] if r["participant"] == participant), None)
            if row is not None and row["value"] is not None:
                break
            if time.monotonic() > deadline:
                raise LedgerError(f"{node}'s public statistics show no USD of {participant}")
            time.sleep(0.2)
    return (
        f"public statistics of {quarter} on {node}'s node: {participant}'s production "
        f"{row['carats'] / 100:,.2f} ct in {row['parcels']} parcels, "
        f"USD {row['value'] / 100:,.2f} (values from the {stats['values']})"
    )


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


def _chair(net: LocalNetwork, kind: Kind, body: dict[str, Any], say: Callable[[str], None]) -> int:
    """The KP chair's workflow through ``kpl governance propose``, ``sign`` (twice, each
    with one governance key) and ``submit``: a proposal file in the network's
    ``governance/`` folder, signed in place, submitted to the EU's node, which is not
    the KP sealer and points to it. Returns the KP height it was sealed at."""
    root = net.layout.root
    registry = net.layout.registry
    proposal = root / "governance" / f"{kind.value}-{body['code']}.json"
    write_proposal(kind, body, registry, proposal, record_id=f"demo-{kind.value}-{body['code']}")
    passphrase = str(net.secrets["governance"]["passphrase"]).encode()
    for name in ("gov-0.key", "gov-1.key"):
        sign_proposal_file(proposal, load_key(root / "governance" / name, passphrase), registry)
    answer = submit_proposal(load_proposal(proposal), net.layout.urls["EU"], registry)
    if answer.get("status") != "committed":
        raise LedgerError(f"the chair's {kind.value} was refused: {answer}")
    height = int(answer["height"])
    say(
        f"KP: {kind.value} {body['code']} ({proposal.name}) signed by 2 of "
        f"{len(registry.governance_keys)} governance keys, sealed at KP height {height}"
    )
    return height


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
    admitted = _chair(
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
    net.wait_ready(timeout=120.0)
    token = NodeConfig.load(layout.config).secret("operator_token", "KPL_DEMO_UNSET")
    if token is None:
        raise LedgerError("VE's operator token is missing from its secrets")
    net.secrets["VE"] = {"operator_token": token}
    with NodeClient(url, token) as client, NodeClient(net.layout.urls["EU"]) as eu:
        deadline = time.monotonic() + 120
        while "VE" not in client.heads():
            if time.monotonic() > deadline:
                raise LedgerError("VE's node did not catch up and seal within 120s")
            time.sleep(0.2)
        # caught up: it holds what another node held once it sealed. Until then the
        # newest headers it has seen are old, its time follows their median (node.now)
        # and it would refuse records dated now as dated ahead
        wanted = {c: h["height"] for c, h in eu.heads().items() if c != "VE"}
        while any(client.heads().get(c, {}).get("height", 0) < n for c, n in wanted.items()):
            if time.monotonic() > deadline:
                raise LedgerError("VE's node did not catch up within 120s")
            time.sleep(0.2)
    say(f"VE: its node caught up and writes its chain, admitted at KP height {admitted}")


def trade_and_suspend(net: LocalNetwork, say: Callable[[str], None]) -> None:
    """VE's first certificate, confirmed by India; then the plenary suspends VE.

    After the suspension (as the KP did in 2008) its next certificate is
    refused, and the auditor's report shows its activity after the suspension.
    """
    s = local_story(net, say, ("IN", "VE"))
    try:
        s.commit(
            "VE",
            s.party("VE", "VE-KJBSOZ4Z", "exporter", "Guayana alluvial exporter"),
            s.register("VE", "VE-GU-1", "VE-KJBSOZ4Z", 400, "Guaniamo"),
            s.register("VE", "VE-GU-2", "VE-KJBSOZ4Z", 250, "Guaniamo"),
        )
        s.commit(
            "VE",
            s.issue("VE", "VE-2026-0001", "IN", "VE-KJBSOZ4Z", ["VE-GU-1"], "Surat cutting works"),
        )
        s.commit("IN", s.confirm("IN", "VE-2026-0001", "IN-JDAV2W3X"))
        say("VE: first KP certificate VE-2026-0001 to India, confirmed by Surat")
        suspended = _chair(
            net,
            Kind.MEMBER_SUSPEND,
            {"code": "VE", "reason": "KP plenary: internal controls not in place"},
            say,
        )
        s.wait(
            "VE's and India's nodes to hold the suspension",
            lambda: all(
                c.get("/v1/heads")["heads"].get("KP", {}).get("height", 0) >= suspended
                for c in s.clients.values()
            ),
        )
        refused = s.commit(
            "VE",
            s.issue("VE", "VE-2026-0002", "IN", "VE-KJBSOZ4Z", ["VE-GU-2"], "Surat cutting works"),
            refusals=1,
        )
        say(
            f"VE: certificate VE-2026-0002 refused: rule {refused[0]['rule']}: "
            f"{refused[0]['reason']}"
        )
        s.commit("VE", s.party("VE", "VE-AWH3P6Q4", "trader", "a trader licensed while suspended"))
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
