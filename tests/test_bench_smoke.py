"""The benchmark's quick mode runs end to end and prints its table (no timing checks:
the figures themselves are for `python -m bench.run`, not for the test suite)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--db", "sqlite", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for figure in (
        "Added latency",
        "p50",
        "p99",
        "tokens / CPU s",
        "Peak memory per active conversation",
        "SQL statements per turn",
        "short answer",
        "long answer",
        "build_prompt",
        "loading the thread from the store",
    ):
        assert figure in table, f"{figure!r} missing from:\n{table}"
    assert any(line.startswith("Figure") and "SQLite" in line for line in table.splitlines()), table
    # Every answer reached the surface whole, and the bot logged no warning or error.
    exact = next(line for line in table.splitlines() if "answers ending exactly" in line)
    assert exact.rstrip().endswith("PASS"), exact
    quiet = next(line for line in table.splitlines() if "warnings/errors logged" in line)
    assert quiet.rstrip().endswith("PASS"), quiet
