"""Telegram: private chats, groups and forum topics through python-telegram-bot.

Registered as a platform plug-in (``PLUGIN``); python-telegram-bot is imported only when
``TELEGRAM_BOT_TOKEN`` is set and the adapter starts.
"""
from adapters.telegram.settings import TelegramSettings
from bot.platform import PlatformPlugin

PLUGIN = PlatformPlugin(name="telegram", title="Telegram", settings=TelegramSettings,
                        adapter="adapters.telegram.app:TelegramAdapter", quiet_loggers=("telegram.ext",))

__all__ = ["PLUGIN", "TelegramSettings"]
