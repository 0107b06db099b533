"""Slack: mentions, threads, DMs, the assistant view, images, native streaming.

``create(settings, service)`` returns the adapter when ``SLACK_BOT_TOKEN`` is set, else None.
Setup steps: adapters/slack/README.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters.slack.adapter import SlackAdapter
    from bot.config import Settings
    from bot.core.service import ChatService


def create(settings: Settings, service: ChatService) -> SlackAdapter | None:
    if settings.slack_bot_token is None or not settings.slack_bot_token.get_secret_value():
        return None
    from adapters.slack.adapter import SlackAdapter

    return SlackAdapter(settings, service)
