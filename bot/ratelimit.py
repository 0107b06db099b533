"""Request budgets shared by every answer that talks to one platform account.

A ``Budget`` is a leaky bucket (aiolimiter) plus a pause that a 429's Retry-After sets,
so that one rate-limited call holds back every caller of the same budget, not just itself.
Adapters keep one per scope (per bot, per chat, per workspace and method); ``guarded`` is
the one call path both adapters use. Tests shrink every platform window with the single
setting ``PLATFORM_TIME_SCALE``.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from aiolimiter import AsyncLimiter

from bot import metrics
from bot.surface import RateLimited

log = logging.getLogger(__name__)
T = TypeVar("T")


class Budget:
    def __init__(self, rate: float, per: float, *, name: str = "") -> None:
        # max_rate requests per `per` seconds, bursting up to max_rate.
        self.name = name
        self.rate = rate
        self.per = per
        self._limiter = AsyncLimiter(rate, per)
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429's retry_after)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def has_capacity(self) -> bool:
        return self.paused_for == 0 and self._limiter.has_capacity()

    async def acquire(self) -> None:
        while (wait := self.paused_for) > 0:
            await asyncio.sleep(wait)
        await self._limiter.acquire()
        # A pause may have been set while we waited in the bucket.
        while (wait := self.paused_for) > 0:
            await asyncio.sleep(wait)

    def __repr__(self) -> str:
        return f"Budget({self.name!r}, {self.rate}/{self.per}s)"


class BudgetMap:
    """Budgets created on first use per key (a chat, a workspace+method)."""

    def __init__(self, rate: float, per: float, *, name: str = "") -> None:
        self.rate, self.per, self.name = rate, per, name
        self._budgets: dict[object, Budget] = {}

    def __getitem__(self, key: object) -> Budget:
        budget = self._budgets.get(key)
        if budget is None:
            budget = self._budgets[key] = Budget(self.rate, self.per, name=f"{self.name}:{key}")
        return budget


async def guarded(budgets: Sequence[Budget], request: Callable[[], Awaitable[T]], *,
                  retry_after: Callable[[Exception], float | None], name: str,
                  pause: Sequence[Budget] | None = None, method: str | None = None) -> T:
    """Every platform call goes through here: acquire ``budgets``, make the call, and when
    the platform says 429 (``retry_after`` reads its wait from the exception, None for any
    other error) pause ``pause`` (default: all of ``budgets``) for exactly that long and
    raise ``RateLimited``, so every caller of those budgets holds back, not just this one.
    ``method`` (the API method) labels the call's metrics when ``name`` does not say it."""
    for budget in budgets:
        await budget.acquire()
    metrics.platform_call(name, method)
    try:
        return await request()
    except Exception as exc:
        wait = retry_after(exc)
        if wait is None:
            raise
        for budget in budgets if pause is None else pause:
            budget.pause(wait)
        metrics.platform_rate_limited(name, method)
        log.warning("%s: 429, pausing it for %.2fs", name, wait)
        raise RateLimited(wait, name) from exc
