"""The soak benchmark: ``python -m bench.soak --minutes 60`` (``--minutes 2`` for a smoke run).

One `bot run` process with Telegram (webhook) and Slack (HTTP events) both configured, on a
fresh PostgreSQL database (migrated first by `bot migrate`, as the Procfile's release phase
does), against the fake gateway, the fake Telegram Bot API and the fake
Slack Web API of ``tests/fakes`` (real limits), for the given minutes of mixed traffic
(``bench.soak_traffic``) at a steady modest rate with periodic bursts. Every few seconds it
samples the process (``bench.soak_watch``); at the end it checks that nothing was lost and
that memory, tasks, file descriptors and database connections stayed flat after the warm-up.
Then (``--streams``, default 100) a second, fresh process streams long answers into half as
many Telegram private chats and Slack threads at once, for its peak RSS. See
docs/benchmarks.md, "Soak".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg

from bench import scratch_db
from bench.service_harness import BotProcess, Deliver, Fakes, Shape, Turn, bot_settings, wait_final
from bench.soak_traffic import Pace, Traffic, offer, soak_answer, verify
from bench.soak_watch import MB, Sampler, Trend, samples_json, trends

RSS_GROWTH_MB = 5.0  # issue 20: RSS after warm-up grows by no more than 5 MB
PEAK_RSS_MB = 120.0  # issue 20: at 100 streams, both platforms configured
LONG = Shape(think=150, tokens=800, rate=40.0, ttft=0.5)  # the streams phase's answers (~24 s each)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class Database:
    """A fresh database for one bot process: PostgreSQL (its own scratch database, dropped
    after) or SQLite in the run's directory."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir
        self.name: str | None = None
        self.url = f"sqlite+aiosqlite:///{workdir}/bot.db"
        self._admin: asyncpg.Connection | None = None

    async def __aenter__(self) -> Database:
        if self.kind == "postgresql":
            self.name, self.url = await scratch_db.create("bench_soak")
            self._admin = await asyncpg.connect(scratch_db.admin_url())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._admin is not None:
            await self._admin.close()
        if self.name:
            await scratch_db.drop(self.name)

    @property
    def pg_count(self) -> Callable[[], Awaitable[int]] | None:
        if self._admin is None:
            return None
        admin, name = self._admin, self.name

        async def count() -> int:
            return int(await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name))

        return count

    async def turn_states(self) -> dict[str, int]:
        query = "SELECT status, count(*) FROM turns GROUP BY status"
        if self._admin is not None:
            conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                rows = await conn.fetch(query)
            finally:
                await conn.close()
            return {r[0]: int(r[1]) for r in rows}
        with sqlite3.connect(self.workdir / "bot.db") as conn:
            return {status: int(n) for status, n in conn.execute(query)}


async def _start(
    stack: AsyncExitStack, db_kind: str, fakes: Fakes, probe: Path | None = None, env: dict[str, str] | None = None
) -> tuple[BotProcess, Database]:
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-soak-")))
    db = await stack.enter_async_context(Database(db_kind, workdir))
    settings = bot_settings(fakes, db.url, telegram=True, slack=True, **(env or {}))
    # Migrated first, as the Procfile's release phase does: `bot run` then finds the database at
    # its head and never imports Alembic (~8 MB), as in production.
    migrate = await BotProcess(settings, workdir, argv=("-m", "bot", "migrate")).start()
    assert migrate.proc is not None
    if await migrate.proc.wait() != 0:
        raise RuntimeError(f"bot migrate failed: {migrate.log_tail()}")
    if probe is not None:
        probe.mkdir(parents=True, exist_ok=True)
        bot = BotProcess({**settings, "PROBE_OUT": str(probe)}, workdir, argv=("-m", "bench.memory_probe"))
    else:
        bot = BotProcess(settings, workdir)
    stack.push_async_callback(bot.stop)
    await (await bot.start()).ready()
    return bot, db


def _snapshots(bot: BotProcess, probe: Path | None) -> Callable[[], Awaitable[None]]:
    """With ``--probe``: ask the bot (under ``bench.memory_probe``) for its figures (and a
    tracemalloc snapshot unless PROBE_FRAMES=0)."""

    async def snapshot() -> None:
        if probe is not None and bot.proc is not None:
            bot.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(2)

    return snapshot


async def _every(seconds: float, times: int, call: Callable[[], Awaitable[None]]) -> None:
    for _ in range(times):
        await asyncio.sleep(seconds)
        await call()


async def _idle(sampler: Sampler, phase: str, seconds: float) -> None:
    sampler.phase = phase
    await asyncio.sleep(seconds)


async def soak(
    minutes: float,
    *,
    interval: float,
    db_kind: str,
    pace: Pace,
    rest: float = 15.0,
    probe: Path | None = None,
    live: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    seconds = minutes * 60
    async with AsyncExitStack() as stack:
        fakes = await Fakes().start()
        stack.push_async_callback(fakes.stop)
        fakes.gateway.default = soak_answer
        bot, db = await _start(stack, db_kind, fakes, probe, env)
        assert bot.proc is not None
        deliver = Deliver(fakes, [bot])
        stack.push_async_callback(deliver.close)
        traffic = Traffic(fakes, deliver)
        snapshot = _snapshots(bot, probe)
        sampler = Sampler(bot.proc.pid, bot.port, interval=interval, pg_count=db.pg_count, live=live)
        stack.push_async_callback(sampler.stop)
        sampler.start()
        # One conversation per platform first: imports, connections, the first SQL.
        await asyncio.gather(traffic.tg_private(), traffic.slack_thread())
        await _idle(sampler, "idle-start", max(rest, 3 * interval))

        _say(f"soak: {minutes:g} min of traffic …")
        await snapshot()  # 1: at rest after one answer per platform
        sampler.phase, sampler.t0 = "load", time.monotonic()
        cpu0, started = bot.cpu_seconds(), time.monotonic()
        # With --probe: ten more during the load, the last at its end.
        every = asyncio.create_task(_every(seconds / 10, 9, snapshot)) if probe is not None else None
        running = await offer(traffic, seconds, pace)
        if every is not None:
            every.cancel()
        await snapshot()
        sampler.phase = "drain"
        done, pending = await asyncio.wait(running, timeout=600) if running else (set(), set())
        for task in pending:
            task.cancel()
        crashed = [repr(t.exception()) for t in done if not t.cancelled() and t.exception() is not None]
        cpu = bot.cpu_seconds() - cpu0
        elapsed = time.monotonic() - started
        await _idle(sampler, "idle-end", max(rest, 3 * interval))
        await snapshot()  # 4: at rest after the traffic
        verdict = verify(traffic)
        states = await db.turn_states()
        vm_hwm = bot.peak_rss()
        await sampler.stop()
        problems = bot.problems()
    ledger = traffic.ledger
    return dict(
        minutes=minutes,
        database=db_kind,
        interval=interval,
        pace=asdict(pace),
        load_seconds=round(elapsed, 1),
        cpu_seconds=round(cpu, 1),
        conversations=len(ledger.places),
        steps=ledger.sent,
        stopped=ledger.stopped,
        late_stops=ledger.late_stops,
        timeouts=ledger.timeouts[:20],
        timeouts_count=len(ledger.timeouts),
        crashed=crashed[:5],
        unfinished_tasks=len(pending),
        verdict=asdict(verdict) | {k: getattr(verdict, k)[:20] for k in ("missing", "extra", "unfinished")},
        counts=dict(missing=len(verdict.missing), extra=len(verdict.extra), unfinished=len(verdict.unfinished)),
        turn_states=states,
        peak_rss_mb=round(vm_hwm / MB, 1),
        trends={k: asdict(v) for k, v in trends(sampler.samples, seconds).items()},
        problems=len(problems),
        first_problems=problems[:5],
        samples=samples_json(sampler.samples),
    )


async def streams(count: int, *, db_kind: str, shape: Shape = LONG, timeout: float = 420.0) -> dict[str, Any]:
    """``count`` answers streaming at once: half into Telegram private chats (drafts), half
    into Slack threads (10 a channel), both platforms configured. Peak RSS is VmHWM."""
    async with AsyncExitStack() as stack:
        fakes = await Fakes().start()
        stack.push_async_callback(fakes.stop)
        bot, db = await _start(stack, db_kind, fakes)
        assert bot.proc is not None
        deliver = Deliver(fakes, [bot])
        stack.push_async_callback(deliver.close)
        sampler = Sampler(bot.proc.pid, bot.port, interval=0.5, pg_count=db.pg_count)
        stack.push_async_callback(sampler.stop)
        warm = Shape(think=3, tokens=8, rate=0.0, ttft=0.0)
        turn = Turn("warm-tg", "telegram", 90_000, warm)
        await deliver.telegram(turn, deliver.telegram_private(90_000), mention=False)
        warm_turns = [turn, await deliver.slack_mention("warm-slack", "C0WARM0001", warm)]
        if not await wait_final(fakes, warm_turns, 60):
            raise RuntimeError("streams: the warm-up answers never finished")
        before = (await sampler.sample()).rss
        sampler.phase = "load"
        sampler.start()
        tg_n = count // 2
        turns = [Turn(f"st-{i}", "telegram", 31_000 + i, shape) for i in range(tg_n)]
        sends: list[Awaitable[Any]] = [
            deliver.telegram(t, deliver.telegram_private(t.where), mention=False) for t in turns
        ]
        slack = [deliver.slack_mention(f"ss-{i}", f"C0PEAK{i % 5:03d}", shape) for i in range(count - tg_n)]
        started = time.monotonic()
        sent = await asyncio.gather(*sends, *slack)
        turns += [t for t in sent if isinstance(t, Turn)]
        finished = await wait_final(fakes, turns, timeout)
        elapsed = time.monotonic() - started
        await sampler.stop()
        hwm = bot.peak_rss()
        problems = bot.problems()
    return dict(
        streams=count,
        database=db_kind,
        answer=dict(think=shape.think, tokens=shape.tokens, rate=shape.rate),
        finished=sum(t.final is not None for t in turns),
        exact=sum(t.exact for t in turns),
        all_finished=finished,
        rss_before_mb=round(before / MB, 1),
        peak_rss_mb=round(hwm / MB, 1),
        peak_sampled_rss_mb=round(max((s.rss for s in sampler.samples), default=0) / MB, 1),
        most_streams_at_once=max((s.streams or 0 for s in sampler.samples), default=0),
        load_seconds=round(elapsed, 1),
        rate_limited=fakes.rate_limited(),
        problems=len(problems),
        first_problems=problems[:5],
    )


# --- the report ----------------------------------------------------------------------------------


def _f(x: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if x is None else fmt.format(x)


def _ok(flag: bool) -> str:
    return "PASS" if flag else "**FAIL**"


def judge(result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, target, measured, passed) for each of the soak's targets."""
    rows: list[tuple[str, str, str, bool]] = []
    v, c = result["verdict"], result["counts"]
    states = result["turn_states"]
    lost = c["missing"] + c["extra"] + c["unfinished"] + result["timeouts_count"] + len(result["crashed"])
    rows.append(
        (
            "every message answered exactly once (finished answers on the fakes)",
            "all",
            f"{v['answers_found']}/{v['answers_expected']} answers, "
            f"{v['command_replies_found']}/{v['command_replies_expected']} command replies; "
            f"missing {c['missing']}, extra {c['extra']}, unfinished {c['unfinished']}, "
            f"step timeouts {result['timeouts_count']}",
            lost == 0 and result["unfinished_tasks"] == 0,
        )
    )
    stored = sum(states.values())
    others = {k: n for k, n in states.items() if k not in ("complete", "stopped")}
    rows.append(
        (
            "stored turns agree",
            "= answers; stopped = shown stopped",
            f"{stored} turns ({', '.join(f'{k} {n}' for k, n in sorted(states.items()))}); "
            f"{v['stopped_shown']} shown stopped",
            stored == v["answers_expected"] and not others and states.get("stopped", 0) == v["stopped_shown"],
        )
    )
    t = {k: Trend(**x) for k, x in result["trends"].items()}
    rss = t["rss_mb"]
    rows.append(
        (
            "RSS growth after warm-up (median of last window − median of first)",
            f"≤ {RSS_GROWTH_MB:g} MB",
            f"{_f(rss.growth, '{:+.2f}')} MB ({_f(rss.early)} → {_f(rss.late)})",
            rss.growth is not None and rss.growth <= RSS_GROWTH_MB,
        )
    )
    short = result["minutes"] < 20
    rows.append(
        (
            "RSS slope after warm-up (least squares)",
            f"≤ {RSS_GROWTH_MB:g} MB/h" + (" (info: short run)" if short else ""),
            f"{_f(rss.slope_per_hour, '{:+.2f}')} MB/h",
            short or (rss.slope_per_hour is not None and rss.slope_per_hour <= RSS_GROWTH_MB),
        )
    )
    # Under load these follow the number of answers in flight, so the verdict is taken at rest:
    # once every answer finished, the tasks are back to what they were before the traffic, and
    # the descriptors and connections within what the pools held just after the warm-up.
    for key, label, tol in (
        ("asyncio_tasks", "asyncio tasks", 2),
        ("fds", "open file descriptors", 2),
        ("pg_connections", "PostgreSQL connections", 0),
    ):
        tr = t[key]
        if tr.idle_end is None or tr.idle_start is None or tr.early_peak is None:
            rows.append((f"{label}: no leak", "—", "not measured", True))
            continue
        base, what = (
            (tr.idle_start, "at rest before the traffic")
            if key == "asyncio_tasks"
            else (tr.early_peak, "the most just after the warm-up")
        )
        rows.append(
            (
                f"{label} at rest after the traffic, against {what}",
                f"≤ +{tol}",
                f"{_f(tr.idle_end, '{:g}')} vs {_f(base, '{:g}')} (under load: median "
                f"{_f(tr.early, '{:g}')} early, {_f(tr.late, '{:g}')} late, peak {_f(tr.peak, '{:g}')}; "
                f"before the traffic {_f(tr.idle_start, '{:g}')})",
                tr.idle_end - base <= tol,
            )
        )
    return rows


def markdown(result: dict[str, Any] | None, peak: dict[str, Any] | None) -> str:
    out = []
    if result:
        r = result
        steps = ", ".join(f"{k} {n}" for k, n in sorted(r["steps"].items()))
        out += [
            f"## Soak: {r['minutes']:g} min, Telegram + Slack, {r['database']}",
            "",
            f"{r['conversations']} conversations ({steps}); {r['stopped']} answers stopped "
            f"({r['late_stops']} Stops came after the end); load {r['load_seconds']} s, "
            f"{r['cpu_seconds']} CPU s; VmHWM {r['peak_rss_mb']} MB; "
            f"{r['problems']} warnings/errors logged.",
            "",
            "| target | limit | measured | verdict |",
            "|---|---|---|---|",
        ]
        out += [f"| {what} | {target} | {got} | {_ok(ok)} |" for what, target, got, ok in judge(r)]
        if r["first_problems"]:
            out += ["", "First logged problems: " + "; ".join(p[:160] for p in r["first_problems"][:3])]
        for key in ("missing", "extra", "unfinished"):
            if r["verdict"][key]:
                out += ["", f"{key}: " + "; ".join(r["verdict"][key][:8])]
        if r["timeouts"]:
            out += ["", "step timeouts: " + "; ".join(r["timeouts"][:8])]
        if r["crashed"]:
            out += ["", "conversation scripts that crashed: " + "; ".join(r["crashed"])]
    if peak:
        p = peak
        out += [
            "",
            f"## {p['streams']} streams at once, Telegram + Slack configured, {p['database']}",
            "",
            "| target | limit | measured | verdict |",
            "|---|---|---|---|",
            f"| peak RSS (VmHWM) | ≤ {PEAK_RSS_MB:g} MB | {p['peak_rss_mb']} MB (before the load "
            f"{p['rss_before_mb']} MB; most streams at once {p['most_streams_at_once']}) | "
            f"{_ok(p['peak_rss_mb'] <= PEAK_RSS_MB)} |",
            f"| answers finished, ending as sent | {p['streams']} | {p['finished']} finished, {p['exact']} exact, "
            f"{p['load_seconds']} s; 429s {sum(p['rate_limited'].values())} | "
            f"{_ok(p['finished'] == p['exact'] == p['streams'])} |",
        ]
    return "\n".join(out)


def passed(result: dict[str, Any] | None, peak: dict[str, Any] | None) -> bool:
    ok = all(row[3] for row in judge(result)) if result else True
    return ok and (peak is None or (peak["peak_rss_mb"] <= PEAK_RSS_MB and peak["finished"] == peak["streams"]))


async def _main(args: argparse.Namespace) -> tuple[dict | None, dict | None]:
    db_kind = args.db
    if db_kind == "postgresql" and not await scratch_db.reachable():
        _say("PostgreSQL unreachable: SQLite")
        db_kind = "sqlite"
    result = peak = None
    if args.minutes > 0:
        pace = Pace(gap=args.gap, burst_every=args.burst_every or max(30.0, args.minutes * 60 / 12), burst=args.burst)
        result = await soak(
            args.minutes,
            interval=args.interval,
            db_kind=db_kind,
            pace=pace,
            rest=args.rest,
            probe=Path(args.probe) if args.probe else None,
            live=Path(args.samples) if args.samples else None,
            env=dict(kv.split("=", 1) for kv in args.bot_env),
        )
        _say(markdown(result, None))
    if args.streams > 0:
        _say(f"streams: {args.streams} at once …")
        peak = await streams(
            args.streams, db_kind=db_kind, shape=Shape(think=150, tokens=args.stream_tokens, rate=40.0, ttft=0.5)
        )
    return result, peak


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="minutes of mixed traffic (0: skip the soak)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--rest", type=float, default=15.0, help="seconds sampled at rest before and after the traffic")
    parser.add_argument("--gap", type=float, default=1.6, help="seconds between new conversations")
    parser.add_argument("--burst", type=int, default=12, help="conversations started at once in a burst")
    parser.add_argument(
        "--burst-every",
        type=float,
        default=None,
        help="seconds between bursts (default: a twelfth of the run, at least 30)",
    )
    parser.add_argument("--streams", type=int, default=100, help="the peak phase's streams at once (0: skip)")
    parser.add_argument("--stream-tokens", type=int, default=LONG.tokens, help="the peak phase's answer length")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--probe", help="run the soak's bot under bench.memory_probe, snapshots to this folder")
    parser.add_argument("--samples", help="append each sample to this file as a JSON line, as it is taken")
    parser.add_argument(
        "--bot-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one more environment variable for the soak's bot (an allocator setting, say)",
    )
    parser.add_argument("--json", help="write every figure (and the samples) to this file")
    parser.add_argument("--markdown", help="write the report to this file as well")
    args = parser.parse_args(argv)
    # The fake gateway logs a traceback for every stream the bot closes early (a Stop): expected here.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    result, peak = asyncio.run(_main(args))
    report = markdown(result, peak)
    print(report)
    if args.markdown:
        Path(args.markdown).write_text(report + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps({"soak": result, "streams": peak}, indent=1))
    sys.exit(0 if passed(result, peak) else 1)


if __name__ == "__main__":
    main()
