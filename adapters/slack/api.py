"""Web API calls through the shared budgets, with 429s turned into paused budgets.

Every call the adapter makes (bolt's own are limited to none: replies go through here)
acquires the budgets for its method, workspace and channel first, with its priority
(``bot.ratelimits.budgets.Priority``: a cosmetic call only takes spare capacity and is dropped
otherwise). A 429 pauses those budgets for its Retry-After, so every answer in the
workspace holds back, and surfaces as ``RateLimited`` (``bot.ratelimits.budgets.guarded``, the path
Telegram's calls take too).
"""

from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.budgets import SlackBudgets
from bot.platform import Priority, RateLimited, acquire_first, guarded

RETRY_AFTER_DEFAULT = 1.0


def error_code(exc: SlackApiError) -> str:
    data = exc.response.data
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def retry_after(exc: Exception) -> float | None:
    """Seconds to wait if ``exc`` is a 429, else None."""
    if not isinstance(exc, SlackApiError) or exc.response.status_code != 429:
        return None
    headers = {k.lower(): v for k, v in (exc.response.headers or {}).items()}
    value = headers.get("retry-after")
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else RETRY_AFTER_DEFAULT
    except (TypeError, ValueError):
        return RETRY_AFTER_DEFAULT


class SlackApi:
    def __init__(self, client: AsyncWebClient, budgets: SlackBudgets) -> None:
        self.client = client
        self.budgets = budgets

    def has_room(self, team: str, method: str, channel: str | None = None) -> bool:
        """Whether one more call could go at once (nobody waiting, windows not full)."""
        return all(b.has_room() for b in self.budgets.for_call(team, method, channel))

    async def first_free(self, team: str, *calls: tuple[str, str | None], priority: Priority) -> int:
        """Wait until the budgets of one of ``calls`` ((method, channel) pairs) free a slot,
        in priority and arrival order; returns which. That call must be made with
        ``acquired=True``."""
        return await acquire_first(
            [self.budgets.for_call(team, method, channel) for method, channel in calls], priority
        )

    async def call(
        self, team: str, method: str, *, priority: Priority = Priority.EDIT, acquired: bool = False, **kwargs: Any
    ) -> AsyncSlackResponse:
        """One call within budget; raises RateLimited on 429, Dropped for a cosmetic call
        with no room, SlackApiError otherwise."""
        budgets = self.budgets.for_call(team, method, kwargs.get("channel") or kwargs.get("channel_id"))
        send = getattr(self.client, method.replace(".", "_"))  # the SDK's method of that name
        return await guarded(
            budgets,
            lambda: send(**kwargs),
            retry_after=retry_after,
            name=f"slack {method}",
            priority=priority,
            acquired=acquired,
        )

    async def call_retrying(
        self, team: str, method: str, *, attempts: int = 5, priority: Priority = Priority.FINAL, **kwargs: Any
    ) -> AsyncSlackResponse:
        """Like ``call`` but waits out 429s (for calls no pacing engine retries; never a
        cosmetic one)."""
        for attempt in range(attempts):
            try:
                return await self.call(team, method, priority=priority, **kwargs)
            except RateLimited as exc:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")
