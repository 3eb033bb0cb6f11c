"""Batch import benchmark: ``kpl import-records`` against a real node process.

A local network (one authority, BW, and the WDC auditor) runs as ``kpl node
run`` processes on 127.0.0.1; every process started is stopped by its pid at
the end. A JSON Lines file of ``--rows`` productions (``parcel.register``) is
imported three times with the real command in a subprocess:

1. ``--dry-run``: every row composed and judged by the node, nothing written;
2. the import: judged again, then written and followed to the sealing blocks;
3. the same file again: every row reported as already on the ledger.

Prints rows/s for each (wall time of the whole command, start-up included).

Usage: ``python -m bench.officer [--rows 2000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kpledger.ledger.records import Kind
from kpledger.node.client import NodeClient
from kpledger.node.compose import Composer
from kpledger.node.local import LocalNetwork

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]


def _kpl(args: list[str], node: str, token: str) -> tuple[float, str]:
    env = {**os.environ, "KPL_TOKEN": token, "COLUMNS": "200", "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kpledger.cli.main", *args, "--node", node, "--show", "problems"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1800,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kpl {' '.join(args)} exited {done.returncode}:\n{done.stdout}")
    return took, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kpl-bench-officer-") as tmp:
        net = LocalNetwork.create(Path(tmp) / "net", ("BW",), ("WDC",))
        net.start()
        try:
            net.wait_ready(timeout=120)
            url, token = net.layout.urls["BW"], net.token("BW")
            with NodeClient(url, token, timeout=60) as client:
                composer = Composer.connect(client)
                party = composer.record(
                    Kind.PARTY_REGISTER,
                    composer.party_register("BW-DEB", "Debswana", "miner", "Gaborone"),
                )
                client.submit([party])
                client.wait_settled([party["id"]], timeout=60)
            rows = Path(tmp) / "production.jsonl"
            rows.write_text(
                "".join(
                    json.dumps(
                        {
                            "parcel": f"BW-B{i:06d}",
                            "custodian": "BW-DEB",
                            "carats": f"{100 + i % 900}.{i % 100:02d}",
                            "usd": f"{13_100 + i}.00",
                            "mine": "Jwaneng",
                        }
                    )
                    + "\n"
                    for i in range(opts.rows)
                )
            )
            base = ["import-records", str(rows), "--kind", "parcel.register"]
            for label, extra in (
                ("dry run (compose + node check)", ["--dry-run"]),
                ("import (check, write, sealed)", []),
                ("re-run (all already on the ledger)", []),
            ):
                took, out = _kpl(base + extra, url, token)
                last = [line for line in out.splitlines() if " lines: " in line]
                print(
                    f"{label:38} {opts.rows / took:8,.0f} rows/s "
                    f"({took:.1f} s; {last[0].strip() if last else ''})"
                )
        finally:
            net.stop()


if __name__ == "__main__":
    main()
