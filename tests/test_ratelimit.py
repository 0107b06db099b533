"""Platform budgets (bot.ratelimits.budgets): priorities, spare capacity for cosmetics, pauses,
limits nobody documents, and counts shared through Redis by several processes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from pydantic import SecretStr
from pyrate_limiter import InMemoryBucket, Rate

from bot.platform.surface import RateLimited
from bot.ratelimits.budgets import Budget, BudgetMap, Dropped, Priority, acquire_first, guarded
from bot.ratelimits.counters import STALE_MS, Counter, LocalCounters, RedisCounters, Window, counters_for
from tests.polling import eventually

REDIS_URL = "redis://127.0.0.1:6379/0"


class Refused(Exception):
    """A platform's 429 in these tests."""

    def __init__(self, wait: float) -> None:
        self.wait = wait


def retry(exc: Exception) -> float | None:
    return exc.wait if isinstance(exc, Refused) else None


async def ok() -> str:
    return "ok"


async def test_waiting_calls_are_served_first_text_then_final_then_edits_then_by_arrival():
    budget = Budget([Window(1, 0.15)], name="chat")
    await budget.acquire(Priority.EDIT)  # the window is now full
    served: list[str] = []

    async def want(label: str, priority: Priority) -> None:
        await budget.acquire(priority)
        served.append(label)

    waiting = []
    for label, priority in [
        ("edit 1", Priority.EDIT),
        ("final", Priority.FINAL),
        ("edit 2", Priority.EDIT),
        ("text 1", Priority.TEXT),
        ("text 2", Priority.TEXT),
    ]:
        waiting.append(asyncio.create_task(want(label, priority)))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert served == ["text 1", "text 2", "final", "edit 1", "edit 2"]


async def test_a_window_is_never_exceeded_however_many_callers():
    budget = Budget([Window(4, 0.2)], name="group")
    stamps: list[float] = []

    async def call() -> None:
        await budget.acquire(Priority.EDIT)
        stamps.append(time.monotonic())

    await asyncio.wait_for(asyncio.gather(*(call() for _ in range(12))), 10)
    stamps.sort()
    for i in range(len(stamps) - 4):
        assert stamps[i + 4] - stamps[i] >= 0.2, "five calls inside one 0.2 s window"
    assert stamps[-1] - stamps[0] < 1.5, "the window is used fully, not a fraction of it"


async def test_cosmetic_calls_take_only_spare_capacity_and_are_dropped_otherwise():
    budget = Budget([Window(3, 30.0)], name="drafts")
    assert await guarded([budget], ok, retry_after=retry, name="t", priority=Priority.COSMETIC) == "ok"
    await budget.acquire(Priority.TEXT)  # 2 of 3 used: one left, kept for answer text
    with pytest.raises(Dropped):
        await guarded([budget], ok, retry_after=retry, name="t", priority=Priority.COSMETIC)
    await asyncio.wait_for(budget.acquire(Priority.TEXT), 1)  # answer text still goes at once


async def test_room_is_judged_in_every_window_and_frees_as_each_one_passes():
    budget = Budget([Window(2, 0.2), Window(3, 0.6)], name="group")
    for _ in range(2):
        await budget.acquire(Priority.TEXT)
    assert not budget.has_room()  # the short window is full
    await asyncio.sleep(0.25)  # the behaviour under test (as below): windows free as time passes
    assert budget.has_room() and not budget.has_spare()  # short window free; one left in the long one
    await budget.acquire(Priority.TEXT)
    assert not budget.has_room()  # the long window is full though the short one has room
    await asyncio.sleep(0.45)  # the first two left the long window, the third is still in it
    assert budget.has_room() and budget.has_spare()


async def test_a_cosmetic_call_never_goes_ahead_of_a_waiting_answer():
    budget = Budget([Window(1, 0.1), Window(10, 5.0)], name="chat")
    await budget.acquire(Priority.TEXT)
    waiter = asyncio.create_task(budget.acquire(Priority.EDIT))
    await asyncio.sleep(0.15)  # the short window has room again, but someone is waiting
    if not waiter.done():
        assert not budget.has_spare()
    await asyncio.wait_for(waiter, 2)


async def test_a_429_pauses_every_caller_and_a_cosmetic_one_is_not_retried():
    budget = Budget([Window(100, 1.0)], name="method")
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise Refused(0.3)

    with pytest.raises(RateLimited):
        await guarded([budget], refused, retry_after=retry, name="t", priority=Priority.COSMETIC)
    assert calls == 1
    with pytest.raises(Dropped):  # paused: cosmetics are dropped, not queued
        await guarded([budget], ok, retry_after=retry, name="t", priority=Priority.COSMETIC)
    started = time.monotonic()
    await guarded([budget], ok, retry_after=retry, name="t", priority=Priority.TEXT)
    assert time.monotonic() - started >= 0.25  # answer text waited out the Retry-After


async def test_an_undocumented_limit_halves_on_a_429_and_creeps_back_when_quiet():
    budget = Budget([Window(50, 0.2)], name="setStatus", adaptive=True)
    await budget.acquire()
    budget.pause(0.01)
    assert [w.count for w in budget.windows] == [25]
    budget.pause(0.01)
    assert [w.count for w in budget.windows] == [12]
    await asyncio.sleep(0.25)  # a quiet window
    await budget.acquire()
    assert [w.count for w in budget.windows] == [13]
    documented = Budget([Window(50, 0.2)], name="chat.update")
    documented.pause(0.01)
    assert [w.count for w in documented.windows] == [50]


async def test_acquire_first_takes_whichever_budget_frees_first():
    slow, fast = Budget([Window(1, 5.0)], name="startStream"), Budget([Window(1, 0.1)], name="post")
    await slow.acquire(Priority.TEXT)
    await fast.acquire(Priority.TEXT)
    assert await asyncio.wait_for(acquire_first([[slow], [fast]], Priority.TEXT), 2) == 1
    idle = Budget([Window(1, 5.0)], name="idle")
    assert await acquire_first([[idle], [fast]], Priority.TEXT) == 0  # room now: no race


def test_local_counters_without_redis():
    assert isinstance(counters_for(None, "token"), LocalCounters)


# --- shared by several processes (Redis) ----------------------------------------------------


@pytest.fixture
async def redis_counters():
    account = f"test-{uuid.uuid4()}"
    first, second = counters_for(SecretStr(REDIS_URL), account), counters_for(SecretStr(REDIS_URL), account)
    assert isinstance(first, RedisCounters)
    try:
        await first.redis.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    yield first, second
    keys = [k async for k in first.redis.scan_iter(match=first.prefix + "*")]
    if keys:
        await first.redis.delete(*keys)


async def test_two_processes_budgets_in_redis_keep_one_limit_together(redis_counters):
    here, there = redis_counters  # two processes' views of one bot's budgets
    windows = [Window(5, 0.3)]
    mine, theirs = Budget(windows, name="bot", counters=here), Budget(windows, name="bot", counters=there)
    stamps: list[float] = []

    async def call(budget: Budget) -> None:
        await budget.acquire(Priority.EDIT)
        stamps.append(time.monotonic())

    await asyncio.wait_for(asyncio.gather(*(call(b) for b in [mine, theirs] * 8)), 15)
    stamps.sort()
    for i in range(len(stamps) - 5):
        assert stamps[i + 5] - stamps[i] >= 0.3 - 0.01, "the two together exceeded the window"


async def test_a_429_seen_by_one_process_pauses_the_other(redis_counters):
    here, there = redis_counters
    mine, theirs = (
        Budget([Window(50, 1.0)], name="chat:7", counters=here),
        Budget([Window(50, 1.0)], name="chat:7", counters=there),
    )

    async def refused() -> None:
        raise Refused(0.4)

    with pytest.raises(RateLimited):
        await guarded([mine], refused, retry_after=retry, name="t")

    async def shared() -> bool:  # the pause is shared in the background
        return await there.paused_for("chat:7") > 0.2

    await eventually(shared, 2)
    started = time.monotonic()
    await theirs.acquire(Priority.TEXT)
    assert time.monotonic() - started >= 0.25


async def test_two_hundred_budgets_taken_at_once_stay_counted_in_redis(redis_counters, caplog):
    """A hundred answers starting together take a chat's and the bot's budget each at the same
    moment: more callers than connections queue for one, and nothing falls back to counting
    in this process alone (which would let two processes draw twice the limit)."""
    here, _ = redis_counters
    budgets = [Budget([Window(5, 1.0)], name=f"chat:{i}", counters=here) for i in range(200)]
    await asyncio.wait_for(asyncio.gather(*(b.acquire(Priority.TEXT) for b in budgets)), 15)
    assert here.reachable()
    assert not [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    # Each was counted in Redis: another process's view of the same chats sees them.
    assert await here.redis.exists(*[here.prefix + f"chat:{i}" for i in range(200)]) == 200


async def test_a_429_in_one_process_shrinks_the_other_s_burst(redis_counters) -> None:
    """The learned burst (bot.ratelimits.budgets) is per process, but a 429 pauses the budget in
    Redis and a process that finds a pause it did not take shrinks its burst as if it had drawn
    the 429."""
    here, there = redis_counters
    mine = Budget([Window(20, 6.0)], name="slack:chat.update:T9", counters=here, burst=8)
    theirs = Budget([Window(20, 6.0)], name="slack:chat.update:T9", counters=there, burst=8)
    await theirs.acquire(Priority.TEXT)

    async def refused() -> None:
        raise Refused(0.3)

    with pytest.raises(RateLimited):
        await guarded([mine], refused, retry_after=retry, name="t")
    assert mine.burst == 4

    async def shared() -> bool:
        return await there.paused_for("slack:chat.update:T9") > 0.1

    await eventually(shared, 2)
    await theirs.acquire(Priority.TEXT)  # waits out the shared pause, and learns from it
    assert theirs.burst == 4


class LateBucket(InMemoryBucket):
    """A shared log whose first verdict comes back late (a busy loop, a queue for a connection)."""

    def __init__(self, rates: list[Rate], delays: list[float]) -> None:
        super().__init__(rates)
        self.delays = delays
        self.stamps: list[int] = []

    def put_decision(self, item):
        self.stamps.append(item.timestamp)
        decision = super().put_decision(item)

        async def late():
            await asyncio.sleep(self.delays.pop(0) if self.delays else 0)
            return decision

        return late()


async def test_a_verdict_that_came_back_late_is_taken_again_freshly_stamped():
    """A shared log counts a call by its stamp against the calls stamped before it: a verdict
    slower than STALE_MS may have missed other processes' calls, so the slot is taken again."""
    slow = LateBucket([Rate(10, 1000)], delays=[STALE_MS / 1000 + 0.05])
    assert await Counter(slow, "bot")._take_from(slow) == 0
    assert len(slow.stamps) == 2 and slow.stamps[1] - slow.stamps[0] >= STALE_MS
    quick = LateBucket([Rate(10, 1000)], delays=[0.0])
    assert await Counter(quick, "bot")._take_from(quick) == 0
    assert len(quick.stamps) == 1


async def test_an_unreachable_redis_slows_nothing_down_and_is_said_once(caplog):
    counters = counters_for(SecretStr("redis://127.0.0.1:1/0"), "token")  # nothing listens there
    budget = Budget([Window(2, 0.2)], name="bot", counters=counters)
    started = time.monotonic()
    for _ in range(4):  # still paced: counted in this process meanwhile
        await budget.acquire(Priority.TEXT)
    assert 0.2 <= time.monotonic() - started < 2
    budget.pause(0.01)
    await asyncio.sleep(0.05)  # the behaviour under test: sharing the pause fails too, and says nothing more
    warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1" not in warnings[0].getMessage()


async def test_idle_budgets_are_forgotten_and_busy_ones_kept():
    chats = BudgetMap([Window(1, 0.1)], name="chat")
    await chats["old"].acquire(Priority.TEXT)
    busy = chats["busy"]
    await busy.acquire(Priority.TEXT)
    waiter = asyncio.create_task(busy.acquire(Priority.EDIT))  # waits for the next window
    await asyncio.sleep(0)
    await asyncio.sleep(0.06)  # the behaviour under test: idle buckets are swept once their window passed
    chats["new"]  # made, never used: idle
    await asyncio.sleep(0.06)
    assert chats.sweep() == 2 and len(chats) == 1  # "old" and "new" forgotten
    await asyncio.wait_for(waiter, 1)
    assert chats["busy"] is busy


async def test_a_bot_meeting_new_chats_all_day_keeps_few_budgets():
    """Each chat gets its budgets on first use; those of chats gone quiet are forgotten as new
    ones come (the soak: thousands of chats over an hour, memory flat)."""
    chats = BudgetMap([Window(1, 0.01)], name="chat")
    for chat in range(1000):
        await chats[chat].acquire(Priority.TEXT)
        if chat % 50 == 0:
            await asyncio.sleep(0.02)  # the behaviour under test: earlier chats' windows pass
    assert len(chats) <= 128, len(chats)
