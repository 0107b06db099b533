"""Where a platform budget's calls are counted: in this process, or in Redis for all of them.

Both keep sliding-window logs through pyrate-limiter (a bucket per budget, any number of
windows, millisecond precision, so PLATFORM_TIME_SCALE can shrink windows below a second).
``LocalCounters`` is the default (one process); with ``REDIS_URL`` set, ``RedisCounters``
counts every process's calls in one sorted set per budget (pyrate-limiter's Lua script does
check-and-insert atomically), and a 429's pause is a key with that expiry, so all processes
hold back together. Timestamps are wall-clock milliseconds: they are compared across
processes and hosts.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import SecretStr
from pyrate_limiter import InMemoryBucket, Rate, RateItem, RedisBucket
from pyrate_limiter.abstracts import AbstractBucket
from pyrate_limiter.utils import validate_rate_list

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# A call is counted when its slot is granted and by the platform when it arrives; between
# the two lie the client's work, a busy event loop and the network, and not the same for
# every call: each window is held a little longer than the platform's.
JITTER = 0.1  # seconds
LEAK_EVERY = 16  # drop expired entries once per this many admitted calls
STALE_MS = round(JITTER * 1000 / 2)  # a verdict slower than this may be stale (see _take_from)
STALE_RETAKES = 2
REDIS_CONNECTIONS = 32  # per platform account and process; more callers queue for one


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``count`` calls in any ``seconds``."""

    count: int
    seconds: float

    def rate(self) -> Rate:
        return Rate(self.count, max(1, round((self.seconds + JITTER) * 1000)))


def rates_for(windows: Sequence[Window], burst: int | None = None) -> list[Rate]:
    """The windows as pyrate-limiter rates, plus a burst window when ``burst`` is below the
    longest window's count: at most ``burst`` calls in ``burst`` × (seconds / count), so calls
    are spread over the window at its rate instead of all going at once.

    Each window is held ``JITTER`` longer than the platform's; the burst window too, and the
    longest window then lengthens to the burst window's density (pyrate-limiter wants longer
    windows no denser than shorter ones): ~1 % of a minute's rate for Slack's bursts. A shorter
    window the burst window already implies is left out (the list must grow in count too)."""
    rates = sorted((w.rate() for w in windows), key=lambda r: r.interval)
    longest = max(windows, key=lambda w: w.seconds)
    if burst is None or burst >= longest.count:
        return rates
    b = max(1, burst)
    burst_ms = max(1, round((b * longest.seconds / longest.count + JITTER) * 1000))
    ceiling = Rate(longest.count, max(rates[-1].interval, math.ceil(longest.count * burst_ms / b)))
    shorter = [r for r in rates[:-1] if b * math.ceil(r.interval / burst_ms) > r.limit]
    out = sorted([*shorter, Rate(b, burst_ms), ceiling], key=lambda r: r.interval)
    if validate_rate_list(out):
        return out
    log.debug("no burst window %s fits %s", b, rates)  # a shape no platform of ours has
    return rates


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Counter:
    """One budget's log of calls in this process; ``take`` is check-and-insert."""

    sync = True  # ``take_now`` decides at once: an in-process bucket, nothing to await

    def __init__(self, bucket: AbstractBucket, name: str) -> None:
        self.bucket = bucket
        self.name = name
        self._lock = asyncio.Lock()  # a bucket reports its last verdict: one put at a time
        self._admitted = 0

    def take_now(self) -> float:
        """``take`` for the in-process bucket: no await, so no other put can come between
        the decision and its verdict, and no lock is needed (every platform call passes here)."""
        now = now_ms()
        wait = self._verdict(self.bucket.put_decision(RateItem(self.name, now)))
        if wait == 0 and self._admitted % LEAK_EVERY == 0:
            self.bucket.leak(now)
        return wait

    async def take(self) -> float:
        """Count one call if every window has room: 0.0, else the seconds until one has."""
        return self.take_now()

    async def _take_from(self, bucket: AbstractBucket) -> float:
        async with self._lock:
            for _ in range(STALE_RETAKES + 1):
                now = now_ms()
                decision = bucket.put_decision(RateItem(self.name, now))
                if asyncio.iscoroutine(decision) or isinstance(decision, asyncio.Future):
                    decision = await decision
                wait = self._verdict(decision)
                # The shared log judges a call by its stamp and counts only calls stamped
                # before it: a verdict that took long to come back (a busy event loop, a
                # queue for a connection) may have missed calls other processes stamped
                # meanwhile. Take again, freshly stamped; the stale slot stays counted.
                if wait > 0 or now_ms() - now <= STALE_MS:
                    break
            if wait == 0 and self._admitted % LEAK_EVERY == 0:
                leaked = bucket.leak(now)
                if not isinstance(leaked, int):
                    await leaked
            return wait

    def _verdict(self, decision: Any) -> float:
        if decision.allowed:
            self._admitted += 1
            return 0.0
        wait_ms = decision.retry_after_ms
        # No wait known (a bucket that records none): try again after a small share of a window.
        return max(0.001, (wait_ms if wait_ms is not None and wait_ms >= 0 else 50) / 1000)

    def set_windows(self, windows: Sequence[Window], burst: int | None = None) -> None:
        self.bucket.rates = rates_for(windows, burst)


class SharedCounter(Counter):
    """A budget's log in Redis; while Redis cannot be reached, in this process (the answer
    goes on, paced as if this process were alone) until it can again."""

    sync = False

    def __init__(self, counters: RedisCounters, name: str, windows: Sequence[Window], burst: int | None = None) -> None:
        super().__init__(InMemoryBucket(rates_for(windows, burst)), name)
        self.counters = counters
        self.rates = rates_for(windows, burst)
        self.remote: RedisBucket | None = None

    async def take(self) -> float:
        if not self.counters.reachable():
            return await self._take_from(self.bucket)
        try:
            if self.remote is None:
                self.remote = await RedisBucket.init(
                    list(self.rates), self.counters.redis, self.counters.prefix + self.name
                )
            return await self._take_from(self.remote)
        except self.counters.down as exc:
            self.counters.unreachable(exc)
            return await self._take_from(self.bucket)

    def set_windows(self, windows: Sequence[Window], burst: int | None = None) -> None:
        super().set_windows(windows, burst)
        self.rates = rates_for(windows, burst)
        if self.remote is not None:
            self.remote.rates = list(self.rates)


class Counters(Protocol):
    shared: bool

    async def counter(self, name: str, windows: Sequence[Window], burst: int | None = None) -> Counter: ...

    async def pause(self, name: str, seconds: float) -> None:
        """Hold every caller of ``name`` back for ``seconds``."""

    async def paused_for(self, name: str) -> float: ...


class LocalCounters:
    """Counts in this process (the default: one process, nothing to share)."""

    shared = False

    def __init__(self) -> None:
        self._paused: dict[str, float] = {}

    async def counter(self, name: str, windows: Sequence[Window], burst: int | None = None) -> Counter:
        return Counter(InMemoryBucket(rates_for(windows, burst)), name)

    async def pause(self, name: str, seconds: float) -> None:
        until = time.monotonic() + max(0.0, seconds)
        self._paused[name] = max(self._paused.get(name, 0.0), until)

    async def paused_for(self, name: str) -> float:
        until = self._paused.get(name)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._paused[name]
            return 0.0
        return left


class RedisCounters:
    """Counts in Redis, shared by every process that uses the same ``REDIS_URL`` and the
    same platform account (``prefix`` names it)."""

    shared = True
    WARN_EVERY = 60.0  # seconds between two warnings that Redis is unreachable
    RETRY_AFTER = 5.0  # seconds without asking Redis once it failed (each try may time out)

    def __init__(self, redis: Redis, prefix: str) -> None:
        # redis-py is imported only when REDIS_URL is set (memory of a one-process bot).
        from redis.exceptions import RedisError

        self.down = (RedisError, OSError)  # what "Redis unreachable" looks like
        self.redis = redis
        self.prefix = prefix
        self._warned = -self.WARN_EVERY
        self._down_until = 0.0

    def reachable(self) -> bool:
        return time.monotonic() >= self._down_until

    def unreachable(self, exc: BaseException) -> None:
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if time.monotonic() - self._warned >= self.WARN_EVERY:
            self._warned = time.monotonic()
            log.warning(
                "Redis unreachable (%s): platform budgets are counted in this process until it is back",
                type(exc).__name__,
            )

    async def counter(self, name: str, windows: Sequence[Window], burst: int | None = None) -> Counter:
        return SharedCounter(self, name, windows, burst)

    async def pause(self, name: str, seconds: float) -> None:
        if not self.reachable():
            return  # the budget's own pause still holds this process back
        ms = max(1, round(seconds * 1000))
        # Keep the longer of two pauses: only replace a key that would expire sooner.
        key = self.prefix + "pause:" + name
        try:
            left = await self.redis.pttl(key)
            if left is None or left < ms:
                await self.redis.set(key, b"1", px=ms)
        except self.down as exc:
            self.unreachable(exc)  # the budget's own pause still holds this process back

    async def paused_for(self, name: str) -> float:
        if not self.reachable():
            return 0.0
        try:
            left = await self.redis.pttl(self.prefix + "pause:" + name)
        except self.down as exc:
            self.unreachable(exc)
            return 0.0
        return left / 1000 if left and left > 0 else 0.0


def counters_for(redis_url: SecretStr | None, account: str) -> Counters:
    """Where one platform account's budgets are counted: in Redis when ``REDIS_URL`` is set
    (a client per adapter: each holds its own connections), else in this process. ``account`` is
    the account's credential: only a hash of it names the keys, so two bots sharing a Redis
    keep apart."""
    if redis_url is None:
        return LocalCounters()
    from redis.asyncio import BlockingConnectionPool, Redis

    digest = hashlib.sha256(account.encode()).hexdigest()[:16]
    # Short timeouts: a Redis that does not answer must not hold up an answer for long. A
    # bounded pool that queues: a hundred answers starting at once take a budget each at
    # the same moment, and redis-py's default pool raises past 100 connections, which
    # would look like Redis being down (and the budgets would fall back to this process).
    pool = BlockingConnectionPool.from_url(
        redis_url.get_secret_value(),
        max_connections=REDIS_CONNECTIONS,
        timeout=2.0,
        socket_connect_timeout=1.0,
        socket_timeout=1.0,
    )
    return RedisCounters(Redis(connection_pool=pool), f"bot:budget:{digest}:")
