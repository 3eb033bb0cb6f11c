"""The wheel installs one import package, ``kpledger``, named after the distribution.

The source folders (ledger/, keys/, node/, api/, cli/) keep their places in the
repository and install as ``kpledger.ledger``, ``kpledger.keys``, ... so that
they never collide with another distribution's top-level ``api`` or ``cli``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
def test_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    # build from a copy: setuptools leaves a build/ folder beside the sources, whose
    # stale files would go into later wheels
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("kpledger", "ledger", "keys", "node", "api", "cli", "devtools"):
        shutil.copytree(
            ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "-w", str(tmp_path), str(src)),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (wheel,) = tmp_path.glob("kpledger-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/", 1)[0] for n in names}
        entry = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    dist_info = {t for t in top if t.endswith(".dist-info")}
    assert top - dist_info == {"kpledger"}
    for needed in (
        "kpledger/ledger/merkle.py",
        "kpledger/ledger/store/migrations/env.py",
        "kpledger/ledger/store/migrations/versions/0001_initial.py",
        "kpledger/api/web/index.html",
        "kpledger/cli/main.py",
        "kpledger/keys/keyfile.py",
        "kpledger/node/node.py",
        "kpledger/devtools/workload.py",
        "kpledger/py.typed",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
    assert "kpl = kpledger.cli.main:app" in entry
