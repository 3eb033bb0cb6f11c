"""Write the JSON Schema files of the bundle specification: ``docs/spec/schemas/``.

Run ``python -m kpledger.devtools.spec_schemas docs/spec/schemas``: it writes
every file of ``ledger.spec_schema.spec_schemas`` (two-space indented JSON, keys
in the order the schema builds them) and removes any other ``.schema.json``
file there, so the folder is exactly the code's schemas.
``tests/ledger/test_spec_schemas.py`` checks that the files are what this
writes, and that they accept the project's valid objects and refuse invalid ones.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kpledger.ledger.spec_schema import spec_schemas

__all__ = ["main", "render", "write"]


def render() -> dict[str, str]:
    """Every schema file's path under the folder and its text."""
    return {
        path: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for path, schema in sorted(spec_schemas().items())
    }


def write(folder: Path) -> int:
    """Write the schema files into ``folder`` (and remove stale ones); return how many."""
    files = render()
    for old in folder.rglob("*.schema.json"):
        if old.relative_to(folder).as_posix() not in files:
            old.unlink()
    for path, text in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return len(files)


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/spec/schemas")
    print(f"{write(folder)} schema files written to {folder}")


if __name__ == "__main__":
    main()
