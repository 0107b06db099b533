"""The soak benchmark runs `bot run` with Telegram and Slack under mixed traffic and judges it
(a very short run: the figures are for `python -m bench.soak --minutes 60`, not for the suite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_watch import Sample, Windows, slope_per_hour, trend

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.realtime
@pytest.mark.timeout(400)  # ~60 s quiet; two bot processes' start-up and a loaded machine stretch it
def test_a_short_soak_answers_every_message_once_and_reports_every_target(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--minutes",
            "0.3",
            "--interval",
            "1",
            "--rest",
            "3",
            "--gap",
            "1",
            "--burst",
            "4",
            "--streams",
            "4",
            "--stream-tokens",
            "40",
            "--db",
            "sqlite",
            "--json",
            str(out),
        ],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=380,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a target missed, said in the report
    for row in (
        "every message answered exactly once",
        "stored turns agree",
        "RSS growth after warm-up",
        "asyncio tasks at rest",
        "open file descriptors at rest",
        "peak RSS (VmHWM)",
    ):
        assert row in done.stdout, f"{row!r} missing from:\n{done.stdout}"
    figures = json.loads(out.read_text())
    soak, peak = figures["soak"], figures["streams"]
    verdict = soak["verdict"]
    assert verdict["answers_found"] == verdict["answers_expected"] > 5, soak["counts"]
    assert soak["counts"] == {"missing": 0, "extra": 0, "unfinished": 0} and not soak["timeouts"], soak
    assert sum(soak["turn_states"].values()) == verdict["answers_expected"], soak["turn_states"]
    assert {s["phase"] for s in soak["samples"]} >= {"idle-start", "load", "idle-end"}
    assert all(s["tasks"] and s["rss"] > 10 * 2**20 and s["fds"] > 0 for s in soak["samples"])
    assert peak["finished"] == 4 and peak["most_streams_at_once"] >= 2 and peak["peak_rss_mb"] > 10, peak


def _samples(values: list[float], phase: str = "load") -> list[Sample]:
    return [
        Sample(at=float(i * 10), rss=int(v * 2**20), fds=10, pg=None, tasks=5, streams=0, phase=phase)
        for i, v in enumerate(values)
    ]


def test_growth_is_the_late_median_minus_the_early_median_after_the_warm_up() -> None:
    # 100 s: warm-up 10 s, windows of 30 s. A spike in each window does not move a median.
    rss = [50, 80, 81, 120, 80, 80, 83, 83, 200, 83]
    found = trend(_samples(rss), lambda s: s.rss / 2**20, Windows.for_duration(100), 100)
    assert (found.early, found.late, found.growth) == (81, 83, 2)
    assert found.peak == 200


def test_slope_is_per_hour() -> None:
    assert slope_per_hour([(0, 100), (1800, 101), (3600, 102)]) == pytest.approx(2.0)
    assert slope_per_hour([(0, 1), (1, 1)]) is None
