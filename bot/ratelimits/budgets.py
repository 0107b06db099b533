"""Request budgets shared by every answer that talks to one platform account.

A ``Budget`` is a platform's documented limit for one scope (a bot, a chat, a workspace's
method) as sliding windows (``bot.ratelimits.counters``: in this process, or in Redis for all
processes), plus a pause that a 429's Retry-After sets, so that one rate-limited call holds
back every caller of the same budget, not just itself.

Callers wait in priority order, then in arrival order: the first write that shows answer
text, then an answer's final form, then intermediate edits. Cosmetic calls (typing, status,
titles, suggested prompts, an empty "thinking" draft) never wait: they go only when nobody
is waiting and the windows have room to spare beyond them, and are dropped otherwise.

``guarded`` is the one call path both adapters use. Tests shrink every platform window
with the single setting ``PLATFORM_TIME_SCALE``.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from enum import IntEnum
from typing import TypeVar

from bot.process import metrics
from bot.ratelimits.counters import Counter, Counters, LocalCounters, Window
from bot.ratelimits.rate_limited import RateLimited

log = logging.getLogger(__name__)
T = TypeVar("T")


class Priority(IntEnum):
    TEXT = 0  # the first write that shows an answer's text (a post, a stream's start, a first draft)
    FINAL = 1  # an answer's final form
    EDIT = 2  # a streaming answer's intermediate edits
    COSMETIC = 3  # typing, status, titles, suggested prompts, empty drafts: dropped, never queued


class Dropped(Exception):
    """A cosmetic call was not made: no spare capacity, or its budget is paused."""


class Budget:
    def __init__(self, windows: Sequence[Window], *, name: str = "", counters: Counters | None = None,
                 adaptive: bool = False) -> None:
        self.name = name
        self.windows = tuple(windows)
        self.counters = counters or LocalCounters()
        # A limit nobody documents: start from the given windows, halve on a 429 and creep
        # back one call per quiet window.
        self.adaptive = adaptive
        self._ceiling = self.windows
        self._last_429 = 0.0
        self._counter: Counter | None = None
        self._waiters: list[tuple[int, int, asyncio.Future]] = []
        self._seq = itertools.count()
        self._pump: asyncio.Task | None = None
        self._paused_until = 0.0  # this process's view; the counters hold the shared one
        # This process's recent admits, to judge spare capacity without a round trip.
        self._recent: deque[float] = deque(maxlen=max(w.count for w in self.windows))
        self._longest = max(w.seconds for w in self.windows)  # adapting changes counts, never seconds

    # --- pauses (a 429's Retry-After) ---
    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429's retry_after), in every process."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))
        task = asyncio.get_running_loop().create_task(self.counters.pause(self.name, seconds))
        task.add_done_callback(_log_failure)
        if self.adaptive:
            self._shrink()

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def _pause_left(self) -> float:
        if self.counters.shared:
            return max(self.paused_for, await self.counters.paused_for(self.name))
        return self.paused_for

    # --- adaptive limits ---
    def _shrink(self) -> None:
        self._last_429 = time.monotonic()
        self.windows = tuple(Window(max(1, w.count // 2), w.seconds) for w in self.windows)
        log.info("%s: 429 on a limit nobody documents; now %s", self.name, self._describe())
        if self._counter is not None:
            self._counter.set_windows(self.windows)

    def _creep(self) -> None:
        if not self.adaptive or self.windows == self._ceiling:
            return
        longest = max(w.seconds for w in self.windows)
        if time.monotonic() - self._last_429 < longest:
            return
        self._last_429 = time.monotonic()  # one step per quiet window
        self.windows = tuple(Window(min(c.count, w.count + 1), w.seconds)
                             for w, c in zip(self.windows, self._ceiling, strict=True))
        assert self._counter is not None
        self._counter.set_windows(self.windows)

    def _describe(self) -> str:
        return ", ".join(f"{w.count}/{w.seconds:g}s" for w in self.windows)

    # --- taking a slot ---
    async def _take(self) -> float:
        counter = self._counter
        if counter is None:
            counter = self._counter = await self.counters.counter(self.name, self.windows)
        wait = counter.take_now() if counter.sync else await counter.take()
        if wait == 0:
            self._recent.append(time.monotonic())
            if self.adaptive:
                self._creep()
        return wait

    def _room(self, spare: int) -> bool:
        """Nobody waiting, no pause, and room for ``1 + spare`` calls in every window (as far
        as this process knows: with shared counters, they still decide)."""
        if self._waiters or self.paused_for > 0:
            return False
        now = time.monotonic()
        recent = self._recent
        # Admits are in time order: drop what no window sees any more, count the rest from the
        # newest back (checked before every cosmetic call and skippable write).
        while recent and now - recent[0] >= self._longest:
            recent.popleft()
        for window in self.windows:
            if window.seconds >= self._longest:
                used = len(recent)
            else:
                used = 0
                for at in reversed(recent):
                    if now - at >= window.seconds:
                        break
                    used += 1
            if used + 1 + spare > window.count:
                return False
        return True

    def has_room(self) -> bool:
        """One more call could go at once."""
        return self._room(0)

    def has_spare(self) -> bool:
        """One more call could go at once and leave a call's worth for answer text."""
        return self._room(1)

    async def try_acquire(self) -> bool:
        """A cosmetic call's slot: only spare capacity, never a wait."""
        if not self.has_spare() or await self._pause_left() > 0:
            return False
        return await self._take() == 0

    async def acquire(self, priority: Priority = Priority.EDIT) -> None:
        """Wait for a slot, served by priority and then in arrival order."""
        if not self._waiters:
            # The usual case, a slot free at once: no pause lookup to await without shared counters.
            paused = await self._pause_left() if self.counters.shared else self.paused_for
            if paused == 0 and await self._take() == 0:
                return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._serve(), name=f"budget {self.name}")
        await future

    async def _serve(self) -> None:
        """Hand out slots to the waiters, best first, as the windows free them."""
        while self._waiters:
            if self._waiters[0][2].done():  # the caller gave up (cancelled)
                heapq.heappop(self._waiters)
                continue
            if (paused := await self._pause_left()) > 0:
                await asyncio.sleep(paused)
                continue
            try:
                wait = await self._take()
            except Exception as exc:  # noqa: BLE001 - the counters' store failed: tell the caller
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_exception(exc)
                continue
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            while self._waiters:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(None)
                    break

    def idle(self, now: float) -> bool:
        """Nothing waits, nothing is paused, and no call of ours is inside any window: the
        budget can be forgotten and made again (empty) when next needed."""
        longest = max(w.seconds for w in self.windows)
        return not self._waiters and self.paused_for == 0 and \
            (not self._recent or now - self._recent[-1] > longest) and \
            (self._pump is None or self._pump.done()) and (not self.adaptive or self.windows == self._ceiling)

    def __repr__(self) -> str:
        return f"Budget({self.name!r}, {self._describe()})"


class BudgetMap:
    """Budgets created on first use per key (a chat, a workspace+method), and forgotten once
    idle, so a bot that meets many chats does not keep a budget for each for ever."""

    # New budgets between two sweeps of idle ones. A sweep looks at each budget kept (a few
    # hundred at most: microseconds); swept every 1024, a bot meeting new chats all day kept up
    # to ~1,000 idle budgets per map (~1.5 KB each: chats and drafts, ~3 MB over the soak's hour).
    SWEEP_EVERY = 64

    def __init__(self, windows: Sequence[Window], *, name: str = "", counters: Counters | None = None,
                 adaptive: bool = False) -> None:
        self.windows, self.name, self.adaptive = tuple(windows), name, adaptive
        self.counters = counters or LocalCounters()
        self._budgets: dict[object, Budget] = {}
        self._created = 0

    def __getitem__(self, key: object) -> Budget:
        budget = self._budgets.get(key)
        if budget is None:
            self._created += 1
            if self._created % self.SWEEP_EVERY == 0:
                self.sweep()
            budget = self._budgets[key] = Budget(self.windows, name=f"{self.name}:{key}",
                                                 counters=self.counters, adaptive=self.adaptive)
        return budget

    def sweep(self) -> int:
        """Forget idle budgets; returns how many."""
        now = time.monotonic()
        idle = [key for key, budget in self._budgets.items() if budget.idle(now)]
        for key in idle:
            del self._budgets[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._budgets)


async def _acquire_all(budgets: Sequence[Budget], priority: Priority) -> None:
    for budget in budgets:
        await budget.acquire(priority)


async def acquire_first(options: Sequence[Sequence[Budget]], priority: Priority) -> int:
    """Wait for whichever of ``options`` (each a call's budgets) frees a slot first, queued
    in each by priority and arrival; returns its index. The other queues are left."""
    for index, budgets in enumerate(options):
        if all(budget.has_room() for budget in budgets):  # no race: no slot spent in vain
            await _acquire_all(budgets, priority)
            return index
    tasks = [asyncio.ensure_future(_acquire_all(budgets, priority)) for budgets in options]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
    # Two granted in the same instant: the first option wins, the other's slot goes unused.
    winner = min(i for i, task in enumerate(tasks) if task in done)
    tasks[winner].result()
    return winner


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not share a pause: %s", task.exception())


async def guarded(budgets: Sequence[Budget], request: Callable[[], Awaitable[T]], *,
                  retry_after: Callable[[Exception], float | None], name: str,
                  pause: Sequence[Budget] | Callable[[Exception], Sequence[Budget]] | None = None,
                  method: str | None = None,
                  priority: Priority = Priority.EDIT, acquired: bool = False) -> T:
    """Every platform call goes through here: acquire ``budgets`` (a cosmetic call only
    their spare capacity, else ``Dropped``), make the call, and when the platform says 429
    (``retry_after`` reads its wait from the exception, None for any other error) pause
    ``pause`` (default: all of ``budgets``; or, when which limit was hit is only known from
    the answer, a function of the exception naming the budgets) for exactly that long and raise
    ``RateLimited``, so every caller of those budgets holds back, not just this one.
    ``method`` (the API method) labels the call's metrics when ``name`` does not say it;
    ``acquired``: the caller already holds the slots (``acquire_first``)."""
    if acquired:
        pass
    elif priority is Priority.COSMETIC:
        if not all(budget.has_spare() for budget in budgets):
            metrics.platform_dropped(name, method)
            raise Dropped(name)
        for budget in budgets:
            if not await budget.try_acquire():
                metrics.platform_dropped(name, method)
                raise Dropped(name)
    else:
        for budget in budgets:
            await budget.acquire(priority)
    metrics.platform_call(name, method)
    try:
        return await request()
    except Exception as exc:
        wait = retry_after(exc)
        if wait is None:
            raise
        paused = budgets if pause is None else pause(exc) if callable(pause) else pause
        for budget in paused:
            budget.pause(wait)
        metrics.platform_rate_limited(name, method)
        if paused:
            log.warning("%s: 429, pausing it for %.2fs", name, wait)
        else:
            log.warning("%s: 429 on %s (retry after %.2fs), not retried", name, method, wait)
        raise RateLimited(wait, name) from exc
