"""A writer killed with SIGKILL loses nothing it acknowledged and leaves a store
that verifies and resumes (SQLite in WAL mode with synchronous=FULL)."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from kpledger.ledger.store import Store

REPO = Path(__file__).resolve().parents[2]
TOTAL = 4000
SEED = 11
LINE_TIMEOUT = 60.0

WRITER = """
import sys
from kpledger.ledger.store import Store
from kpledger.devtools.realistic import realistic_blocks

db, total, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
net, blocks = realistic_blocks(total, seed=seed)
store = Store.open(f"sqlite:///{db}", net.registry)
done = {chain: head.height for chain, head in store.heads().items()}
print("ready", flush=True)
for block in blocks:
    h = block.header
    if h.height <= done.get(h.chain, 0):
        continue
    store.writer.apply(block)
    print(f"committed {h.chain} {h.height}", flush=True)
print("finished", flush=True)
"""


def _kill_points(n_blocks: int) -> list[int]:
    """Three seeded numbers of acknowledged commits after which the writer dies.

    At least three blocks stay unwritten so that the kill lands while it works.
    """
    rng = random.Random(20260301)
    return sorted(rng.sample(range(1, n_blocks - 3), 3))


def _run_and_kill(db: Path, after: int, errlog: Path) -> list[tuple[str, int]]:
    """Start the writer, read ``after`` acknowledgements, SIGKILL it; return what it acked."""
    lines: queue.Queue[str | None] = queue.Queue()
    with errlog.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(TOTAL), str(SEED)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            cwd=REPO,
        )
        assert proc.stdout is not None
        stdout = proc.stdout

        def pump() -> None:
            for line in stdout:
                lines.put(line.strip())
            lines.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        acked: list[tuple[str, int]] = []
        try:
            while len(acked) < after:
                try:
                    line = lines.get(timeout=LINE_TIMEOUT)
                except queue.Empty:
                    pytest.fail(f"writer silent for {LINE_TIMEOUT}s")
                if line is None:
                    pytest.fail(f"writer ended early: {errlog.read_text()[-2000:]}")
                if line.startswith("committed "):
                    _, chain, height = line.split()
                    acked.append((chain, int(height)))
            proc.kill()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            reader.join(timeout=30)
            stdout.close()
    assert proc.returncode == -signal.SIGKILL, errlog.read_text()[-2000:]
    return acked


@pytest.mark.parametrize("which", [0, 1, 2], ids=["kill-1", "kill-2", "kill-3"])
def test_sigkill_loses_nothing_acknowledged(
    tmp_path: Path, workload, replay_in_memory, which: int
) -> None:
    net, blocks = workload(TOTAL, seed=SEED)
    by_key = {(b.header.chain, b.header.height): b for b in blocks}
    after = _kill_points(len(blocks))[which]
    db = tmp_path / "crash.db"

    acked = _run_and_kill(db, after, tmp_path / "writer.err")
    assert len(acked) == after

    store = Store.open(f"sqlite:///{db}", net.registry)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        for chain, height in acked:
            held = store.header(chain, height)
            assert held is not None, f"acknowledged {chain}/{height} was lost"
            assert held.hash == by_key[(chain, height)].header.hash
        heads = {chain: head.height for chain, head in store.heads().items()}
        assert store.log.block_count() >= after
        assert sum(heads.values()) == store.log.block_count()
        for chain, top in heads.items():
            for height in range(1, top + 1):
                held = store.header(chain, height)
                assert held is not None
                assert held.hash == by_key[(chain, height)].header.hash
        report = store.verifier.verify()
        assert report.blocks == store.log.block_count()

        resumed = 0
        for b in blocks:
            h = b.header
            if h.height <= heads.get(h.chain, 0):
                continue
            store.writer.apply(b)
            resumed += 1
        assert resumed == len(blocks) - sum(heads.values()) > 0

        mem = replay_in_memory(net, blocks)
        assert store.heads() == mem.state.heads
        for chain, head in mem.state.heads.items():
            assert store.frontier(chain) == mem.state.frontiers[chain]
            assert store.proofs.root_at(chain, head.size) == head.root
        assert store.verifier.verify().records == TOTAL
    finally:
        store.close()
