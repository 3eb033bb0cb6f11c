"""The shape of the tree: shipped modules stay under about 500 lines, or say in their
docstring why one concept needs more ("One concept ...")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("ledger", "keys", "node", "api", "cli", "devtools")
LIMIT = 500


def test_long_modules_say_why_they_hold_one_concept() -> None:
    unexplained = []
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n")
            if lines <= LIMIT:
                continue
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "One concept" not in doc:
                unexplained.append(f"{path.relative_to(ROOT)} ({lines} lines)")
    assert not unexplained, unexplained


# ---------------------------------------------------------------- the README's picture


def _layer(module: str) -> str | None:
    """``kpledger.ledger.store.x`` -> ``ledger/store``; ``kpledger.node.x`` -> ``node``."""
    parts = module.split(".")
    if parts[0] != "kpledger" or len(parts) < 2:
        return None
    if parts[1] == "ledger" and len(parts) > 2 and parts[2] == "store":
        return "ledger/store"
    return parts[1] if parts[1] in SHIPPED else None


def _imports() -> dict[str, set[str]]:
    """Each layer and the other layers its modules import."""
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).parts
            own = "ledger/store" if rel[:2] == ("ledger", "store") else package
            targets = found.setdefault(own, set())
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                else:
                    continue
                targets.update(t for n in names if (t := _layer(n)) not in (None, own))
    return found


def _picture() -> dict[str, set[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Layers\n", 1)[1]
    block = section.split("```\n", 2)[1]
    drawn: dict[str, set[str]] = {}
    for line in block.splitlines():
        layer, _, targets = (x.strip() for x in line.partition("->"))
        drawn[layer] = set() if targets.startswith("(") else set(targets.split(", "))
    return drawn


def test_the_readme_draws_who_imports_whom_as_the_tree_has_it() -> None:
    assert _picture() == _imports()
