"""Seeded keys stay out of the shipped core: ``kpledger.devtools`` is imported by no
module of ledger, keys, node or api, and in cli only by ``cli.example``, whose keys
are fresh on each run."""

from __future__ import annotations

import ast
from pathlib import Path

from kpledger.cli.example import run_example
from kpledger.devtools.workload import Network

ROOT = Path(__file__).resolve().parents[1]
CORE = ("ledger", "keys", "node", "api", "cli")
#: the one shipped module allowed to use devtools (for its network of fresh keys only)
ALLOWED = {"cli/example.py"}


def _imports_devtools(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        if any(n.split(".")[:2] == ["kpledger", "devtools"] for n in names):
            return True
    return False


def test_no_shipped_module_but_the_example_imports_devtools() -> None:
    users = {
        str(path.relative_to(ROOT))
        for package in CORE
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports_devtools(path)
    }
    assert users == ALLOWED


def test_the_example_takes_only_its_network_from_devtools() -> None:
    """Its records come from the story's one builder (cli.story), not from ``Scenario``."""
    tree = ast.parse((ROOT / "cli" / "example.py").read_text(encoding="utf-8"))
    taken = {
        (node.module, a.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kpledger.devtools")
        for a in node.names
    }
    assert taken == {("kpledger.devtools.workload", "Network")}


def test_seeded_networks_repeat_and_unseeded_ones_do_not() -> None:
    codes = ("BW", "EU")
    same = Network.create(codes, (), seed=3), Network.create(codes, (), seed=3)
    assert same[0].registry.network_id == same[1].registry.network_id
    one, two = Network.create(codes, (), seed=None), Network.create(codes, (), seed=None)
    assert one.registry.network_id != two.registry.network_id
    assert one.signers["BW"].public != two.signers["BW"].public


def test_the_example_signs_with_fresh_keys_it_returns() -> None:
    result = run_example("sqlite://")
    try:
        codes = ("BW", "RU", "AE", "EU", "IN")
        seeded = Network.create(codes, ("WDC",))
        assert result.store.registry.network_id == result.net.registry.network_id
        assert result.net.registry.network_id != seeded.registry.network_id
        keys = {p.code: p.key for p in result.store.registry.participants}
        assert keys["EU"] == result.net.signers["EU"].public
        assert keys["EU"] != seeded.signers["EU"].public
    finally:
        result.store.close()
