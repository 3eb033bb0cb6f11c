"""One equivocation, written once for the resumption tests of tests/ledger and tests/store.

EU seals KP; BW and RU seal a block each, then BW signs two versions of its
height 2: version A (``sc``) holds the party BW-ON-A, version B (``other``)
BW-ON-B and an empty BW/3, and RU/2 of ``other`` witnesses BW/3 of version B.
"""

from __future__ import annotations

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.blocks import Evidence
from kpledger.ledger.chain import detect_equivocation


def forked() -> tuple[Scenario, Scenario, Evidence]:
    """The two sides of BW's equivocation and its evidence (see the module's docstring)."""
    sc = Scenario(Network.create(("EU", "BW", "RU"), ()))
    assert sc.net.registry.sealer == "EU"
    sc.seal("BW", sc.party("BW", "BW-T1"))
    sc.seal("RU", sc.party("RU", "RU-T1"))
    other = Scenario(sc.net, serial=10_000, clear=dict(sc.clear))
    for chain in ("BW", "RU"):
        for block in sc.ledger.blocks[chain]:
            other.ledger.append(block)
    other.clock = sc.clock
    sc.seal("BW", sc.party("BW", "BW-ON-A"))
    other.seal("BW", other.party("BW", "BW-ON-B"))
    other.seal("BW")
    other.seal("RU", other.party("RU", "RU-ON-B"))  # witnesses BW/3 of version B
    evidence = detect_equivocation(sc.ledger.state, other.ledger.blocks["BW"][1].signed)
    assert evidence is not None
    return sc, other, evidence
