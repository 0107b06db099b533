"""The assistant / agent view: suggested prompts when a thread opens, and thread titles.

Slack shows at most four suggested prompts. Two of them are copywriting starters, the
bot's main use; the status line is handled by the surface.
"""
from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack.api import SlackApi
from adapters.slack.normalise import title_for
from bot.platform import Dropped, Priority, RateLimited

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Try one of these:"
SUGGESTED_PROMPTS: list[dict[str, str]] = [
    {"title": "写一篇小红书种草笔记",
     "message": "帮我写一篇小红书种草笔记：一款便携咖啡杯，突出保温和颜值，标题不超过20字，带emoji和话题标签。"},
    {"title": "Write a product launch post",
     "message": "Write a short launch post for our new app feature. Ask me for the details you need."},
    {"title": "Summarise a document",
     "message": "I'll attach a document: summarise it in five bullet points."},
    {"title": "What can you do?", "message": "What can you help me with?"},
]


class AssistantView:
    def __init__(self, api: SlackApi) -> None:
        self.api = api
        self._prompted_channels: set[str] = set()
        self._titled: set[tuple[str, str]] = set()

    async def thread_started(self, team: str, channel: str, thread_ts: str | None) -> None:
        """A new assistant thread (or the agent view's Messages tab) opened: offer prompts."""
        kwargs: dict[str, Any] = {"channel_id": channel, "title": PROMPTS_TITLE, "prompts": SUGGESTED_PROMPTS}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        elif channel in self._prompted_channels:
            return  # the Messages tab keeps its prompts; don't reset them on every visit
        else:
            self._prompted_channels.add(channel)
        try:
            await self.api.call(team, "assistant.threads.setSuggestedPrompts", priority=Priority.COSMETIC, **kwargs)
        except (SlackApiError, RateLimited, Dropped) as exc:  # cosmetic: never retried now
            log.info("setSuggestedPrompts not set in %s: %s", channel, exc or "no spare capacity")
            if not thread_ts:
                self._prompted_channels.discard(channel)

    async def title(self, team: str, channel: str, thread_ts: str, text: str) -> None:
        """Name a DM thread after its first message (once per thread per process)."""
        if (channel, thread_ts) in self._titled or not text.strip():
            return
        self._titled.add((channel, thread_ts))
        try:
            await self.api.call(team, "assistant.threads.setTitle", channel_id=channel,
                                thread_ts=thread_ts, title=title_for(text), priority=Priority.COSMETIC)
        except (SlackApiError, RateLimited, Dropped) as exc:  # cosmetic: the next message may try again
            log.info("setTitle not set in %s: %s", channel, exc or "no spare capacity")
            self._titled.discard((channel, thread_ts))
