"""Web API calls through the shared budgets, with 429s turned into paused budgets.

Every call the adapter makes (bolt's own are limited to none: replies go through here)
acquires the budgets for its method, workspace and channel first. A 429 pauses those
budgets for its Retry-After, so every answer in the workspace holds back, and surfaces
as ``RateLimited`` (``bot.ratelimit.guarded``, the path Telegram's calls take too).
"""
from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack.budgets import SlackBudgets
from bot.ratelimit import guarded
from bot.surface import RateLimited


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

    def has_capacity(self, team: str, method: str, channel: str | None = None) -> bool:
        return all(b.has_capacity() for b in self.budgets.for_call(team, method, channel))

    async def call(self, team: str, method: str, **kwargs: Any) -> AsyncSlackResponse:
        """One call within budget; raises RateLimited on 429, SlackApiError otherwise."""
        budgets = self.budgets.for_call(team, method, kwargs.get("channel") or kwargs.get("channel_id"))
        send = getattr(self.client, method.replace(".", "_"))  # the SDK's method of that name
        return await guarded(budgets, lambda: send(**kwargs), retry_after=retry_after, name=f"slack {method}")

    async def call_retrying(self, team: str, method: str, *, attempts: int = 5,
                            **kwargs: Any) -> AsyncSlackResponse:
        """Like ``call`` but waits out 429s (for calls no pacing engine retries)."""
        for attempt in range(attempts):
            try:
                return await self.call(team, method, **kwargs)
            except RateLimited as exc:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")
