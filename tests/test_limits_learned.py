"""Limits learned from the platform (bot.ratelimits.budgets): a 429 shrinks a budget's burst,
pressure after a quiet window probes it back up, and fifty Slack threads at once against a
Slack whose buckets hold a sixth of a minute draw a handful of 429s and show their first
text near the floor that Slack allows, while a Slack that takes whole-minute bursts is still
used at its floor."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from adapters.slack.budgets import SlackBudgets
from bench.floors import SLACK_START_STREAM_BURSTY, Limit, floor_p50_p99, slack_first_writes
from bot.platform.surface import RateLimited
from bot.ratelimits.budgets import Budget, Priority, guarded
from bot.ratelimits.counters import JITTER, Window, rates_for
from tests.fakes.gateway import last_user_text
from tests.fakes.slack_api import BOT_USER_ID, FakeSlack, LimitMode, TokenBuckets
from tests.polling import eventually
from tests.slack_harness import _close, _harness


class Refused(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait


def retry(exc: Exception) -> float | None:
    return exc.wait if isinstance(exc, Refused) else None


@dataclass
class BucketPlatform:
    """A platform whose limit is a token bucket (the bursty fake's, in process): ``size``
    calls at once, refilled at ``rate`` a second; it records every answer, and answers a
    round trip (``rtt``) after the call arrived."""

    size: int
    rate: float
    rtt: float = 0.003
    buckets: TokenBuckets = field(default_factory=TokenBuckets)
    answers: list[int] = field(default_factory=list)  # 200 or 429, in arrival order

    async def call(self) -> str:
        limit = self.size * 6  # TokenBuckets hold a sixth of a window's calls
        wait = self.buckets.check("m", limit, limit / self.rate, time.monotonic())
        self.answers.append(429 if wait else 200)
        await asyncio.sleep(self.rtt)  # the way back: the platform's latency, not a wait for anything
        if wait:
            raise Refused(wait)
        return "ok"


async def _call_until_done(budget: Budget, platform: BucketPlatform) -> None:
    """One answer's write: waits out 429s the way the surfaces do (the budget is paused)."""
    while True:
        try:
            await guarded([budget], platform.call, retry_after=retry, name="t", priority=Priority.TEXT)
            return
        except RateLimited:
            continue


# --- the budget --------------------------------------------------------------------------------


def test_a_burst_window_spreads_a_window_s_calls_at_the_same_rate() -> None:
    rates = rates_for([Window(20, 60.0)], 3)
    assert [(r.limit, r.interval) for r in rates] == [(3, 9100), (20, 60667)]  # 3 per 9 s (+ margin)
    assert [(r.limit, r.interval) for r in rates_for([Window(20, 60.0)], 20)] == [(20, 60100)]  # no burst window
    # Telegram's group: one a second and 20 a minute; a burst of one every 3 s implies the first.
    assert [(r.limit, r.interval) for r in rates_for([Window(1, 1.0), Window(20, 60.0)], 1)] == [(1, 3100), (20, 62000)]
    # Every burst of every Telegram and Slack budget fits pyrate-limiter's ordering rules.
    shapes = [
        [Window(30, 1.0)],
        [Window(1, 1.0), Window(20, 60.0)],
        [Window(20, 5.0), Window(40, 30.0)],
        [Window(20, 60.0)],
        [Window(50, 60.0)],
        [Window(100, 60.0)],
    ]
    for scale in (1.0, 0.2, 0.05):
        for shape in shapes:
            windows = [Window(w.count, w.seconds * scale) for w in shape]
            full = max(windows, key=lambda w: w.seconds).count
            for b in range(1, full):
                assert any(r.limit == b for r in rates_for(windows, b)), (scale, shape, b)


async def test_a_429_shrinks_the_burst_and_quiet_then_pressure_grows_it_back() -> None:
    budget = Budget([Window(20, 0.6)], name="slack:chat.startStream:T1", burst=8)
    assert budget.burst == 8
    ticket = await budget.acquire(Priority.TEXT)
    budget.pause(0.01, ticket)  # a 429 on that call
    assert budget.burst == 4
    budget.pause(0.01, ticket)  # the same call's 429 seen twice teaches nothing more
    assert budget.burst == 4
    budget.pause(0.01, await budget.acquire(Priority.TEXT))
    assert budget.burst == 2
    shrunk_at = time.monotonic()

    # Under pressure, successes grow it, but not within a window (0.6 s) of the last 429.
    platform = BucketPlatform(size=100, rate=1000.0)  # takes anything

    async def pressed() -> bool:
        await asyncio.gather(*(_call_until_done(budget, platform) for _ in range(4)))
        return budget.burst > 2

    await eventually(pressed, 10, what="the burst growing back under pressure")
    assert time.monotonic() - shrunk_at >= 0.6
    assert 429 not in platform.answers


async def test_a_budget_learns_a_bucket_s_burst_with_one_429() -> None:
    """A budget that starts above the platform's burst pays one 429 per 429'd probe, then
    paces within the bucket; one that starts below it grows to it, one call per round trip."""
    platform = BucketPlatform(size=3, rate=20.0)
    above = Budget([Window(60, 3.0)], name="above", burst=10)
    await asyncio.gather(*(_call_until_done(above, platform) for _ in range(30)))
    assert platform.answers.count(429) <= 8  # the first burst over-shot: 10 sent against 3
    assert above.burst <= 5
    later = len(platform.answers)
    await asyncio.gather(*(_call_until_done(above, platform) for _ in range(20)))
    assert platform.answers[later:].count(429) <= 1  # learned: paced within the bucket

    platform = BucketPlatform(size=3, rate=20.0)
    below = Budget([Window(60, 3.0)], name="below", burst=1)
    await asyncio.gather(*(_call_until_done(below, platform) for _ in range(30)))
    assert platform.answers.count(429) == 1  # the probe past 3
    assert below.burst == 3


async def test_against_a_platform_that_takes_whole_bursts_the_burst_reaches_the_window() -> None:
    platform = BucketPlatform(size=100, rate=1000.0)
    budget = Budget([Window(20, 60.0)], name="tolerant", burst=3)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(_call_until_done(budget, platform) for _ in range(20))), 10)
    assert budget.burst == 20
    assert time.monotonic() - started < 1.0  # a window's calls at once, near enough: no 3 s spacing
    assert 429 not in platform.answers


async def test_slack_s_budgets_start_at_a_sixth_of_the_minute() -> None:
    budgets = SlackBudgets(60.0)
    assert budgets.method("T1", "chat.startStream").burst == 3
    assert budgets.method("T1", "chat.update").burst == 8
    assert budgets.method("T1", "chat.appendStream").burst == 16
    assert budgets.post("T1", "C1").burst == 1  # one a second: nothing to spread


# --- fifty Slack threads at once --------------------------------------------------------------

SCALE = 1.0  # Slack's own minute: a shrunk one makes our fixed costs a larger share of the floor
CHANNELS = [f"C0LIMIT{k:03d}" for k in range(4)]
THREADS = 50
WRITES = ("chat.postMessage", "chat.startStream", "chat.appendStream", "chat.update")
# The slowest threads' first text is a stall or two from missing its post slot on a loaded
# two-core machine: quiet, 0.98 (whole bursts) and 1.10 (small bursts) × the floor; in CI on
# PostgreSQL beside other jobs, 1.25 ×. A burst learned wrong costs whole slots and a minute's
# wait on startStream (or the 429s counted above), far beyond this; bench.service's
# slack-threads-50 rows hold the precise ratios.
P99_SLACK = 1.5


def _floors(mode: LimitMode) -> tuple[float, float]:
    """p50 and p99 of the floor that fake allows, in our seconds. Posts are one a second per
    channel as documented, held ``JITTER`` longer by the budgets (a real second's margin against
    the network, a large share of a shrunk one), so the floor counts the post spacing a client
    keeping that margin can have."""
    layout = [len(range(k, THREADS, len(CHANNELS))) for k in range(len(CHANNELS))]
    post = Limit(1, 1.0 + JITTER / SCALE)
    starts = SLACK_START_STREAM_BURSTY if mode is LimitMode.BUCKETS else Limit(20, 60.0)
    p50, p99 = floor_p50_p99(slack_first_writes(layout, start_stream=starts, post=post))
    return p50 * SCALE, p99 * SCALE


def _first_text_at(fake: FakeSlack, channel: str, thread_ts: str) -> float | None:
    for call in fake.calls:
        if not call.ok or call.method not in WRITES or call.args.get("channel") != channel:
            continue
        ts = call.args.get("thread_ts")
        if ts is None:
            message = fake.messages.get((channel, call.args.get("ts")))
            ts = message.thread_ts if message is not None else None
        if ts == thread_ts and "echo" in json.dumps(call.args):
            return call.at
    return None


async def _fifty_threads(make_settings, fake_gateway, mode: LimitMode) -> tuple[list[float], FakeSlack]:
    fake = await FakeSlack(window=60.0 * SCALE, post_interval=SCALE, limits=mode).start()
    visible: dict[str, float] = {}

    def timing(body: dict, event: str, at: float) -> None:
        if event == "visible":
            visible.setdefault(last_user_text(body).rsplit(" ", 1)[-1], at)

    fake_gateway.on_timing = timing
    slack = await _harness(make_settings, fake_gateway, fake)
    try:
        envs = [
            (
                CHANNELS[i % len(CHANNELS)],
                fake.user_message(CHANNELS[i % len(CHANNELS)], f"<@{BOT_USER_ID}> question {i}", mention=True),
            )
            for i in range(THREADS)
        ]
        responses = await asyncio.gather(*(slack.send(env) for _, (_, env) in envs))
        assert all(r.status_code == 200 for r in responses)
        await slack.settle(timeout=120)
        added = []
        for i, (channel, (ts, _)) in enumerate(envs):
            replies = fake.bot_replies(channel, ts)
            assert replies and replies[-1].text.rstrip().endswith(f"question {i}"), i
            first = _first_text_at(fake, channel, ts)
            assert first is not None and str(i) in visible, i
            added.append(first - visible[str(i)])
        return added, fake
    finally:
        await _close(slack)
        await fake.close()


async def test_fifty_threads_against_a_slack_with_small_bursts(make_settings, fake_gateway):
    added, fake = await _fifty_threads(make_settings, fake_gateway, LimitMode.BUCKETS)
    by_method: dict[str, int] = {}
    for call in fake.rate_limited:
        by_method[call.method] = by_method.get(call.method, 0) + 1
    assert len(fake.rate_limited) <= 5, by_method
    p50, p99 = floor_p50_p99(added)
    floor50, floor99 = _floors(LimitMode.BUCKETS)
    assert p50 <= 1.2 * floor50, (p50, floor50)
    assert p99 <= P99_SLACK * floor99, (p99, floor99)


async def test_fifty_threads_against_a_slack_that_takes_whole_bursts(make_settings, fake_gateway):
    added, fake = await _fifty_threads(make_settings, fake_gateway, LimitMode.WINDOWS)
    assert fake.rate_limited == []
    p50, p99 = floor_p50_p99(added)
    floor50, floor99 = _floors(LimitMode.WINDOWS)
    assert p50 <= 1.1 * floor50, (p50, floor50)
    assert p99 <= P99_SLACK * floor99, (p99, floor99)


async def test_a_429_in_a_telegram_group_spreads_that_group_s_minute() -> None:
    from adapters.telegram.budgets import Budgets, Pacing

    budgets = Budgets(Pacing(scale=0.1))
    group, other = budgets.messages(-100, group=True), budgets.messages(-200, group=True)
    assert group.burst == 20  # Telegram's limits are used whole until Telegram says otherwise
    group.pause(0.01, await group.acquire(Priority.TEXT))
    assert group.burst == 10  # halved: ten at once, then one every 3 of Telegram's seconds
    assert "20/6s, 10/3s" in repr(group)  # the minute's 20 kept, spread
    assert other.burst == 20 and budgets.bot.burst == 30


async def test_the_learned_burst_is_a_metric_without_ids() -> None:
    from bot.process import metrics

    budget = Budget([Window(50, 60.0)], name="slack:chat.update:T0SECRET1", burst=8)
    budget.pause(0.01, await budget.acquire(Priority.TEXT))
    text = metrics.render().decode()
    assert 'bot_platform_burst{method="chat.update",platform="slack"} 4.0' in text
    assert "T0SECRET1" not in text


async def test_the_fake_telegram_s_buckets_hold_a_sixth_of_each_window() -> None:
    """The fake Telegram's second limit mode: six sends to six chats at once fit Telegram's
    30 a second bot-wide, but not a bucket holding five of them."""
    from dataclasses import replace

    import httpx

    from tests.fakes.telegram_api import FakeLimits, FakeTelegram

    for buckets, expected in ((False, [200] * 6), (True, [200] * 5 + [429])):
        # Ten times Telegram's windows: a token refills in a third of a second, well past six sends.
        async with FakeTelegram(limits=replace(FakeLimits(), buckets=buckets).scaled(10)) as tg:
            for i in range(6):
                tg.add_chat(7000 + i, "private", user={"first_name": f"U{i}"})
            async with httpx.AsyncClient() as http:
                answers = [
                    (
                        await http.post(
                            f"{tg.api_url}/bot{tg.token}/sendMessage", json={"chat_id": 7000 + i, "text": "hi"}
                        )
                    ).status_code
                    for i in range(6)
                ]
        assert answers == expected, buckets
