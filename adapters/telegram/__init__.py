"""Telegram: private chats, groups and forum topics through python-telegram-bot."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.service import ChatService
    from bot.platform.adapter import PlatformAdapter


def create(settings: Settings, service: ChatService) -> PlatformAdapter | None:
    """The adapter when TELEGRAM_BOT_TOKEN is set, else None."""
    if settings.telegram_bot_token is None or not settings.telegram_bot_token.get_secret_value():
        return None
    from adapters.telegram.app import TelegramAdapter

    return TelegramAdapter(settings, service)
