"""Cosigned checkpoints: one stolen key alone cannot make a bundle that verifies.

The registry's ``cosign`` (default 2, at most the authorities minus one) is the
number of other authorities whose signed headers must witness a block, directly
or through later headers of its chain, before a bundle holding it verifies.
"""

from __future__ import annotations

import pytest

from kpledger.devtools.workload import Network, Scenario
from kpledger.ledger.bundle import STEPS, check_bundle, serialize_bundle, verify_bundle
from kpledger.ledger.errors import NotCosigned, NotYetCosigned, SchemaError
from kpledger.ledger.registry import Params
from kpledger.ledger.store import Store
from kpledger.ledger.store.bundles import build_bundle


def test_cosign_defaults_and_bounds() -> None:
    assert Network.create(("BW", "EU", "RU", "NA"), ()).registry.cosign == 2
    assert Network.create(("BW", "EU"), ()).registry.cosign == 1
    assert Network.create(("BW",), ()).registry.cosign == 0
    net = Network.create(("BW", "EU", "RU", "NA"), (), params=Params(cosign=3))
    assert net.registry.cosign == 3
    assert b'"cosign":3' in net.registry.to_bytes()
    # absent from the bytes when not given: older registries keep their network id
    assert b"cosign" not in Network.create(("BW", "EU"), ()).registry.to_bytes()
    with pytest.raises(SchemaError) as info:
        Network.create(("BW", "EU", "RU"), (), params=Params(cosign=3))
    assert info.value.field == "registry.params.cosign"
    assert "exceeds the 3 authorities minus one" in str(info.value)


@pytest.mark.parametrize("cosign", [1, 2, 3])
def test_a_stolen_key_needs_cosign_other_keys(cosign: int) -> None:
    """The forger holds BW's key and forks BW's chain in a ledger of its own: a parcel
    registered out of thin air. Alone, and with fewer than ``cosign`` other
    authorities' keys, the bundle fails step 3 naming the block; with ``cosign`` of
    them it verifies (the point of the parameter: that many keys must collude)."""
    net = Network.create(("BW", "EU", "RU", "NA"), (), params=Params(cosign=cosign))
    sc = Scenario(net)
    store = Store.open("sqlite://", net.registry)
    try:
        store.writer.apply(sc.seal("BW", sc.party("BW", "BW-MINE", "miner")))
        store.writer.apply(sc.seal("BW", sc.register("BW", "BW-FAKE", "BW-MINE", 9_000, 900)))
        with pytest.raises(NotYetCosigned) as info:
            build_bundle(store, "BW-FAKE")
        assert (info.value.chain, info.value.need) == ("BW", cosign)
        colluders: list[str] = []
        for other in ("EU", "RU", "NA")[:cosign]:
            result = check_bundle(serialize_bundle(build_bundle(store, "BW-FAKE", partial=True)))
            assert not result.ok
            assert result.step == STEPS[2], result.error  # step 3 (headers)
            assert "block BW/1" in str(result.error)
            assert f"cosigned by {len(colluders)} other authorities" in str(result.error)
            with pytest.raises(NotCosigned):
                verify_bundle(serialize_bundle(build_bundle(store, "BW-FAKE", partial=True)))
            store.writer.apply(sc.seal(other))  # one more authority's key signs
            colluders.append(other)
        result = check_bundle(serialize_bundle(build_bundle(store, "BW-FAKE")))
        assert result.ok, result.error
    finally:
        store.close()
