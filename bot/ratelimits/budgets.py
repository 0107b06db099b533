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

Limits learned from the platform. A documented "N per minute" says nothing of how many of
the N may go at once, and a platform that tolerates smaller bursts answers a minute's
allowance spent at once with 429s (Slack: "20+ per minute … occasional bursts"). So each
budget keeps its documented windows as the rate ceiling and adds a burst window: at most
``b`` calls in ``b`` × (seconds / count) of its longest window — the same rate, spread out.
``b`` is learned, per budget (a workspace's method, a chat):

- it starts where the platform's adapter says (Slack: a sixth of the minute; Telegram, whose
  windows are a second long: the whole window);
- a 429 shrinks it: a probe above the last burst that drew none goes back to that one; after
  fewer calls than the burst went through since the last pause, to that many (what the
  platform took); otherwise it halves (at least 1). A 429 on a call made before that shrink
  teaches nothing more;
- under pressure (callers waiting on the burst window) and no sooner than one longest window
  after the last 429, a call that went through grows it by one, at most once per round trip
  (the call must have been granted after the last growth), up to the window's whole count.

Why not grow by time alone: a burst grown during quiet is untested, and the first busy
moment would spend it all at once, each call beyond the platform's bucket a 429 (Slack's
Tier 2 at 20 against a bucket of 3: 17 of them). Probing one call per round trip costs at most
one 429 per pressed budget per quiet window: against a Slack whose buckets hold a sixth of a
minute, a handful for fifty threads at once; against one that takes whole-minute bursts, the
burst reaches the full count within a few round trips, and the floor the documented limits
allow is met. A token bucket would match a bucket-shaped platform more closely than a
sliding burst window, but it would need counters of another kind in Redis too; the burst
window is one more pyrate-limiter window and costs nothing new.

With Redis-shared counters every window, the burst's too, is checked against the one shared
log of calls. The learned ``b`` itself lives in each process: a 429 one process draws pauses the
budget in Redis, and another process that finds a pause it did not take shrinks its own burst
as if it had drawn the 429 (no extra round trip: the pause is read before a call anyway).
Growth stays per process (each probes with its own calls). A budget forgotten once idle (no
call of its own in its longest window) forgets its burst too: made again, it starts over.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
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
SHARED_PAUSE_SLACK = 0.05  # seconds a shared pause may outlast ours and still be our own 429's


class Priority(IntEnum):
    TEXT = 0  # the first write that shows an answer's text (a post, a stream's start, a first draft)
    FINAL = 1  # an answer's final form
    EDIT = 2  # a streaming answer's intermediate edits
    COSMETIC = 3  # typing, status, titles, suggested prompts, empty drafts: dropped, never queued


class Dropped(Exception):
    """A cosmetic call was not made: no spare capacity, or its budget is paused."""


class Budget:
    def __init__(
        self,
        windows: Sequence[Window],
        *,
        name: str = "",
        counters: Counters | None = None,
        adaptive: bool = False,
        burst: int | None = None,
    ) -> None:
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
        self._wake: asyncio.Event | None = None  # set when a larger burst lets the pump try again
        self._paused_until = 0.0  # this process's view; the counters hold the shared one
        # This process's recent admits, to judge spare capacity without a round trip.
        self._recent: deque[float] = deque(maxlen=max(w.count for w in self.windows))
        self._longest = max(w.seconds for w in self.windows)  # adapting changes counts, never seconds
        # The burst learned from the platform (see the module docstring): what a 429 shrinks
        # and pressure after quiet probes upwards, never past the longest window's count.
        self.start_burst = self._full() if burst is None else max(1, min(burst, self._full()))
        self.burst = self.start_burst
        self._good = self.burst  # the largest burst no 429 has answered yet
        self._granted = 0  # slots handed out: a call's ticket is its slot's number
        self._grown_at = 0  # the ticket of the last slot handed out when the burst last grew
        self._shrunk_at = -1  # ... when it last shrank: a 429 on an earlier slot teaches nothing new
        self._quiet_since = -math.inf  # the last 429 that shrank it (monotonic)
        self._run_ok = 0  # calls that went through since the last pause
        self._probed = False  # a call granted since the last growth went through

    # --- pauses (a 429's Retry-After) ---
    def pause(self, seconds: float, ticket: int | None = None) -> None:
        """Hold every caller back for ``seconds`` (a 429's retry_after), in every process, and
        shrink the burst: ``ticket`` is the 429'd call's slot (``acquire``'s answer; default:
        the last slot handed out)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))
        task = asyncio.get_running_loop().create_task(self.counters.pause(self.name, seconds))
        task.add_done_callback(_log_failure)
        if self.adaptive:
            self._shrink()
        self._learn_429(self._granted if ticket is None else ticket)
        self._run_ok = 0

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def _pause_left(self) -> float:
        if self.counters.shared:
            shared = await self.counters.paused_for(self.name)
            if shared > self.paused_for + SHARED_PAUSE_SLACK:
                # A pause this process did not take: another one drew a 429 on this budget.
                self._paused_until = time.monotonic() + shared
                self._learn_429(self._granted)
            return max(self.paused_for, shared)
        return self.paused_for

    # --- adaptive limits ---
    def _shrink(self) -> None:
        self._last_429 = time.monotonic()
        self.windows = tuple(Window(max(1, w.count // 2), w.seconds) for w in self.windows)
        log.info("%s: 429 on a limit nobody documents; now %s", self.name, self._describe())
        self._apply()

    def _creep(self) -> None:
        if not self.adaptive or self.windows == self._ceiling:
            return
        longest = max(w.seconds for w in self.windows)
        if time.monotonic() - self._last_429 < longest:
            return
        self._last_429 = time.monotonic()  # one step per quiet window
        self.windows = tuple(
            Window(min(c.count, w.count + 1), w.seconds) for w, c in zip(self.windows, self._ceiling, strict=True)
        )
        self._apply()

    def _describe(self) -> str:
        return ", ".join(f"{w.count}/{w.seconds:g}s" for w in self._limits())

    # --- the burst learned from the platform ---
    def _full(self) -> int:
        return max(self.windows, key=lambda w: w.seconds).count

    def _learn_429(self, ticket: int) -> None:
        if ticket <= self._shrunk_at:
            return  # sent before the last shrink: that one already answered for it
        was = self.burst
        if ticket > self._grown_at and self.burst > self._good:
            self.burst = self._good  # a probe above the last burst that drew no 429 failed
        elif 0 < self._run_ok < self.burst:
            self.burst = self._run_ok  # the platform took this many since the last pause, then refused
        else:
            self.burst = max(1, self.burst // 2)  # stricter than it was (or shared with others)
        self._good = self.burst
        self._shrunk_at = self._granted
        self._probed = False
        self._quiet_since = time.monotonic()
        if self.burst != was:
            log.info("%s: 429, burst %d -> %d calls (%s)", self.name, was, self.burst, self._describe())
            metrics.platform_burst(self.name, self.burst)
            self._apply()

    def succeeded(self, ticket: int) -> None:
        """The call on slot ``ticket`` went through."""
        self._run_ok += 1
        if ticket > self._grown_at:
            self._probed = True  # a slot beyond the last growth went through: the burst held
        self._grow()

    def _grow(self) -> bool:
        """Under pressure (callers waiting on the burst), after a quiet window since the last 429,
        and once a slot granted since the last growth went through (at most one step a round
        trip), the burst grows by one call, up to the longest window's count."""
        if not self._probed or not self._waiters or self.burst >= self._full():
            return False
        if time.monotonic() - self._quiet_since < self._longest:
            return False
        self._good = self.burst
        self.burst += 1
        self._grown_at = self._granted
        self._probed = False
        log.info("%s: no 429 under pressure, burst %d -> %d calls", self.name, self._good, self.burst)
        metrics.platform_burst(self.name, self.burst)
        self._apply()
        return True

    def _apply(self) -> None:
        self.burst = min(self.burst, self._full())  # an adaptive limit may have shrunk below it
        if self._counter is not None:
            self._counter.set_windows(self.windows, self.burst)
        if self._wake is not None:
            self._wake.set()

    def _limits(self) -> tuple[Window, ...]:
        """The windows this process judges room by: the platform's, and the burst's."""
        longest = max(self.windows, key=lambda w: w.seconds)
        if self.burst >= longest.count:
            return self.windows
        return (*self.windows, Window(self.burst, self.burst * longest.seconds / longest.count))

    # --- taking a slot ---
    async def _take(self) -> float:
        counter = self._counter
        if counter is None:
            counter = self._counter = await self.counters.counter(self.name, self.windows, self.burst)
        wait = counter.take_now() if counter.sync else await counter.take()
        if wait == 0:
            self._granted += 1
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
        for window in self._limits():
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

    @property
    def granted(self) -> int:
        """The ticket of the last slot handed out."""
        return self._granted

    async def acquire(self, priority: Priority = Priority.EDIT) -> int:
        """Wait for a slot, served by priority and then in arrival order; returns its ticket
        (for ``succeeded`` and ``pause``)."""
        if not self._waiters:
            # The usual case, a slot free at once: no pause lookup to await without shared counters.
            paused = await self._pause_left() if self.counters.shared else self.paused_for
            if paused == 0 and await self._take() == 0:
                return self._granted
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), next(self._seq), future))
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._serve(), name=f"budget {self.name}")
        return await future

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
                if not self._grow():
                    await self._sleep(wait)
                continue
            while self._waiters:
                _, _, future = heapq.heappop(self._waiters)
                if not future.done():
                    future.set_result(self._granted)
                    break

    async def _sleep(self, seconds: float) -> None:
        """Until a window frees a slot, or the burst grows."""
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def idle(self, now: float) -> bool:
        """Nothing waits, nothing is paused, and no call of ours is inside any window: the
        budget can be forgotten and made again (empty) when next needed."""
        longest = max(w.seconds for w in self.windows)
        return (
            not self._waiters
            and self.paused_for == 0
            and (not self._recent or now - self._recent[-1] > longest)
            and (self._pump is None or self._pump.done())
            and (not self.adaptive or self.windows == self._ceiling)
        )

    def __repr__(self) -> str:
        return f"Budget({self.name!r}, {self._describe()})"


class BudgetMap:
    """Budgets created on first use per key (a chat, a workspace+method), and forgotten once
    idle, so a bot that meets many chats does not keep a budget for each for ever."""

    # New budgets between two sweeps of idle ones. A sweep looks at each budget kept (a few
    # hundred at most: microseconds); swept every 1024, a bot meeting new chats all day kept up
    # to ~1,000 idle budgets per map (~1.5 KB each: chats and drafts, ~3 MB over the soak's hour).
    SWEEP_EVERY = 64

    def __init__(
        self,
        windows: Sequence[Window],
        *,
        name: str = "",
        counters: Counters | None = None,
        adaptive: bool = False,
        burst: int | None = None,
    ) -> None:
        self.windows, self.name, self.adaptive, self.burst = tuple(windows), name, adaptive, burst
        self.counters = counters or LocalCounters()
        self._budgets: dict[object, Budget] = {}
        self._created = 0

    def __getitem__(self, key: object) -> Budget:
        budget = self._budgets.get(key)
        if budget is None:
            self._created += 1
            if self._created % self.SWEEP_EVERY == 0:
                self.sweep()
            budget = self._budgets[key] = Budget(
                self.windows,
                name=f"{self.name}:{key}",
                counters=self.counters,
                adaptive=self.adaptive,
                burst=self.burst,
            )
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


async def guarded(
    budgets: Sequence[Budget],
    request: Callable[[], Awaitable[T]],
    *,
    retry_after: Callable[[Exception], float | None],
    name: str,
    pause: Sequence[Budget] | Callable[[Exception], Sequence[Budget]] | None = None,
    method: str | None = None,
    priority: Priority = Priority.EDIT,
    acquired: bool = False,
) -> T:
    """Every platform call goes through here: acquire ``budgets`` (a cosmetic call only
    their spare capacity, else ``Dropped``), make the call, and when the platform says 429
    (``retry_after`` reads its wait from the exception, None for any other error) pause
    ``pause`` (default: all of ``budgets``; or, when which limit was hit is only known from
    the answer, a function of the exception naming the budgets) for exactly that long and raise
    ``RateLimited``, so every caller of those budgets holds back, not just this one.
    ``method`` (the API method) labels the call's metrics when ``name`` does not say it;
    ``acquired``: the caller already holds the slots (``acquire_first``)."""
    if acquired:
        tickets = [budget.granted for budget in budgets]
    elif priority is Priority.COSMETIC:
        if not all(budget.has_spare() for budget in budgets):
            metrics.platform_dropped(name, method)
            raise Dropped(name)
        tickets = []
        for budget in budgets:
            if not await budget.try_acquire():
                metrics.platform_dropped(name, method)
                raise Dropped(name)
            tickets.append(budget.granted)
    else:
        tickets = [await budget.acquire(priority) for budget in budgets]
    metrics.platform_call(name, method)
    try:
        result = await request()
    except Exception as exc:
        wait = retry_after(exc)
        if wait is None:
            raise
        paused = budgets if pause is None else pause(exc) if callable(pause) else pause
        ticket_of = {id(budget): ticket for budget, ticket in zip(budgets, tickets, strict=True)}
        for budget in paused:
            budget.pause(wait, ticket_of.get(id(budget)))
        metrics.platform_rate_limited(name, method)
        if paused:
            log.warning("%s: 429, pausing it for %.2fs", name, wait)
        else:
            log.warning("%s: 429 on %s (retry after %.2fs), not retried", name, method, wait)
        raise RateLimited(wait, name) from exc
    for budget, ticket in zip(budgets, tickets, strict=True):
        budget.succeeded(ticket)
    return result
