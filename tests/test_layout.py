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
