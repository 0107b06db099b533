"""The assistant / agent view: suggested prompts when a thread opens, and thread titles.

Slack shows at most four suggested prompts. Two of them are copywriting starters, the
bot's main use; the status line is handled by the surface.

Both exist only in the app's DM with a user (a legacy assistant thread, or the agent view's
Messages tab, where prompts take no thread_ts): nothing is asked elsewhere, and a place that
refused (an error, not a 429) is not asked again; a workspace that lacks the scope or the
feature is not asked again at all. A thread gets its title once, from its first message.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack.api import SlackApi, error_code
from adapters.slack.normalise import title_for
from bot.platform import Dropped, Priority, RateLimited

log = logging.getLogger(__name__)

PROMPTS_TITLE = "Try one of these:"
SUGGESTED_PROMPTS: list[dict[str, str]] = [
    {
        "title": "写一篇小红书种草笔记",
        "message": "帮我写一篇小红书种草笔记：一款便携咖啡杯，突出保温和颜值，标题不超过20字，带emoji和话题标签。",
    },
    {
        "title": "Write a product launch post",
        "message": "Write a short launch post for our new app feature. Ask me for the details you need.",
    },
    {"title": "Summarise a document", "message": "I'll attach a document: summarise it in five bullet points."},
    {"title": "What can you do?", "message": "What can you help me with?"},
]


# Errors that say the workspace will take no assistant call from this app (scope, feature).
_WORKSPACE_REFUSALS = {
    "missing_scope",
    "not_allowed_token_type",
    "access_denied",
    "feature_not_enabled",
    "not_allowed",
    "team_access_not_granted",
}
MEMORY = 50_000  # places remembered before the sets start afresh (a bound, not a policy)


def in_assistant_view(channel: str) -> bool:
    """Assistant and agent threads live in the app's DM with a user (D…), never in a channel."""
    return channel.startswith("D")


class AssistantView:
    def __init__(self, api: SlackApi) -> None:
        self.api = api
        self._prompted_channels: set[str] = set()
        self._titled: set[tuple[str, str]] = set()
        self._refused: set[tuple[str, str, str]] = set()  # (method, channel, thread_ts) Slack refused
        self._refused_teams: set[tuple[str, str]] = set()  # (method, team)

    def _may(self, method: str, team: str, channel: str, thread_ts: str) -> bool:
        return (
            in_assistant_view(channel)
            and (method, team) not in self._refused_teams
            and (method, channel, thread_ts) not in self._refused
        )

    def _refusal(self, method: str, team: str, channel: str, thread_ts: str, exc: SlackApiError) -> None:
        """Slack said no (not a 429): never ask that place again, nor the workspace if it lacks the
        scope or the feature."""
        code = error_code(exc)
        log.info("%s refused in %s: %s", method, channel, code)
        for memory in (self._refused, self._refused_teams):
            if len(memory) > MEMORY:
                memory.clear()
        self._refused.add((method, channel, thread_ts))
        if code in _WORKSPACE_REFUSALS:
            self._refused_teams.add((method, team))

    async def thread_started(self, team: str, channel: str, thread_ts: str | None) -> None:
        """A new assistant thread (or the agent view's Messages tab) opened: offer prompts."""
        method = "assistant.threads.setSuggestedPrompts"
        if not self._may(method, team, channel, thread_ts or ""):
            return
        kwargs: dict[str, Any] = {"channel_id": channel, "title": PROMPTS_TITLE, "prompts": SUGGESTED_PROMPTS}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        elif channel in self._prompted_channels:
            return  # the Messages tab keeps its prompts; don't reset them on every visit
        else:
            self._prompted_channels.add(channel)
        try:
            await self.api.call(team, method, priority=Priority.COSMETIC, **kwargs)
        except SlackApiError as exc:
            self._refusal(method, team, channel, thread_ts or "", exc)
        except (RateLimited, Dropped) as exc:  # cosmetic: not now; the tab's next visit may try again
            log.info("setSuggestedPrompts not set in %s: %s", channel, exc or "no spare capacity")
            if not thread_ts:
                self._prompted_channels.discard(channel)

    async def title(self, team: str, channel: str, thread_ts: str, text: str) -> None:
        """Name an assistant thread after its first message (once per thread per process)."""
        method = "assistant.threads.setTitle"
        title = title_for(text)
        if (channel, thread_ts) in self._titled or not title or not self._may(method, team, channel, thread_ts):
            return
        if len(self._titled) > MEMORY:
            self._titled.clear()
        self._titled.add((channel, thread_ts))
        try:
            await self.api.call(
                team, method, channel_id=channel, thread_ts=thread_ts, title=title, priority=Priority.COSMETIC
            )
        except SlackApiError as exc:
            self._refusal(method, team, channel, thread_ts, exc)
        except (RateLimited, Dropped) as exc:  # cosmetic: the thread's next message may try again
            log.info("setTitle not set in %s: %s", channel, exc or "no spare capacity")
            self._titled.discard((channel, thread_ts))
