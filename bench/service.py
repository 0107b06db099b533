"""The service benchmark: ``python -m bench.service [--scenario NAME ...] [--quick] [--processes 1,2,4]``.

Drives `python -m bot run` as real processes against the fake gateway, the fake Telegram Bot
API, the fake Slack Web API and the fake Feishu (``tests/fakes``, real limits, ``PLATFORM_TIME_SCALE=1``),
which run in this process. Per scenario it prints the added latency (the gateway wrote an
answer's first visible token → the first platform write showing answer text arrived) beside
the floor the platforms' documented limits allow (``bench.floors``), 429s by method, the bot
process's CPU-seconds per 1,000 streamed tokens and its peak RSS. ``--processes`` runs N
`bot run` processes on one PostgreSQL in Telegram webhook mode, this benchmark acting as the
load balancer, at a fixed offered load. See docs/benchmarks.md, "Service benchmark".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sys
from pathlib import Path

from bench.service_scenarios import (
    FULL,
    LOAD,
    QUICK,
    SCENARIOS,
    postgres_reachable,
    run,
)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _limited(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"


SHORT = {
    "sendMessageDraft": "draft",
    "sendMessage": "send",
    "editMessageText": "edit",
    "chat.postMessage": "post",
    "chat.update": "update",
    "chat.startStream": "startStream",
    "chat.appendStream": "append",
    "chat.stopStream": "stopStream",
    "cardkit.card.update": "card update",
    "cardkit.card_element.content": "card push",
    "im.message.reply": "reply",
    "im.message.create": "send",
}


def _via(methods: dict[str, int]) -> str:
    return ", ".join(f"{SHORT.get(m, m or '—')} {n}" for m, n in sorted(methods.items(), key=lambda kv: -kv[1]))


def table(results: list[dict], load: list[dict], quick: bool) -> str:
    lines = []
    a = (results or load)[0]["answer"] if (results or load) else None
    head = "Service benchmark" + (" (QUICK: short answers, fewer Slack threads)" if quick else "")
    lines.append(head)
    if a:
        lines.append(
            f"answers: {a['think']} tokens of inline reasoning + {a['tokens']} of text = {a['chunks']} "
            f"streamed tokens, {a['rate']:g} tokens/s, first token after {a['ttft']:g} s; real platform "
            f"limits; {os.cpu_count()} CPUs shared, Python {platform.python_version()}"
        )
    if results:
        lines.append("")
        cols = [
            "scenario",
            "answered",
            "added latency p50 / p99 ms",
            "floor p50 / p99 ms",
            "first write via",
            "429s by method",
            "CPU s / 1k tokens",
            "peak RSS MB",
            "load s",
        ]
        rows = [
            [
                r["scenario"]
                + (
                    f" ({r['conversations']} conv.)"
                    if r["scenario"] == "slack-threads-50" and r["conversations"] != 50
                    else ""
                ),
                f"{r['finished']}/{r['turns']}" + ("" if r["exact"] == r["finished"] else f" ({r['exact']} exact)"),
                f"{_f(r['latency_p50_ms'])} / {_f(r['latency_p99_ms'])}",
                f"{_f(r['floor_p50_ms'], '{:.0f}')} / {_f(r['floor_p99_ms'], '{:.0f}')}",
                _via(r["first_write_methods"]),
                _limited(r["rate_limited"]),
                _f(r["cpu_per_1k_tokens"], "{:.3f}"),
                _f(r["peak_rss_mb"]),
                _f(r["load_seconds"]),
            ]
            for r in results
        ]
        lines += _grid(cols, rows)
    if load:
        r0 = load[0]
        lines.append("")
        lines.append(
            f"Scaling out: Telegram webhooks on {r0['database']}, the benchmark as round-robin load "
            f"balancer; fixed offered load: {r0['turns']} new conversations at {r0['arrival_rate']:g}/s "
            f"(every {r0['group_share']}th a group, the rest private chats with drafts)"
        )
        cols = [
            "processes",
            "answered",
            "answers/s",
            "added latency p50 / p99 ms",
            "floor p50 / p99 ms",
            "CPU s / 1k tokens",
            "429s by method",
            "peak RSS MB (each)",
        ]
        rows = [
            [
                str(r["processes"]) + (" (Redis)" if r.get("redis") else ""),
                f"{r['finished']}/{r['turns']}",
                _f(r["answers_per_second"], "{:.2f}"),
                f"{_f(r['latency_p50_ms'])} / {_f(r['latency_p99_ms'])}",
                f"{_f(r['floor_p50_ms'], '{:.0f}')} / {_f(r['floor_p99_ms'], '{:.0f}')}",
                _f(r["cpu_per_1k_tokens"], "{:.3f}"),
                _limited(r["rate_limited"]),
                " ".join(_f(x) for x in r["peak_rss_mb_each"]),
            ]
            for r in load
        ]
        lines += _grid(cols, rows)
    notes = [
        f"{r['scenario']} ×{r['processes']}: {r['problems']} warnings/errors logged, first: {r['first_problems'][:2]}"
        for r in results + load
        if r["problems"]
    ]
    notes += [
        f"{r['scenario']} ×{r['processes']}: NOT all answers finished in time"
        for r in results + load
        if not r["all_finished"]
    ]
    notes += [
        f"{r['scenario']} ×{r['processes']}: the fakes used {r['fakes_cpu_share']:.0%} of a core: "
        "timestamps may lag, latencies are suspect"
        for r in results + load
        if (r["fakes_cpu_share"] or 0) > 0.7
    ]
    return "\n".join(lines + ([""] + notes if notes else []))


def _grid(cols: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    out = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    out += ["| " + " | ".join(v.ljust(w) for v, w in zip(r, widths)) + " |" for r in rows]
    return out


async def _main(args: argparse.Namespace) -> tuple[list[dict], list[dict]]:
    plan = QUICK if args.quick else FULL
    names = args.scenario or ([] if args.processes and args.only_processes else list(SCENARIOS))
    results = []
    for name in names:
        _say(f"[{name}] …")
        results.append(await run(SCENARIOS[name], plan, say=_say))
    load = []
    counts = [int(n) for n in args.processes.split(",")] if args.processes else []
    if counts:
        postgres = await postgres_reachable()
        if not postgres:
            _say("PostgreSQL unreachable: one process on SQLite only")
            counts = [1]
        for n in counts:
            _say(f"[processes ×{n}] …")
            # Several processes share their platform budgets through Redis (REDIS_URL), as deployed.
            redis = args.redis if n > 1 and args.redis else None
            result = await run(LOAD, plan, processes=n, postgres=postgres, say=_say, redis_url=redis)
            result.update(group_share=plan.group_share, arrival_rate=plan.arrival_rate, redis=bool(redis))
            load.append(result)
    return results, load


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.service", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="run only this scenario (repeatable); default: all"
    )
    parser.add_argument("--quick", action="store_true", help="short answers and fewer Slack threads (≤ ~2 min)")
    parser.add_argument(
        "--processes", default=None, help="also run the scaling-out load with these process counts, e.g. 1,2,4"
    )
    parser.add_argument("--only-processes", action="store_true", help="with --processes: skip the scenarios")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/0",
        help="REDIS_URL for runs of several processes ('' : each process keeps its own budgets)",
    )
    parser.add_argument("--json", help="write every figure to this file as JSON")
    args = parser.parse_args(argv)
    results, load = asyncio.run(_main(args))
    print(table(results, load, args.quick))
    if args.json:
        Path(args.json).write_text(json.dumps({"quick": args.quick, "scenarios": results, "processes": load}, indent=2))


if __name__ == "__main__":
    main()
