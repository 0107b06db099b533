"""The service benchmark's scenarios: who sends what to `bot run`, and the figures of one run.

Every scenario starts fresh fakes and fresh `bot run` process(es) on a fresh database, warms
each process up with one short answer, then snapshots CPU, sends its load, and waits until
every answer's final write (the one carrying the Regenerate control) has arrived at the
fake platform; CPU is snapshotted again there.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from bench import floors as fl
from bench import scratch_db
from bench.service_harness import (
    WARM,
    BotProcess,
    Deliver,
    Fakes,
    Shape,
    Turn,
    bot_settings,
    wait_final,
)
from tests.fakes.slack_api import LimitMode


@dataclass(frozen=True)
class Plan:
    answer: Shape
    private_turns: int  # tg-private-1: sequential turns
    private_chats: int  # tg-private-100
    groups: int  # tg-groups-10
    slack_threads: int  # slack-threads-50
    slack_channels: int  # ... spread over this many channels
    timeout: float  # the longest wait for a scenario's answers to finish
    arrival_rate: float  # --processes: new conversations a second (fixed offered load)
    arrival_seconds: float  # ... for this long
    group_share: int  # ... every n-th arrival is a group (the rest private chats)


# A typical MiniMax answer (as bench.run): ~150 tokens of reasoning, ~250 of text, 40 tokens/s.
FULL = Plan(
    answer=Shape(think=150, tokens=250, rate=40.0, ttft=0.5),
    private_turns=3,
    private_chats=100,
    groups=10,
    slack_threads=50,
    slack_channels=5,
    timeout=150.0,
    arrival_rate=4.0,
    arrival_seconds=15.0,
    group_share=5,
)
QUICK = Plan(
    answer=Shape(think=30, tokens=50, rate=40.0, ttft=0.3),
    private_turns=2,
    private_chats=100,
    groups=10,
    slack_threads=10,
    slack_channels=2,
    timeout=60.0,
    arrival_rate=4.0,
    arrival_seconds=4.0,
    group_share=5,
)


@dataclass
class Context:
    fakes: Fakes
    deliver: Deliver
    plan: Plan
    turns: list[Turn]


Drive = Callable[[Context], Awaitable[list[float]]]  # sends the load; returns the floors


# --- the scenarios --------------------------------------------------------------------------


async def tg_private_1(ctx: Context) -> list[float]:
    user = ctx.deliver.telegram_private(20_001)
    for i in range(ctx.plan.private_turns):
        turn = Turn(f"p1-{i}", "telegram", 20_001, ctx.plan.answer)
        ctx.turns.append(turn)
        await ctx.deliver.telegram(turn, user, mention=False)
        await wait_final(ctx.fakes, [turn], ctx.plan.timeout)
    return [0.0] * ctx.plan.private_turns  # one chat, one write due at a time


async def tg_private_many(ctx: Context) -> list[float]:
    n = ctx.plan.private_chats
    sends = []
    for i in range(n):
        user = ctx.deliver.telegram_private(30_000 + i)
        turn = Turn(f"pm-{i}", "telegram", 30_000 + i, ctx.plan.answer)
        ctx.turns.append(turn)
        sends.append(ctx.deliver.telegram(turn, user, mention=False))
    await asyncio.gather(*sends)
    return fl.telegram_first_writes(n)


def _tg_groups(count: int) -> Drive:
    async def drive(ctx: Context) -> list[float]:
        sends = []
        for i in range(count):
            chat = -1_001_000_000 - i
            ctx.deliver.telegram_group(chat)
            user = {"id": 40_000 + i, "is_bot": False, "first_name": f"Member{i}"}
            turn = Turn(f"g{count}-{i}", "telegram", chat, ctx.plan.answer)
            ctx.turns.append(turn)
            sends.append(ctx.deliver.telegram(turn, user, mention=True))
        await asyncio.gather(*sends)
        return fl.telegram_first_writes(count)

    return drive


def _slack(
    threads: int | None, channels: int | None, *, streams: bool, start_stream: fl.Slots = fl.SLACK_START_STREAM
) -> Drive:
    async def drive(ctx: Context) -> list[float]:
        n = ctx.plan.slack_threads if threads is None else threads
        c = ctx.plan.slack_channels if channels is None else channels
        names = [f"C0BENCH{k:03d}" for k in range(c)]
        turns = await asyncio.gather(
            *(ctx.deliver.slack_mention(f"s{n}-{i}", names[i % c], ctx.plan.answer) for i in range(n))
        )
        ctx.turns.extend(turns)
        layout = [len(range(k, n, c)) for k in range(c)]
        # The warm-up answer's startStream (a minute's window is not over yet) is one the burst lacks.
        used = sum(1 for call in ctx.fakes.slack.calls if call.method == "chat.startStream" and call.ok)
        return fl.slack_first_writes(layout, streams=streams, streams_used=used, start_stream=start_stream)

    return drive


def _feishu_groups(count: int) -> Drive:
    async def drive(ctx: Context) -> list[float]:
        fs = ctx.fakes.feishu
        groups = [fs.group_chat(f"团队{i}") for i in range(count)]
        members = [fs.user(f"member{i}") for i in range(count)]
        turns = await asyncio.gather(
            *(
                ctx.deliver.feishu_mention(f"fs{count}-{i}", g, m, ctx.plan.answer)
                for i, (g, m) in enumerate(zip(groups, members))
            )
        )
        ctx.turns.extend(turns)
        return fl.feishu_first_writes(count)

    return drive


async def offered_load(ctx: Context) -> list[float]:
    """Fixed offered load: a new conversation every 1/rate seconds (every n-th a group, the
    rest private chats), whatever the bot does."""
    plan = ctx.plan
    count = int(plan.arrival_rate * plan.arrival_seconds)
    start = time.monotonic()
    sends = []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / plan.arrival_rate - time.monotonic()))
        if i % plan.group_share == plan.group_share - 1:
            chat = -1_002_000_000 - i
            ctx.deliver.telegram_group(chat)
            user = {"id": 60_000 + i, "is_bot": False, "first_name": f"Member{i}"}
            mention = True
        else:
            chat = 50_000 + i
            user = ctx.deliver.telegram_private(chat)
            mention = False
        turn = Turn(f"L-{i}", "telegram", chat, plan.answer)
        ctx.turns.append(turn)
        sends.append(asyncio.ensure_future(ctx.deliver.telegram(turn, user, mention=mention)))
    await asyncio.gather(*sends)
    return fl.staggered_first_writes([i / plan.arrival_rate for i in range(count)])


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    drive: Drive
    telegram: bool = False
    slack: bool = False
    feishu: bool = False
    env: tuple[tuple[str, str], ...] = ()
    slack_limits: LimitMode = LimitMode.WINDOWS  # the fake Slack's limit mode


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("tg-private-1", "one private chat, drafts on, sequential turns", tg_private_1, telegram=True),
        Scenario("tg-private-100", "100 private chats at once, drafts on", tg_private_many, telegram=True),
        Scenario("tg-group-1", "one group, bot mentioned", _tg_groups(1), telegram=True),
        Scenario("tg-groups-10", "10 groups at once, bot mentioned", _tg_groups(10), telegram=True),
        Scenario("slack-thread-1", "one thread, native streams", _slack(1, 1, streams=True), slack=True),
        Scenario(
            "slack-post-1",
            "one thread, streaming off (post and edit)",
            _slack(1, 1, streams=False),
            slack=True,
            env=(("SLACK_NATIVE_STREAMING", "false"),),
        ),
        Scenario(
            "slack-threads-50",
            "threads mentioned at once in one workspace, native streams",
            _slack(None, None, streams=True),
            slack=True,
        ),
        Scenario(
            "slack-threads-50-bursty",
            "the same threads against a Slack whose buckets hold a sixth of a "
            "minute (Tier 2: 3 calls at once, one every 3 s)",
            _slack(None, None, streams=True, start_stream=fl.SLACK_START_STREAM_BURSTY),
            slack=True,
            slack_limits=LimitMode.BUCKETS,
        ),
        Scenario(
            "feishu-groups-20",
            "20 Feishu groups mentioning the bot at once, CardKit streaming cards",
            _feishu_groups(20),
            feishu=True,
        ),
    )
}
LOAD = Scenario("processes", "Telegram webhooks, fixed offered load", offered_load, telegram=True)


# --- databases ---------------------------------------------------------------------------------

create_pg = partial(scratch_db.create, "bench_service")
drop_pg = scratch_db.drop
postgres_reachable = scratch_db.reachable


# --- one run -----------------------------------------------------------------------------------


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def _warm_up(ctx: Context, bots: list[BotProcess], scenario: Scenario) -> None:
    """One short answer per process: imports, connections, the first SQL, before measuring."""
    warm = []
    for i in range(len(bots)):
        if scenario.telegram:
            user = ctx.deliver.telegram_private(90_000 + i)
            turn = Turn(f"warm-{i}", "telegram", 90_000 + i, WARM)
            await ctx.deliver.telegram(turn, user, mention=False)
        elif scenario.feishu:
            fs = ctx.fakes.feishu
            turn = await ctx.deliver.feishu_mention(f"warm-{i}", fs.group_chat(f"warm{i}"), fs.user(f"warm{i}"), WARM)
        else:
            turn = await ctx.deliver.slack_mention(f"warm-{i}", "C0WARM0001", WARM)
        warm.append(turn)
    if not await wait_final(ctx.fakes, warm, 30):
        raise RuntimeError(f"{scenario.name}: the warm-up answer never finished")
    await asyncio.sleep(0.5)


async def run(
    scenario: Scenario,
    plan: Plan,
    *,
    processes: int = 1,
    postgres: bool = False,
    redis_url: str | None = None,
    say: Callable[[str], None] = print,
) -> dict:
    tmp = tempfile.TemporaryDirectory(prefix="bench-service-")
    workdir = Path(tmp.name)
    pg_name = None
    if postgres:
        pg_name, url = await create_pg()
    else:
        url = f"sqlite+aiosqlite:///{workdir}/bot.db"
    fakes = await Fakes().start()
    fakes.slack.limits = scenario.slack_limits
    bots: list[BotProcess] = []
    deliver = None
    try:
        settings = bot_settings(
            fakes, url, telegram=scenario.telegram, slack=scenario.slack, feishu=scenario.feishu, **dict(scenario.env)
        )
        if redis_url:
            settings["REDIS_URL"] = redis_url
        bots = [BotProcess(settings, workdir) for _ in range(processes)]
        for bot in bots:  # one at a time: the first migrates the database
            await (await bot.start()).ready()
        deliver = Deliver(fakes, bots)
        ctx = Context(fakes, deliver, plan, [])
        await _warm_up(ctx, bots, scenario)

        cpu0 = [b.cpu_seconds() for b in bots]
        own0 = time.process_time()
        t0 = time.monotonic()
        floors = await scenario.drive(ctx)
        finished = await wait_final(fakes, ctx.turns, plan.timeout)
        cpu = sum(b.cpu_seconds() - c for b, c in zip(bots, cpu0))
        own = time.process_time() - own0
        t_end = time.monotonic()
        rss = [b.peak_rss() for b in bots]
        fakes.settle(lag=0.0)
    finally:
        if deliver is not None:
            await deliver.close()
        for bot in bots:
            await bot.stop()
        await fakes.stop()
        if pg_name:
            await drop_pg(pg_name)
    problems = [line for b in bots for line in b.problems()]
    tmp.cleanup()

    turns = ctx.turns
    done = [t for t in turns if t.final is not None]
    latencies = [t.added_latency for t in turns if t.added_latency is not None]
    tokens = sum(t.shape.chunks for t in done)
    last_final = max((t.final for t in done), default=t_end)
    first_sent = min((t.sent for t in turns), default=t0)
    floor50, floor99 = fl.floor_p50_p99(floors)
    out = dict(
        scenario=scenario.name,
        what=scenario.what,
        processes=processes,
        database="postgresql" if postgres else "sqlite",
        conversations=len({(t.platform, t.where) for t in turns}),
        turns=len(turns),
        finished=len(done),
        all_finished=finished,
        exact=sum(t.exact for t in done),
        latency_p50_ms=_ms(fl.percentile(latencies, 50)),
        latency_p99_ms=_ms(fl.percentile(latencies, 99)),
        latency_max_ms=_ms(max(latencies, default=float("nan"))),
        measured=len(latencies),
        floor_p50_ms=_ms(floor50),
        floor_p99_ms=_ms(floor99),
        first_write_methods={m: sum(t.first_method == m for t in turns) for m in {t.first_method for t in turns}},
        rate_limited=fakes.rate_limited(),
        tokens=tokens,
        cpu_seconds=round(cpu, 3),
        cpu_per_1k_tokens=round(cpu / tokens * 1000, 4) if tokens else None,
        peak_rss_mb=round(max(rss, default=0) / 2**20, 1),
        peak_rss_mb_each=[round(r / 2**20, 1) for r in rss],
        load_seconds=round(last_final - t0, 2),
        # The fakes' own CPU (this process): near one core, their timestamps lag and the figures are suspect.
        fakes_cpu_share=round(own / (t_end - t0), 3) if t_end > t0 else None,
        answers_per_second=(
            round(len(done) / (last_final - first_sent), 3) if done and last_final > first_sent else None
        ),
        problems=len(problems),
        first_problems=problems[:5],
        answer=dict(
            think=plan.answer.think,
            tokens=plan.answer.tokens,
            rate=plan.answer.rate,
            ttft=plan.answer.ttft,
            chunks=plan.answer.chunks,
        ),
    )
    say(
        f"  {scenario.name}{f' ×{processes}' if processes > 1 else ''}: {len(done)}/{len(turns)} answered, "
        f"added latency p50 {out['latency_p50_ms']} ms / p99 {out['latency_p99_ms']} ms "
        f"(floor {out['floor_p50_ms']} / {out['floor_p99_ms']}), {out['cpu_per_1k_tokens']} CPU s per 1k tokens, "
        f"{out['load_seconds']} s"
    )
    return out


def with_answer(plan: Plan, **changes: float) -> Plan:
    return replace(plan, answer=replace(plan.answer, **changes))
