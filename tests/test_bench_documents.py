"""bench/documents.py runs end to end on a small PDF and prints its figures (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_documents_benchmark_prints_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.documents", "--producer", "reportlab", "--pages", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("reportlab: 30 pages")
    figures = {line.split()[0]: json.loads(line.split(None, 1)[1]) for line in lines[1:]}
    assert figures["read"]["pages"] == 30 and figures["read"]["peak_rss_mb"] > 0
    assert figures["extract_text"]["total"] == 30 and figures["pypdf_100"]["kangxi"] == 0
    assert figures["in_parts"]["calls"] >= 1 and figures["in_parts"]["wall_s"] > 0  # 30 pages fit: no parts
