"""The service benchmark runs `bot run` end to end against the fakes and prints its table
(no timing checks: the figures are for `python -m bench.service`, not for the test suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_service_benchmark_measures_one_scenario_per_platform(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.service",
            "--quick",
            "--scenario",
            "tg-group-1",
            "--scenario",
            "slack-post-1",
            "--json",
            str(out),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for figure in (
        "added latency p50 / p99 ms",
        "floor p50 / p99 ms",
        "429s by method",
        "CPU s / 1k tokens",
        "peak RSS MB",
        "tg-group-1",
        "slack-post-1",
    ):
        assert figure in done.stdout, f"{figure!r} missing from:\n{done.stdout}"
    figures = json.loads(out.read_text())["scenarios"]
    for r in figures:
        assert r["finished"] == r["turns"] == r["exact"] == r["measured"] == 1, r
        assert r["latency_p50_ms"] >= 0 and r["tokens"] == r["answer"]["chunks"], r
        assert r["cpu_seconds"] > 0 and r["peak_rss_mb"] > 10, r
    assert {r["scenario"]: r["first_write_methods"] for r in figures} == {
        "tg-group-1": {"sendMessage": 1},
        "slack-post-1": {"chat.postMessage": 1},
    }
