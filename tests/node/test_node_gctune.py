"""node.gctune: the collector's threshold a block-applying process runs with."""

from __future__ import annotations

import gc
import subprocess
import sys

from kpledger.node.gctune import GEN0_THRESHOLD, tune_gc


def test_tune_gc_raises_the_youngest_threshold_and_keeps_the_others() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 7, 9)
        tune_gc()
        assert gc.get_threshold() == (GEN0_THRESHOLD, 7, 9)
        assert gc.isenabled()
    finally:
        gc.set_threshold(*before)


def test_kpl_db_verify_runs_with_the_tuned_collector() -> None:
    """The command's function tunes the collector before it opens the store (a missing
    store fails after that, with its own message and exit status)."""
    code = (
        "import gc, sys\n"
        "from typer.testing import CliRunner\n"
        "from kpledger.cli.main import app\n"
        "r = CliRunner().invoke(app, ['db', 'verify', '--db', 'sqlite:////nonexistent/x.db'])\n"
        "print(r.exit_code, gc.get_threshold()[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    status, threshold = out.stdout.split()[-2:]
    assert status != "0"
    assert int(threshold) == GEN0_THRESHOLD
