"""Figures → the printed table, each beside its target (issue #2, section 6)."""

from __future__ import annotations

import math
import os
import platform

from bench.load import LoadResult

TARGET_LATENCY_P50_MS = 5.0
TARGET_LATENCY_P99_MS = 50.0
TARGET_TOKENS_PER_CPU_S = 20_000
TARGET_BYTES_PER_CONVERSATION = 100 * 1024
TARGET_PROMPT_MS = 20.0
TARGET_LEVEL = 100  # conversations at which the latency and CPU targets apply


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def level_summary(res: LoadResult, ramp: float) -> dict:
    lat_ms = [x * 1000 for x in res.latencies]
    return dict(
        conversations=res.conversations,
        turns=res.turns,
        ramp=ramp,
        samples=len(lat_ms),
        p50_ms=percentile(lat_ms, 50),
        p99_ms=percentile(lat_ms, 99),
        max_ms=max(lat_ms, default=math.nan),
        tokens=res.tokens,
        cpu=res.cpu,
        gateway_cpu=res.gateway_cpu,
        wall=res.wall,
        tokens_per_cpu_s=res.tokens_per_cpu_second,
        peak_streams=res.peak_streams,
        rss_base=res.rss_base,
        rss_peak=res.rss_peak,
        rss_per_conversation=(res.rss_peak - res.rss_base) / res.conversations if res.rss_peak else None,
        exact=res.exact,
        statements=res.statements,
        errors=res.errors[:5],
    )


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "MISS")


def _kb(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 1024:,.1f} KB"


class _Table:
    def __init__(self, dbs: list[str]) -> None:
        self.dbs = dbs
        self.rows: list[tuple[str, str, list[str]] | str] = []

    def section(self, title: str) -> None:
        self.rows.append(title)

    def row(self, label: str, target: str, cells: list[tuple[str, bool | None]]) -> None:
        self.rows.append((label, target, [f"{v} {_verdict(ok)}".rstrip() for v, ok in cells]))

    def render(self) -> str:
        w0 = max([len(r[0]) for r in self.rows if isinstance(r, tuple)] + [30]) + 4
        w1 = max([len(r[1]) for r in self.rows if isinstance(r, tuple)] + [8]) + 2
        wc = max([len(c) for r in self.rows if isinstance(r, tuple) for c in r[2]] + [12]) + 2
        head = f"{'Figure':<{w0}}{'Target':<{w1}}" + "".join(f"{d:<{wc}}" for d in self.dbs)
        lines = [head, "-" * len(head.rstrip())]
        for r in self.rows:
            if isinstance(r, str):
                lines.append(r)
            else:
                label, target, cells = r
                lines.append((f"  {label:<{w0 - 2}}{target:<{w1}}" + "".join(f"{c:<{wc}}" for c in cells)).rstrip())
        return "\n".join(lines)


def _target_level(levels: list[dict]) -> dict:
    for level in levels:
        if level["conversations"] == TARGET_LEVEL:
            return level
    return levels[len(levels) // 2]


def table(results: list[dict], *, quick: bool = False) -> str:
    names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
    t = _Table([names[r["db"]] for r in results])
    first = results[0]
    a = first["answer"]
    levels0 = first["levels"]

    t.section("Added latency: first visible token reaches the core → first write on the surface")
    for i, level in enumerate(levels0):
        n, turns = level["conversations"], level["turns"] // level["conversations"]
        label = f"{n:,} conversation{'s' if n > 1 else ''} × {turns} turn{'s' if turns > 1 else ''}"
        if level.get("ttft", a["ttft"]) != a["ttft"]:
            label += f" (first token {level['ttft']:g} s)"
        is_target = level is _target_level(levels0)
        lv = [r["levels"][i] for r in results]
        if is_target:
            t.row(
                f"{label}: p50",
                f"≤ {TARGET_LATENCY_P50_MS:g} ms",
                [(f"{x['p50_ms']:.2f} ms", x["p50_ms"] <= TARGET_LATENCY_P50_MS) for x in lv],
            )
            t.row(
                f"{label}: p99",
                f"≤ {TARGET_LATENCY_P99_MS:g} ms",
                [(f"{x['p99_ms']:.2f} ms", x["p99_ms"] <= TARGET_LATENCY_P99_MS) for x in lv],
            )
        else:
            t.row(f"{label}: p50 / p99", "", [(f"{x['p50_ms']:.2f} / {x['p99_ms']:.2f} ms", None) for x in lv])
        t.row(
            "    (max; peak streams at once)", "", [(f"{x['max_ms']:.1f} ms; {x['peak_streams']:,}", None) for x in lv]
        )

    t.section("Streamed tokens per CPU-second of the bot process (whole turns: HTTP, SSE, core, store)")
    for i, level in enumerate(levels0):
        lv = [r["levels"][i] for r in results]
        is_target = level is _target_level(levels0)
        t.row(
            f"{level['conversations']:,} conversation(s): tokens / CPU s",
            f"≥ {TARGET_TOKENS_PER_CPU_S:,}" if is_target else "",
            [
                (
                    f"{x['tokens_per_cpu_s']:,.0f}",
                    x["tokens_per_cpu_s"] >= TARGET_TOKENS_PER_CPU_S if is_target else None,
                )
                for x in lv
            ],
        )
    t.row(
        "    bot CPU s / tokens (largest level)",
        "",
        [(f"{r['levels'][-1]['cpu']:.1f} / {r['levels'][-1]['tokens']:,}", None) for r in results],
    )
    t.row(
        "    fake gateway CPU s (own process)", "", [(f"{r['levels'][-1]['gateway_cpu']:.1f}", None) for r in results]
    )
    marginal = []
    for r in results:
        s, l_ = r["sql"]["short"], r["sql"]["long"]
        extra_cpu = l_["cpu_per_turn"] - s["cpu_per_turn"]
        rate = (l_["tokens"] - s["tokens"]) / extra_cpu if extra_cpu > 0 else math.inf
        marginal.append((f"{rate:,.0f} (+{s['cpu_per_turn'] * 1000:.1f} ms/turn)", None))
    long_tokens = first["sql"]["long"]["tokens"]
    t.row(f"    streaming alone: ({long_tokens:,}-token − short answer) / CPU", "", marginal)

    big = levels0[-1]["conversations"]
    t.section(f"Peak memory per active conversation ({big:,} at once)")
    t.row(
        f"RSS (peak during − before) / {big:,}",
        f"≤ {TARGET_BYTES_PER_CONVERSATION // 1024} KB",
        [
            (
                _kb(r["levels"][-1]["rss_per_conversation"]),
                r["levels"][-1]["rss_per_conversation"] is not None
                and r["levels"][-1]["rss_per_conversation"] <= TARGET_BYTES_PER_CONVERSATION,
            )
            for r in results
        ],
    )
    if "traced" in first:
        tr = first["traced"]
        t.row(
            f"tracemalloc peak / {tr['conversations']:,} (own pass; Python objects)",
            "",
            [
                (f"{_kb(r['traced']['per_conversation'])}; {r['traced']['peak_streams']:,} at once", None)
                for r in results
            ],
        )

    s0 = first["sql"]
    t.section(
        f"SQL statements per turn (checkpoint every {first['checkpoint_interval']:g} s; "
        f"both answers stream {s0['short']['seconds']:g} s)"
    )
    t.row(
        f"short answer ({s0['short']['tokens']:,} tokens)",
        "",
        [(f"{r['sql']['short']['statements']:.1f}", None) for r in results],
    )
    t.row(
        f"long answer ({s0['long']['tokens']:,} tokens)",
        "= short",
        [
            (f"{r['sql']['long']['statements']:.1f}", r["sql"]["long"]["statements"] == r["sql"]["short"]["statements"])
            for r in results
        ],
    )

    p0 = first["prompt"]
    t.section(
        f"Prompt assembly: {p0['messages']:,} messages, ~{p0['estimated_tokens']:,} of "
        f"{p0['budget_tokens']:,} budget tokens{' (TRIMMED)' if p0['trimmed'] else ''}"
    )
    t.row(
        "build_prompt: median (max)",
        f"< {TARGET_PROMPT_MS:g} ms",
        [
            (
                f"{_median(r['prompt']['build_ms']):.2f} ({max(r['prompt']['build_ms']):.2f}) ms",
                _median(r["prompt"]["build_ms"]) < TARGET_PROMPT_MS,
            )
            for r in results
        ],
    )
    t.row(
        "loading the thread from the store: median",
        "",
        [
            (f"{_median(r['prompt']['load_ms']):.1f} ms ({r['prompt']['loaded_messages']:,} msgs)", None)
            for r in results
        ],
    )

    t.section("Correctness")
    totals = []
    for r in results:
        exact = sum(x["exact"] for x in r["levels"]) + sum(r["sql"][k]["exact"][0] for k in ("short", "long"))
        turns = sum(x["turns"] for x in r["levels"]) + sum(r["sql"][k]["exact"][1] for k in ("short", "long"))
        if "traced" in r:
            exact, turns = exact + r["traced"]["exact"][0], turns + r["traced"]["exact"][1]
        totals.append((f"{exact:,}/{turns:,}", exact == turns))
    t.row("answers ending exactly as the model sent them", "all", totals)
    t.row("warnings/errors logged by the bot", "0", [(f"{r['problems']}", r["problems"] == 0) for r in results])

    header = [
        f"Core benchmark{' (QUICK: small, targets shown for reference only)' if quick else ''}",
        f"answers: {a['tokens']} tokens of {a['chunk_chars']} chars (+{a['think_tokens']} of inline reasoning), "
        f"one token per SSE chunk, {a['rate']:g} tokens/s, first token after {a['ttft']:g} s; starts spread over "
        + ", ".join(f"{x['ramp']:g} s ({x['conversations']:,})" for x in levels0),
        "surface: the console's (edit interval 0.05 s) printing into nothing; fake gateway in its own process; "
        f"{os.cpu_count()} CPUs shared, Python {platform.python_version()}",
        "",
        "",
    ]
    notes = []
    for r in results:
        for x in r["levels"]:
            if x["errors"]:
                notes.append(f"{names[r['db']]}: {x['conversations']} conversations: {x['errors']}")
        if r.get("traced", {}).get("errors"):
            notes.append(f"{names[r['db']]}: tracemalloc pass: {r['traced']['errors']}")
        if r["first_problems"]:
            notes.append(f"{names[r['db']]}: first problems logged: {r['first_problems']}")
    return "\n".join(header) + t.render() + ("\n\n" + "\n".join(notes) if notes else "")


def _median(xs: list[float]) -> float:
    ordered = sorted(xs)
    n = len(ordered)
    return (ordered[n // 2] + ordered[(n - 1) // 2]) / 2 if n else math.nan
