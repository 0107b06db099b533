"""How long the compliance check takes on a note: ``python -m bench.compliance``.

A 2,000-character 小红书 note (the corpus's ordinary sentences plus a few claims), checked
with the style's platform rules and a brand profile, rules loaded and warm; the figure is
the median of repeated checks (target: well under 10 ms, so a three-variant answer adds
little). Timing lives here, not in the unit tests: a loaded machine must not fail a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bot.compliance import check
from bot.compliance.brand import BrandProfile

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"


def note(length: int = 2000) -> str:
    rows = [json.loads(line) for line in (CORPUS / "compliance.jsonl").read_text().splitlines() if line.strip()]
    ordinary = [row["text"] for row in rows if row["kind"] == "ordinary"]
    text = ("。".join(ordinary) + "。全网最低价，销量第一！加vx：abc12345。") * 4
    return text[:length]


def measure(repeats: int = 50) -> dict[str, float]:
    brands = json.loads((CORPUS / "compliance_brands.json").read_text())
    brand = BrandProfile.from_dict(brands["shanchaji"])
    text = note()
    started = time.perf_counter()
    check(text, style="xiaohongshu", brand=brand)  # the rules load and compile once per process
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        findings = check(text, style="xiaohongshu", brand=brand)
        times.append(time.perf_counter() - started)
    return {
        "chars": len(text),
        "findings": len(findings),
        "first_ms": round(first * 1e3, 1),
        "median_ms": round(statistics.median(times) * 1e3, 2),
        "p90_ms": round(sorted(times)[int(0.9 * repeats)] * 1e3, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    figures = measure(parser.parse_args().repeats)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
