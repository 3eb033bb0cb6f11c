"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(capsys: object) -> None:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "the README lost its Python example"
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    state = namespace["state"]
    parcel = state.parcel("BW-P2")  # type: ignore[attr-defined]
    assert parcel.chain == "EU"
    assert parcel.custodian == "EU-IMP"
    assert dict(parcel.origin) == {"BW": 60_000}
