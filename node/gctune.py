"""The garbage collector's setting for a process that applies blocks.

Applying a block allocates many short-lived containers (decoded JSON, records,
rows), and CPython's youngest generation is collected every 700 of them by
default: about 13 % of ingest's CPU went to the collector, almost all of it
in collections that found nothing to free (blocks hold no reference cycles).
A first threshold of 10,000 gives that time back (20,000 records applied:
2.49 s of CPU against 2.17 s with the collector at 10,000 or off) and keeps
cycles collected. The node process (``api.server.run_node``) and the commands
that re-verify a whole log (``kpl import``, ``kpl db verify``) call
``tune_gc`` at their start; so do the benchmarks that stand for a node's work.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

#: allocations of container objects between two collections of the youngest generation
GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Raise the youngest generation's threshold to ``GEN0_THRESHOLD``; the older
    generations keep theirs."""
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
