"""The core's benchmark: ``python -m bench.run [--db sqlite|postgres|both] [--quick]``.

Runs many concurrent conversations through the real core (``build_runtime``: ChatService,
the SQL store, the gateway client over HTTP) with a console surface printing into nothing,
against the fake gateway in a separate process, and prints the figures of issue #2 beside
their targets. Each database is measured in its own worker process, so one run's memory
and CPU do not leak into the other's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench import report, scratch_db
from bench.answers import AnswerShape

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Level:
    conversations: int
    turns: int  # each conversation sends its next message once the previous is answered
    ramp: float  # conversations start spread evenly over this many seconds
    ttft: float | None = None  # overrides the answer's time to first token


@dataclass(frozen=True)
class Plan:
    """What one worker runs."""

    answer: AnswerShape
    levels: tuple[Level, ...]
    # A separate pass of the largest level's shape under tracemalloc, with fewer
    # conversations: tracing doubles the CPU cost, and at 1,000 it would overload the bot.
    trace_conversations: int
    sql_conversations: int
    sql_seconds: float  # how long both the short and the long answer stream
    short_tokens: int
    long_tokens: int
    checkpoint_interval: float
    prompt_messages: int
    prompt_repeats: int


# A typical MiniMax answer: ~150 tokens of (mandatory) reasoning, then ~250 of text, at
# 40 tokens/s. At 100 conversations starts are spread over 8 s, a bit less than an answer
# lasts, so that at the end of the ramp all are streaming. At 1,000 the first token comes
# after 20 s, so that every request is in flight before any answer streams: all 1,000 are
# active at once (the memory figure divides by them) and stream together.
FULL = Plan(
    answer=AnswerShape(tokens=250, think_tokens=150, rate=40.0, ttft=0.5),
    levels=(Level(1, 5, 0.0), Level(100, 3, 8.0), Level(1000, 1, 8.0, ttft=20.0)),
    trace_conversations=200,
    sql_conversations=10,
    sql_seconds=3.0,
    short_tokens=60,
    long_tokens=3000,
    checkpoint_interval=2.0,  # the production default
    prompt_messages=2000,
    prompt_repeats=20,
)
QUICK = Plan(
    answer=AnswerShape(tokens=20, think_tokens=10, rate=200.0, ttft=0.05),
    levels=(Level(1, 3, 0.0), Level(10, 2, 0.1), Level(50, 1, 0.1, ttft=0.5)),
    trace_conversations=20,
    sql_conversations=3,
    sql_seconds=0.6,
    short_tokens=30,
    long_tokens=300,
    checkpoint_interval=0.4,
    prompt_messages=300,
    prompt_repeats=5,
)


def _paced(tokens: int, seconds: float) -> AnswerShape:
    """An answer of ``tokens`` whose visible text streams for about ``seconds`` (no
    reasoning first: checkpoints are timed from the first write)."""
    shape = AnswerShape(tokens=tokens, rate=1.0, ttft=0.0, think_tokens=0)
    return replace(shape, rate=round(shape.chunks / seconds, 3))


# --- the worker: one database ------------------------------------------------------------


class _Problems(logging.Handler):
    """Counts the bot's warnings and errors: a clean run has none."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


async def _measure(db: str, plan: Plan) -> dict:
    from bench.gateway import API_KEY, GatewayProcess
    from bench.load import Driver, keys
    from bench.probe import StreamCounter, instrument
    from bench.prompt_bench import measure as measure_prompt
    from bot.config import Settings
    from bot.process.runtime import build_runtime

    problems = _Problems()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(problems)

    pg_name = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-")
    if db == "postgres":
        pg_name, url = await scratch_db.create("bench")
    else:
        url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    gateway = GatewayProcess().start()
    out: dict = {"db": db, "levels": []}
    try:
        settings = Settings(
            _env_file=None,
            BYTESPIKE_API_KEY=API_KEY,
            BYTESPIKE_BASE_URL=gateway.base_url,
            DATABASE_URL=url,
            BOT_CHECKPOINT_INTERVAL=plan.checkpoint_interval,
        )
        rt = await build_runtime(settings)
        counter = StreamCounter()
        instrument(rt.gateway, counter)
        driver = Driver(rt, gateway, counter)
        try:
            # Warm-up: imports, pools, connections, the database file.
            await driver.run(keys("warm", 5), 2, replace(plan.answer, ttft=0.0, rate=0.0))

            largest = max(plan.levels, key=lambda lv: lv.conversations)
            for level in plan.levels:
                _say(f"[{db}] {level.conversations} conversation(s) × {level.turns} turn(s)…")
                shape = plan.answer if level.ttft is None else replace(plan.answer, ttft=level.ttft)
                res = await driver.run(
                    keys(f"c{level.conversations}-", level.conversations),
                    level.turns,
                    shape,
                    ramp=level.ramp,
                    sample_rss=level is largest,
                )
                _say(
                    f"[{db}]   {res.wall:.1f} s wall, {res.cpu:.1f} s CPU, {res.exact}/{res.turns} exact, "
                    f"{res.peak_streams} streams at once"
                )
                summary = report.level_summary(res, level.ramp)
                summary["ttft"] = shape.ttft
                out["levels"].append(summary)

            if plan.trace_conversations:
                n = plan.trace_conversations
                _say(f"[{db}] tracemalloc pass, {n} conversations…")
                shape = plan.answer if largest.ttft is None else replace(plan.answer, ttft=largest.ttft)
                res = await driver.run(keys("trace-", n), 1, shape, ramp=largest.ramp, trace=True)
                _say(f"[{db}]   {res.wall:.1f} s wall, {res.peak_streams} streams at once")
                out["traced"] = dict(
                    conversations=n,
                    per_conversation=(res.traced_peak or 0) / n,
                    peak_streams=res.peak_streams,
                    exact=[res.exact, res.turns],
                    errors=res.errors[:5],
                )

            _say(f"[{db}] SQL statements per turn…")
            sql_keys = keys("sql-", plan.sql_conversations)
            await driver.run(sql_keys, 1, replace(plan.answer, ttft=0.0, rate=0.0))
            sql = {}
            for label, tokens in (("short", plan.short_tokens), ("long", plan.long_tokens)):
                shape = _paced(tokens, plan.sql_seconds)
                res = await driver.run(sql_keys, 1, shape)
                sql[label] = dict(
                    tokens=shape.chunks,
                    statements=res.statements / res.turns,
                    cpu_per_turn=res.cpu / res.turns,
                    exact=[res.exact, res.turns],
                    seconds=plan.sql_seconds,
                )
            out["sql"] = sql

            _say(f"[{db}] prompt assembly, {plan.prompt_messages} messages…")
            out["prompt"] = asdict(await measure_prompt(rt, plan.prompt_messages, plan.prompt_repeats))
        finally:
            await rt.close()
    finally:
        gateway.stop()
        if pg_name:
            await scratch_db.drop(pg_name)
        tmp.cleanup()
    out["problems"] = problems.count
    out["first_problems"] = problems.first
    out["answer"] = asdict(plan.answer)
    out["checkpoint_interval"] = plan.checkpoint_interval
    return out


# --- the parent: workers, then the table --------------------------------------------------


def _run_worker(db: str, quick: bool) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        cmd = [sys.executable, "-m", "bench.run", "--worker", db, "--out", path] + (["--quick"] if quick else [])
        done = subprocess.run(cmd, cwd=ROOT, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"the {db} benchmark failed (exit {done.returncode})")
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="a small version that takes seconds")
    parser.add_argument("--worker", choices=("sqlite", "postgres"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.worker:
        result = asyncio.run(_measure(args.worker, plan))
        Path(args.out).write_text(json.dumps(result))
        return
    dbs = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = [_run_worker(db, args.quick) for db in dbs]
    print(report.table(results, quick=args.quick))


if __name__ == "__main__":
    main()
